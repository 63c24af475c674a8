"""The text of `./deploy.sh help`, built from the settings table so defaults are documented once."""

from release import config, jobs

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
  job vX.Y.Z [--image IMAGE]     create or update the Cloud Run job JOB (batch scoring, `python -m batch`)
                                 on IMAGE_REPO:vX.Y.Z (or IMAGE)
  batch vX.Y.Z gs://IN gs://OUT [--tasks N] [--no-wait]
                                 run JOB (which must run vX.Y.Z) over IN into OUT with N tasks (default 1)
                                 and wait for it; prints the execution's task counts
  help                           this text

Required env vars:
  PROJECT_ID, REGION, SERVICE    the Cloud Run service to release to
  IMAGE_REPO                     REGION-docker.pkg.dev/PROJECT/REPO/NAME (for deploy without --image)

Service settings (env var, default, meaning):
{settings}
  MODEL_*                        every MODEL_ env var set here (MODEL_URI, ...) is set on the revision

Batch job settings (env var, default, meaning):
{jobs}
  MODEL_*, BATCH_*               set on the job as on the service (BATCH_SIZE, BATCH_SHARD_MB, ...)

Smoke test:
  SMOKE_TOKEN                    bearer token to send; default: `gcloud auth print-identity-token`
  SMOKE_AUDIENCE                 --audiences for that token (service-account credentials need one)
  SMOKE_WAIT                     seconds to wait for GET / to be ready (default 60)
  Tag URLs on 127.0.0.1/localhost get no token (local servers in tests).

Other: GCLOUD (gcloud binary), PYTHON (interpreter deploy.sh runs).
Exit status: 0 done, 1 failed (nothing changed unless gcloud said so), 2 bad input (nothing changed).
"""


def render():
    settings = "\n".join(f"  {name:<22} {default or '(unset)':<7} {meaning}"
                         for name, default, meaning in config.SETTINGS)
    jobs_settings = "\n".join(f"  {name:<22} {default or '(unset)':<7} {meaning}" for name, default, meaning in jobs.SETTINGS)
    return _TEXT.format(settings=settings, jobs=jobs_settings).rstrip()
