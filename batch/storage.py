"""Where rows are read from and predictions are written to: a local path or gs://BUCKET/PATH.

`list_inputs` names the input files (one file, or every file under a directory or prefix, in name
order; names starting with "." or "_" are left out, as Hadoop and Spark markers are), `reader` reads
byte ranges of one, and `output` writes a file that appears whole or not at all: locally a temp file
renamed into place, on Cloud Storage one upload of the finished file (an object is created whole, on
its last byte). The Cloud Storage client and per-call deadline are the model loader's
(`model.gcs_client`): every call has a connect/read timeout and a bounded retry.
"""

import contextlib
import dataclasses
import os
import pathlib
import tempfile
import urllib.parse

from batch.errors import BatchError
from model.files import atomic_path


@dataclasses.dataclass(frozen=True)
class InputFile:
    uri: str
    relative: str  # its path below INPUT ("/"-separated); its own name when INPUT is the file
    size: int
    generation: int | None = None  # the Cloud Storage generation listed, so every read sees the same bytes


def is_gcs(uri: str) -> bool:
    return uri.startswith("gs://")


def _split(uri: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(uri)
    if not parts.netloc:
        raise BatchError(f"{uri!r} is not a gs://BUCKET/PATH URI")
    return parts.netloc, parts.path.lstrip("/")


def _visible(relative: str) -> bool:
    return not any(part.startswith((".", "_")) for part in relative.split("/"))


def join(base: str, relative: str) -> str:
    return base.rstrip("/") + "/" + relative if is_gcs(base) else str(pathlib.Path(base, relative))


def list_inputs(uri: str, timeout_s: float) -> list[InputFile]:
    """The input files INPUT names, sorted; raises BatchError when there are none."""
    files = _list_gcs(uri, timeout_s) if is_gcs(uri) else _list_local(uri)
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
        if _visible(relative):
            found.append(InputFile(str(file), relative, file.stat().st_size))
    return found


def _gcs_call(uri: str, timeout_s: float, action, role: str = "roles/storage.objectViewer"):
    """Runs `action(call_kwargs)` under one deadline; what the library raises becomes a BatchError."""
    from google.api_core import exceptions as api

    from model.gcs_client import Budget, as_load_error

    budget = Budget(timeout_s, setting="BATCH_IO_TIMEOUT_S")
    try:
        return action(budget.call())
    except (api.Forbidden, api.Unauthorized) as e:
        raise BatchError(f"{uri}: permission denied ({e.code}): grant the job's service account {role} on "
                         f"the bucket; {e.message}") from None
    except Exception as e:
        try:
            error = as_load_error(e, uri, budget)
        except Exception:  # not a storage error: a bug, reported as such
            raise e from None
        raise BatchError(str(error)) from e


def _list_gcs(uri: str, timeout_s: float) -> list[InputFile]:
    from google.api_core.exceptions import NotFound

    from model.gcs_client import client

    bucket, path = _split(uri)

    def single(call):
        blob = client().bucket(bucket).blob(path)
        try:
            blob.reload(**call)
        except NotFound:
            return None
        return blob

    blob = _gcs_call(uri, timeout_s, single) if path and not path.endswith("/") else None
    if blob is not None:
        return [InputFile(uri, path.rsplit("/", 1)[-1], blob.size, blob.generation)]
    prefix = path.rstrip("/") + "/" if path.strip("/") else ""

    def listing(call):
        try:
            return list(client().list_blobs(bucket, prefix=prefix, **call))
        except NotFound:
            raise BatchError(f"input {uri}: bucket gs://{bucket} does not exist") from None

    blobs = _gcs_call(uri, timeout_s, listing)
    if not blobs:
        raise BatchError(f"input {uri} does not exist: no object gs://{bucket}/{path.rstrip('/')} and no objects "
                         f"under gs://{bucket}/{prefix}")
    return [InputFile(f"gs://{bucket}/{b.name}", b.name[len(prefix):], b.size, b.generation)
            for b in sorted(blobs, key=lambda b: b.name)
            if not b.name.endswith("/") and _visible(b.name[len(prefix):])]


class _LocalReader:
    def __init__(self, file: InputFile):
        self._fd = os.open(file.uri, os.O_RDONLY)

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def close(self) -> None:
        os.close(self._fd)


class _GcsReader:
    """Ranged reads of the generation listed: an object replaced mid-run fails instead of mixing bytes."""

    def __init__(self, file: InputFile, timeout_s: float):
        from model.gcs_client import client

        bucket, name = _split(file.uri)
        self._file, self._timeout_s = file, timeout_s
        self._blob = client().bucket(bucket).blob(name, generation=file.generation)

    def read(self, offset: int, size: int) -> bytes:
        end = min(offset + size, self._file.size)
        if offset >= end:
            return b""
        # A range has no checksum to check (crc32c covers whole objects only); TLS guards the bytes.
        return _gcs_call(self._file.uri, self._timeout_s, lambda call: self._blob.download_as_bytes(
            start=offset, end=end - 1, checksum=None, **call))

    def close(self) -> None:
        pass


@contextlib.contextmanager
def reader(file: InputFile, timeout_s: float):
    """`read(offset, size) -> bytes` over the file (fewer bytes only at its end)."""
    opened = _GcsReader(file, timeout_s) if is_gcs(file.uri) else _LocalReader(file)
    try:
        yield opened
    finally:
        opened.close()


def exists(uri: str, timeout_s: float) -> bool:
    if not is_gcs(uri):
        return pathlib.Path(uri).is_file()
    from model.gcs_client import client

    bucket, name = _split(uri)
    return _gcs_call(uri, timeout_s, lambda call: client().bucket(bucket).blob(name).exists(**call))


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def output(uri: str, timeout_s: float):
    """Yields a binary file; when the block ends without error its bytes become `uri`, whole, in one step."""
    if not is_gcs(uri):
        target = pathlib.Path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A task killed outright (SIGKILL) leaves its temp file behind; the rerun clears it.
        for stale in target.parent.glob(f".{target.name}.*.part"):
            stale.unlink(missing_ok=True)
        with atomic_path(target) as tmp, open(tmp, "wb") as sink:
            os.fchmod(sink.fileno(), 0o666 & ~_umask())  # a temp file is private; the output is not
            yield sink
        return
    from model.gcs_client import client

    bucket, name = _split(uri)
    with tempfile.NamedTemporaryFile(prefix="batch-", suffix=".jsonl") as sink:
        yield sink
        sink.flush()

        def upload(call):
            blob = client().bucket(bucket).blob(name)
            blob.upload_from_filename(sink.name, content_type="application/jsonl", checksum="crc32c", **call)

        # objectUser: creating the object, and replacing it when a retried task writes it again.
        _gcs_call(uri, timeout_s, upload, role="roles/storage.objectUser")
