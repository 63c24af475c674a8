"""Identity tokens for calling a private Cloud Run URL.

google-auth finds credentials the usual way (GOOGLE_APPLICATION_CREDENTIALS naming a service-account
key, or the metadata server on Google Cloud). A developer's own `gcloud auth login` account is not a
source google-auth can mint ID tokens from, so when it finds nothing the gcloud CLI is asked instead.
"""

import shutil
import subprocess
import urllib.parse

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.id_token

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class AuthError(RuntimeError):
    """No identity token could be had; the message says how to get one."""


def audience_for(url: str) -> str:
    """Cloud Run checks the token's audience against the service URL: scheme and host, no path."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def needs_token(url: str, mode: str) -> bool:
    """`auto` skips the token for plain-HTTP loopback URLs (a local server checks no identity)."""
    if mode in ("always", "never"):
        return mode == "always"
    parts = urllib.parse.urlsplit(url)
    return not (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS)


def id_token(audience: str, timeout: float = 30) -> str:
    """A Google-signed ID token for `audience`, from google-auth or else the gcloud CLI."""
    try:
        return google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    except google.auth.exceptions.DefaultCredentialsError as e:
        reason = str(e)
    except google.auth.exceptions.GoogleAuthError as e:
        raise AuthError(f"fetching an ID token for {audience} failed: {e}") from None
    gcloud = shutil.which("gcloud")
    if gcloud:
        done = subprocess.run([gcloud, "auth", "print-identity-token"], capture_output=True, text=True, timeout=timeout)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
        reason += f"; gcloud auth print-identity-token failed: {done.stderr.strip()[:300]}"
    raise AuthError(f"no credentials for an ID token ({reason}). Run `gcloud auth login`, or set "
                    "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or pass --no-auth for a public URL")
