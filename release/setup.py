"""`setup`: the one-time Google Cloud set-up for releases, creating only what is missing.

It reads the project first (read-only, side by side), prints every step with the gcloud command it
runs, then runs the commands of the steps that are not in place, in order. A second run finds
everything in place and changes nothing. `--dry-run` stops after printing.
"""

import shlex

from release import inventory, plan, project
from release.cloud import Cloud
from release.errors import ReleaseError


def setup(dry_run=False):
    names = project.names(need_github_repo=True)
    cloud = Cloud(names.project)
    found = inventory.read(cloud, names)
    problem = inventory.project_problem(cloud, names, found)
    if problem:
        raise ReleaseError(f"{problem[0]}; {problem[1]}")
    unreadable = found.errors()
    if unreadable:
        raise ReleaseError("cannot read " + "; ".join(f"{key}: {error}" for key, error in unreadable.items())
                           + "; nothing changed")
    steps = plan.steps(names, found)
    print(f"Set-up of {names.project} (number {found.project_number}) for {names.service} in {names.region}, "
          f"deployed by {names.github_repo}{' (dry run: nothing is changed)' if dry_run else ''}", flush=True)
    done, blocked = 0, []
    for step in steps:
        if step.problem is None:
            print(f"  ok        {step.title}", flush=True)
            continue
        if step.fix is None:
            print(f"  blocked   {step.title}: {step.problem}", flush=True)
            blocked.append(step)
            continue
        print(f"  {step.action:<9} {step.title}: {step.problem}\n            $ {cloud.shown(*step.fix)}", flush=True)
        if not dry_run:
            cloud.change(*step.fix)
        done += 1
    verb = "would run" if dry_run else "ran"
    print(f"{verb} {done} of {len(steps)} steps; {len(steps) - done - len(blocked)} were in place", flush=True)
    if blocked:
        raise ReleaseError(f"{len(blocked)} step(s) need you: " + "; ".join(s.problem for s in blocked))
    if not dry_run:
        _print_variables(names, found.project_number)
    return 0


def _print_variables(names, number):
    """The release workflow's repository variables, as commands of the GitHub CLI."""
    values = {"GCP_PROJECT_ID": names.project, "GCP_REGION": names.region, "CLOUD_RUN_SERVICE": names.service,
              "ARTIFACT_REPOSITORY": names.repo, "WIF_PROVIDER": names.provider_name(number),
              "DEPLOY_SERVICE_ACCOUNT": names.deployer, "RUNTIME_SERVICE_ACCOUNT": names.runtime}
    print("Repository variables for .github/workflows/release.yml (then add MODEL_URI, CANARY_PERCENT if used):")
    for name, value in values.items():
        print(f"  gh variable set {name} --repo {names.github_repo} --body {shlex.quote(value)}")
