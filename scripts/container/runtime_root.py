"""Gathers into one directory the root file system a Python server needs and nothing else (a build step).

The compiled image starts FROM scratch and copies this directory in: the interpreter, its standard
library without what a server never runs (test suites, the installer, IDLE, Tk, 2to3, the pydoc
topics, the static library for building extensions, the base's own site-packages), the given trees
(the virtual environment, the app) whole, and every shared library the interpreter and the extension
modules of all of these link, found with ldd. No shell, package manager or coreutils: a smaller image,
and nothing in it to run but the server. Each path keeps its place and its chain of symbolic links, so
the same step works where the base keeps Python under /usr/local (python:3.11-slim) or /usr (Debian's).
Also: the CA bundle and OpenSSL's links to it, the loader's cache (/usr/local/lib is not among its
default directories), the C.UTF-8 locale, /etc/passwd and /etc/group naming root and the server's
user, and a world-writable /tmp.

Usage: python3 runtime_root.py [--tree DIR]... [--user NAME:UID] OUT
"""

import argparse
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import sysconfig

# Standard library entries no server imports: the installer and its wheels, IDLE and Tk, the
# turtle demos, 2to3, pydoc's topic index, the base's own pip/setuptools, and the static library
# and Makefile that only building an extension reads.
STDLIB_LEFT_OUT = {"ensurepip", "idlelib", "tkinter", "turtledemo", "turtle.py", "lib2to3", "pydoc_data",
                   "site-packages", "dist-packages"}
TEST_DIRS = {"test", "tests", "idle_test"}
# CPython's own test extensions, and Tk's binding (the slim base has no Tk for it to link).
DYNLOAD_LEFT_OUT = ("_test", "_ctypes_test", "_xxtestfuzz", "xxlimited", "_tkinter")
# Loaded with dlopen, so ldd cannot see them: glibc loads libgcc_s for pthread_exit and unwinding
# (a thread ending while the interpreter shuts down aborts the process without it).
DLOPENED = ("libgcc_s.so.1",)
# Read if present: the loader's cache and configuration, name service order, OpenSSL's settings and
# the CA bundle with the links OpenSSL finds it by, and the C.UTF-8 locale (LANG).
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/nsswitch.conf",
                "/etc/ssl/openssl.cnf", "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/ssl/cert.pem",
                "/usr/lib/ssl/certs", "/usr/lib/ssl/openssl.cnf", "/usr/lib/locale/C.utf8")


class Root:
    """A directory being filled with paths from / at the same places, symbolic links kept as links."""

    def __init__(self, out: pathlib.Path):
        self.out = out

    def _dest(self, path: str) -> pathlib.Path:
        return self.out / path.lstrip("/")

    def add(self, path: str, ignore=None) -> str:
        """Copies path (a file or a whole tree) and the links on the way to it; returns its real path."""
        parts = pathlib.PurePosixPath(path).parts
        for depth in range(2, len(parts) + 1):
            prefix = os.path.join(*parts[:depth])
            if os.path.islink(prefix):
                target = os.readlink(prefix)
                link = self._dest(prefix)
                if not link.is_symlink():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(target)
                followed = os.path.normpath(os.path.join(os.path.dirname(prefix), target, *parts[depth:]))
                return self.add(followed, ignore)
        dest = self._dest(path)
        if os.path.isdir(path):
            shutil.copytree(path, dest, symlinks=True, ignore=ignore, dirs_exist_ok=True)
        elif not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        return path

    def elf_files(self):
        for dirpath, _, filenames in os.walk(self.out):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path) and _is_elf(path):
                    yield "/" + os.path.relpath(path, self.out)


def _is_elf(path: str) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == b"\x7fELF"


def linked_libraries(binary: str) -> set[str]:
    """Every shared library binary loads, with what it loads in turn (ldd prints the whole tree)."""
    result = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    if "not a dynamic executable" in result.stderr or "statically linked" in result.stdout:
        return set()
    if result.returncode != 0:
        sys.exit(f"ldd {binary} failed: {result.stderr.strip()}")
    libraries = set()
    for line in result.stdout.splitlines():
        if "not found" in line:
            sys.exit(f"{binary} links a library the base does not have: {line.strip()}")
        words = line.split()
        path = words[2] if len(words) > 2 and words[1] == "=>" else words[0]
        if path.startswith("/"):
            libraries.add(path)
    return libraries


def _stdlib_ignore(directory: str, names: list[str]) -> set[str]:
    left_out = {name for name in names if name in TEST_DIRS}
    if directory == sysconfig.get_path("stdlib"):
        left_out |= {name for name in names if name in STDLIB_LEFT_OUT or name.startswith("config-")}
    if os.path.basename(directory) == "lib-dynload":
        left_out |= {name for name in names if name.startswith(DYNLOAD_LEFT_OUT)}
    return left_out


def _write_accounts(out: pathlib.Path, user: str, uid: int) -> None:
    etc = out / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                f"{user}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\n{user}:x:{uid}:\n")


def build(out: pathlib.Path, trees: list[str], user: str, uid: int) -> None:
    root = Root(out)
    root.add(sys._base_executable)  # the interpreter a venv's python links to, with its links
    root.add(sysconfig.get_path("stdlib"), ignore=_stdlib_ignore)
    root.add(sysconfig.get_path("platstdlib"), ignore=_stdlib_ignore)
    for tree in trees:
        root.add(tree)
        for dirpath, dirnames, filenames in os.walk(tree):  # links out of the tree (a venv's python)
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) and not os.path.realpath(path).startswith(tree.rstrip("/") + "/"):
                    root.add(os.path.normpath(os.path.join(dirpath, os.readlink(path))))
    libraries = set()
    for binary in list(root.elf_files()):
        libraries |= linked_libraries(binary)
    for library in sorted(libraries):
        root.add(library)
    libc_dir = os.path.dirname(os.path.realpath(next(lib for lib in libraries if "/libc.so" in lib)))
    for name in DLOPENED:
        if os.path.exists(os.path.join(libc_dir, name)):
            root.add(os.path.join(libc_dir, name))
    for path in SYSTEM_FILES:
        if os.path.lexists(path):
            root.add(path)
    _write_accounts(out, user, uid)
    (out / "tmp").mkdir(exist_ok=True)
    (out / "tmp").chmod(stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO | stat.S_ISVTX)


def main():
    parser = argparse.ArgumentParser(description="Gather the root file system a Python server needs.")
    parser.add_argument("--tree", action="append", default=[], help="a directory copied whole (repeatable)")
    parser.add_argument("--user", default="app:1000", help="NAME:UID of the server's user (default app:1000)")
    parser.add_argument("out", type=pathlib.Path)
    args = parser.parse_args()
    user, uid = args.user.split(":")
    build(args.out, [os.path.abspath(tree) for tree in args.tree], user, int(uid))
    total = sum(path.stat().st_size for path in args.out.rglob("*") if path.is_file() and not path.is_symlink())
    print(f"{args.out}: {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
