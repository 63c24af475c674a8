"""scripts/setup.sh, the set-up `make run` and `make test` start with, run for real.

Only the package manager is a stand-in: `dpkg-query` answers from a list of installed packages,
`apt-get` records what it is asked and installs into that list, and `sudo` either asks for a
password (fails under -n, as sudo does) or runs the command. The script runs as root and as an
ordinary user for real (setpriv to nobody when the tests run as root; a user namespace mapping
root when they do not).
"""

import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "setup.sh"
TEST_PACKAGES = ["git", "ca-certificates", "podman", "runc", "netavark", "iptables", "uidmap", "slirp4netns",
                 "debootstrap", "wrk"]

DPKG_QUERY = r'''#!/usr/bin/env python3
"""dpkg-query -W [-f=FORMAT] [PACKAGE...]: each known package (all without names) in FORMAT, as dpkg
does, with the fields ${db:Status-Abbrev}, ${Status}, ${Package} and ${Provides}."""
import os, pathlib, sys
state = pathlib.Path(os.environ["STAND_IN_DIR"])
with open(state / "calls.log", "a") as log:
    log.write(f"{os.geteuid()} dpkg-query {' '.join(sys.argv[1:])}\n")
known = {}
for line in (state / "status").read_text().splitlines():
    name, status, provides = line.split("\t")
    known[name] = {"${Package}": name, "${Status}": status, "${Provides}": provides,
                   "${db:Status-Abbrev}": {"install ok installed": "ii ", "deinstall ok config-files": "rc "}[status]}
fmt, names = "${Package}\t${Version}\n", []
for arg in sys.argv[1:]:
    if arg.startswith("-f="):
        fmt = arg[3:]
    elif not arg.startswith("-"):
        names.append(arg)
code = 0
for name in names or list(known):
    if name not in known:
        print(f"dpkg-query: no packages found matching {name}", file=sys.stderr)
        code = 1
        continue
    out = fmt.replace("\\n", "\n")
    for field, value in known[name].items():
        out = out.replace(field, value)
    sys.stdout.write(out)
sys.exit(code)
'''

APT_GET = r'''#!/usr/bin/env python3
"""apt-get update|install [OPTIONS] PACKAGE...: records the call; install marks the packages installed."""
import os, pathlib, sys
state = pathlib.Path(os.environ["STAND_IN_DIR"])
with open(state / "calls.log", "a") as log:
    log.write(f"{os.geteuid()} apt-get {' '.join(sys.argv[1:])} DEBIAN_FRONTEND={os.environ.get('DEBIAN_FRONTEND', '')}\n")
if os.geteuid() != 0 and "SUDO_UID" not in os.environ:
    sys.exit("E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)")
if "install" in sys.argv:
    with open(state / "status", "a") as status:
        for name in sys.argv[sys.argv.index("install") + 1:]:
            if not name.startswith("-"):
                status.write(f"{name}\tinstall ok installed\t\n")
'''

SUDO = r'''#!/usr/bin/env bash
# sudo [-n] COMMAND...: records the call; STAND_IN_SUDO=password asks for one (fails under -n), else
# runs COMMAND with sudo's SUDO_UID set (as the same user: a stand-in cannot become root).
echo "$(id -u) sudo $*" >> "${STAND_IN_DIR}/calls.log"
[[ "${1:-}" == -n ]] && shift
if [[ "${STAND_IN_SUDO}" == password ]]; then
  echo "sudo: a password is required" >&2
  exit 1
fi
SUDO_UID="$(id -u)" exec "$@"
'''


