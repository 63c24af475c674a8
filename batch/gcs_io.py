"""The Cloud Storage side of `batch.storage`: listing, ranged reads, existence and whole-object uploads.

The client and the per-call deadline are the model loader's (`model.gcs_client`): every call has a
connect/read timeout and a retry bounded by BATCH_IO_TIMEOUT_S; what the library raises becomes a
BatchError naming the URI and the cause (a permission error names the role to grant).
"""

import urllib.parse

from batch.errors import BatchError
from batch.files import InputFile, visible


def split(uri: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(uri)
    if not parts.netloc:
        raise BatchError(f"{uri!r} is not a gs://BUCKET/PATH URI")
    return parts.netloc, parts.path.lstrip("/")


def _call(uri: str, timeout_s: float, action, role: str = "roles/storage.objectViewer"):
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


def list_files(uri: str, timeout_s: float) -> list[InputFile]:
    """The object `uri` names, or else every object under it as a prefix, in name order."""
    from google.api_core.exceptions import NotFound

    from model.gcs_client import client

    bucket, path = split(uri)

    def single(call):
        blob = client().bucket(bucket).blob(path)
        try:
            blob.reload(**call)
        except NotFound:
            return None
        return blob

    blob = _call(uri, timeout_s, single) if path and not path.endswith("/") else None
    if blob is not None:
        return [InputFile(uri, path.rsplit("/", 1)[-1], blob.size, blob.generation)]
    prefix = path.rstrip("/") + "/" if path.strip("/") else ""

    def listing(call):
        try:
            return list(client().list_blobs(bucket, prefix=prefix, **call))
        except NotFound:
            raise BatchError(f"input {uri}: bucket gs://{bucket} does not exist") from None

    blobs = _call(uri, timeout_s, listing)
    if not blobs:
        raise BatchError(f"input {uri} does not exist: no object gs://{bucket}/{path.rstrip('/')} and no objects "
                         f"under gs://{bucket}/{prefix}")
    return [InputFile(f"gs://{bucket}/{b.name}", b.name[len(prefix):], b.size, b.generation)
            for b in sorted(blobs, key=lambda b: b.name)
            if not b.name.endswith("/") and visible(b.name[len(prefix):])]


class Reader:
    """Ranged reads of the generation listed: an object replaced mid-run fails instead of mixing bytes."""

    def __init__(self, file: InputFile, timeout_s: float):
        from model.gcs_client import client

        bucket, name = split(file.uri)
        self._file, self._timeout_s = file, timeout_s
        self._blob = client().bucket(bucket).blob(name, generation=file.generation)

    def read(self, offset: int, size: int) -> bytes:
        end = min(offset + size, self._file.size)
        if offset >= end:
            return b""
        # A range has no checksum to check (crc32c covers whole objects only); TLS guards the bytes.
        return _call(self._file.uri, self._timeout_s, lambda call: self._blob.download_as_bytes(
            start=offset, end=end - 1, checksum=None, **call))

    def close(self) -> None:
        pass


def exists(uri: str, timeout_s: float) -> bool:
    from model.gcs_client import client

    bucket, name = split(uri)
    return _call(uri, timeout_s, lambda call: client().bucket(bucket).blob(name).exists(**call))


def upload(path: str, uri: str, timeout_s: float) -> None:
    """Uploads a finished file as one object: it appears whole, on its last byte, or not at all."""
    from model.gcs_client import client

    bucket, name = split(uri)

    def send(call):
        client().bucket(bucket).blob(name).upload_from_filename(path, content_type="application/jsonl",
                                                                checksum="crc32c", **call)

    # objectUser: creating the object, and replacing it when a retried task writes it again.
    _call(uri, timeout_s, send, role="roles/storage.objectUser")
