"""Where model files come from: one fetcher per URI scheme.

A fetcher turns a URI into local files and returns a `Fetched`: the local path (a directory holding
`manifest.json` and the artifact, a manifest file, or a bare artifact file) and details to report
(for Cloud Storage, the object generation). Adding a scheme means adding one entry to `_FETCHERS`.
"""

import pathlib
import urllib.parse
from collections.abc import Callable

from model.errors import ModelNotFound
from model.fetched import Fetched, FetchOptions

__all__ = ["Fetched", "FetchOptions", "fetch", "scheme_of"]


def _fetch_local(uri: str, options: FetchOptions) -> Fetched:
    path = pathlib.Path(urllib.parse.urlparse(uri).path if uri.startswith("file://") else uri)
    if not path.exists():
        raise ModelNotFound(f"no model at {path}: build one with `python -m model train` or set MODEL_URI")
    return Fetched(path=path.resolve())


def _fetch_gcs(uri: str, options: FetchOptions) -> Fetched:
    from model import gcs  # imported on first use: google-cloud-storage is heavy

    return gcs.fetch(uri, options)


_FETCHERS: dict[str, Callable[[str, FetchOptions], Fetched]] = {
    "": _fetch_local,
    "file": _fetch_local,
    "gs": _fetch_gcs,
}


def scheme_of(uri: str) -> str:
    """The URI's scheme, '' for a plain path."""
    return urllib.parse.urlparse(uri).scheme if "://" in uri else ""


def fetch(uri: str, options: FetchOptions) -> Fetched:
    """Brings the model at `uri` to local files; raises a ModelLoadError subclass if it cannot."""
    scheme = scheme_of(uri)
    fetcher = _FETCHERS.get(scheme)
    if fetcher is None:
        supported = ", ".join(s + "://" for s in _FETCHERS if s)
        raise ModelNotFound(f"MODEL_URI scheme {scheme!r} is not supported (use a local path or {supported})")
    return fetcher(uri, options)
