"""A hand-written SVG of the medians: one panel per metric, one group of bars per model.

`python -m bench.chart [RESULTS_JSON [SVG]]` redraws a run's chart from its JSON (by default
bench/results.json into bench/results.svg), without running the benchmark again.
"""

import html
import json
import pathlib
import sys

from bench.plan import BENCH_DIR
from bench.report import METRICS
from bench.systems import LABELS

_COLORS = {"ours": "#1a73e8", "ours-uri": "#7baaf7", "ours-onnx": "#8430ce", "fastapi": "#34a853", "mlserver": "#f29900",
           "floor": "#9aa0a6"}
_PANEL_W, _PANEL_H, _COLS = 320, 250, 3
_BAR_W = 24  # wide enough for a value label such as "1.2k" above each bar
_MARGIN, _LEGEND_Y, _LEGEND_ROW = 12, 50, 18
# A generous width per character of 12 px sans-serif: no SVG renderer here measures text for us.
_CHAR_W = 7.2
_MODEL_NAMES = {"forest": "RandomForest(100)", "logreg": "LogisticRegression", "churn": "churn (DataFrame)"}


def _label(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _panel_width(models: list[str], systems: list[str]) -> int:
    """Wide enough for every bar at _BAR_W, with a gap between models' groups."""
    return max(_PANEL_W, 40 + len(models) * (len(systems) * _BAR_W + 20))


def _panel(x0: int, y0: int, metric: str, summary: dict, models: list[str], systems: list[str]) -> list[str]:
    title, lower_better = METRICS[metric]
    panel_w = _panel_width(models, systems)
    heading = (
        f'<text x="{x0 + panel_w / 2}" y="{y0 + 16}" text-anchor="middle" font-weight="bold">'
        f'{html.escape(title)} <tspan font-weight="normal" fill="#5f6368">'
        f'({"lower" if lower_better else "higher"} is better)</tspan></text>'
    )
    out = [heading]
    values = {(m, s): summary.get(s, {}).get(m, {}).get("metrics", {}).get(metric, {}).get("median")
              for m in models for s in systems}
    top = max([v for v in values.values() if v] or [1.0])
    base, height = y0 + _PANEL_H - 30, _PANEL_H - 75
    group_w = (panel_w - 40) / len(models)
    bar_w = min(28.0, (group_w - 16) / len(systems))
    for gi, model in enumerate(models):
        gx = x0 + 20 + gi * group_w + (group_w - bar_w * len(systems)) / 2
        for si, system in enumerate(systems):
            value = values[(model, system)]
            if value is None:
                continue
            h = max(1.0, height * value / top)
            x = gx + si * bar_w
            out.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w - 3:.1f}" height="{h:.1f}" '
                       f'fill="{_COLORS[system]}"><title>{html.escape(LABELS[system])}: {value:.4g}</title></rect>')
            out.append(f'<text x="{x + (bar_w - 3) / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                       f'font-size="10">{_label(value)}</text>')
        out.append(f'<text x="{x0 + 20 + gi * group_w + group_w / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                   f'font-size="11">{_MODEL_NAMES.get(model, model)}</text>')
    out.append(f'<line x1="{x0 + 15}" y1="{base}" x2="{x0 + panel_w - 15}" y2="{base}" stroke="#bdc1c6"/>')
    return out


def _legend(systems: list[str], width: int) -> tuple[list[str], int]:
    """A swatch and label per system, wrapped to the next row before one would leave the picture;
    returns the elements and the y where the legend ends."""
    out, x, y = [], _MARGIN, _LEGEND_Y
    for system in systems:
        label = LABELS[system]
        item_w = 16 + len(label) * _CHAR_W
        if x > _MARGIN and x + item_w > width - _MARGIN:
            x, y = _MARGIN, y + _LEGEND_ROW
        out.append(f'<rect x="{x:.0f}" y="{y}" width="12" height="12" fill="{_COLORS[system]}"/>')
        out.append(f'<text x="{x + 16:.0f}" y="{y + 10}">{html.escape(label)}</text>')
        x += item_w + 20
    return out, y + _LEGEND_ROW


def write(path: pathlib.Path, summary: dict, models: list[str], systems: list[str], subtitle: str) -> None:
    """Draws every metric of METRICS for `systems` and `models` into the SVG at `path`."""
    rows = -(-len(METRICS) // _COLS)
    panel_w = _panel_width(models, systems)
    width = panel_w * _COLS
    legend, top = _legend(systems, width)
    height = top + rows * _PANEL_H
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
    )
    parts = [svg, f'<rect width="{width}" height="{height}" fill="white"/>',
             '<text x="12" y="22" font-size="15" font-weight="bold">Serving scikit-learn models on one CPU: medians</text>',
             f'<text x="12" y="40" fill="#5f6368">{html.escape(subtitle)}</text>', *legend]
    for index, metric in enumerate(METRICS):
        x0, y0 = (index % _COLS) * panel_w, top + (index // _COLS) * _PANEL_H
        parts.extend(_panel(x0, y0, metric, summary, models, systems))
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def subtitle(result: dict) -> str:
    """When and how a run measured, from its JSON."""
    run_plan = result["plan"]
    return (f"{result['date'][:10]}, {run_plan['rounds']} rounds x {run_plan['load_seconds']} s per wrk run, "
            f"server on 1 CPU, wrk on the other; `{result['command']}`")


def write_result(path: pathlib.Path, result: dict) -> None:
    """The chart of a run, from the JSON `python -m bench` writes."""
    write(path, result["summary"], result["models"], result["systems"], subtitle(result))


def main(argv: list[str]) -> int:
    if len(argv) > 2 or any(arg.startswith("-") for arg in argv):
        print(__doc__, file=sys.stderr)
        return 2
    source = pathlib.Path(argv[0]) if argv else BENCH_DIR / "results.json"
    target = pathlib.Path(argv[1]) if len(argv) > 1 else source.with_suffix(".svg")
    write_result(target, json.loads(source.read_text()))
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
