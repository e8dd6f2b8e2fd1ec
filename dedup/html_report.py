"""Stored results -> a static HTML report that works offline: `index.html` (every cluster; sorted,
filtered and paged in the browser from an embedded JSON blob) and `c/<id>.html` per cluster (the
verdict in plain words, members by time, compilation pages, the propagation tree, a timeline and a
side-by-side diff of each copy against the original).

Everything that comes from a crawled page is hostile. It is stripped of control and bidi characters
and escaped (html.escape) wherever it is written; only http(s) URLs become links; JSON inside a
<script> has <, >, & and U+2028/U+2029 escaped; every page carries a Content-Security-Policy that
lets run only the report's own inline script and style (by their hashes), so markup that slipped
through could still not run. Files are written only inside OUT_DIR, named from integer cluster ids.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import time
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cydifflib import SequenceMatcher  # difflib's SequenceMatcher compiled: the same opcodes, faster

from dedup import __version__
from dedup.errors import DedupError

if TYPE_CHECKING:
    from dedup.store.results import SiteRole

LANGS = ("zh", "en")
PAGE_SIZE = 100  # index rows per page (in the browser); the first page is also written as HTML
# Confidence words: attribution's confidence is 0.5 for a tie and ~0.95 for a credited publisher
# over an uncredited platform copy (attribute.rank); an external source tops out at 0.9.
CONF_HIGH, CONF_MEDIUM = 0.85, 0.65
CHINA = timezone(timedelta(hours=8))  # a time a page gives without an offset is Beijing time
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
SURROGATE = re.compile(r"[\ud800-\udfff]")
URL_BLANKS = re.compile(r"[\x00-\x20\x7f]")
# Lines a copy adds that say where it came from rather than carry the story.
CREDIT_LINE = re.compile(
    r"^(原标题|来源|來源|责任编辑|責任編輯|编辑|編輯|作者|记者|記者|声明|聲明|本文来源|文章来源)[:：]"
)
LONG_LINE = 400  # characters: longer lines are cut after each sentence, so a diff is not one huge row
SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")
INLINE_DIFF = 0.5  # two lines at least this similar are one changed paragraph, else a cut and an addition
# The timeline's geometry, in SVG user units (pixels).
TL_LEFT, TL_RIGHT, TL_ROW, TL_TOP, TL_AXIS, TL_WIDTH, TL_NO_TIME = 200, 30, 24, 14, 34, 960, 70


@dataclass(frozen=True)
class ReportStats:
    """What write_html_report wrote."""

    out_dir: Path
    clusters: int
    files: int
    bytes: int
    seconds: float


# ---------------------------------------------------------------------------- hostile text


def clean(value: object) -> str:
    """Untrusted text on one line: control and bidi characters out, lone surrogates replaced."""
    s = "" if value is None else str(value)
    return SURROGATE.sub("\ufffd", CONTROL.sub("", s)).replace("\n", " ").replace("\t", " ")


def esc(value: object, width: int | None = None) -> str:
    """Untrusted text as HTML text or attribute value (quotes escaped too), cut at `width`."""
    s = clean(value)
    if width and len(s) > width:
        s = s[: width - 1] + "…"
    return html.escape(s, quote=True)


def link_url(value: object) -> str | None:
    """The URL when it is http or https with a host (never javascript:, data:, file: ...), else None."""
    if not value:
        return None
    u = URL_BLANKS.sub("", SURROGATE.sub("", str(value)))  # browsers drop tabs and newlines in URLs too
    try:
        parts = urlsplit(u)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return u


def script_json(value: object) -> str:
    """JSON safe inside <script>: no </script>, <!--, & or line separators that end a JS string."""
    s = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for ch in "&<>\u2028\u2029":
        s = s.replace(ch, f"\\u{ord(ch):04x}")
    return s


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


# ---------------------------------------------------------------------------- words


def _resource(name: str) -> str:
    return (resources.files("dedup") / "data" / "report" / name).read_text(encoding="utf-8")


class Words:
    """The report's labels in one language (dedup/data/report/labels.toml), and the reasons in it."""

    def __init__(self, lang: str) -> None:
        if lang not in LANGS:
            raise DedupError(f"unknown report language {lang!r}: use one of {', '.join(LANGS)}")
        table = tomllib.loads(_resource("labels.toml"))[lang]
        self.lang = lang
        self.js: dict[str, str] = table.pop("js")
        self.reasons = [(re.compile(r["pattern"]), r["replace"]) for r in table.pop("reasons", [])]
        self.words: dict[str, str] = table
        self._said: dict[str, str] = {}

    def __call__(self, key: str, **fields: object) -> str:
        """A label as escaped HTML; fields are escaped before they are put in."""
        text = self.words[key]
        return html.escape(text).format(**{k: esc(v) for k, v in fields.items()}) if fields else html.escape(text)

    def reason(self, text: str) -> str:
        """A stored (English) reason in this language, as plain text; unknown wording stays as stored."""
        if text not in self._said:  # the same few reasons come back on every cluster page
            out = text
            for pattern, replace in self.reasons:
                out = pattern.sub(replace, out)
            self._said[text] = out
        return self._said[text]

    def confidence(self, value: float | None) -> tuple[str, str]:
        """(css class, words) for a confidence."""
        c = value or 0.0
        level = "high" if c >= CONF_HIGH else "medium" if c >= CONF_MEDIUM else "low"
        return level, f"{self(f'conf_{level}')} {c:.2f}"


