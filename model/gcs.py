"""Fetching a model from Cloud Storage: `gs://BUCKET/PATH[#GENERATION]`.

PATH is a prefix holding `manifest.json` and the artifact it names (what `python -m model publish`
writes; the manifest pins the artifact's generation), a `.../manifest.json` object, a bare artifact
object such as Vertex AI's `model.joblib`, or a directory holding one such file and no manifest (what
Vertex AI's AIP_STORAGE_URI names), with or without a trailing slash. Each file is downloaded once per instance into the cache
directory, keyed by bucket, object and generation, through a temp file and `os.replace`, so a partial
or corrupt download never becomes a cached file. Every request carries a connect/read timeout and a
retry bounded by `FetchOptions.timeout_s`, so an unreachable bucket fails in seconds instead of after
the client's default two minutes.

The client, the deadline and the mapping of library errors live in `model.gcs_client`.
"""

import hashlib
import os
import pathlib
import threading
import urllib.parse

from model import manifest as manifests
from model.errors import (
    ModelIntegrityError,
    ModelLoadError,
    ModelNotFound,
)
from model.fetched import Fetched, FetchOptions
from model.files import atomic_path, write_atomic
from model.gcs_client import Budget, as_load_error, client, reset_client
from model.manifest import MANIFEST_NAME, sha256_of

__all__ = ["Budget", "as_load_error", "client", "fetch", "parse_uri", "reset_client"]

_downloads_lock = threading.Lock()
_downloads: dict[str, threading.Lock] = {}


def _forget_after_fork() -> None:
    # A lock another thread held must not cross a fork.
    global _downloads_lock, _downloads
    _downloads_lock, _downloads = threading.Lock(), {}


os.register_at_fork(after_in_child=_forget_after_fork)


def parse_uri(uri: str, generation: int | None = None) -> tuple[str, str, int | None]:
    """(bucket, path, generation) of `gs://BUCKET/PATH[#GENERATION]`."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "gs" or not parts.netloc:
        raise ModelNotFound(f"{uri!r} is not a gs://BUCKET/PATH URI")
    pinned = generation
    if parts.fragment:
        if not parts.fragment.isdigit():
            raise ModelNotFound(f"{uri}: the generation after '#' must be a number")
        pinned = int(parts.fragment)
        if generation is not None and generation != pinned:
            raise ModelNotFound(f"{uri} pins generation {pinned} but MODEL_GENERATION is {generation}")
    return parts.netloc, parts.path.lstrip("/"), pinned


def fetch(uri: str, options: FetchOptions) -> Fetched:
    """Brings the model at a gs:// URI into options.cache_dir; raises a ModelLoadError if it cannot."""
    bucket, path, generation = parse_uri(uri, options.generation)
    budget = Budget(options.timeout_s)
    try:
        blob = _locate(bucket, path, generation, budget)
        if blob.name.rsplit("/", 1)[-1] == MANIFEST_NAME:
            return _fetch_manifest_dir(blob, options.cache_dir, budget)
        return _fetch_bare(blob, options.cache_dir, budget)
    except ModelLoadError:
        raise
    except Exception as e:
        raise as_load_error(e, uri, budget) from e


def _url(bucket: str, name: str, generation=None) -> str:
    return f"gs://{bucket}/{name}" + (f"#{generation}" if generation is not None else "")


def _stat(bucket: str, name: str, generation: int | None, budget: Budget):
    """The object's metadata at that generation (the live one if None), or None if there is none."""
    from google.api_core.exceptions import NotFound

    blob = client().bucket(bucket).blob(name, generation=generation)
    try:
        blob.reload(**budget.call())
    except NotFound:
        return None
    # Some servers (the emulator) ignore ?generation= and answer with the live object.
    if generation is not None and blob.generation != generation:
        return None
    return blob


def _locate(bucket: str, path: str, generation: int | None, budget: Budget):
    """The manifest, or else the bare artifact, that `path` names."""
    if not path or path.endswith("/"):
        names = [path + MANIFEST_NAME]
    elif path.rsplit("/", 1)[-1] == MANIFEST_NAME:
        names = [path]
    else:
        names = [f"{path}/{MANIFEST_NAME}", path]
    for name in names:
        blob = _stat(bucket, name, generation, budget)
        if blob is not None:
            return blob
    # A directory without a manifest (Vertex AI's model directory) may hold one bare artifact.
    folder = path.rstrip("/") + "/" if path.strip("/") else ""
    pickled = None if names == [path] else _sole_pickle(bucket, folder, budget)
    if pickled is not None:
        names.append(pickled)
        blob = _stat(bucket, pickled, generation, budget)
        if blob is not None:
            return blob
    if not _bucket_exists(bucket, budget):
        raise ModelNotFound(f"{_url(bucket, path, generation)}: bucket gs://{bucket} does not exist")
    if generation is not None:
        live = [b for b in (_stat(bucket, n, None, budget) for n in names) if b is not None]
        if live:
            raise ModelNotFound(f"{_url(bucket, path, generation)}: generation {generation} of "
                                f"{_url(bucket, live[0].name)} does not exist (the live one is "
                                f"{live[0].generation}); pin an existing generation or drop the pin")
    raise ModelNotFound(f"{_url(bucket, path, generation)}: no such object: neither "
                        f"{' nor '.join(_url(bucket, n) for n in names)} exists; "
                        f"publish one with `python -m model publish {_url(bucket, path)}`")


