"""Where rows are read from and predictions are written to: a local path or gs://BUCKET/PATH.

`list_inputs` names the input files (one file, or every file under a directory or prefix, in name
order, markers left out), `reader` reads byte ranges of one, and `output` writes a file that appears
whole or not at all: locally a temp file renamed into place, on Cloud Storage one upload of the
finished file. Cloud Storage calls live in `batch.gcs_io`.
"""

import contextlib
import os
import pathlib
import tempfile

from batch import gcs_io
from batch.errors import BatchError
from batch.files import InputFile, visible
from model.files import atomic_path

__all__ = ["InputFile", "exists", "is_gcs", "join", "list_inputs", "output", "reader"]


def is_gcs(uri: str) -> bool:
    return uri.startswith("gs://")


def join(base: str, relative: str) -> str:
    return base.rstrip("/") + "/" + relative if is_gcs(base) else str(pathlib.Path(base, relative))


def list_inputs(uri: str, timeout_s: float) -> list[InputFile]:
    """The input files INPUT names, sorted; raises BatchError when there are none."""
    files = gcs_io.list_files(uri, timeout_s) if is_gcs(uri) else _list_local(uri)
    if not files:
        raise BatchError(f"input {uri} holds no files to score (names starting with '.' or '_' are skipped)")
    return files


def _list_local(uri: str) -> list[InputFile]:
    path = pathlib.Path(uri)
    if path.is_file():
        return [InputFile(str(path), path.name, path.stat().st_size)]
    if not path.is_dir():
        raise BatchError(f"input {uri} does not exist")
    found = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        if visible(relative):
            found.append(InputFile(str(file), relative, file.stat().st_size))
    return found


class _LocalReader:
    def __init__(self, file: InputFile):
        self._fd = os.open(file.uri, os.O_RDONLY)

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def close(self) -> None:
        os.close(self._fd)


@contextlib.contextmanager
def reader(file: InputFile, timeout_s: float):
    """`read(offset, size) -> bytes` over the file (fewer bytes only at its end)."""
    opened = gcs_io.Reader(file, timeout_s) if is_gcs(file.uri) else _LocalReader(file)
    try:
        yield opened
    finally:
        opened.close()


def exists(uri: str, timeout_s: float) -> bool:
    return gcs_io.exists(uri, timeout_s) if is_gcs(uri) else pathlib.Path(uri).is_file()


@contextlib.contextmanager
def output(uri: str, timeout_s: float):
    """Yields a binary file; when the block ends without error its bytes become `uri`, whole, in one step."""
    if is_gcs(uri):
        with tempfile.NamedTemporaryFile(prefix="batch-", suffix=".jsonl") as sink:
            yield sink
            sink.flush()
            gcs_io.upload(sink.name, uri, timeout_s)
        return
    target = pathlib.Path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A task killed outright (SIGKILL) leaves its temp file behind; the rerun clears it.
    for stale in target.parent.glob(f".{target.name}.*.part"):
        stale.unlink(missing_ok=True)
    with atomic_path(target) as tmp, open(tmp, "wb") as sink:
        yield sink