# ---------------------------------------------------------------------------- times


def epoch(iso: str | None) -> float | None:
    """Seconds since the epoch of a stored ISO time (Beijing time when it has no offset), or None."""
    if not iso:
        return None
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CHINA)
    return dt.timestamp()


def when(iso: str | None, confidence: float | None = None) -> str:
    """A stored time for people: minutes, or the date alone when the page gave only a date."""
    if not iso:
        return "—"
    if confidence is not None and confidence < 0.7:
        return clean(iso[:10])
    return clean(iso[:16].replace("T", " "))


# ---------------------------------------------------------------------------- diffs


@dataclass
class DiffStats:
    """How a copy differs from the text it is compared with."""

    added: int = 0
    boilerplate: int = 0  # of the added lines, those that are boilerplate or credit lines
    cut: int = 0
    truncated: int = 0  # paragraphs missing at the end (a copy cut short)
    changed: int = 0
    title_changed: bool = False

    @property
    def identical(self) -> bool:
        return not (self.added or self.cut or self.truncated or self.changed)


def _key(line: str) -> str:
    """What two lines are compared on: width folded (NFKC), no whitespace."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", line))


def split_lines(text: str) -> list[str]:
    """A text's non-empty paragraphs, long ones cut into sentences."""
    out: list[str] = []
    for raw in (text or "").splitlines():
        line = clean(raw).strip()
        if not line:
            continue
        if len(line) <= LONG_LINE:
            out.append(line)
        else:
            out.extend(s for s in SENTENCE_END.split(line) if s.strip())
    return out


def inline_diff(a: str, b: str) -> tuple[str, str]:
    """Two versions of a line as escaped HTML, what one lacks marked <del> (left) and <ins> (right)."""
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(html.escape(a[i1:i2]))
            right.append(html.escape(b[j1:j2]))
            continue
        if i2 > i1:
            left.append(f"<del>{html.escape(a[i1:i2])}</del>")
        if j2 > j1:
            right.append(f"<ins>{html.escape(b[j1:j2])}</ins>")
    return "".join(left), "".join(right)


