"""Finding credentials: key-shaped strings in files, and files named like credentials.

`scan_tree(path)` walks a directory (a checkout, or an unpacked root filesystem); `scan_tar(path)`
reads a tar stream such as `podman export CONTAINER` writes, without unpacking it; `scan_bytes(name,
data)` checks one file's content. Each finding is "<where>: <what>", never the
secret itself. The patterns need the shape of real key material, so code that merely names a field
(`"private_key"`) or a prefix does not trip them.
"""

import fnmatch
import os
import pathlib
import re
import tarfile

PATTERNS = {
    # The marker alone is in every crypto library; key material is the marker and then base64 (after a
    # real or a JSON-escaped newline, and optional PEM headers).
    "PEM private key": re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:\r?\n|\\n)"
                                  rb"(?:[A-Za-z-]+: [^\n]*\n)*\s*[A-Za-z0-9+/=]{40,}"),
    "service-account key JSON": re.compile(rb'"private_key"\s*:\s*"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----\\n'
                                           rb"[A-Za-z0-9+/=]{40,}"),
    "Google API key": re.compile(rb"AIza[0-9A-Za-z_\-]{35}"),
    "Google OAuth refresh token": re.compile(rb"\b1//0[0-9A-Za-z_\-]{40,}"),
    "Google OAuth client secret": re.compile(rb"GOCSPX-[0-9A-Za-z_\-]{28}"),
    "AWS access key id": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(rb"\bgh[opusr]_[0-9A-Za-z]{36}\b"),
}
# google-github-actions/auth writes gha-creds-*.json into the workspace; the rest are the usual
# names of key files and of gcloud's stored credentials.
NAMES = ["gha-creds-*.json", "application_default_credentials.json", "credentials.db", "access_tokens.db",
         "*.p12", "*.pfx", "*.jks", "id_rsa", "id_ecdsa", "id_ed25519", "*-sa-key.json", "*service-account*.json"]
SKIP_DIRS = {"/proc", "/sys", "/dev"}
MAX_BYTES = 64 * 1024 * 1024


def scan_bytes(name: str, data: bytes) -> list[str]:
    return [f"{name}: {what}" for what, pattern in PATTERNS.items() if pattern.search(data)]


def scan_name(name: str) -> list[str]:
    base = name.rsplit("/", 1)[-1]
    return [f"{name}: file named like a credential ({glob})" for glob in NAMES if fnmatch.fnmatch(base, glob)]


def scan_tree(path) -> list[str]:
    """Findings for every regular file under `path` (symlinks are not followed)."""
    root = pathlib.Path(path)
    findings = []
    for folder, dirs, files in os.walk(root):
        relative = "/" + os.path.relpath(folder, root).lstrip(".")
        dirs[:] = [d for d in dirs if os.path.join(relative, d).replace("//", "/") not in SKIP_DIRS]
        for file in files:
            full = os.path.join(folder, file)
            shown = os.path.join(relative, file).replace("//", "/")
            findings += scan_name(shown)
            if not os.path.isfile(full) or os.path.islink(full):
                continue
            try:
                with open(full, "rb") as handle:
                    data = handle.read(MAX_BYTES)
            except OSError:
                continue
            findings += scan_bytes(shown, data)
    return findings


def scan_tar(path, skip_contents=()) -> list[str]:
    """Findings for every regular file in a tar archive (e.g. a container's exported filesystem).

    Names are checked everywhere; contents are not read under SKIP_DIRS or `skip_contents`.
    """
    findings = []
    skipped = SKIP_DIRS | set(skip_contents)
    with tarfile.open(path) as archive:
        for member in archive:
            shown = "/" + member.name.lstrip("./")
            findings += scan_name(shown)
            if member.isfile() and not any(shown.startswith(d + "/") for d in skipped):
                findings += scan_bytes(shown, archive.extractfile(member).read(MAX_BYTES))
    return findings
