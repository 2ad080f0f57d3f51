"""Charts drawn on the server as inline SVG: no script, no request leaving the page, nothing for the CSP to allow.

A chart is data first: :class:`Chart` holds a title, the category labels (days, channels) and the named
series; :func:`svg` draws it (lines over days, grouped bars over categories) and the template writes the
same numbers in a table beside it for screen readers, so the picture is never the only copy. Colours come
from one palette that stays apart for the common colour-vision deficiencies, and each series is also
named in the legend, not told by colour alone. Every text is escaped; the SVG uses presentation
attributes, never ``style``, so the flow's Content-Security-Policy (``style-src 'self'``) holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

#: Series colours (Okabe-Ito, darkened for contrast on white).
PALETTE = ("#0b57d0", "#b3261e", "#146c2e", "#8a4baf", "#a15c00", "#00708a", "#5f6368")
WIDTH, HEIGHT = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 28, 12, 44


@dataclass
class Chart:
    """``kind`` ``line`` (``labels`` are days) or ``bar`` (``labels`` are categories); ``series`` by name."""

    id: str
    title: str
    kind: str
    labels: list[str]
    series: dict[str, list[float]] = field(default_factory=dict)
    #: The unit the numbers are in, said in the table's header ("ms", "members").
    unit: str = ""
    #: What a reader must know to read it right (shown under the title).
    note: str = ""

    @property
    def empty(self) -> bool:
        return not self.labels or not any(any(values) for values in self.series.values())

    def rows(self) -> list[tuple[str, list[float]]]:
        """The table under the chart: one row per label, one column per series."""
        return [(label, [values[i] for values in self.series.values()]) for i, label in enumerate(self.labels)]


def _nice(top: float) -> float:
    """The axis maximum: ``top`` rounded up to 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= top:
        power *= 10
    while power > top:
        power /= 10
    for step in (1, 2, 5, 10):
        if step * power >= top:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def svg(chart: Chart) -> Markup:
    """``chart`` as an ``<svg>`` element (hidden from screen readers: the table beside it says the same)."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    top = _nice(max((v for values in chart.series.values() for v in values), default=0))
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):  # gridlines and the y axis labels
        value = top * i / 4
        y = _TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#57606a">{_number(value)}</text>')
    count = max(len(chart.labels), 1)
    if chart.kind == "line":
        step = plot_w / max(count - 1, 1)
        for s, (name, values) in enumerate(chart.series.items()):
            points = " ".join(f"{_LEFT + i * step:.1f},{_TOP + plot_h - plot_h * v / top:.1f}"
                              for i, v in enumerate(values))
            parts.append(f'<polyline points="{points}" fill="none" stroke="{PALETTE[s % len(PALETTE)]}" '
                         f'stroke-width="2"><title>{escape(name)}</title></polyline>')
        shown = {0, count - 1, *range(0, count, max(1, count // 6))}
        for i in sorted(shown):
            if i < len(chart.labels):
                parts.append(f'<text x="{_LEFT + i * step:.1f}" y="{HEIGHT - _BOTTOM + 16}" text-anchor="middle" '
                             f'font-size="11" fill="#57606a">{escape(chart.labels[i][5:])}</text>')
    else:
        group = plot_w / count
        bars = max(len(chart.series), 1)
        width = group * 0.8 / bars
        for s, (name, values) in enumerate(chart.series.items()):
            for i, v in enumerate(values):
                h = plot_h * v / top
                x = _LEFT + i * group + group * 0.1 + s * width
                parts.append(f'<rect x="{x:.1f}" y="{_TOP + plot_h - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                             f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(name)}: {_number(v)}</title></rect>')
        for i, label in enumerate(chart.labels):
            parts.append(f'<text x="{_LEFT + i * group + group / 2:.1f}" y="{HEIGHT - _BOTTOM + 16}" '
                         f'text-anchor="middle" font-size="11" fill="#57606a">{escape(label[:24])}</text>')
    x = _LEFT
    for s, name in enumerate(chart.series):  # the legend: colour and name
        parts.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 7}" font-size="11" fill="#1b1f24">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    # Built above from escaped text and numbers only.
    return Markup("".join(parts))
