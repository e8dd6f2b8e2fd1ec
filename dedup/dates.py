"""Publish times as Chinese pages write them -> ISO 8601 in Asia/Shanghai unless stated otherwise.

Nothing is invented: a string with no recognisable date gives None, a date without a time is kept
with a lower confidence, and a month-day without a year needs a year from the URL or path.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8))

# 2023-07-03 09:12[:30], 2023/7/3, 2023.07.03, 2023年7月3日 09:12, 2023-07-03T09:12:30+08:00
DATETIME = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})\s*(?:[-/.]|年|\s(?=\s*\d{1,2}\s*[-/]))\s*(?P<m>\d{1,2})\s*(?:[-/.]|月)\s*(?P<d>\d{1,2})"
    r"(?!\d)\s*日?"
    r"(?:\s*(?:T|\s|,|，)?\s*(?P<H>\d{1,2})\s*[:：时]\s*(?P<M>\d{2})(?:\s*[:：分]\s*(?P<S>\d{2}))?"
    r"(?:\.\d+)?\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?)?"
)
# 07-03 09:12 (a year is needed from elsewhere)
MONTHDAY_TIME = re.compile(r"(?<![\d-])(?P<m>\d{1,2})[-/月](?P<d>\d{1,2})日?\s+(?P<H>\d{1,2}):(?P<M>\d{2})(?!\d)")
EPOCH = re.compile(r"^\s*(\d{10}|\d{13})\s*$")
YEAR_IN_PATH = re.compile(r"(?<!\d)((?:19|20)\d{2})(?:[-/_]?)(\d{2})(?:[-/_]?)(\d{2})(?!\d)")


def _build(y: int, m: int, d: int, H: int | None, M: int | None, S: int | None, tz: str | None):
    try:
        if H is None:
            dt = datetime(y, m, d, tzinfo=SHANGHAI)
        else:
            zone = SHANGHAI
            if tz:
                if tz == "Z":
                    zone = UTC
                else:
                    sign = 1 if tz[0] == "+" else -1
                    digits = tz[1:].replace(":", "")
                    zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            dt = datetime(y, m, d, H, M or 0, S or 0, tzinfo=zone)
    except ValueError:
        return None
    if not 1990 <= dt.year <= 2100:
        return None
    return dt


def parse_time(value: str | int | float | None, year_hint: int | None = None) -> tuple[str, float] | None:
    """Parse one time string; returns (ISO 8601 in +08:00 or the stated zone, confidence) or None.

    Confidence: 1.0 with a time of day, 0.6 for a date only, 0.8 for a month-day with the year
    taken from the hint.
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(int(value))
    s = str(value).strip()
    if not s:
        return None
    m = EPOCH.match(s)
    if m:
        n = int(m.group(1))
        if len(m.group(1)) == 13:
            n //= 1000
        try:
            dt = datetime.fromtimestamp(n, tz=SHANGHAI)
        except (OverflowError, OSError, ValueError):
            return None
        if not 1990 <= dt.year <= 2100:
            return None
        return dt.isoformat(), 1.0
    m = DATETIME.search(s)
    if m:
        g = m.groupdict()
        has_time = g["H"] is not None
        dt = _build(
            int(g["y"]),
            int(g["m"]),
            int(g["d"]),
            int(g["H"]) if has_time else None,
            int(g["M"]) if has_time else None,
            int(g["S"]) if g["S"] else None,
            g["tz"],
        )
        if dt is not None:
            return dt.isoformat(), 1.0 if has_time else 0.6
    if year_hint:
        m = MONTHDAY_TIME.search(s)
        if m:
            dt = _build(year_hint, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), None, None)
            if dt is not None:
                return dt.isoformat(), 0.8
    return None


def year_from_path(*paths: str) -> int | None:
    """The year a URL or crawl path carries (`/2023/0703/`, `2023-07/03`, `20230703`), if any."""
    for p in paths:
        if not p:
            continue
        m = YEAR_IN_PATH.search(p) or re.search(r"/((?:19|20)\d{2})[/-]", p)
        if m:
            return int(m.group(1))
    return None


def find_times(text: str, year_hint: int | None = None) -> list[tuple[str, float]]:
    """Every time stated in a stretch of page text, in order of appearance."""
    out = []
    for m in DATETIME.finditer(text):
        got = parse_time(m.group(0))
        if got:
            out.append(got)
    if not out and year_hint:
        for m in MONTHDAY_TIME.finditer(text):
            got = parse_time(m.group(0), year_hint)
            if got:
                out.append(got)
    return out
