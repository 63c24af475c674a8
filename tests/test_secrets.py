"""Nothing in the repository holds a credential: not the files tracked now, nor any blob in history.

tests/secret_scan.py holds the patterns; `scan_tree` is also what scans the image's root filesystem.
"""

import subprocess
import tarfile

from tests import secret_scan
from tests.conftest import REPO

# Built at run time so that this file itself holds no key-shaped string.
PEM = ("-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDY2x5KmR+f3lGq\n"
       "-----END " + "PRIVATE KEY-----\n")
PLANTED = {
    "app/config.py": "API_KEY = '" + "AIza" + "Sy" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q" + "'\n",
    "keys/deploy.json": '{"type": "service_account", "private_key": "' + PEM.replace("\n", "\\n") + '"}',
    "home/.ssh/notes.txt": "key:\n" + PEM,
    "work/gha-creds-0123abcd.json": "{}",
}


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=True).stdout


def test_secrets_none_in_tracked_files():
    findings = []
    for name in git("ls-files", "-z").decode().split("\0"):
        path = REPO / name
        if name and path.is_file() and not path.is_symlink():
            findings += secret_scan.scan_name(name) + secret_scan.scan_bytes(name, path.read_bytes())
    assert findings == []


def test_secrets_none_anywhere_in_history():
    # A key committed once and deleted later is still in every clone.
    objects = git("rev-list", "--all", "--objects").decode().splitlines()
    names = {line.split(" ", 1)[1] for line in objects if " " in line}
    findings = [f for name in sorted(names) for f in secret_scan.scan_name(name)]
    blobs = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=REPO, capture_output=True,
                           check=True).stdout
    findings += secret_scan.scan_bytes("history", blobs)
    assert findings == []


def test_secrets_scan_tree_finds_planted_keys_and_passes_clean_files(tmp_path):
    for name, text in PLANTED.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "app" / "clean.py").write_text('FIELD = "private_key"  # a field name is no secret\nPREFIX = "AIza"\n'
                                               'MARKER = "-----BEGIN ' + 'PRIVATE KEY-----"  # nor is the marker alone\n')
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "environ").write_text(PEM)  # /proc of a live filesystem is not scanned
    findings = secret_scan.scan_tree(tmp_path)
    assert sorted(findings) == sorted([
        "/app/config.py: Google API key",
        "/keys/deploy.json: service-account key JSON",
        "/keys/deploy.json: PEM private key",
        "/home/.ssh/notes.txt: PEM private key",
        "/work/gha-creds-0123abcd.json: file named like a credential (gha-creds-*.json)",
    ])


def test_secrets_scan_tar_reads_an_exported_filesystem_without_unpacking(tmp_path):
    root = tmp_path / "root"
    for name, text in PLANTED.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    with tarfile.open(tmp_path / "rootfs.tar", "w") as archive:  # the layout `podman export` writes
        for path in sorted(root.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
    assert sorted(secret_scan.scan_tar(tmp_path / "rootfs.tar")) == sorted(secret_scan.scan_tree(root))
    assert len(secret_scan.scan_tar(tmp_path / "rootfs.tar")) == 5
