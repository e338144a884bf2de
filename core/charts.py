"""Server-rendered SVG charts: pictures drawn without any network or script.

Each function returns markup safe to embed in a template. Every chart has a
``<title>`` and ``<desc>`` for screen readers, axis labels in words, and a
``<title>`` on each point or bar so hovering shows the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#2563eb", "#9333ea", "#059669", "#dc2626", "#d97706"]
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 12, 14, 34

XValue = date | datetime | float


@dataclass
class Series:
    label: str
    points: Sequence[tuple[XValue, float | None]]  # None leaves a gap
    color: str = ""
    dashed: bool = False


@dataclass
class Marker:
    """A vertical line at x with a short label (a change event, 'today', a limit date)."""

    x: XValue
    label: str
    color: str = "#6b7280"


@dataclass
class HLine:
    y: float
    label: str
    color: str = "#dc2626"


@dataclass
class _Scale:
    lo: float
    hi: float
    start: float
    length: float
    invert: bool = False

    def __call__(self, value: float) -> float:
        span = (self.hi - self.lo) or 1.0
        fraction = (value - self.lo) / span
        if self.invert:
            fraction = 1 - fraction
        return self.start + fraction * self.length


@dataclass
class _Frame:
    width: int
    height: int
    parts: list[str] = field(default_factory=list)


def _num(value: XValue) -> float:
    if isinstance(value, datetime):
        return value.timestamp() / 86400
    if isinstance(value, date):
        return float(value.toordinal())
    return float(value)


def _nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 0.001:
        if value >= lo - step * 0.001:
            ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _x_label(value: XValue) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d %b")
    if isinstance(value, date):
        return value.strftime("%d %b")
    return _fmt(value)


def _empty(title: str, width: int) -> SafeString:
    parts = _open(title, "no data", width, 60)
    parts.append(f'<text class="empty" x="{width / 2}" y="35" text-anchor="middle">No data yet</text></svg>')
    return mark_safe("".join(parts))


def _open(title: str, description: str, width: int, height: int) -> list[str]:
    return [
        # --chart-width: a phone draws the chart at this width, one user unit per CSS pixel, so its
        # text is as large as the stylesheet says (console.css), scrolling sideways.
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" preserveAspectRatio="xMidYMid meet" '
        f'style="--chart-width: {width}px" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>",
    ]


def _axes(parts: list[str], *, x: _Scale, y: _Scale, y_ticks: list[float], x_ticks: list[XValue], y_label: str) -> None:
    for tick in y_ticks:
        py = y(tick)
        parts.append(
            f'<line class="grid" x1="{x.start:.1f}" x2="{x.start + x.length:.1f}" y1="{py:.1f}" y2="{py:.1f}"/>'
            f'<text class="tick" x="{x.start - 6:.1f}" y="{py + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
        )
    for tick in x_ticks:
        px = x(_num(tick))
        # A label centred on a tick at either end of the axis runs past the chart and is clipped:
        # those are anchored inwards.
        anchor = "end" if px > x.start + x.length - 24 else "start" if px < x.start + 24 else "middle"
        parts.append(
            f'<text class="tick" x="{px:.1f}" y="{y.start + y.length + 16:.1f}" text-anchor="{anchor}">'
            f"{escape(_x_label(tick))}</text>"
        )
    _y_label(parts, y_label, y=y)


def _legend(parts: list[str], labels: list[tuple[str, str, bool]], x0: float) -> None:
    cursor = x0
    for label, color, dashed in labels:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(
            f'<line x1="{cursor:.1f}" x2="{cursor + 16:.1f}" y1="8" y2="8" stroke="{color}" stroke-width="2.5"{dash}/>'
            f'<text class="legend" x="{cursor + 20:.1f}" y="12">{escape(label)}</text>'
        )
        cursor += 28 + 6.5 * len(label)


def _y_grid(parts: list[str], ticks: list[float], *, y: _Scale, width: int) -> None:
    """A grid line and its value at each tick (values below zero written as their size: they count down)."""
    for tick in ticks:
        py = y(tick)
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{py:.1f}" y2="{py:.1f}"/>'
            f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt(abs(tick))}</text>'
        )


def _y_label(parts: list[str], y_label: str, *, y: _Scale) -> None:
    if y_label:
        parts.append(
            f'<text class="axis-label" transform="translate(12 {y.start + y.length / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str = "",
    markers: Sequence[Marker] = (),
    hlines: Sequence[HLine] = (),
    width: int = 640,
    height: int = 240,
    y_min: float | None = 0.0,
) -> SafeString:
    """Lines over a shared x axis (dates or numbers), with optional vertical
    markers (change events) and horizontal lines (targets, limits)."""
    xs = [_num(x) for s in series for x, y in s.points if y is not None] + [_num(m.x) for m in markers]
    ys = [y for s in series for _, y in s.points if y is not None] + [h.y for h in hlines]
    description = "; ".join(f"{s.label}: {sum(1 for _, y in s.points if y is not None)} points" for s in series)
    if not xs or not ys:
        return _empty(title, width)
    parts = _open(title, description, width, height)
    lo_y = min(ys) if y_min is None else min(y_min, min(ys))
    hi_y = max(ys) if max(ys) > lo_y else lo_y + 1
    y_ticks = _nice_ticks(lo_y, hi_y)
    hi_y = max(hi_y, y_ticks[-1])
    x = _Scale(min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1, MARGIN_LEFT, width - MARGIN_LEFT - MARGIN_RIGHT)
    y = _Scale(lo_y, hi_y, MARGIN_TOP + 10, height - MARGIN_TOP - 10 - MARGIN_BOTTOM, invert=True)
    all_x = sorted({x_value for s in series for x_value, _ in s.points} | {m.x for m in markers}, key=_num)
    step = max(1, len(all_x) // 5)
    _axes(parts, x=x, y=y, y_ticks=y_ticks, x_ticks=all_x[::step], y_label=y_label)
    for hline in hlines:
        py = y(hline.y)
        parts.append(
            f'<line x1="{x.start:.1f}" x2="{x.start + x.length:.1f}" y1="{py:.1f}" y2="{py:.1f}" stroke="{hline.color}" '
            f'stroke-dasharray="2 3"/><text class="tick" x="{x.start + x.length:.1f}" y="{py - 4:.1f}" '
            f'text-anchor="end" fill="{hline.color}">{escape(hline.label)}</text>'
        )
    for marker in markers:
        px = x(_num(marker.x))
        parts.append(
            f'<g class="marker"><line x1="{px:.1f}" x2="{px:.1f}" y1="{y.start:.1f}" y2="{y.start + y.length:.1f}" '
            f'stroke="{marker.color}" stroke-dasharray="3 3"/><text class="tick" x="{px + 3:.1f}" y="{y.start + 10:.1f}">'
            f"{escape(marker.label)}</text><title>{escape(marker.label)} ({escape(_x_label(marker.x))})</title></g>"
        )
    legend = []
    for index, s in enumerate(series):
        color = s.color or PALETTE[index % len(PALETTE)]
        legend.append((s.label, color, s.dashed))
        segments: list[list[tuple[float, float, XValue, float]]] = [[]]
        for x_value, y_value in s.points:
            if y_value is None:
                segments.append([])
                continue
            segments[-1].append((x(_num(x_value)), y(y_value), x_value, y_value))
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        for segment in segments:
            if len(segment) >= 2:
                path = " ".join(
                    f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py, _, _) in enumerate(segment)
                )
                parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
            for px, py, x_value, y_value in segment:
                parts.append(
                    f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{color}"><title>{escape(s.label)} '
                    f"{escape(_x_label(x_value))}: {_fmt(y_value)}</title></circle>"
                )
    _legend(parts, legend, MARGIN_LEFT)
    parts.append("</svg>")
    return mark_safe("".join(parts))


def bar_chart(
    bars: Sequence[tuple[XValue, float]],
    *,
    title: str,
    y_label: str = "",
    color: str = "#d97706",
    hlines: Sequence[HLine] = (),
    width: int = 640,
    height: int = 180,
) -> SafeString:
    """One bar per x (a day), e.g. daily friction."""
    if not bars:
        return _empty(title, width)
    parts = _open(title, f"{len(bars)} bars", width, height)
    values = [v for _, v in bars] + [h.y for h in hlines]
    hi = max(max(values), 1.0)
    y_ticks = _nice_ticks(0, hi)
    y = _Scale(0, max(hi, y_ticks[-1]), MARGIN_TOP, height - MARGIN_TOP - MARGIN_BOTTOM, invert=True)
    slot = (width - MARGIN_LEFT - MARGIN_RIGHT) / len(bars)
    x = _Scale(0, len(bars), MARGIN_LEFT, width - MARGIN_LEFT - MARGIN_RIGHT)
    step = max(1, len(bars) // 5)
    _y_grid(parts, y_ticks, y=y, width=width)
    for index, (x_value, value) in enumerate(bars):
        px = x(index)
        top = y(value)
        parts.append(
            f'<rect x="{px + slot * 0.15:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" height="{y.start + y.length - top:.1f}" '
            f'fill="{color}"><title>{escape(_x_label(x_value))}: {_fmt(value)}</title></rect>'
        )
        if index % step == 0:
            parts.append(
                f'<text class="tick" x="{px + slot / 2:.1f}" y="{height - MARGIN_BOTTOM + 16}" text-anchor="middle">'
                f"{escape(_x_label(x_value))}</text>"
            )
    for hline in hlines:
        py = y(hline.y)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{width - MARGIN_RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="{hline.color}" '
            f'stroke-dasharray="2 3"/><text class="tick" x="{width - MARGIN_RIGHT}" y="{py - 4:.1f}" text-anchor="end">'
            f"{escape(hline.label)}</text>"
        )
    _y_label(parts, y_label, y=y)
    parts.append("</svg>")
    return mark_safe("".join(parts))


@dataclass
class Stack:
    """One layer of a stacked bar chart; ``below`` draws it under the zero line (e.g. dormant)."""

    label: str
    color: str
    below: bool = False


def stacked_bar_chart(
    bars: Sequence[tuple[XValue, Sequence[float]]],
    *,
    stacks: Sequence[Stack],
    title: str,
    y_label: str = "",
    width: int = 640,
    height: int = 220,
) -> SafeString:
    """One bar per x (a week), its values stacked in ``stacks`` order: the layers marked
    ``below`` grow downwards from zero, the others upwards, each with its exact value on hover."""
    if not bars or not any(v for _, values in bars for v in values):
        return _empty(title, width)
    legend_height = 18
    parts = _open(title, f"{len(bars)} bars of {', '.join(s.label for s in stacks)}", width, height + legend_height)
    up = max(sum(v for v, s in zip(values, stacks, strict=True) if not s.below) for _, values in bars)
    down = max(sum(v for v, s in zip(values, stacks, strict=True) if s.below) for _, values in bars)
    ticks = _nice_ticks(-down if down else 0.0, max(up, 1.0))
    lo, hi = min(ticks[0], -down), max(ticks[-1], up)
    top = MARGIN_TOP + legend_height
    y = _Scale(lo, hi, top, height - MARGIN_TOP - MARGIN_BOTTOM, invert=True)
    slot = (width - MARGIN_LEFT - MARGIN_RIGHT) / len(bars)
    step = max(1, len(bars) // 6)
    _y_grid(parts, ticks, y=y, width=width)
    for index, (x_value, values) in enumerate(bars):
        px = MARGIN_LEFT + slot * index + slot * 0.15
        above = below = 0.0
        for value, stack in zip(values, stacks, strict=True):
            if value <= 0:
                continue
            if stack.below:
                y0, y1 = y(-below), y(-below - value)
                below += value
            else:
                y0, y1 = y(above + value), y(above)
                above += value
            parts.append(
                f'<rect x="{px:.1f}" y="{min(y0, y1):.1f}" width="{slot * 0.7:.1f}" height="{abs(y1 - y0):.1f}" '
                f'fill="{stack.color}"><title>{escape(_x_label(x_value))}: {_fmt(value)} {escape(stack.label.lower())}'
                "</title></rect>"
            )
        if index % step == 0:
            parts.append(
                f'<text class="tick" x="{px + slot * 0.35:.1f}" y="{height - MARGIN_BOTTOM + 16 + legend_height:.1f}" '
                f'text-anchor="middle">{escape(_x_label(x_value))}</text>'
            )
    _y_label(parts, y_label, y=y)
    cursor = float(MARGIN_LEFT)
    for stack in stacks:
        parts.append(
            f'<rect x="{cursor:.1f}" y="3" width="12" height="10" fill="{stack.color}"/>'
            f'<text class="legend" x="{cursor + 16:.1f}" y="12">{escape(stack.label)}</text>'
        )
        cursor += 28 + 6.5 * len(stack.label)
    parts.append("</svg>")
    return mark_safe("".join(parts))
