"""Google REST calls for what the installed gcloud has no GA command for (Monitoring alert policies
and time series).

They go where gcloud would send them: the API's CLOUDSDK_API_ENDPOINT_OVERRIDES_<API> when set
(else https://<api>.googleapis.com/), through gcloud's CLOUDSDK_PROXY_* proxy when set (else the
usual https_proxy variables), with gcloud's access token.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request

from release.errors import ReleaseError

_TIMEOUT_S = 30


class HttpError(ReleaseError):
    """The API answered an error: `code` is its HTTP status, `detail` its "STATUS: message"."""

    def __init__(self, method, url, code, detail):
        super().__init__(f"{method} {url}: {code} {detail}")
        self.code, self.detail = code, detail


class Unreachable(ReleaseError):
    """No answer at all (no route, refused, timed out)."""


class Api:
    """One Google API (e.g. "monitoring") called with a bearer token: `token` is the token, or a
    function returning it (asked before every call, so it may renew one that expires)."""

    def __init__(self, name, token, environ=os.environ):
        override = environ.get(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{name.upper()}")
        self.base = (override or f"https://{name}.googleapis.com/").rstrip("/") + "/"
        self._token = token if callable(token) else lambda: token
        self.opener = urllib.request.build_opener(*_proxy(environ))

    def call(self, method, path, body=None, query=None):
        url = self.base + path.lstrip("/")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=_TIMEOUT_S) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise HttpError(method, url, error.code, _google_message(error.read())) from None
        except (urllib.error.URLError, OSError) as error:
            raise Unreachable(f"{method} {url}: {getattr(error, 'reason', error)}") from None

    def list(self, path, field, query=None):
        """Every item of a paged list (the API's nextPageToken)."""
        items, query = [], dict(query or {})
        while True:
            page = self.call("GET", path, query=query or None)
            items += page.get(field, [])
            if not page.get("nextPageToken"):
                return items
            query["pageToken"] = page["nextPageToken"]


def _proxy(environ):
    if environ.get("CLOUDSDK_PROXY_ADDRESS") and environ.get("CLOUDSDK_PROXY_PORT"):
        if environ.get("CLOUDSDK_PROXY_TYPE", "http") != "http":
            raise ReleaseError("CLOUDSDK_PROXY_TYPE must be http for the REST calls of ./deploy.sh")
        address = f"http://{environ['CLOUDSDK_PROXY_ADDRESS']}:{environ['CLOUDSDK_PROXY_PORT']}"
        return [urllib.request.ProxyHandler({"http": address, "https": address})]
    return []


def _google_message(raw):
    """The message of a Google error body ({"error": {"status", "message"}}), else the raw text."""
    try:
        error = json.loads(raw)["error"]
        return f"{error.get('status', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:200]
