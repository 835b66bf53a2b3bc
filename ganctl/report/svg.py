"""Line charts as inline SVG: no script, no external file, drawn by any browser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# matplotlib's tab10: distinguishable, and readable for the common colour blindnesses
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MAX_POINTS = 500  # per line: longer series are averaged in bins (a step log can hold 100,000 rows)


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def binned(points: Sequence[tuple[float, float]], n: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most ``n`` points: consecutive runs of points replaced by their mean (x and y)."""
    if len(points) <= n:
        return list(points)
    k = len(points) / n
    out = []
    for i in range(n):
        chunk = points[int(i * k) : max(int((i + 1) * k), int(i * k) + 1)]
        out.append((sum(p[0] for p in chunk) / len(chunk), sum(p[1] for p in chunk) / len(chunk)))
    return out


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values from lo to hi (1, 2 or 5 times a power of ten apart)."""
    span = hi - lo
    raw = span / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def line_chart(lines: Sequence[tuple[str, str, Sequence[tuple[float, float]]]], title: str, x_label: str,
               width: int = 460, height: int = 240) -> str:
    """An ``<svg>`` of ``lines`` (label, colour, [(x, y), ...]) sharing one pair of axes; a legend
    names the lines when there are several. Non-finite values are left out."""
    lines = [(label, c, binned([(x, y) for x, y in pts if math.isfinite(x) and math.isfinite(y)]))
             for label, c, pts in lines]
    lines = [ln for ln in lines if ln[2]]
    legend_rows = len(lines) if len(lines) > 1 else 0
    left, right, top, bottom = 56, 12, 26 + 14 * legend_rows + (6 if legend_rows else 0), 34
    height += top - 26
    pw, ph = width - left - right, height - top - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="15" class="title">{escape(title)}</text>']
    if not lines:
        out.append(f'<text x="{left}" y="{top + ph / 2:.0f}" class="tick">no values logged</text></svg>')
        return "".join(out)
    xs = [x for _, _, pts in lines for x, _ in pts]
    ys = [y for _, _, pts in lines for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 1, x1 + 1
    if y1 - y0 < 1e-12 * max(1.0, abs(y0)):
        y0, y1 = y0 - max(1.0, abs(y0)) * 0.05, y1 + max(1.0, abs(y1)) * 0.05

    def sx(x: float) -> float:
        return left + pw * (x - x0) / (x1 - x0)

    def sy(y: float) -> float:
        return top + ph - ph * (y - y0) / (y1 - y0)

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>')
    for t in _ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt(t)}</text>')
    for t in _ticks(x0, x1):
        x = sx(t)
        out.append(f'<text x="{x:.1f}" y="{top + ph + 14}" class="tick" text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" class="tick" text-anchor="middle">{escape(x_label)}</text>')
    for i, (label, c, pts) in enumerate(lines):
        if len(pts) == 1:
            x, y = pts[0]
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{c}"><title>{escape(label)}</title></circle>')
        else:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{c}" stroke-width="1.5">'
                       f'<title>{escape(label)}</title></polyline>')
        if legend_rows:
            y = 34 + 14 * i
            out.append(f'<rect x="{left}" y="{y - 8}" width="10" height="10" fill="{c}"/>'
                       f'<text x="{left + 14}" y="{y + 1}" class="tick">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
