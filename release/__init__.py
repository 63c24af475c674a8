"""Releases of the predictor to Cloud Run: one revision per semver tag, driven through `gcloud run`;
and the Google Cloud project around them: its one-time set-up, its checks, its dashboards and alerts.

Run it through `./deploy.sh` (which execs `python -m release`); it needs only the standard library
and the gcloud CLI, so it works the same from a laptop and from CI.
"""
