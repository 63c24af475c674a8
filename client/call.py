"""POSTing JSON with a timeout, and retries with backoff when the function says "not now" (429/503)."""

import email.utils
import random
import time

import requests

RETRY_STATUSES = (429, 503)


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds (it may be a number of seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def post(url: str, body, token: str | None = None, timeout: float = 30, retries: int = 5,
         backoff: float = 0.5, max_wait: float = 30, log=lambda message: None,
         session: requests.Session | None = None) -> requests.Response:
    """The last response: 2xx, a non-retryable error, or the final 429/503 once retries run out.

    Connection failures are retried too (nothing reached the function); a timeout is not, since the
    function may still be working on the request.
    """
    session = session or requests.Session()
    headers = {"Content-Type": "application/json", "User-Agent": "sklearn-function-client"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for attempt in range(retries + 1):
        wait = min(backoff * 2 ** attempt, max_wait) * random.uniform(0.5, 1.0)
        try:
            response = session.post(url, json=body, headers=headers, timeout=timeout)
        except requests.ConnectionError as e:
            if attempt == retries:
                raise
            log(f"attempt {attempt + 1}: {type(e).__name__}; retrying in {wait:.1f}s")
        else:
            if response.status_code not in RETRY_STATUSES or attempt == retries:
                return response
            wait = min(retry_after_s(response.headers.get("Retry-After")) or wait, max_wait)
            log(f"attempt {attempt + 1}: HTTP {response.status_code}; retrying in {wait:.1f}s")
        time.sleep(wait)
    raise AssertionError("unreachable")
