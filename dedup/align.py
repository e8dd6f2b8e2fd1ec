"""Two token sequences -> the story text they share, and what differs inside it.

MinHash estimates how much two texts share, not *where* they differ. Real copies differ outside
the story (a caption date, a counter, a breadcrumb, an appended sentence of another story, a cut
at another point), template siblings differ inside it (the same sentences with other figures,
dates, names). So a pair the signatures cannot decide is aligned on its words: long runs of
identical tokens are the shared story; a short gap between two runs on both sides is an edit in
place (a substitution); numbers or names that differ in such a gap are what a sibling changes.
Long gaps, and whatever lies before the first or after the last run, are material one side has
and the other lacks (cut, furniture, appended text): they give no verdict.

Pure: tokens in, an `Alignment` record out (difflib's matching blocks, no I/O).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# CyDifflib: difflib's SequenceMatcher compiled (the same matching blocks, checked in
# tests/test_align.py; any difference is a bug to its authors), ~5x faster on word lists: aligning
# the pairs the signatures cannot settle was the largest cost of the cluster stage.
from cydifflib import SequenceMatcher

# A run of at least this many identical tokens is shared text, not a coincidence of common words
# (three-word phrases like "的 一 个" recur in unrelated news; five in a row rarely do).
MIN_RUN = 5
# 洗稿 (a rewrite by synonym swaps: 持续->连续, 其中->其间 every few words) leaves few runs of five;
# runs of this many still show the sentence kept in place between the swaps.
MIN_LOOSE_RUN = 3
# A gap of at most this many tokens on each side, between two runs, is an edit in place: a swapped
# number, name or word. A longer gap is a passage one side rewrote or replaced.
MAX_EDIT = 6

DIGITS = re.compile(r"\d")
# Numbers written in Chinese numerals are words the digit test above does not see: a recurring
# bulletin changes "十四届全国人大三次会议" to "四次会议", "第四十一次" to "第六十四次" in place.
# A word that starts with numerals (after an optional 第), alone or followed by a measure word,
# is a number; idioms that start with a numeral ("一些", "三农", "两国") are not. Measured on the
# pairs verified as copies before this was counted: in the generated 100k crawl 151 of the 710
# pairs joining different stories changed such a number in place (bulletins that recur every
# year); of one story's copies, 1 of 43,428 there (a roundup's paragraph dropped), none of the
# 2,035 of the development corpus and the 62 of the real pages (typos swap 的/地, 在/再, 以/已).
CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_UNITS = {"十": 10, "百": 100, "千": 1_000, "万": 10_000, "亿": 100_000_000}
CN_MEASURE_WORDS = "次届年月日号个名位项条种家期批轮时岁周天卷版部"
CN_NUMBER = re.compile(rf"第?([〇零一二三四五六七八九十百千万亿两]+)(?:$|[{CN_MEASURE_WORDS}])")
# A bare date slipped between two shared runs ("6月7日"): what a template fills in. Longer
# insertions (a caption, a quote, an added sentence) and bare numbers (an image placeholder "1")
# are a copy's additions: no verdict.
MAX_SLOT = 4
SLOT_WORDS = frozenset("年月日时点分号")


@dataclass
class Edit:
    """Tokens that differ in place: what each side holds between the same two shared runs."""

    a: tuple[str, ...]
    b: tuple[str, ...]

    @property
    def short(self) -> bool:
        """A word swapped, not a passage rewritten."""
        return len(self.a) <= MAX_EDIT and len(self.b) <= MAX_EDIT


@dataclass
class Alignment:
    """What two texts share, measured in tokens."""

    n_a: int
    n_b: int
    shared: int  # tokens inside shared runs
    runs: int
    loose: int = 0  # tokens inside shared runs of MIN_LOOSE_RUN or more
    edits: list[Edit] = field(default_factory=list)
    inserted: list[tuple[str, ...]] = field(default_factory=list)  # one-sided words between two runs
    passages: int = 0  # gaps between two runs where a side holds more than MAX_EDIT words (per side)

    @property
    def cover_small(self) -> float:
        """Share of the smaller text inside shared runs."""
        return self.shared / max(1, min(self.n_a, self.n_b))

    @property
    def cover_big(self) -> float:
        return self.shared / max(1, max(self.n_a, self.n_b))

    @property
    def loose_cover_small(self) -> float:
        """Share of the smaller text inside shared runs of MIN_LOOSE_RUN words or more."""
        return self.loose / max(1, min(self.n_a, self.n_b))

    def number_edits(self) -> list[Edit]:
        """Edits in place where each side states a number the other does not.

        Passages too: a sibling bulletin shares its fixed paragraphs (a warning's safety advice)
        and replaces the lead between them with another day's figures; a copy that adds a caption
        or a date adds numbers on one side only.
        """
        out = []
        for e in self.edits:
            na = {v for t in e.a if (v := number_value(t))}
            nb = {v for t in e.b if (v := number_value(t))}
            if na - nb and nb - na and (e.short or _same_frame(e)):
                out.append(e)
        for words in self.inserted:
            slot = any(t in SLOT_WORDS for t in words) and any(DIGITS.search(t) for t in words)
            if slot and len(words) <= MAX_SLOT and all(DIGITS.search(t) or t in SLOT_WORDS for t in words):
                out.append(Edit(words, ()))
        return out

    def passage_name_edits(self, is_name) -> list[Edit]:
        """Passages replaced in place (a side longer than MAX_EDIT words, both sides holding words)
        whose two sides state different names (`is_name(token)`), unless one is the other mistyped.

        A template sibling rewrites its lead sentence around other names: "湖南、安徽等9个省市划拨
        专项资金" / "海南、广东等地划拨专项资金", another year's guests, another language's edition.
        """
        out = []
        for e in self.edits:
            if e.short or not e.a or not e.b:
                continue
            na = {t for t in e.a if is_name(t)}
            nb = {t for t in e.b if is_name(t)}
            if na and nb and na != nb and not _mistyped(e):
                out.append(e)
        return out

    def name_edits(self, is_name) -> list[Edit]:
        """Words swapped in place where the two sides state different names (`is_name(token)`)."""
        out = []
        for e in self.edits:
            if not e.short:
                continue
            na = {t for t in e.a if is_name(t)}
            nb = {t for t in e.b if is_name(t)}
            if na and nb and na != nb:
                out.append(e)
        return out


# A typo cuts a name into other words ("以色列" typed "已色列" is cut "已 色 列"), so a passage that
# holds two or three typos differs in its names. Written out, it is the other side with a few
# characters changed in place (as long, at most this share of its characters differing), or, when
# a typo added or dropped a character, this similar to it (difflib's ratio). Measured on the
# generated 100k crawl: the passages of copies of one story that differ in their names and were
# the only link of their story had 11-18 characters, 2 or 3 of them changed in place.
MISTYPED_RATIO = 0.8
MISTYPED_CHANGED = 1 / 3  # of the characters, at the same places, for sides of one length


def _mistyped(e: Edit) -> bool:
    """Whether one side of an edit is the other with a few characters mistyped."""
    a, b = "".join(e.a), "".join(e.b)
    if len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= MISTYPED_CHANGED * len(a):
        return True
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= MISTYPED_RATIO


def _same_frame(e: Edit) -> bool:
    """A passage that is the same sentence with other figures: at least half of the words around
    the numbers shared ("预计12月10日14时至12日14时" / "其中12月10日8时至12日8时"). Different
    material in the same place (an agency dateline against an e-paper's page header) is not."""
    wa = {t for t in e.a if not number_value(t)}
    wb = {t for t in e.b if not number_value(t)}
    return bool(wa and wb) and len(wa & wb) >= 0.5 * min(len(wa), len(wb))


def number_value(token: str) -> str | None:
    """The number a word states: itself when it holds a digit, the value of its Chinese numerals
    ("三次" -> "3", "第六十四" -> "64", "二十届" -> "20"), or None."""
    if DIGITS.search(token):
        return token
    if token[0] not in _CN_START:
        return None
    m = CN_NUMBER.match(token)
    # A bare unit ("万" after "10", "亿元") is part of a number written in digits, not one.
    if not m or not (m[1][0] == "十" or any(ch in CN_DIGITS for ch in m[1])):
        return None
    return str(_cn_value(m[1]))


_CN_START = frozenset("第") | CN_DIGITS.keys() | CN_UNITS.keys()


def _cn_value(s: str) -> int:
    if len(s) > 1 and all(ch in CN_DIGITS for ch in s):  # read digit by digit: "二〇二五"
        return int("".join(str(CN_DIGITS[ch]) for ch in s))
    total = section = digit = 0
    for ch in s:
        if ch in CN_DIGITS:
            digit = CN_DIGITS[ch]
        elif CN_UNITS[ch] >= 10_000:
            total = (total + section + digit) * CN_UNITS[ch]
            section = digit = 0
        else:
            section += (digit or 1) * CN_UNITS[ch]
            digit = 0
    return total + section + digit


def numerals(tokens: list[str]) -> frozenset[str]:
    """The values of the numbers a text writes in Chinese numerals (see number_value)."""
    return frozenset(v for t in tokens if t[0] in _CN_START and not DIGITS.search(t) and (v := number_value(t)))


def shared_any_order(big: list[str], small: list[str]) -> int:
    """Tokens of `small` inside runs of at least MIN_RUN tokens that `big` also holds, in any order.

    `align` matches in order: of two paragraphs a copy swapped, it counts one. What it leaves of
    `small` is looked for again anywhere in `big`."""
    blocks = [m for m in SequenceMatcher(None, big, small, autojunk=False).get_matching_blocks() if m.size >= MIN_RUN]
    shared, pos = 0, 0
    for start, size in [(m.b, m.size) for m in blocks] + [(len(small), 0)]:
        rest = small[pos:start]
        if len(rest) >= MIN_RUN:
            again = SequenceMatcher(None, big, rest, autojunk=False).get_matching_blocks()
            shared += sum(m.size for m in again if m.size >= MIN_RUN)
        shared += size
        pos = start + size
    return shared


def align(a: list[str], b: list[str]) -> Alignment:
    """Runs of at least MIN_RUN identical tokens shared by `a` and `b`, and the edits between them."""
    blocks = SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
    runs = [m for m in blocks if m.size >= MIN_RUN]
    loose = sum(m.size for m in blocks if m.size >= MIN_LOOSE_RUN)
    out = Alignment(len(a), len(b), sum(m.size for m in runs), len(runs), loose)
    for prev, nxt in zip(runs, runs[1:], strict=False):
        ga = a[prev.a + prev.size : nxt.a]
        gb = b[prev.b + prev.size : nxt.b]
        out.passages += (len(ga) > MAX_EDIT) + (len(gb) > MAX_EDIT)
        if ga and gb:
            out.edits.append(Edit(tuple(ga), tuple(gb)))
        elif ga or gb:
            out.inserted.append(tuple(ga or gb))
    if runs:
        # Before the first run and after the last: when one side starts (ends) within a few words
        # of the shared text, those words stand where the other side's neighbouring words stand
        # ("当地时间22日" / "当地时间13日" opening two bulletins; a copy cut just after a figure).
        # A long lead or tail on both sides is other material (a cut, furniture): no verdict.
        first, last = runs[0], runs[-1]
        _boundary_edit(out, a[: first.a][::-1], b[: first.b][::-1], reverse=True)
        _boundary_edit(out, a[last.a + last.size :], b[last.b + last.size :], reverse=False)
    return out


def _boundary_edit(out: Alignment, ga: list[str], gb: list[str], reverse: bool) -> None:
    """Edits from the words next to a run on its open side (`ga`, `gb` start at the run)."""
    if not ga or not gb:
        return
    if min(len(ga), len(gb)) <= MAX_EDIT:
        n = min(len(ga), len(gb)) + 2  # the longer side: as many words, and two for a longer name
        ea, eb = ga[:n], gb[:n]
        if reverse:
            ea, eb = ea[::-1], eb[::-1]
        out.edits.append(Edit(tuple(ea), tuple(eb)))
        return
    # Both sides go on: their words next to the run, aligned word by word. A gap framed by shared
    # words on both sides there is an edit in place ("4月9日国家副主席韩正在北京" against
    # "10月25日国家副主席方文在天津": 9/25 between 月 and 日); the rest gives no verdict.
    wa, wb = ga[: 2 * MAX_EDIT], gb[: 2 * MAX_EDIT]
    blocks = [m for m in SequenceMatcher(None, wa, wb, autojunk=False).get_matching_blocks() if m.size]
    for prev, nxt in zip(blocks, blocks[1:], strict=False):
        ea, eb = wa[prev.a + prev.size : nxt.a], wb[prev.b + prev.size : nxt.b]
        if ea and eb and len(ea) <= MAX_EDIT and len(eb) <= MAX_EDIT:
            out.edits.append(Edit(tuple(ea[::-1] if reverse else ea), tuple(eb[::-1] if reverse else eb)))
