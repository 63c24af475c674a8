"""The text of `./deploy.sh help`, built from the settings table so defaults are documented once."""

from release import config, observe, project

_TEXT = """\
Usage: ./deploy.sh COMMAND [ARGS]

Releases the predictor to Cloud Run through the gcloud CLI (its credentials are the ones used).
Every version vX.Y.Z becomes a revision carrying the traffic tag vX-Y-Z.

Commands:
  deploy vX.Y.Z [--image IMAGE]  deploy IMAGE_REPO:vX.Y.Z (or IMAGE) as a new revision with no
                                 traffic and print its tag URL; creating the service gives the
                                 first revision 100%. Re-running for a deployed version is a no-op.
  smoke vX.Y.Z                   GET <tag URL>/ must be ready, POST <tag URL>/predict must answer 200
  canary vX.Y.Z PERCENT          PERCENT (1-99) to vX.Y.Z, the rest to the revision serving most now
  promote vX.Y.Z                 100% to vX.Y.Z
  rollback [vX.Y.Z]              pin 100% to vX.Y.Z, or to the revision that served before the last
                                 traffic move (remembered by the tag "previous"); later deploys
                                 never move traffic (they always use --no-traffic)
  status [--json]                revisions, versions, tags, traffic percent and URLs
  setup [--dry-run]              the one-time Google Cloud set-up (APIs, Artifact Registry repository,
                                 Workload Identity Federation for GITHUB_REPO, deployer and runtime
                                 service accounts and their roles, read access to the model's
                                 bucket): creates only what is missing, printing each step and its
                                 gcloud command; --dry-run only prints. Ends with the repository
                                 variables the release workflow needs.
  doctor [vX.Y.Z]                read-only checks, each OK or FAIL with the command that fixes it:
                                 login, project, APIs, repository and images (of vX.Y.Z, else of the
                                 serving revisions), service and revisions ready, runtime account
                                 and bucket access, deployer roles, identity provider, and recent
                                 model_load_failed log lines. Exit 1 when any check fails.
  observe [--dry-run]            log-based metrics, the dashboard and the alert policies of
                                 release/monitoring/: created or updated only where they differ
  help                           this text

Required env vars:
  PROJECT_ID, REGION, SERVICE    the Cloud Run service to release to
  IMAGE_REPO                     REGION-docker.pkg.dev/PROJECT/REPO/NAME (for deploy without --image)

Service settings (env var, default, meaning):
{settings}
  MODEL_*                        every MODEL_ env var set here (MODEL_URI, ...) is set on the revision

Set-up, doctor and observe (env var, default, meaning):
{project_settings}
  gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING and CLOUDSDK_PROXY_* also apply to the alert
  policies, which observe writes through the Monitoring REST API with gcloud's access token.

Smoke test:
  SMOKE_TOKEN                    bearer token to send; default: `gcloud auth print-identity-token`
  SMOKE_AUDIENCE                 --audiences for that token (service-account credentials need one)
  SMOKE_WAIT                     seconds to wait for GET / to be ready (default 60)
  Tag URLs on 127.0.0.1/localhost get no token (local servers in tests).

Other: GCLOUD (gcloud binary), PYTHON (interpreter deploy.sh runs).
Exit status: 0 done, 1 failed (nothing changed unless gcloud said so; doctor: a check failed),
2 bad input (nothing changed).
"""


def render():
    settings = "\n".join(f"  {name:<22} {default or '(unset)':<7} {meaning}"
                         for name, default, meaning in config.SETTINGS)
    project_settings = "\n".join(f"  {name:<30} {default or '(unset)'}\n  {'':<30} {meaning}"
                                 for name, default, meaning in project.SETTINGS + observe.SETTINGS)
    return _TEXT.format(settings=settings, project_settings=project_settings).rstrip()
