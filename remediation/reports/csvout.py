"""The outcomes report as CSV: one row per figure, ``start,end,figure,value``. The whole period's
figures come first, then each bucket's; a figure is the dotted path of the value in the JSON body
(``mttr.by_ending.own.p50``, ``coverage.top_uncovered.0.service``), so both forms say the same."""

from __future__ import annotations

import csv
import io
from datetime import datetime

HEADER = ("start", "end", "figure", "value")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    # A cell a spreadsheet would run as a formula is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _flatten(prefix: str, value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _flatten(f"{prefix}.{i}", item)
    else:
        yield prefix, value


def render(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    whole = {k: v for k, v in report.items() if k not in ("since", "until", "series")}
    start, end = _cell(report["since"]), _cell(report["until"])
    for figure, value in _flatten("", whole):
        writer.writerow((start, end, figure, _cell(value)))
    for bucket in report["series"]["buckets"]:
        rest = {k: v for k, v in bucket.items() if k not in ("start", "end")}
        for figure, value in _flatten("", rest):
            writer.writerow((_cell(bucket["start"]), _cell(bucket["end"]), figure, _cell(value)))
    return out.getvalue()
