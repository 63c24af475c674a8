"""POSTing JSON with a timeout, and retries with backoff when the function says "not now" (429/503)."""

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

RETRY_STATUSES = (429, 503)


class _ReportedRetry(Retry):
    """urllib3's Retry, saying before each wait what went wrong and how long it waits."""

    log = staticmethod(lambda message: None)

    def new(self, **kw):
        retry = super().new(**kw)
        retry.log = self.log
        return retry

    def sleep(self, response=None):
        # As urllib3 decides: Retry-After when there is one (and not 0), else the backoff.
        wait = (response is not None and self.respect_retry_after_header and self.get_retry_after(response)) \
            or self.get_backoff_time()
        last = self.history[-1]
        cause = f"HTTP {last.status}" if last.status else type(last.error).__name__
        self.log(f"attempt {len(self.history)}: {cause}; retrying in {wait:.1f}s")
        super().sleep(response)


def post(url: str, body, token: str | None = None, timeout: float = 30, retries: int = 5,
         backoff: float = 0.5, max_wait: float = 30, log=lambda message: None,
         session: requests.Session | None = None) -> requests.Response:
    """The last response: 2xx, a non-retryable error, or the final 429/503 once retries run out.

    A refused connection is retried too (nothing reached the function); a timeout or a connection
    cut after the request went out is not, since the function may still be working on it. Waits
    follow Retry-After when the function sends it, else double from `backoff`; `max_wait` caps both.
    """
    retry = _ReportedRetry(
        total=retries, connect=retries, read=False, status=retries, other=0,
        status_forcelist=RETRY_STATUSES, allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"POST"},
        backoff_factor=backoff, backoff_max=max_wait, retry_after_max=max_wait,
        respect_retry_after_header=True, raise_on_status=False,
    )
    retry.log = log
    session = session or requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    headers = {"Content-Type": "application/json", "User-Agent": "sklearn-function-client"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return session.post(url, json=body, headers=headers, timeout=timeout)