def _sole_pickle(bucket: str, folder: str, budget: Budget) -> str | None:
    """The one model.joblib/.pkl directly in `folder` (a Vertex AI model directory), if it holds one."""
    from google.api_core.exceptions import NotFound

    try:
        names = [blob.name for blob in client().list_blobs(bucket, prefix=folder, delimiter="/", **budget.call())]
    except NotFound:
        return None
    pickled = sorted(n for n in names if n.endswith(manifests.PICKLE_SUFFIXES))
    if len(pickled) > 1:
        raise ModelIntegrityError(f"gs://{bucket}/{folder} holds several pickle files "
                                  f"({', '.join(n.rsplit('/', 1)[-1] for n in pickled)}) and no {MANIFEST_NAME}; "
                                  "point MODEL_URI at the one to serve")
    return pickled[0] if pickled else None


def _bucket_exists(bucket: str, budget: Budget) -> bool:
    # Listing needs storage.objects.list, which roles/storage.objectViewer grants; bucket metadata
    # (storage.buckets.get) would need more than the runtime should have.
    from google.api_core.exceptions import NotFound

    try:
        next(iter(client().list_blobs(bucket, max_results=1, **budget.call())), None)
    except NotFound:
        return False
    return True


def _fetch_manifest_dir(manifest_blob, cache_dir: pathlib.Path, budget: Budget) -> Fetched:
    """A local directory holding the manifest and the exact generations of the files it names."""
    bucket, generation = manifest_blob.bucket.name, manifest_blob.generation
    url = _url(bucket, manifest_blob.name, generation)
    local = _cache_dir_for(cache_dir, bucket, manifest_blob.name, generation)
    with _download_lock(local):
        if not (local / MANIFEST_NAME).is_file():
            local.mkdir(parents=True, exist_ok=True)
            data = manifest_blob.download_as_bytes(checksum="crc32c", **budget.call())
            prefix = manifest_blob.name[: -len(MANIFEST_NAME)]
            for entry in manifests.served_files(manifests.parse(data, url)):
                _fetch_artifact(bucket, prefix + entry["file"], entry, url, local, budget)
            # Written last: its presence is what marks the directory complete.
            write_atomic(local / MANIFEST_NAME, data)
        manifest = manifests.parse((local / MANIFEST_NAME).read_bytes(), url)
    return Fetched(path=local, details={"generation": generation, "object": url,
                                        "artifact_generation": manifests.served_files(manifest)[0].get("generation")})


def _fetch_artifact(bucket: str, name: str, entry: dict, manifest_url: str, local: pathlib.Path, budget: Budget):
    generation = entry.get("generation")
    blob = _stat(bucket, name, generation, budget)
    if blob is None:
        live = _stat(bucket, name, None, budget) if generation is not None else None
        if live is not None:
            raise ModelIntegrityError(f"{manifest_url} names {_url(bucket, name, generation)}, but that generation "
                                      f"is gone (the live one, {live.generation}, was written after it); publish again")
        raise ModelNotFound(f"{_url(bucket, name, generation)}, named by {manifest_url}, does not exist")
    if entry.get("size") is not None and blob.size != entry["size"]:
        raise ModelIntegrityError(f"{_url(bucket, name, blob.generation)} has {blob.size} bytes but "
                                  f"{manifest_url} says {entry['size']}")
    _download(blob, local / entry["file"], budget, expected_sha256=entry["sha256"], manifest_url=manifest_url)


def _fetch_bare(blob, cache_dir: pathlib.Path, budget: Budget) -> Fetched:
    """A lone artifact object (no manifest), kept under its own file name so its suffix tells its format."""
    bucket, generation = blob.bucket.name, blob.generation
    local = _cache_dir_for(cache_dir, bucket, blob.name, generation)
    file_name = blob.name.rsplit("/", 1)[-1]
    target = local / (file_name if file_name not in (".", "..") else "artifact")
    with _download_lock(local):
        if not target.is_file():
            local.mkdir(parents=True, exist_ok=True)
            _download(blob, target, budget)
    return Fetched(path=target, details={"generation": generation, "object": _url(bucket, blob.name, generation)})


def _cache_dir_for(cache_dir: pathlib.Path, bucket: str, name: str, generation: int) -> pathlib.Path:
    # Object names may hold any character ("..", "%"); a digest keeps them out of the local path.
    digest = hashlib.sha256(f"{bucket}/{name}".encode()).hexdigest()[:24]
    return cache_dir / "gcs" / bucket / f"{digest}-{generation}"


def _download_lock(local: pathlib.Path) -> threading.Lock:
    with _downloads_lock:
        return _downloads.setdefault(str(local), threading.Lock())


class _DeadlineSink:
    """A file that stops a download trickling past the deadline (the read timeout is per read)."""

    def __init__(self, raw, budget: Budget):
        self._raw, self._budget = raw, budget

    def write(self, data) -> int:
        self._budget.remaining()
        return self._raw.write(data)

    def __getattr__(self, name):
        return getattr(self._raw, name)


def _download(blob, target: pathlib.Path, budget: Budget, expected_sha256=None, manifest_url=None) -> None:
    """Downloads the blob's generation to `target` atomically, checking crc32c and the SHA-256 if given."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as raw:
            blob.download_to_file(_DeadlineSink(raw, budget), checksum="crc32c", **budget.call())
        actual = sha256_of(tmp)
        if expected_sha256 is not None and actual != expected_sha256:
            raise ModelIntegrityError(f"{_url(blob.bucket.name, blob.name, blob.generation)} has SHA-256 {actual}, "
                                      f"but {manifest_url} expects {expected_sha256}")
