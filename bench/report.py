"""Rounds -> medians and best per system, model and metric; the target ratios; the printed table."""

import statistics

from bench.systems import LABELS, OURS, OURS_ONNX, OURS_URI, OWN, PEERS

# metric -> (column title, True when lower is better)
METRICS = {
    "cold_start_s": ("cold start s", True),
    "p50_ms": ("p50 ms c=1", True),
    "p99_ms": ("p99 ms c=1", True),
    "rps_c16": ("req/s c=16", False),
    "batch_rows_per_s": ("rows/s 256-batch", False),
    "rss_mb": ("RSS MB", True),
    "pss_mb": ("PSS MB", True),
}
EXTRA = ("port_open_s", "first_response_s", "rps_c1", "p50_c16_ms", "p99_c16_ms", "cpu_ms_per_req_c16",
         "rss_ready_mb", "pss_ready_mb")
# (metric, model or None for every model, most allowed ratio ours / best peer or least for throughput,
# which of our systems). Memory is PSS: pages a server's processes share (gunicorn's master and its
# worker) count once, as they take memory once.
TARGETS = (
    ("rps_c16", "forest", 5.0, OWN),
    ("rps_c16", "logreg", 1.5, OWN),
    ("rps_c16", "churn", 3.0, OWN),
    ("cold_start_s", None, 0.9, (OURS, OURS_URI)),
    ("cold_start_s", None, 0.6, (OURS_ONNX,)),
    ("p50_ms", None, 1.0, OWN),
    ("pss_mb", None, 1.0, OWN),
)


def aggregate(rounds: list[dict]) -> dict:
    """{system: {model: {metric: {median, best, values}, correct, failures}}}."""
    summary: dict = {}
    for record in rounds:
        for run in record["runs"]:
            cell = summary.setdefault(run["system"], {}).setdefault(
                run["model"], {"values": {}, "failures": [], "correct": True, "load_errors": 0})
            if not run["ok"]:
                cell["failures"].append(run["error"])
                continue
            metrics = run["metrics"]
            cell["correct"] = cell["correct"] and metrics["correct"]
            cell["load_errors"] += metrics["load_errors"]
            for name in (*METRICS, *EXTRA):
                if metrics.get(name) is not None:
                    cell["values"].setdefault(name, []).append(metrics[name])
    for models in summary.values():
        for cell in models.values():
            cell["metrics"] = {name: _stats(name, values) for name, values in cell.pop("values").items()}
    return summary


def _stats(name: str, values: list[float]) -> dict:
    lower_better = METRICS.get(name, ("", True))[1] if not name.startswith("rps") else False
    best = min(values) if lower_better else max(values)
    return {"median": statistics.median(values), "best": best, "values": values}


def _median(summary: dict, system: str, model: str, metric: str) -> float | None:
    return summary.get(system, {}).get(model, {}).get("metrics", {}).get(metric, {}).get("median")


def targets(summary: dict, models: list[str]) -> list[dict]:
    """Our medians (each of our runtimes) against the best peer's medians in the same run."""
    out = []
    for system in OWN:
        for metric, only, bound, systems in TARGETS:
            if system in systems:
                out.extend(_target(summary, system, metric, bound, models if only is None else [only]))
    return out


def _target(summary: dict, system: str, metric: str, bound: float, models: list[str]) -> list[dict]:
    out = []
    lower_better = METRICS[metric][1]
    for model in models:
        peers = {p: _median(summary, p, model, metric) for p in PEERS}
        peers = {p: v for p, v in peers.items() if v}
        ours = _median(summary, system, model, metric)
        if not peers or ours is None:
            continue
        best = (min if lower_better else max)(peers, key=peers.get)
        ratio = ours / peers[best]
        out.append({"system": system, "metric": metric, "model": model, "ours": ours, "best_peer": best,
                    "best_peer_value": peers[best], "ratio": ratio,
                    "target": f"{'<=' if lower_better else '>='} {bound}x",
                    "met": ratio <= bound if lower_better else ratio >= bound})
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def table(summary: dict, models: list[str], systems: list[str]) -> str:
    """Medians, with the best round in brackets."""
    header = ["model", "system", *(title for title, _ in METRICS.values())]
    rows = [header]
    for model in models:
        for system in systems:
            cell = summary.get(system, {}).get(model)
            if cell is None:
                continue
            stats = cell["metrics"]
            row = [model, LABELS[system] + ("" if cell["correct"] and not cell["failures"] else " (!)")]
            for metric in METRICS:
                stat = stats.get(metric)
                row.append(f"{_fmt(stat['median'])} ({_fmt(stat['best'])})" if stat else "-")
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def target_lines(found: list[dict]) -> str:
    lines = []
    for t in found:
        lines.append(f"{t['system']:<9} {t['metric']:<14} {t['model']:<7} {_fmt(t['ours'])} vs {t['best_peer']} "
                     f"{_fmt(t['best_peer_value'])}: {t['ratio']:.2f}x (target {t['target']}) "
                     f"{'met' if t['met'] else 'NOT met'}")
    return "\n".join(lines)


