"""`compare NEW [OLD]`: the same rows to two revisions' tag URLs, before any user sees NEW.

Each row is one `POST /predict` to each side, alternating which goes first. The report: agreement
(the share of rows where both answered and NEW gave the same label; for regressors, a difference of at
most the tolerance, with the largest and mean absolute difference), p50/p99 latency of each side,
and errors. The gates (`THRESHOLDS` in config.py) decide the exit status.
"""

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from model import DEFAULT_MODEL_DIR
from release import smoke
from release.errors import ReleaseError, UsageError

EXAMPLES_FILE = "examples.jsonl"
_FILE_SUFFIXES = (".json", ".skops", ".joblib", ".pkl", ".pickle", ".onnx")
_SHOWN = 5  # disagreeing rows quoted in the report


@dataclass(frozen=True)
class Gates:
    min_agreement: float
    max_latency_ratio: float
    max_errors: int
    tolerance: float


def parse_rows(text, source):
    """JSON lines: each an object keyed by feature name or an array of feature values."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise UsageError(f"{source} line {number} is not JSON ({error.msg})") from None
        if not isinstance(row, (dict, list)):
            raise UsageError(f"{source} line {number} is not a row (a JSON object or array)")
        rows.append(row)
    if not rows:
        raise UsageError(f"{source} has no rows")
    return rows


def rows_from_file(path):
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise UsageError(f"cannot read --data {path}: {error.strerror or error}") from None
    return parse_rows(text, path)


def _model_directory(model_uri):
    """The directory a MODEL_URI names: itself, or the one holding the manifest or artifact it names."""
    uri = model_uri.split("#", 1)[0].rstrip("/")
    head, _, last = uri.rpartition("/")
    return head if last.endswith(_FILE_SUFFIXES) and head else uri


def _read(gcloud, location):
    """Text at a gs:// URI or a local path, or None when there is none."""
    if location.startswith("gs://"):
        try:
            return gcloud.storage_text(location)
        except ReleaseError:
            return None
    try:
        return Path(location).read_text()
    except OSError:
        return None


def default_rows(gcloud, revision_item):
    """The held-out rows published with NEW's model (examples.jsonl beside its manifest): from
    the revision's MODEL_URI (gs:// or a local path), else the default model baked into the image."""
    container = (revision_item.get("spec", {}).get("containers") or [{}])[0]
    env = {e.get("name"): e.get("value") for e in container.get("env", [])}
    directory = _model_directory(env.get("MODEL_URI") or str(DEFAULT_MODEL_DIR))
    name = EXAMPLES_FILE
    manifest = _read(gcloud, f"{directory}/manifest.json")
    try:
        listed = json.loads(manifest or "{}").get("examples", {})
        if isinstance(listed, dict) and isinstance(listed.get("file"), str) and "/" not in listed["file"]:
            name = listed["file"]
    except ValueError:
        pass
    location = f"{directory}/{name}"
    text = _read(gcloud, location)
    if text is None:
        raise ReleaseError(f"no held-out rows for the new model at {location}; pass --data FILE "
                           "(JSON lines, one row per line)")
    return parse_rows(text, location), location


def _percentile(values, share):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def side(url, token, rows):
    """One end of the comparison; `run` fills in its answers, latencies and errors."""
    return {"url": url, "token": token, "answers": [None] * len(rows), "latencies": [], "errors": 0}


def _send(side, index, row):
    started = time.perf_counter()
    status, body = smoke.call(side["url"].rstrip("/") + "/predict", side["token"], {"instances": [row]})
    if status is not None:
        side["latencies"].append((time.perf_counter() - started) * 1000)
    predictions = body.get("predictions") if isinstance(body, dict) else None
    if status != 200 or not isinstance(predictions, list) or len(predictions) != 1:
        side["errors"] += 1
        return
    side["answers"][index] = (predictions[0],)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def run(new, old, rows, task, gates):
    """Sends every row to both sides; returns the report (a dict) and the list of failed gates."""
    for index, row in enumerate(rows):
        pair = (new, old) if index % 2 == 0 else (old, new)
        for side in pair:
            _send(side, index, row)
    compared = agreeing = 0
    diffs, shown = [], []
    regression = task == "regression"
    for index, (a, b) in enumerate(zip(new["answers"], old["answers"])):
        if a is None or b is None:
            continue
        compared += 1
        if regression and _number(a[0]) and _number(b[0]):
            diffs.append(abs(a[0] - b[0]))
            same = diffs[-1] <= gates.tolerance
        else:
            same = a[0] == b[0]
        agreeing += same
        if not same and len(shown) < _SHOWN:
            shown.append({"row": index, "new": a[0], "old": b[0]})
    agreement = agreeing / compared if compared else None
    report = {"rows": len(rows), "compared": compared, "agreement": agreement, "task": task}
    if regression:
        report["max_abs_diff"] = max(diffs) if diffs else None
        report["mean_abs_diff"] = sum(diffs) / len(diffs) if diffs else None
    report["disagreements"] = shown
    for name, side in (("new", new), ("old", old)):
        report[name] = {"url": side["url"], "errors": side["errors"],
                        "p50_ms": _round(_percentile(side["latencies"], 0.50)),
                        "p99_ms": _round(_percentile(side["latencies"], 0.99))}
    return report, _failures(report, gates)


def _round(value):
    return None if value is None else round(value, 3)


def _failures(report, gates):
    failures = []
    if report["new"]["errors"] > gates.max_errors:
        failures.append(f"NEW failed {report['new']['errors']} of {report['rows']} rows "
                        f"(--max-errors {gates.max_errors})")
    if report["agreement"] is None:
        failures.append("no row was answered by both sides, so nothing could be compared")
    elif report["agreement"] < gates.min_agreement:
        failures.append(f"agreement {report['agreement']:.4f} is below --min-agreement {gates.min_agreement} "
                        f"({round(report['agreement'] * report['compared'])} of {report['compared']} rows)")
    new_p50, old_p50 = report["new"]["p50_ms"], report["old"]["p50_ms"]
    if new_p50 and old_p50 and new_p50 / old_p50 > gates.max_latency_ratio:
        failures.append(f"NEW's p50 {new_p50:.1f} ms is {new_p50 / old_p50:.2f}x OLD's {old_p50:.1f} ms "
                        f"(--max-latency-ratio {gates.max_latency_ratio})")
    return failures