def diff_texts(original: str, copy: str, boilerplate: list[str] = ()) -> tuple[list[tuple[str, str, str]], DiffStats]:
    """Paragraph by paragraph: rows of (kind, left html, right html), kind one of same, added,
    boilerplate, cut, changed; and the counts."""
    a, b = split_lines(original), split_lines(copy)
    ka, kb = [_key(x) for x in a], [_key(x) for x in b]
    bp = {_key(clean(x)) for x in boilerplate}
    rows: list[tuple[str, str, str]] = []
    stats = DiffStats()

    def added(j: int) -> None:
        kind = "boilerplate" if kb[j] in bp or CREDIT_LINE.match(kb[j]) else "added"
        rows.append((kind, "", html.escape(b[j])))
        stats.added += 1
        stats.boilerplate += kind == "boilerplate"

    def cut(i: int) -> None:
        rows.append(("cut", html.escape(a[i]), ""))
        stats.cut += 1

    opcodes = SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes()
    # Paragraphs of the original missing after the last one the copy holds: a copy cut short.
    tail = opcodes[-1] if opcodes and opcodes[-1][0] == "delete" and len(opcodes) > 1 else None
    for op, i1, i2, j1, j2 in opcodes:
        if op == "equal":
            rows.extend(
                ("same", html.escape(a[i]), html.escape(b[j]))
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
        elif op == "delete":
            for i in range(i1, i2):
                cut(i)
        elif op == "insert":
            for j in range(j1, j2):
                added(j)
        else:  # replace: pair the lines in order; similar pairs are edits, the rest cuts and additions
            n = min(i2 - i1, j2 - j1)
            for i, j in zip(range(i1, i1 + n), range(j1, j1 + n), strict=True):
                if SequenceMatcher(None, ka[i], kb[j], autojunk=False).ratio() >= INLINE_DIFF:
                    rows.append(("changed", *inline_diff(a[i], b[j])))
                    stats.changed += 1
                else:
                    cut(i)
                    added(j)
            for i in range(i1 + n, i2):
                cut(i)
            for j in range(j1 + n, j2):
                added(j)
    if tail is not None:
        stats.truncated = tail[2] - tail[1]
        stats.cut -= stats.truncated
    return rows, stats


# ---------------------------------------------------------------------------- pages


class Page:
    """The page template, the stylesheet and the index script, loaded once."""

    def __init__(self) -> None:
        self.template = Template(_resource("page.html"))
        self.css = _resource("report.css")
        self.js = _resource("index.js")

    def render(self, words: Words, title: str, body: str, script: str | None = None, data: str = "") -> str:
        """A whole page; `title` is escaped HTML, `script` the inline script (allowed by its hash)."""
        csp = f"default-src 'none'; style-src {_sha256(self.css)}; img-src data:; base-uri 'none'; form-action 'none'"
        csp += f"; script-src {_sha256(script)}" if script else ""
        tail = data + (f"<script>{script}</script>" if script else "")
        return self.template.substitute(
            lang=words.words["html_lang"], csp=csp, version=__version__, title=title, css=self.css, body=body,
            script=tail,
        )  # fmt: skip


class Sites:
    """Each site's name as the crawl gives it (the `sites` table), shown with its host."""

    def __init__(self, roles: dict[str, SiteRole]) -> None:
        self.names = {site: clean(r.names[0]) for site, r in roles.items() if r.names and clean(r.names[0])}

    def name(self, site: str | None) -> str:
        return self.names.get(site or "", clean(site or "—"))

    def html(self, site: str | None) -> str:
        """The site's name, then its host when the name is not the host."""
        name = self.name(site)
        if site and name != clean(site):
            return f'{esc(name)} <span class="host">{esc(site)}</span>'
        return esc(name)


def _title_link(m: dict, width: int | None = None) -> str:
    title = esc(m.get("title") or m.get("path"), width)
    url = link_url(m.get("url"))
    if url is None:
        return title
    return f'<a href="{esc(url)}" rel="noopener noreferrer nofollow" target="_blank">{title}</a>'


def _role_badge(words: Words, role: str) -> str:
    if role == "original":
        return f'<span class="badge original">{words("original_mark")}</span>'
    key = {"copy": "role_copy", "compilation": "role_compilation"}.get(role)
    return f'<span class="badge {esc(role)}">{words(key) if key else esc(role)}</span>'


@dataclass
class ClusterView:
    """One cluster as the pages need it (store.cluster() with the member texts and the cross links)."""

    cluster: dict
    texts: dict[int, dict]
    also_in: dict[int, list[int]]  # compilation member -> the other clusters it carries
    titles: dict[int, str]  # cluster id -> title, for the cross links


def verdict_html(words: Words, sites: Sites, c: dict) -> str:
    """The verdict first, in plain words: who published it first, how sure, and why."""
    members = {m["id"]: m for m in c["members"]}
    reasons = [words.reason(clean(r)) for r in c.get("reasons") or []]
    # The "because" line: the reasons for it; counter-evidence and the runner-up stay in the full list.
    why = [
        r
        for r, raw in zip(reasons, c.get("reasons") or [], strict=False)
        if not raw.startswith(("but ", "next best", "a tie"))
    ][:2]
    level, conf = words.confidence(c.get("confidence"))
    sep = "；" if words.lang == "zh" else "; "
    because = f" — {words('because')} {esc(sep.join(why))}" if why else ""
    full = "".join(f"<li>{esc(r)}</li>" for r in reasons)
    full = f"<details><summary>{words('all_reasons')}</summary><ul>{full}</ul></details>" if full else ""
    original = members.get(c.get("original_id"))
    if original is not None:
        return (
            f'<div class="verdict" id="verdict"><strong>{words("original_verdict")}: {sites.html(original["site"])}'
            f'</strong> (<span class="badge {level}">{conf}</span>){because}'
            f'<div class="muted">{_title_link(original)} · {esc(when(original["published_at"]))}</div>{full}</div>'
        )
    if c.get("external_source"):
        return (
            f'<div class="verdict external" id="verdict"><strong>{words("external_verdict")}: '
            f'{esc(c["external_source"])}</strong> (<span class="badge {level}">{conf}</span>){because}'
            f'<div class="muted">{words("external_note")}</div>{full}</div>'
        )
    return f'<div class="verdict unknown" id="verdict"><strong>{words("unknown_verdict")}</strong>{because}{full}</div>'


def members_html(words: Words, sites: Sites, c: dict) -> str:
    by_id = {m["id"]: m for m in c["members"]}
    head = "".join(
        f"<th{' class=num' if k == 'similarity' else ''}>{words(k)}</th>"
        for k in ("time", "site", "role", "title", "similarity", "parent", "path")
    )
    rows = []
    for m in c["members"]:
        parent = by_id.get(m.get("parent_id"))
        rows.append(
            f'<tr class="{esc(m["role"])}" id="m{int(m["id"])}"><td class="nowrap">'
            f"{esc(when(m['published_at'], m.get('time_confidence')))}</td><td>{sites.html(m['site'])}</td>"
            f"<td>{_role_badge(words, m['role'])}</td><td>{_title_link(m)}</td>"
            f'<td class="num">{(m.get("similarity") or 0):.2f}</td>'
            f"<td>{esc(sites.name(parent['site'])) if parent else words('none')}</td>"
            f'<td class="path">{esc(m["path"])}</td></tr>'
        )
    return f'<table id="members"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def compilations_html(words: Words, sites: Sites, view: ClusterView) -> str:
    comps = [m for m in view.cluster["members"] if m["role"] == "compilation"]
    if not comps:
        return ""
    items = []
    for m in comps:
        others = ", ".join(
            f'<a href="{int(k)}.html">#{int(k)} {esc(view.titles.get(k, ""), 40)}</a>'
            for k in view.also_in.get(m["id"], [])
        )
        also = f'<div class="muted">{words("also_in")}: {others}</div>' if others else ""
        items.append(
            f"<li>{_role_badge(words, 'compilation')} {esc(when(m['published_at'], m.get('time_confidence')))} "
            f"{sites.html(m['site'])} {_title_link(m)}{also}</li>"
        )
    return (
        f'<h2 id="compilations">{words("compilations")}</h2><p class="note">{words("compilations_note")}</p>'
        f"<ul>{''.join(items)}</ul>"
    )


def tree_html(words: Words, sites: Sites, c: dict) -> str:
    """Who probably copied from whom: each member under its likely parent (parent_id)."""
    members = {m["id"]: m for m in c["members"]}
    children: dict[int | None, list[dict]] = {}
    for m in c["members"]:
        parent = m.get("parent_id") if m.get("parent_id") in members and m["role"] != "original" else None
        children.setdefault(parent, []).append(m)
    seen: set[int] = set()

    def branch(level: list[dict]) -> str:
        items = []
        for m in sorted(level, key=lambda m: (m["published_at"] or "9999", m["id"])):
            if m["id"] in seen:  # parent links from a damaged database must not loop
                continue
            seen.add(m["id"])
            sub = branch(children.get(m["id"], []))
            items.append(
                f"<li>{_role_badge(words, m['role'])} {esc(when(m['published_at'], m.get('time_confidence')))} "
                f"{sites.html(m['site'])} {_title_link(m, 60)}{sub}</li>"
            )
        return f"<ul>{''.join(items)}</ul>" if items else ""

    roots = branch(children.get(None, []))
    # Members whose parents form a loop hang from no root: list them at the top level all the same.
    roots += branch([m for m in c["members"] if m["id"] not in seen])
    return f'<h2 id="propagation">{words("propagation")}</h2>' + roots.replace("<ul>", '<ul class="tree">', 1)


@dataclass
class TimeAxis:
    """Times -> x positions, with long empty stretches cut out: a repost two years later must not
    squeeze the hours in which the story spread into a dot. A gap is cut when it is longer than
    three days and than 30 % of the whole span; it is drawn as a short break (15 % of the rest)."""

    times: list[float]  # the distinct times, sorted
    spots: list[float]  # their positions on the drawn axis, from 0 to 1
    breaks: list[tuple[float, float]]  # (x where a cut gap starts, where it ends), from 0 to 1

    @classmethod
    def of(cls, times: list[float]) -> TimeAxis:
        ts = sorted(set(times))
        if len(ts) < 2:
            return cls(ts, [0.5] * len(ts), [])
        span = ts[-1] - ts[0]
        gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
        cut = [g > 3 * 86400 and g > 0.3 * span for g in gaps]
        kept = sum(g for g, c in zip(gaps, cut, strict=True) if not c)
        shown = [(kept * 0.15 if kept else 1.0) if c else g for g, c in zip(gaps, cut, strict=True)]
        total = sum(shown)
        spots, at = [0.0], 0.0
        for w in shown:
            at += w
            spots.append(at / total)
        breaks = [(spots[i], spots[i + 1]) for i, c in enumerate(cut) if c]
        return cls(ts, spots, breaks)

    def x(self, t: float) -> float:
        """Where time t (between the first and the last time) falls, from 0 to 1."""
        ts, spots = self.times, self.spots
        if len(ts) < 2 or t <= ts[0]:
            return spots[0] if ts else 0.5
        for i in range(1, len(ts)):
            if t <= ts[i]:
                return spots[i - 1] + (t - ts[i - 1]) / (ts[i] - ts[i - 1]) * (spots[i] - spots[i - 1])
        return spots[-1]

    def ticks(self) -> list[tuple[float, str, bool]]:
        """(time, label, first of its stretch) at the ends (and middle) of each stretch between breaks."""
        out: list[tuple[float, str, bool]] = []
        stretch: list[float] = []
        edges = {round(a, 9) for a, _ in self.breaks}
        for t, spot in zip(self.times, self.spots, strict=True):
            stretch.append(t)
            if round(spot, 9) in edges or t == self.times[-1]:
                a, b = stretch[0], stretch[-1]
                long = b - a > 2 * 86400
                points = [a, (a + b) / 2, b] if self.x(b) - self.x(a) > 0.3 else [a, b] if b > a else [a]
                for n, p in enumerate(points):
                    stamp = datetime.fromtimestamp(p, CHINA)
                    fmt = "%Y-%m-%d" if long else "%Y-%m-%d %H:%M" if n == 0 else "%m-%d %H:%M"
                    out.append((p, stamp.strftime(fmt), n == 0))
                stretch = []
        return out


def timeline_svg(words: Words, sites: Sites, c: dict) -> str:
    """Time across, sites down (in the order they first carried the story); a line from each
    copy's likely parent to it."""
    members = c["members"]
    times = {m["id"]: epoch(m["published_at"]) for m in members}
    axis = TimeAxis.of([t for t in times.values() if t is not None])
    order: list[str] = []
    for m in sorted(members, key=lambda m: (times[m["id"]] is None, times[m["id"]] or 0, m["id"])):
        if m["site"] not in order:
            order.append(m["site"])
    untimed = any(t is None for t in times.values())
    plot_left, plot_right = TL_LEFT + 10, TL_WIDTH - TL_RIGHT - (TL_NO_TIME if untimed else 0)
    height = TL_TOP + TL_ROW * len(order) + TL_AXIS

    def x(t: float | None) -> float:
        if t is None:
            return TL_WIDTH - TL_RIGHT - TL_NO_TIME / 2
        return plot_left + axis.x(t) * (plot_right - plot_left)

    row = {site: n for n, site in enumerate(order)}
    pos = {m["id"]: (x(times[m["id"]]), TL_TOP + TL_ROW * row[m["site"]] + TL_ROW / 2) for m in members}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{TL_WIDTH}" height="{height}" '
        f'viewBox="0 0 {TL_WIDTH} {height}" role="img" aria-label="{words("timeline")}">'
    ]
    for site, n in row.items():
        y = TL_TOP + TL_ROW * n + TL_ROW / 2
        parts.append(f'<line class="grid" x1="{TL_LEFT}" x2="{TL_WIDTH - TL_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text x="{TL_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end"><title>{esc(site)}</title>'
            f"{esc(sites.name(site), 16)}</text>"
        )
    axis_y = TL_TOP + TL_ROW * len(order) + 6
    parts.append('<g class="axis">')
    # Labels are ~110 units wide: the first of each stretch first, then the others where they fit.
    placed: list[float] = []
    for t, label, _ in sorted(axis.ticks(), key=lambda tick: not tick[2]):
        if any(abs(x(t) - p) < 110 for p in placed):
            continue
        placed.append(x(t))
        anchor = "end" if x(t) > plot_right - 60 else "middle"  # the last label ends at its tick, inside the picture
        parts.append(
            f'<line class="grid" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TL_TOP}" y2="{axis_y}"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="{anchor}">{label}</text>'
        )
    for a, b in axis.breaks:
        mid = plot_left + (a + b) / 2 * (plot_right - plot_left)
        parts.append(
            f'<line class="break" x1="{mid:.1f}" x2="{mid:.1f}" y1="{TL_TOP}" y2="{axis_y}"/>'
            f'<text x="{mid:.1f}" y="{axis_y + 4}" text-anchor="middle">≈</text>'
        )
    if untimed:
        parts.append(f'<text x="{x(None):.1f}" y="{axis_y + 14}" text-anchor="middle">{words("no_time")}</text>')
    parts.append("</g>")
    for m in members:
        parent = m.get("parent_id")
        if parent in pos and parent != m["id"]:
            (x1, y1), (x2, y2) = pos[parent], pos[m["id"]]
            parts.append(f'<line class="edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>')
    for m in members:
        cx, cy = pos[m["id"]]
        r = 7 if m["role"] == "original" else 5
        tip = f"{sites.name(m['site'])} · {when(m['published_at'], m.get('time_confidence'))} · {clean(m.get('title'))}"
        parts.append(
            f'<circle class="dot {esc(m["role"])}" cx="{cx:.1f}" cy="{cy:.1f}" r="{r}">'
            f"<title>{esc(tip)}</title></circle>"
        )
    parts.append("</svg>")
    return (
        f'<h2 id="timeline">{words("timeline")}</h2><p class="note">{words("timeline_note")}</p>'
        f'<div class="timeline">{"".join(parts)}</div>'
    )


