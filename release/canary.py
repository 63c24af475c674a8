"""`canary vX.Y.Z PERCENT --watch DURATION`: a canary judged by Cloud Monitoring's numbers.

After the split, every interval reads what the canary and the stable revision served since the split
(requests, 5xx, p99 latency) and decides:
- fewer than `min_requests` canary requests: too little to judge yet; wait;
- canary 5xx rate more than `max_error_rate` above the stable's: roll back at once;
- canary p99 above `max_latency_ratio` x the stable's and more than `latency_slack_ms` above it (both
  with enough requests): roll back at once;
- otherwise healthy so far.
When the window ends healthy it promotes (or, with --no-promote, leaves that to a human). A canary
that never served `min_requests` is not judged on noise: it is rolled back, since nobody watches it
after this command ends. Every decision is one line on stdout with the figures it was based on.
"""

import datetime
import json
import time
from dataclasses import dataclass

from release import traffic
from release.errors import ReleaseError
from release.monitoring import Figures


@dataclass(frozen=True)
class Gates:
    interval_s: float
    min_requests: int
    max_error_rate: float
    max_latency_ratio: float
    latency_slack_ms: float


def judge(new, stable, gates):
    """('wait' | 'healthy' | 'breach', reason) for one reading."""
    if new.requests < gates.min_requests:
        return "wait", f"{new.requests} of the {gates.min_requests} canary requests needed to judge"
    excess = new.error_rate - stable.error_rate
    if excess > gates.max_error_rate:
        return "breach", (f"canary 5xx rate {new.error_rate:.2%} is {excess * 100:.2f} points above the "
                          f"stable's {stable.error_rate:.2%} (limit {gates.max_error_rate * 100:.2f})")
    new_p99, stable_p99 = new.percentile(0.99), stable.percentile(0.99)
    if stable.requests >= gates.min_requests and new_p99 is not None and stable_p99:
        if new_p99 > gates.max_latency_ratio * stable_p99 and new_p99 - stable_p99 > gates.latency_slack_ms:
            return "breach", (f"canary p99 {new_p99:.1f} ms is {new_p99 / stable_p99:.2f}x the stable's "
                              f"{stable_p99:.1f} ms (limits {gates.max_latency_ratio}x and "
                              f"+{gates.latency_slack_ms:g} ms)")
        return "healthy", "within the gates"
    return "healthy", "within the error gate (too few stable requests to compare latency)"


def _figures_text(name, figures):
    p99 = figures.percentile(0.99)
    return (f"{name} {figures.requests} requests, {figures.errors} 5xx ({figures.error_rate:.2%}), "
            f"p99 {'-' if p99 is None else f'{p99:.1f} ms'}")


def _say(decision, elapsed, duration, new_name, new, stable_name, stable, reason):
    print(f"canary {decision} at {elapsed:.0f}s of {duration:.0f}s: {reason}; "
          f"new {_figures_text(new_name, new)}; stable {_figures_text(stable_name, stable)}", flush=True)


def _now():
    return datetime.datetime.now(datetime.UTC)


def check_access(monitoring):
    """One read before any traffic moves, so missing permissions fail with nothing changed."""
    end = _now()
    monitoring.figures(end - datetime.timedelta(minutes=1), end)


def watch(gcloud, monitoring, version, new_rev, stable_rev, duration_s, gates, promote):
    """Watches the split that was just made; returns 0 after a promotion (or a hold), raises
    ReleaseError after a rollback."""
    started, began = _now(), time.monotonic()
    verdict = "wait"
    new = stable = Figures()
    while True:
        elapsed = time.monotonic() - began
        time.sleep(max(0.0, min(gates.interval_s, duration_s - elapsed)))
        elapsed = time.monotonic() - began
        try:
            figures = monitoring.figures(started, _now())
        except ReleaseError as error:  # one failed read is not a verdict; the next one may work
            print(f"canary read failed at {elapsed:.0f}s of {duration_s:.0f}s: {error}", flush=True)
            figures = None
        if figures is not None:
            new, stable = figures.get(new_rev, Figures()), figures.get(stable_rev, Figures())
            verdict, reason = judge(new, stable, gates)
            if verdict == "breach":
                _say("rollback", elapsed, duration_s, new_rev, new, stable_rev, stable, reason)
                _pin(gcloud, stable_rev)
                raise ReleaseError(f"canary {version} rolled back to {stable_rev}: {reason}")
            if elapsed < duration_s:  # the last reading is reported with the final decision
                _say("wait" if verdict == "wait" else "healthy", elapsed, duration_s, new_rev, new,
                     stable_rev, stable, reason)
        if elapsed >= duration_s:
            break
    if verdict == "wait":
        reason = (f"not judged: the canary served {new.requests} requests, fewer than the "
                  f"{gates.min_requests} needed")
        _say("rollback", elapsed, duration_s, new_rev, new, stable_rev, stable, reason)
        _pin(gcloud, stable_rev)
        raise ReleaseError(f"canary {version} rolled back to {stable_rev}: {reason}; send it more traffic "
                           "(a larger PERCENT or a longer --watch) or lower --min-requests")
    if not promote:
        _say("hold", elapsed, duration_s, new_rev, new, stable_rev, stable,
             "healthy for the whole window; --no-promote leaves promotion to ./deploy.sh promote")
        return 0
    now = gcloud.service()
    if traffic.serving(now).get(new_rev, 0) == 0:  # someone moved traffic meanwhile: do not undo it
        raise ReleaseError(f"canary {version} was healthy, but traffic changed during the watch "
                           f"({json.dumps(traffic.serving(now), sort_keys=True)}); not promoting")
    _say("promote", elapsed, duration_s, new_rev, new, stable_rev, stable, "healthy for the whole window")
    served = gcloud.update_traffic(*traffic.pin_args(now, new_rev),
                                   settled=lambda after: traffic.serving(after) == {new_rev: 100})
    print(f"promoted: {json.dumps(served, sort_keys=True)}")
    return 0


def _pin(gcloud, revision):
    """All traffic back to the stable revision. The `previous` tag is left alone: it already names
    the stable revision, so a later `rollback` does not bring the failed canary back."""
    served = gcloud.update_traffic(f"--to-revisions={revision}=100",
                                   settled=lambda now: traffic.serving(now) == {revision: 100})
    print(f"rolled back: {json.dumps(served, sort_keys=True)}", flush=True)
