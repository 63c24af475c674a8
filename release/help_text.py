"""The text of `./deploy.sh help`, built from the settings tables so defaults are documented once."""

from release import config, observe, project

_TEXT = """\
Usage: ./deploy.sh COMMAND [ARGS]

Releases the predictor to Cloud Run through the gcloud CLI (its credentials are the ones used).
Every version vX.Y.Z becomes a revision carrying the traffic tag vX-Y-Z.

Commands:
  deploy vX.Y.Z [--image IMAGE] [--dry-run]
        deploy IMAGE_REPO:vX.Y.Z (or IMAGE) as a new revision with no traffic and print its tag URL;
        creating the service gives the first revision 100%. First says on stderr what it changes
        against the revision serving now (every setting below, and every env var it would drop);
        --dry-run stops there. The revision only becomes ready once GET {startup} answers 200
        (model loaded): one whose model cannot load gets no traffic, and deploy fails with one line
        naming the revision and the load error. Re-running for a deployed version is a no-op.
  smoke vX.Y.Z
        GET <tag URL>/ must be ready, POST <tag URL>/predict must answer 200
  compare NEW [OLD] [--data FILE] [gates]
        send each row of FILE (JSON lines: an object keyed by feature name, or an array, per line;
        default: examples.jsonl beside NEW's model, from its MODEL_URI or the baked-in model) to the
        tag URLs of NEW and OLD (default: the revision serving most traffic), one POST /predict per
        row; print a JSON report (agreement, regressors' largest and mean absolute difference, p50
        and p99 latency, errors) and exit 1 past a gate: --min-agreement, --max-latency-ratio (NEW
        p50 / OLD p50), --max-errors (rows NEW failed), --tolerance (regressors). Uses smoke's token.
  canary vX.Y.Z PERCENT [--watch DURATION [--no-promote] [gates]]
        PERCENT (1-99) to vX.Y.Z, the rest to the revision serving most now. With --watch (90s, 10m,
        1h): every --interval read Cloud Monitoring (request_count, request_latencies per revision)
        and roll back at once when, with at least --min-requests canary requests, the canary's 5xx
        rate exceeds the stable's by more than --max-error-rate, or its p99 exceeds both
        --max-latency-ratio x the stable's and the stable's + --latency-slack-ms; promote when the
        window passes (--no-promote: leave it to `promote`); roll back a canary that never reached
        --min-requests. One line per decision, with its figures. Exit 1 after a rollback.
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

Cloud Run settings of each release (env var, default, meaning):
{settings}

The function's settings, set on the revision when set here (same names; unset: the function's
default; an unknown MODEL_* name is refused; values are checked as the function checks them):
{function}
  GOOGLE_CLOUD_PROJECT is always set (to PROJECT_ID).

Gates of compare and canary --watch (env var, default, meaning; a flag overrides its env var):
{thresholds}

Set-up, doctor and observe (env var, default, meaning):
{project_settings}
  gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING and CLOUDSDK_PROXY_* also apply to the alert
  policies, which observe writes through the Monitoring REST API with gcloud's access token.

Smoke test and compare:
  SMOKE_TOKEN                    bearer token to send; default: `gcloud auth print-identity-token`
  SMOKE_AUDIENCE                 --audiences for that token (service-account credentials need one)
  SMOKE_WAIT                     seconds to wait for GET / to be ready (default 60)
  Tag URLs on 127.0.0.1/localhost get no token (local servers in tests).

Cloud Monitoring (canary --watch) and Cloud Logging (a failed deploy's cause):
  Metrics are read over REST with `gcloud auth print-access-token` (needs roles/monitoring.viewer)
  at CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING (default https://monitoring.googleapis.com/),
  through CLOUDSDK_PROXY_TYPE=http + CLOUDSDK_PROXY_ADDRESS + CLOUDSDK_PROXY_PORT when set, else
  the usual https_proxy. Cloud Run writes a point a minute, a few minutes late: watch 10m or more.
  Logs are read with `gcloud logging read` (roles/logging.viewer; without it the revision's own
  status message is reported).

Other: GCLOUD (gcloud binary), PYTHON (interpreter deploy.sh runs).
Exit status: 0 done, 1 failed (nothing changed unless gcloud said so; doctor: a check failed),
2 bad input (nothing changed).
"""


def _rows(rows, width=30):
    return "\n".join(f"  {name:<{width}} {default or '(unset)':<8}  {meaning}" for name, default, meaning in rows)


def render():
    function = [(v.name, v.default, v.meaning) for v in config.FUNCTION_SETTINGS]
    project_settings = "\n".join(f"  {name:<30} {default or '(unset)'}\n  {'':<30} {meaning}"
                                 for name, default, meaning in project.SETTINGS + observe.SETTINGS)
    return _TEXT.format(startup=config.STARTUP_PATH, settings=_rows(config.SETTINGS), function=_rows(function),
                        thresholds=_rows(config.THRESHOLDS), project_settings=project_settings).rstrip()
