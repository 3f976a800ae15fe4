"""A small hand-written SVG line chart (no plotting dependency): panels of series against x."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

COLORS = {"floor": "#6b7280", "sse": "#2563eb", "ws": "#d97706"}
W, H = 420, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 50


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a name (colours by path), points, dashed or solid."""

    name: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Panel:
    """One chart: title, axis labels, its lines, and a target line if any."""

    title: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    target: float | None = None


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9)))
    if (hi - lo) / step < 4:
        step /= 2
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 2)]


def _fmt(v: float) -> str:
    return f"{v:g}" if v < 10_000 else f"{v / 1000:g}k"


def _panel(panel: Panel, dx: int) -> list[str]:
    xs = sorted({x for s in panel.series for x, _ in s.points})
    ys = [y for s in panel.series for _, y in s.points] + ([panel.target] if panel.target else [])
    if not xs or not ys:
        return []
    positive = [y for y in ys if y > 0]
    log = bool(positive) and max(positive) / max(min(positive), 1e-3) > 50
    y_lo = 10 ** math.floor(math.log10(max(min(positive), 0.1))) if log else 0.0
    y_hi = max(ys) * (1.5 if log else 1.1)
    ticks = _ticks(y_lo, y_hi, log)
    y_hi = max(y_hi, ticks[-1]) if log else ticks[-1]

    def px(x: float) -> float:
        i = xs.index(x)
        span = W - LEFT - RIGHT
        return dx + LEFT + (span * i / (len(xs) - 1) if len(xs) > 1 else span / 2)

    def py(y: float) -> float:
        span = H - TOP - BOTTOM
        if log:
            y = max(y, y_lo)
            frac = (math.log10(y) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))
        else:
            frac = (y - y_lo) / (y_hi - y_lo) if y_hi > y_lo else 0
        return TOP + span * (1 - frac)

    out = [
        f'<text x="{dx + W / 2}" y="22" text-anchor="middle" font-weight="bold">'
        f"{escape(panel.title)}</text>",
        f'<line x1="{dx + LEFT}" y1="{TOP}" x2="{dx + LEFT}" y2="{H - BOTTOM}" stroke="#000"/>',
        f'<line x1="{dx + LEFT}" y1="{H - BOTTOM}" x2="{dx + W - RIGHT}" y2="{H - BOTTOM}" '
        'stroke="#000"/>',
        f'<text x="{dx + W / 2}" y="{H - 12}" text-anchor="middle">{escape(panel.x_label)}</text>',
        f'<text transform="translate({dx + 16},{(H - BOTTOM + TOP) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(panel.y_label)}{" (log)" if log else ""}</text>',
    ]
    for t in ticks:
        if t < y_lo or t > y_hi:
            continue
        y = py(t)
        out.append(
            f'<line x1="{dx + LEFT}" y1="{y:.1f}" x2="{dx + W - RIGHT}" y2="{y:.1f}" '
            'stroke="#e5e7eb"/>'
        )
        out.append(f'<text x="{dx + LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for x in xs:
        out.append(
            f'<text x="{px(x):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{_fmt(x)}</text>'
        )
    if panel.target is not None:
        y = py(panel.target)
        out.append(
            f'<line x1="{dx + LEFT}" y1="{y:.1f}" x2="{dx + W - RIGHT}" y2="{y:.1f}" '
            'stroke="#dc2626" stroke-dasharray="2,3"/>'
        )
        out.append(
            f'<text x="{dx + W - RIGHT}" y="{y - 4:.1f}" text-anchor="end" fill="#dc2626">'
            f"target {_fmt(panel.target)}</text>"
        )
    for s in panel.series:
        color = COLORS.get(s.name.split()[0], "#111827")
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        dash = ' stroke-dasharray="6,4"' if s.dashed else ""
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
        )
        for x, y in s.points:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
    legend_y = TOP + 4
    for i, s in enumerate(panel.series):
        color = COLORS.get(s.name.split()[0], "#111827")
        y = legend_y + i * 14
        dash = ' stroke-dasharray="6,4"' if s.dashed else ""
        out.append(
            f'<line x1="{dx + LEFT + 10}" y1="{y}" x2="{dx + LEFT + 30}" y2="{y}" '
            f'stroke="{color}" stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{dx + LEFT + 34}" y="{y + 4}">{escape(s.name)}</text>')
    return out


def render(panels: Sequence[Panel]) -> str:
    """The panels side by side as one SVG document."""
    width = W * len(panels)
    body: list[str] = []
    for i, panel in enumerate(panels):
        body.extend(_panel(panel, i * W))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H}" '
        f'viewBox="0 0 {width} {H}" font-family="sans-serif" font-size="11">\n'
        f'<rect width="{width}" height="{H}" fill="#fff"/>\n' + "\n".join(body) + "\n</svg>\n"
    )
