"""The dashboard's charts: SVG drawn on the server by leather (no script, no style sheet: colours
are attributes, so the console's CSP `script-src 'none'; style-src 'self'` holds with the SVG
inline). Each chart is an image with a text name; its numbers are in a table beside it."""

from __future__ import annotations

from datetime import date

import leather
from markupsafe import Markup, escape

# GOV.UK Frontend's palette and type: text at AA contrast on white, series told apart by colour
# and by shape (solid and dashed lines).
leather.theme.background_color = "#ffffff"
for _part in ("title", "legend", "tick", "axis_title", "label"):
    if hasattr(leather.theme, f"{_part}_font_family"):
        setattr(leather.theme, f"{_part}_font_family", "arial, sans-serif")
    if hasattr(leather.theme, f"{_part}_color"):
        setattr(leather.theme, f"{_part}_color", "#0b0c0c")
leather.theme.tick_color = "#b1b4b6"
leather.theme.default_series_colors = ["#1d70b8", "#00703c", "#d4351c", "#6f72af"]

WIDTH, HEIGHT = 640, 320


def _image(chart: leather.Chart, name: str) -> Markup:
    svg = chart.to_svg(width=WIDTH, height=HEIGHT)
    drawn = f'<svg width="{WIDTH}" height="{HEIGHT}" '
    assert svg.startswith(drawn), svg[:80]  # nosec B101 - leather's own opening, made scalable here
    # no fixed size: as wide as its column at any zoom (WCAG 1.4.10), the viewBox keeping its shape
    scalable = f'<svg role="img" aria-label="{escape(name)}" width="100%" viewBox="0 0 {WIDTH} {HEIGHT}" '
    return Markup(scalable + svg[len(drawn) :])  # nosec B704 - leather's own SVG; the only text put in is escaped


def orders_per_day(days: list[tuple[date, int, int]]) -> Markup:
    """Paid and free orders each day: two lines, the free one dashed. The x axis counts days (a
    linear scale labelled with dates: leather's date scale fails on a span of a day or two)."""
    chart = leather.Chart()
    paid = [(number, count) for number, (_, count, _free) in enumerate(days)]
    free = [(number, count) for number, (_, _paid, count) in enumerate(days)]
    top = _top(count for _, count in paid + free)
    chart.add_y_scale(0, top)
    chart.add_y_axis(ticks=_whole_ticks(top))
    last = max(1, len(days) - 1)
    chart.add_x_scale(0, last)
    step = max(1, -(-last // 6))  # at most 7 labels, whole days apart
    labels = {number: day.strftime("%d %b") for number, (day, _, _) in enumerate(days)}
    chart.add_x_axis(ticks=list(range(0, last + 1, step)), tick_formatter=lambda value, *_: labels.get(value, ""))
    chart.add_line(paid, name="Paid", width=3)
    chart.add_line(free, name="Free", width=3, stroke_dasharray="6 4")
    return _image(chart, "Orders per day, paid and free: the numbers are in the table that follows")


def bars(rows: list[tuple[str, int]], name: str) -> Markup:
    """One bar per labelled count."""
    chart = leather.Chart()
    top = _top(count for _, count in rows)
    chart.add_x_scale(0, top)
    chart.add_x_axis(ticks=_whole_ticks(top))
    chart.add_bars([(count, label) for label, count in rows])
    return _image(chart, name)


def _top(counts) -> int:
    """The axis's end: the largest count rounded up to a whole step of _whole_ticks (at least 1)."""
    most = max([1, *counts])
    step = _step(most)
    return -(-most // step) * step


def _step(most: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if most / step <= 6:
            return step
    return -(-most // 6)


def _whole_ticks(top: int) -> list[int]:
    """Counts are whole: ticks at whole steps from 0 to the top, at most 7 of them."""
    return list(range(0, top + 1, _step(top)))
