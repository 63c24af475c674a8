"""A hand-written SVG of the medians: one panel per metric, one group of bars per model."""

import html
import pathlib

from bench.report import METRICS
from bench.systems import LABELS

_COLORS = {"ours": "#1a73e8", "ours-uri": "#7baaf7", "ours-onnx": "#8430ce", "fastapi": "#34a853", "mlserver": "#f29900",
           "floor": "#9aa0a6"}
_PANEL_W, _PANEL_H, _COLS, _TOP = 320, 250, 3, 70
_MODEL_NAMES = {"forest": "RandomForest(100)", "logreg": "LogisticRegression"}


def _label(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _panel(x0: int, y0: int, metric: str, summary: dict, models: list[str], systems: list[str]) -> list[str]:
    title, lower_better = METRICS[metric]
    heading = (
        f'<text x="{x0 + _PANEL_W / 2}" y="{y0 + 16}" text-anchor="middle" font-weight="bold">'
        f'{html.escape(title)} <tspan font-weight="normal" fill="#5f6368">'
        f'({"lower" if lower_better else "higher"} is better)</tspan></text>'
    )
    out = [heading]
    values = {(m, s): summary.get(s, {}).get(m, {}).get("metrics", {}).get(metric, {}).get("median")
              for m in models for s in systems}
    top = max([v for v in values.values() if v] or [1.0])
    base, height = y0 + _PANEL_H - 30, _PANEL_H - 75
    group_w = (_PANEL_W - 40) / len(models)
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
    out.append(f'<line x1="{x0 + 15}" y1="{base}" x2="{x0 + _PANEL_W - 15}" y2="{base}" stroke="#bdc1c6"/>')
    return out


def write(path: pathlib.Path, summary: dict, models: list[str], systems: list[str], subtitle: str) -> None:
    """Draws every metric of METRICS for `systems` and `models` into the SVG at `path`."""
    rows = -(-len(METRICS) // _COLS)
    width, height = _PANEL_W * _COLS, _TOP + rows * _PANEL_H
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
    )
    parts = [svg, f'<rect width="{width}" height="{height}" fill="white"/>',
             '<text x="12" y="22" font-size="15" font-weight="bold">Serving iris models on one CPU: medians</text>',
             f'<text x="12" y="40" fill="#5f6368">{html.escape(subtitle)}</text>']
    for i, system in enumerate(systems):
        x = 12 + i * 235
        parts.append(f'<rect x="{x}" y="50" width="12" height="12" fill="{_COLORS[system]}"/>')
        parts.append(f'<text x="{x + 16}" y="60">{html.escape(LABELS[system])}</text>')
    for index, metric in enumerate(METRICS):
        x0, y0 = (index % _COLS) * _PANEL_W, _TOP + (index // _COLS) * _PANEL_H
        parts.extend(_panel(x0, y0, metric, summary, models, systems))
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")