def diffs_html(words: Words, sites: Sites, view: ClusterView) -> str:
    """Each other member against the original (or, when that is outside the crawl, the earliest
    member): title, then paragraphs side by side."""
    c = view.cluster
    members = c["members"]
    base = next((m for m in members if m["id"] == c.get("original_id")), None)
    heading = words("diffs")
    if base is None:
        stories = [m for m in members if m["role"] != "compilation"] or members
        base = min(stories, key=lambda m: (m["published_at"] or "9999", m["id"]))
        heading = words("diffs_external")
    base_text = view.texts.get(base["id"], {}).get("text", "")
    sections = []
    for n, m in enumerate(m for m in members if m["id"] != base["id"]):
        info = view.texts.get(m["id"], {})
        rows, stats = diff_texts(base_text, info.get("text", ""), info.get("boilerplate", []))
        stats.title_changed = _key(clean(m.get("title"))) != _key(clean(base.get("title")))
        sections.append(_diff_section(words, sites, base, m, rows, stats, open_=n == 0))
    if not sections:
        return ""
    return f'<h2 id="diffs">{heading}</h2>' + "".join(sections)


def _diff_section(words: Words, sites: Sites, base: dict, m: dict, rows: list, stats: DiffStats, open_: bool) -> str:
    facts = [words("title_changed") if stats.title_changed else words("title_same")]
    if stats.identical:
        facts.append(words("identical"))
    if stats.added:
        more = f" ({words('added_boilerplate', n=stats.boilerplate)})" if stats.boilerplate else ""
        facts.append(words("added", n=stats.added) + more)
    if stats.cut:
        facts.append(words("cut", n=stats.cut))
    if stats.truncated:
        facts.append(words("truncated", n=stats.truncated))
    if stats.changed:
        facts.append(words("changed", n=stats.changed))
    summary = (
        f"{_role_badge(words, m['role'])} {esc(when(m['published_at'], m.get('time_confidence')))} "
        f'{sites.html(m["site"])} — {esc(m.get("title"), 50)} <span class="muted">· {" · ".join(facts)}</span>'
    )
    titles = ""
    if stats.title_changed:
        left, right = inline_diff(clean(base.get("title")), clean(m.get("title")))
        titles = f'<div class="titles">{words("title_changed")}: {left} → {right}</div>'
    kinds = {"added": "kind_added", "boilerplate": "kind_boilerplate", "cut": "kind_cut", "changed": "kind_changed"}
    body = "".join(
        f'<tr class="d-{kind}"><td class="l">{left}</td><td class="k">{words(kinds[kind]) if kind in kinds else ""}'
        f'</td><td class="r">{right}</td></tr>'
        for kind, left, right in rows
    )
    against = words("diff_against", left=sites.name(base["site"]), right=sites.name(m["site"]))
    return (
        f'<details class="diff" id="diff-{int(m["id"])}"{" open" if open_ else ""}><summary>{summary}</summary>'
        f'<div class="diff-body"><p class="note">{against}</p>{titles}<table class="sbs"><thead><tr>'
        f'<th>{esc(sites.name(base["site"]))}</th><th class="k"></th><th>{esc(sites.name(m["site"]))}</th></tr>'
        f"</thead><tbody>{body}</tbody></table></div></details>"
    )


