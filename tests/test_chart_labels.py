"""Chart labels are never clipped (issue 17): the x labels at either end of the axis are anchored
inwards, and the SVG lets edge text show."""

from __future__ import annotations

import re
from datetime import date, timedelta

from core.charts import Series, line_chart


def test_the_first_and_last_x_labels_are_anchored_inside_the_chart() -> None:
    # 26 days: every fifth is labelled, so the first and the last day carry a label at the axis' ends.
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(26)]
    svg = str(line_chart([Series("users", [(d, float(i)) for i, d in enumerate(days)])], title="t"))
    x_labels = re.findall(r'<text class="tick" x="[\d.]+" y="[\d.]+" text-anchor="(\w+)">(\d+ \w+)</text>', svg)
    assert x_labels[0] == ("start", "01 Mar")
    assert x_labels[-1] == ("end", "26 Mar")
    assert [anchor for anchor, _ in x_labels[1:-1]] == ["middle"] * 4
