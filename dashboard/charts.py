"""Line charts as SVG drawn on the server: no script, no CDN, no inline style (the CSP allows
neither). Colours come from classes in app.css; each chart has a <title> and <desc> that a
screen reader announces, and the figures stay in the tables next to it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 90, 14, 14, 34


@dataclass(frozen=True)
class Line:
    name: str
    css: str  # series-1 .. series-5 in app.css
    values: Sequence[float | None]


# Axis tops whose thirds read well: counts (1, 2, 3; 2, 4, 6; 5, 10, 15; ...) and durations in
# seconds (1, 2, 3 min; ...; 30, 60, 90 min; 1, 2, 3 h; ...).
COUNT_TOPS = tuple(m * 10**n for n in range(10) for m in (3, 6, 15, 30) if m * 10**n < 10**10)
DURATION_TOPS = (
    3,
    6,
    15,
    30,
    60,
    180,
    360,
    900,
    1800,
    2700,
    5400,
    10800,
    21600,
    43200,
    86400,
    172800,
    259200,
    604800,
    1814400,
)


def nice_top(value: float, tops: Sequence[float] = COUNT_TOPS) -> float:
    """The smallest of ``tops`` at or above value (the largest when value is above them all)."""
    return next((top for top in sorted(tops) if top >= value), max(tops))


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    lines: Sequence[Line],
    fmt: Callable[[float], str],
    y_max: float | None = None,
    tops: Sequence[float] = COUNT_TOPS,
) -> SafeString:
    """One <svg>: a y axis from 0 with three grid lines, the bucket labels below (at most five
    shown), a polyline per series broken where a bucket has no value, and a dot per value."""
    values = [v for line in lines for v in line.values if v is not None]
    top = y_max if y_max is not None else nice_top(max(values, default=0), tops)
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
    every = max(1, -(-n // 5))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                format_html(
                    '<text class="chart-axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    f"{x(i):.1f}",
                    HEIGHT - 10,
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
        '<h3 class="chart-title" aria-hidden="true">{title}</h3>'
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
