"""Line charts as SVG drawn on the server: no script, no CDN, no inline style (the CSP allows
neither). Colours come from classes in app.css; each chart has a <title> and <desc> that a
screen reader announces, and the figures stay in the tables next to it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28


@dataclass(frozen=True)
class Line:
    name: str
    css: str  # series-1 .. series-5 in app.css
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times 10^n at or above value (an axis that reads well)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    lines: Sequence[Line],
    fmt: Callable[[float], str],
    y_max: float | None = None,
) -> SafeString:
    """One <svg>: a y axis from 0 with three grid lines, the bucket labels below (at most seven
    shown), a polyline per series broken where a bucket has no value, and a dot per value."""
    values = [v for line in lines for v in line.values if v is not None]
    top = y_max if y_max is not None else _nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(v, top) / top)

    parts = []
    for k in range(4):
        v = top * k / 3
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="chart-axis" x="{}" y="{}" text-anchor="end">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                f"{y(v):.1f}",
                f"{y(v):.1f}",
                LEFT - 6,
                f"{y(v) + 4:.1f}",
                fmt(v),
            )
        )
    every = max(1, -(-n // 7))
    for i, label in enumerate(labels):
        if i % every == 0 or i == n - 1:
            parts.append(
                format_html(
                    '<text class="chart-axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    f"{x(i):.1f}",
                    HEIGHT - 8,
                    label,
                )
            )
    for line in lines:
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(line.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((x(i), y(v)))
        runs = [points for points in runs if points]
        for points in runs:
            parts.append(
                format_html(
                    '<polyline class="chart-line {}" points="{}"/>',
                    line.css,
                    " ".join(f"{px:.1f},{py:.1f}" for px, py in points),
                )
            )
        parts.append(
            format_html_join(
                "",
                '<circle class="chart-dot {}" cx="{}" cy="{}" r="3"><title>{}: {}</title></circle>',
                (
                    (line.css, f"{x(i):.1f}", f"{y(v):.1f}", f"{labels[i]} {line.name}", fmt(v))
                    for i, v in enumerate(line.values)
                    if v is not None
                ),
            )
        )
    legend = format_html_join(
        "",
        '<li><span class="chart-swatch {}" aria-hidden="true"></span>{}</li>',
        ((line.css, line.name) for line in lines),
    )
    return format_html(
        '<figure class="chart" data-testid="chart-{id}">'
        '<svg class="chart-svg" viewBox="0 0 {w} {h}" role="img" '
        'aria-labelledby="{id}-title {id}-desc" preserveAspectRatio="xMidYMid meet">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>'
        '<figcaption><ul class="chart-legend">{legend}</ul></figcaption></figure>',
        id=chart_id,
        w=WIDTH,
        h=HEIGHT,
        title=title,
        desc=desc,
        body=mark_safe("".join(parts)),  # noqa: S308 - every part is built by format_html
        legend=legend,
    )
