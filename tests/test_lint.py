"""Static checks of the release tooling: actionlint over the workflows, shellcheck over every *.sh,
and the release workflow's own promises (keyless, variables only, strict version tags)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
WORKFLOWS = ROOT / ".github" / "workflows"
# Current majors, checked when the workflows were written; a bump here is a deliberate review.
ACTION_MAJORS = {
    "actions/checkout": "v6", "actions/setup-python": "v6", "google-github-actions/auth": "v3",
    "google-github-actions/setup-gcloud": "v3", "docker/login-action": "v4",
    "docker/setup-buildx-action": "v4", "docker/build-push-action": "v7",
}


def _tool(name):
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing; install the dev requirements (make dev)")
    return str(path)


def _actionlint(*args):
    # With the venv's shellcheck on PATH, actionlint also checks every `run:` script.
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([_tool("actionlint"), "-color=false", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _workflow(name):
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_actionlint_passes_on_the_workflows():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) >= 2
    result = _actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: missing\n"
                      "    steps:\n      - run: echo $UNQUOTED ${{ github.nope }}\n")
    result = _actionlint(str(broken))
    assert result.returncode != 0 and "missing" in result.stdout


def test_shellcheck_passes_on_every_shell_script():
    listed = subprocess.run(["git", "ls-files", "*.sh"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    scripts = sorted(set(listed) | {"deploy.sh"})
    result = subprocess.run([_tool("shellcheck"), *scripts], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_use_current_action_majors_and_no_secrets():
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert not re.search(r"secrets\.\w", text), f"{path.name} must stay keyless"
        for job in yaml.safe_load(text)["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    action, _, ref = step["uses"].partition("@")
                    assert ACTION_MAJORS.get(action) == ref, f"{path.name}: {step['uses']}"


def test_release_workflow_is_keyless_serialized_and_gated():
    flow = _workflow("release.yml")
    assert flow[True]["push"]["tags"] == ["v*.*.*"]  # YAML 1.1 reads the key `on` as True
    assert flow["permissions"] == {"contents": "read"}
    assert flow["concurrency"]["cancel-in-progress"] is False
    jobs = flow["jobs"]
    for name in ("build", "deploy", "canary", "promote"):
        assert jobs[name]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["test"]["needs"] == "version" and jobs["build"]["needs"] == "test"
    assert jobs["promote"]["environment"] == "production"
    assert jobs["canary"]["environment"] == "production"
    for key, value in flow["env"].items():
        # Every project-specific value is a repository variable; only the version comes from the tag.
        literal = re.sub(r"\$\{\{[^}]*\}\}", "", value)
        assert key == "VERSION" or literal in ("", "-docker.pkg.dev///"), (key, value)
    build = {step.get("id"): step for step in jobs["build"]["steps"]}
    build_args = {line.split("=", 1)[0] for line in build["push"]["with"]["build-args"].splitlines()}
    assert build_args >= {"SOURCE_URL", "VCS_REF", "VERSION"}  # the Dockerfile's OCI label ARGs
    assert build["push"]["with"]["cache-from"] == "type=gha"


@pytest.mark.parametrize(("tag", "accepted"), [
    ("v1.2.3", True), ("v0.0.0", True), ("v10.20.30", True),
    ("v1.2", False), ("1.2.3", False), ("v01.2.3", False), ("v1.2.3-rc.1", False), ("v1.2.3+b", False),
    ("v1.2.3.4", False),
])
def test_release_workflow_accepts_only_strict_version_tags(tag, accepted):
    step = _workflow("release.yml")["jobs"]["version"]["steps"][0]
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", step["run"]], env={"VERSION": tag},
                            capture_output=True, text=True, check=False)
    assert (result.returncode == 0) is accepted, result.stdout
    from release.versions import _SEMVER  # the same rule as ./deploy.sh's
    assert bool(_SEMVER.match(tag)) is accepted
