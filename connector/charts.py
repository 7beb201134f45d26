"""Server-side SVG bar charts for the console: readable with JavaScript off, by a person and
by a browser test (every number is a text label, not only a length).

Written by hand: a horizontal bar chart is a few rectangles and labels, and the charting
libraries that render SVG on a server (matplotlib, pygal) would add tens of megabytes, or an
unmaintained dependency, for it. Every label is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

LABEL_WIDTH = 140
BAR_HEIGHT = 18
ROW_GAP = 8
TEXT_WIDTH = 230  # room right of the longest bar for its value label


@dataclass(frozen=True)
class Bar:
    """One row: ``value`` sets the bar's length, ``text`` is what it says; ``target`` (same
    scale as ``value``) draws a tick where the bar should end."""

    label: str
    value: float
    text: str
    target: float | None = None


def bar_chart(bars: Sequence[Bar], *, title: str, width: int = 640) -> Markup:
    """An SVG of ``bars``, one row each, scaled to the largest value or target."""
    top = max([b.value for b in bars] + [b.target or 0.0 for b in bars] + [0.0])
    scale = (width - LABEL_WIDTH - TEXT_WIDTH) / top if top > 0 else 0.0
    height = len(bars) * (BAR_HEIGHT + ROW_GAP) + ROW_GAP
    rows = [_row(i, bar, scale) for i, bar in enumerate(bars)]
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(rows)}</svg>'
    )


def _row(index: int, bar: Bar, scale: float) -> str:
    y = ROW_GAP + index * (BAR_HEIGHT + ROW_GAP)
    middle = y + BAR_HEIGHT / 2
    length = max(bar.value * scale, 0.0)
    parts = [
        f'<g class="bar" data-label="{escape(bar.label)}">',
        f'<text x="{LABEL_WIDTH - 6}" y="{middle}" text-anchor="end" '
        f'dominant-baseline="middle">{escape(bar.label)}</text>',
        f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
        f'fill="#4a78b5"/>',
    ]
    right = length
    if bar.target is not None:
        x = LABEL_WIDTH + bar.target * scale
        right = max(right, bar.target * scale)
        parts.append(
            f'<line class="target" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 3}" '
            f'y2="{y + BAR_HEIGHT + 3}" stroke="#c0392b" stroke-width="2"/>'
        )
    parts.append(
        f'<text class="value" x="{LABEL_WIDTH + right + 6:.1f}" y="{middle}" '
        f'dominant-baseline="middle">{escape(bar.text)}</text></g>'
    )
    return "".join(parts)