def evidence_html(words: Words, sites: Sites, c: dict) -> str:
    if not c.get("evidence"):
        return ""
    site_of = {m["id"]: m["site"] for m in c["members"]}
    rows = "".join(
        f"<tr><td>{esc(sites.name(site_of.get(e['document_id'])))}</td><td>{esc(e['kind'])}</td>"
        f'<td class="num">{e["weight"]:+.1f}</td><td>{esc(words.reason(clean(e["detail"])))}</td></tr>'
        for e in c["evidence"]
    )
    head = "".join(f"<th>{words(k)}</th>" for k in ("site", "kind", "weight", "detail"))
    return (
        f'<h2 id="evidence">{words("evidence")}</h2><details><summary>{words("evidence")}</summary>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></details>"
    )


def cluster_page(page: Page, words: Words, sites: Sites, view: ClusterView) -> str:
    """c/<id>.html: the verdict, members, compilations, propagation, timeline, diffs, evidence."""
    c = view.cluster
    title = esc(c.get("title") or f"#{c['id']}")
    body = (
        f'<p><a href="../index.html">{words("back")}</a></p>'
        f'<h1>{title}</h1><p class="muted">{words("cluster_heading", id=int(c["id"]), n=int(c["size"]))}</p>'
        f"{verdict_html(words, sites, c)}"
        f'<h2 id="members-heading">{words("members")}</h2>{members_html(words, sites, c)}'
        f"{compilations_html(words, sites, view)}{tree_html(words, sites, c)}{timeline_svg(words, sites, c)}"
        f"{diffs_html(words, sites, view)}{evidence_html(words, sites, c)}"
    )
    return page.render(words, f"{title} · {words('report_title')}", body)