class StandIns:
    """A world-writable folder holding the stand-ins and their state, so any user can run them."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        for name, text in (("dpkg-query", DPKG_QUERY), ("apt-get", APT_GET), ("sudo", SUDO)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        for name in ("status", "calls.log"):
            (root / name).touch(0o666)
            (root / name).chmod(0o666)
        # A made venv: its interpreter is all the script looks for.
        (root / "venv" / "bin").mkdir(parents=True)
        (root / "venv" / "bin" / "python").touch(0o755)

    def installed(self, *names: str, removed: tuple[str, ...] = (), provided_by: dict[str, str] | None = None) -> None:
        """Sets what dpkg knows: `names` installed, `removed` with their configuration kept, and
        `provided_by` other installed packages (e.g. {"runc": "moby-runc"})."""
        lines = [f"{name}\tinstall ok installed\t" for name in names]
        lines += [f"{name}\tdeinstall ok config-files\t" for name in removed]
        lines += [f"{package}\tinstall ok installed\t{virtual} (= 1.0), other-{virtual}"
                  for virtual, package in (provided_by or {}).items()]
        (self.root / "status").write_text("".join(line + "\n" for line in lines))

    def calls(self, program: str | None = None) -> list[str]:
        lines = (self.root / "calls.log").read_text().splitlines()
        return [line for line in lines if program is None or line.split(" ")[1] == program]

    def env(self, sudo: str = "password", **extra) -> dict:
        return {"PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin", "STAND_IN_DIR": str(self.root),
                "STAND_IN_SUDO": sudo, "VENV": str(self.root / "venv"), "PYTHON": USER_PYTHON,
                "HOME": str(self.root), "LANG": "C.UTF-8", **extra}


@pytest.fixture
def stand_ins():
    root = pathlib.Path(tempfile.mkdtemp(prefix="setup-stand-ins-"))
    root.chmod(stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
    yield StandIns(root)
    shutil.rmtree(root, ignore_errors=True)


# An interpreter the ordinary user may run: ours may live where only root can read.
USER_PYTHON = "/usr/bin/python3" if os.geteuid() == 0 else sys.executable


def as_identity(identity: str) -> list[str]:
    """The command prefix that runs a program as root or as an ordinary user, from whoever we are."""
    root = os.geteuid() == 0
    if identity == "root":
        return [] if root else ["unshare", "--map-root-user"]
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if root else []


def run_setup(stand_ins, target: str, identity: str, sudo: str = "password", **env) -> subprocess.CompletedProcess:
    return subprocess.run([*as_identity(identity), str(SCRIPT), target], cwd=REPO, env=stand_ins.env(sudo, **env),
                          capture_output=True, text=True, timeout=60, check=False)


def without_ensurepip(stand_ins) -> dict:
    """Env for a Python whose ensurepip is gone, as on Debian without python3-venv."""
    shadow = stand_ins.root / "no-ensurepip"
    shadow.mkdir(mode=0o755, exist_ok=True)
    (shadow / "ensurepip.py").write_text("raise ModuleNotFoundError(\"No module named 'ensurepip'\")\n")
    (shadow / "ensurepip.py").chmod(0o644)
    return {"PYTHONPATH": str(shadow), "VENV": str(stand_ins.root / "absent-venv")}


def test_setup_as_a_user_without_sudo_names_the_missing_packages_and_the_command_in_one_line(stand_ins):
    stand_ins.installed(*(p for p in TEST_PACKAGES if p not in ("podman", "debootstrap", "wrk")),
                        removed=("debootstrap",))
    done = run_setup(stand_ins, "test", "user")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "missing Debian packages: podman debootstrap wrk;" in lines[0]
    assert lines[0].endswith("sudo apt-get update && sudo apt-get install -y --no-install-recommends "
                             "podman debootstrap wrk")
    assert stand_ins.calls("apt-get") == []
    assert [call.split(" ", 1)[1] for call in stand_ins.calls("sudo")] == ["sudo -n true"]


def test_setup_as_root_installs_exactly_the_missing_packages(stand_ins):
    stand_ins.installed(*(p for p in TEST_PACKAGES if p not in ("runc", "iptables")))
    done = run_setup(stand_ins, "test", "root")
    assert done.returncode == 0, done.stderr
    assert stand_ins.calls("apt-get") == [
        "0 apt-get update -qq DEBIAN_FRONTEND=",
        "0 apt-get install -y -qq --no-install-recommends --no-remove runc iptables DEBIAN_FRONTEND=noninteractive",
    ]
    assert stand_ins.calls("sudo") == []
    assert "installing the missing Debian packages: runc iptables" in done.stderr
    assert run_setup(stand_ins, "test", "root").stderr == ""  # installed now: nothing more to do


def test_setup_counts_a_package_another_one_provides(stand_ins):
    # Docker's moby-runc provides runc and conflicts with Debian's: asking for runc would remove Docker.
    stand_ins.installed(*(p for p in TEST_PACKAGES if p not in ("runc", "wrk")), provided_by={"runc": "moby-runc"})
    done = run_setup(stand_ins, "test", "root")
    assert done.returncode == 0, done.stderr
    assert stand_ins.calls("apt-get")[-1].split(" ", 1)[1] == (
        "apt-get install -y -qq --no-install-recommends --no-remove wrk DEBIAN_FRONTEND=noninteractive")


def test_setup_with_passwordless_sudo_installs_through_it(stand_ins):
    stand_ins.installed(*(p for p in TEST_PACKAGES if p != "git"))
    done = run_setup(stand_ins, "test", "user", sudo="nopasswd")
    assert done.returncode == 0, done.stderr
    assert [call.split(" ", 1)[1] for call in stand_ins.calls("sudo")] == [
        "sudo -n true",
        "sudo -n apt-get update -qq",
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-remove git",
    ]
    assert stand_ins.calls("apt-get")[-1].split(" ", 1)[1] == (
        "apt-get install -y -qq --no-install-recommends --no-remove git DEBIAN_FRONTEND=noninteractive")


def test_setup_with_everything_present_asks_dpkg_once_and_nothing_else(stand_ins):
    stand_ins.installed(*TEST_PACKAGES)
    for identity in ("root", "user"):
        started = time.monotonic()
        done = run_setup(stand_ins, "test", identity)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        assert time.monotonic() - started < 5
    calls = stand_ins.calls()
    assert len(calls) == 2 and all(call.split(" ", 1)[1].startswith("dpkg-query -W ") for call in calls), calls


def test_setup_without_gcloud_says_so_in_one_line(stand_ins):
    stand_ins.installed(*TEST_PACKAGES)
    done = run_setup(stand_ins, "test", "user", GCLOUD=str(stand_ins.root / "no-gcloud"))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "gcloud CLI is missing" in lines[0] and "google-cloud-cli" in lines[0]
    assert run_setup(stand_ins, "run", "user", GCLOUD=str(stand_ins.root / "no-gcloud")).returncode == 0


def test_setup_for_run_needs_only_the_venv_module(stand_ins):
    stand_ins.installed()  # none of the test packages
    done = run_setup(stand_ins, "run", "user", **without_ensurepip(stand_ins))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].endswith("missing Debian packages: python3-venv; install them with: "
                             "sudo apt-get update && sudo apt-get install -y --no-install-recommends python3-venv")
    # The same interpreter with its ensurepip back: nothing to install, and the test packages not asked for.
    done = run_setup(stand_ins, "run", "user", **without_ensurepip(stand_ins) | {"PYTHONPATH": ""})
    assert (done.returncode, done.stderr) == (0, "")
    assert stand_ins.calls("apt-get") == []


def test_setup_as_root_installs_python3_venv_for_run(stand_ins):
    stand_ins.installed()
    done = run_setup(stand_ins, "run", "root", **without_ensurepip(stand_ins))
    assert done.returncode == 0, done.stderr
    assert stand_ins.calls("apt-get")[-1].startswith("0 apt-get install -y -qq --no-install-recommends --no-remove python3-venv ")


def test_make_run_without_ensurepip_stops_before_making_a_venv(stand_ins):
    venv = stand_ins.root / "absent-venv"
    done = subprocess.run([*as_identity("user"), "make", "--no-print-directory", "run", f"VENV={venv}",
                           f"PYTHON={USER_PYTHON}"], cwd=REPO, env=stand_ins.env(**without_ensurepip(stand_ins)),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make: ***")]
    assert len(ours) == 1 and "python3-venv" in ours[0] and "apt-get install" in ours[0], done.stderr
    assert not venv.exists()


@pytest.mark.parametrize("target", ["test", "run"])
def test_make_does_the_set_up_first(target):
    done = subprocess.run(["make", "--no-print-directory", "-n", target], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    first = done.stdout.splitlines()[0]
    assert re.fullmatch(rf"PYTHON=\S+ VENV=\S+ scripts/setup\.sh {target}", first), done.stdout


def test_setup_finds_everything_the_tests_need_on_this_machine(stand_ins):
    """The real dpkg-query: `make test` has just run the set-up, so nothing may be missing now."""
    (stand_ins.bin / "dpkg-query").unlink()
    env = {**os.environ, **stand_ins.env(), "PATH": f"{stand_ins.bin}{os.pathsep}{os.environ['PATH']}"}
    started = time.monotonic()
    done = subprocess.run([str(SCRIPT), "test"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    seconds = time.monotonic() - started
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert stand_ins.calls() == []  # neither apt-get nor sudo
    assert seconds < 5
