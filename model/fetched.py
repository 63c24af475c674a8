"""What a fetcher is given and what it returns; shared by every source of model files."""

import dataclasses
import pathlib


@dataclasses.dataclass(frozen=True)
class Fetched:
    """Local files of a model (a directory, a manifest, or a bare artifact) and details to report."""

    path: pathlib.Path
    details: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FetchOptions:
    cache_dir: pathlib.Path
    timeout_s: float
    generation: int | None = None