# ---------------------------------------------------------------------------- index


def index_row(c: dict) -> dict:
    """One cluster in the index's JSON blob (cleaned text; escaped when the browser shows it)."""
    # A page that gave only a date counts as that date (not as midnight).
    times = sorted(
        m["published_at"][:10] if (m.get("time_confidence") or 0) < 0.7 else m["published_at"]
        for m in c["members"]
        if m["published_at"]
    )
    return {
        "id": int(c["id"]),
        "size": int(c["size"]),
        "title": clean(c.get("title")),
        "orig": clean(c["original_site"]) if c.get("original_id") else None,
        "ext": clean(c["external_source"]) if c.get("external_source") and not c.get("original_id") else None,
        "conf": float(c.get("confidence") or 0.0),
        "first": clean(times[0]) if times else None,
        "last": clean(times[-1]) if times else None,
        "sites": sorted({clean(m["site"]) for m in c["members"] if m["site"]}),
    }


def _index_row_html(words: Words, sites: Sites, r: dict) -> str:
    """The same row index.js draws, for the first page without JavaScript."""
    level = "high" if r["conf"] >= CONF_HIGH else "medium" if r["conf"] >= CONF_MEDIUM else "low"
    conf = f"{html.escape(words.js['conf_' + level])} {r['conf']:.2f}"
    if r["orig"]:
        orig = f'<span class="badge original">{esc(sites.name(r["orig"]))}</span>'
    elif r["ext"]:
        orig = f'<span class="badge compilation">{html.escape(words.js["external"])}: {esc(r["ext"])}</span>'
    else:
        orig, conf = "—", ""
    shown = "、".join(sites.name(s) for s in r["sites"][:4])
    more = f" {words('more_sites', n=len(r['sites']) - 4)}" if len(r["sites"]) > 4 else ""
    conf_html = f'<span class="badge {level}">{conf}</span>' if conf else "—"
    link = f"c/{r['id']}.html"
    return (
        f'<tr><td class="num"><a href="{link}">#{r["id"]}</a></td><td class="num">{r["size"]}</td>'
        f'<td><a href="{link}">{esc(r["title"] or "—")}</a></td><td>{orig}</td><td>{conf_html}</td>'
        f'<td class="nowrap">{esc(when(r["first"]))}</td><td class="nowrap">{esc(when(r["last"]))}</td>'
        f"<td>{esc(shown)}{more}</td></tr>"
    )


