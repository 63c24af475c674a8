"""An input file as listed, and which names count as input."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class InputFile:
    uri: str
    relative: str  # its path below INPUT ("/"-separated); its own name when INPUT is the file
    size: int
    generation: int | None = None  # the Cloud Storage generation listed, so every read sees the same bytes


def visible(relative: str) -> bool:
    """Names starting with "." or "_" (in any folder) are markers and temp files, as Hadoop and Spark write."""
    return not any(part.startswith((".", "_")) for part in relative.split("/"))