def index_page(page: Page, words: Words, sites: Sites, rows: list[dict], stats: dict, db_name: str) -> str:
    js = words.js
    heading = words("clusters_heading", n=f"{len(rows):,}")
    note = words(
        "documents_note",
        documents=f"{stats['documents']:,}", clustered=f"{stats['clustered_documents']:,}",
        compilations=f"{stats['compilations']:,}",
    )  # fmt: skip
    generated = words("generated", when=time.strftime("%Y-%m-%d %H:%M"), db=db_name)
    cols = [("id", "#", True), ("size", words("size"), True), ("title", words("title"), False),
            ("original", words("original"), False), ("conf", words("confidence"), True),
            ("first", words("first_seen"), False), ("last", words("last_seen"), False),
            ("sites", words("sites"), False)]  # fmt: skip
    head = "".join(
        f'<th data-sort="{k}"{" class=num" if num else ""}{" aria-sort=descending" if k == "size" else ""}>{label}</th>'
        for k, label, num in cols
    )
    first = sorted(rows, key=lambda r: (-r["size"], r["id"]))[:PAGE_SIZE]
    body_rows = "".join(_index_row_html(words, sites, r) for r in first)
    t = lambda k: html.escape(js[k])  # noqa: E731
    filters = (
        f'<form class="filters" id="filters" hidden>'
        f'<label>{t("filter_site")}<select id="f-site"></select></label>'
        f'<label>{t("filter_text")}<input id="f-text" type="search"></label>'
        f'<label>{t("filter_from")}<input id="f-from" type="date"></label>'
        f'<label>{t("filter_to")}<input id="f-to" type="date"></label>'
        f'<label>{t("filter_min")}<input id="f-min" type="number" min="1"></label>'
        f'<button type="button" id="f-reset">{t("reset")}</button></form>'
    )
    pager = (
        f'<div class="pager" id="pager" hidden><button type="button" id="prev">{t("prev")}</button>'
        f'<span id="page"></span><button type="button" id="next">{t("next")}</button>'
        f'<span class="muted" id="shown"></span></div>'
    )
    body = (
        f'<h1>{words("report_title")} · <span id="total">{heading}</span></h1>'
        f'<p class="muted">{note}<br>{generated}</p>{filters}'
        f'<table id="clusters"><thead><tr>{head}</tr></thead><tbody id="clusters-body">{body_rows}</tbody></table>'
        f"{pager}"
    )
    blob = {
        "labels": js,
        "rows": rows,
        "site_names": {s: sites.name(s) for s in sorted({s for r in rows for s in r["sites"]})},
        "page_size": PAGE_SIZE,
        "conf_high": CONF_HIGH,
        "conf_medium": CONF_MEDIUM,
    }
    data = f'<script type="application/json" id="report-data">{script_json(blob)}</script>'
    return page.render(words, f"{words('report_title')} · {heading}", body, script=page.js, data=data)


# ---------------------------------------------------------------------------- writing


def _write(path: Path, text: str) -> int:
    """Write a file beside its target and rename it over it: never through a symbolic link planted
    at the target's name, never half a page."""
    data = text.encode("utf-8", "replace")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(data)


def _folder(path: Path) -> Path:
    """A folder of the report, made if missing; a symbolic link there could lead outside OUT_DIR."""
    if path.is_symlink():
        raise DedupError(f"{path} is a symbolic link: the report is written only inside its folder")
    path.mkdir(exist_ok=True)
    return path


def write_html_report(store, out_dir: Path | str, lang: str = "zh") -> ReportStats:
    """Write index.html and c/<id>.html for the active clusters of `store` into out_dir (made if
    missing); pages of clusters that no longer exist are removed."""
    start = time.perf_counter()
    words = Words(lang)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages_dir = _folder(out_dir / "c")
    page = Page()
    sites = Sites(store.site_roles())
    listed = store.clusters()
    titles = {int(c["id"]): clean(c.get("title")) for c in listed}
    # Compilation page -> every cluster it sits in as a compilation (the stories it carries).
    carries: dict[int, list[int]] = {}
    for cid, members in store.active_memberships().items():
        for doc_id, is_compilation in members:
            if is_compilation:
                carries.setdefault(doc_id, []).append(cid)
    rows: list[dict] = []
    written = files = 0
    for summary in listed:
        cid = int(summary["id"])
        c = store.cluster(cid)
        c["original_site"] = summary.get("original_site")
        texts = store.document_texts([m["id"] for m in c["members"]])
        also_in = {
            m["id"]: sorted(k for k in carries.get(m["id"], []) if k != cid)
            for m in c["members"]
            if m["role"] == "compilation"
        }
        view = ClusterView(c, texts, also_in, titles)
        written += _write(pages_dir / f"{cid}.html", cluster_page(page, words, sites, view))
        files += 1
        rows.append(index_row(c))
    keep = {f"{int(c['id'])}.html" for c in listed}
    for old in pages_dir.iterdir():
        if re.fullmatch(r"\d+\.html", old.name) and old.name not in keep and not old.is_dir():
            old.unlink()
    db_name = Path(getattr(store, "path", "")).name
    written += _write(out_dir / "index.html", index_page(page, words, sites, rows, store.stats(), db_name))
    files += 1
    return ReportStats(out_dir, len(listed), files, written, time.perf_counter() - start)
