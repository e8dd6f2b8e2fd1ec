"""Pure text normalization before shingling: NFKC and width folding, content-farm junk, whitespace,
boilerplate.

Returns the text to compare and, separately, what was taken out of it: credit and editor lines
(evidence for attribution) and platform boilerplate (evidence that a page was copied from a
platform). No I/O: the boilerplate patterns are loaded by `load_patterns` and passed in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import opencc

from dedup import DATA_DIR
from dedup.credits import is_credit_line, nfkc, source_names
from dedup.errors import ConfigError
from dedup.traditional import ChangeTest, changing_characters

DEFAULT_BOILERPLATE = DATA_DIR / "boilerplate.txt"

# Trailing calls to action glued to the last sentence ("……点击阅读全文").
TRAILING = re.compile(r"(?:…+|\.{3,})?\s*(?:点击)?(?:阅读|查看|展开)全文\s*$")
# A dateline opening the story ("新华社北京3月5日电", "本报讯"): true of the original and of every
# faithful copy, so it would only add shingles that every version shares or that a rewrite drops.
# Which agency a dateline credits is read by dedup.credits.
DATELINE = re.compile(r"^(?:本报讯|本报[^\s,,。]{0,12}讯|(?:新华社|中新社|中新网)[^\s,,。]{0,16}电)[\s(（]*")
WS = re.compile(r"[ \t\u00a0\u3000\u200b\u200c\u200d\ufeff]+")
# What WS changes: a text with none of these and no two spaces in a row has only single spaces,
# which WS would replace by themselves; a few `in` tests spare the substitution (12 -> 2 us).
WS_OTHER = ("  ", "\t", "\u00a0", "\u3000", "\u200b", "\u200c", "\u200d", "\ufeff")


@dataclass
class Normalized:
    text: str  # what is shingled
    credits: list[str] = field(default_factory=list)  # credit/byline lines taken out
    boilerplate: list[str] = field(default_factory=list)  # boilerplate lines taken out
    kept: list[int] = field(default_factory=list)  # which lines (normalize_parts' parts) make up `text`


def load_patterns(path: Path | None = None) -> list[re.Pattern]:
    """Compile the boilerplate data file (one regular expression per line, '#' comments)."""
    path = Path(path or DEFAULT_BOILERPLATE)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read boilerplate patterns {path}: {exc.strerror}") from None
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(re.compile(unicodedata.normalize("NFKC", line)))
        except re.error as exc:
            raise ConfigError(f"{path}:{n}: bad pattern {line!r}: {exc}") from None
    return out


T2S_CONFIG = "t2s.json"


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC(T2S_CONFIG)


def t2s_config() -> Path:
    """The installed OpenCC's t2s configuration file (its dictionaries lie beside it)."""
    return Path(opencc.__file__).parent / "clib" / "share" / "opencc" / T2S_CONFIG


@lru_cache(maxsize=1)
def _t2s_may_change() -> ChangeTest | None:
    """Whether t2s can change a text (dedup.traditional), from the installed OpenCC's tables;
    None (convert every text) when they cannot be read. Made once per process, ~0.03 s: the
    scanning process makes it before its workers start, and they inherit it."""
    chars = changing_characters(t2s_config(), _t2s().convert)
    return ChangeTest(chars) if chars is not None else None


def load_t2s() -> None:
    """Make OpenCC's t2s and its test of texts ready (~0.03 s), before workers start: they share them."""
    _t2s_may_change()


def to_simplified(text: str) -> str:
    """Traditional characters folded to Simplified (OpenCC t2s: ~0.1 ms per 1,000 characters).

    Applied to every text, Simplified included (it leaves those as they are), so that a
    Traditional repost and its Simplified original compare equal; the stored text stays as
    published. A text with no character t2s can change is returned as it is, unconverted
    (dedup.traditional: the same result; the test takes a fifth of a conversion's time or less).
    """
    may_change = _t2s_may_change()
    if may_change is not None and not may_change(text):
        return text
    return _t2s().convert(text)


# --- Content-farm junk, taken out of the text before it is compared ---------------------------
# Farms republish a story with noise that differs from copy to copy, so two copies of one story
# share fewer shingles than two clean copies would. Each rule below removes one kind of noise
# seen on real farm pages. Checked against clean text: on the 3,027 pages of the dev crawl and on
# the 18,186 新闻联播 stories it was built from (10 M characters), no rule matched anything except
# LEADING_ZERO (5 real "01时46分", which it is meant to fold). Measured on copies of one story on
# farm pages, word 3-shingle Jaccard went from 0.23-0.28 to 0.83-0.89 for a Traditional copy with
# pinyin notes against a clean copy. The rules run after NFKC (so "（" is "(" and "，" is ",") and
# before Traditional->Simplified, so that OpenCC sees whole words ("數(shù)字" hides "數字").

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# U+FFFD: bytes a farm's own decoding lost. It stands for nothing that can be recovered.
REPLACEMENT_CHAR = "\ufffd"
# HTML tags a farm leaves inside the text ("<strike id=…>", "<menu>", "1<font color=…>2</font>3").
# Only element names of HTML, with well-formed attributes, so that "x<y" or "a<b 时" stay.
_TAG_NAMES = (
    r"font|strike|menu|span|div|p|a|b|i|u|s|em|strong|br|hr|img|image|sup|sub|small|big|center|"
    r"li|ul|ol|dd|dl|dt|tt|ins|del|abbr|cite|code|q|label|section|article|mark|nav|table|tbody|"
    r"thead|tr|td|th|h[1-6]|wbr"
)
_TAG_ATTR = r"[a-z_:][\w:.-]*(?:\s*=\s*(?:\"[^\"<>\n]*\"|'[^'<>\n]*'|[^\s\"'<>]+))?"
HTML_TAG = re.compile(rf"</?(?:{_TAG_NAMES})(?:[ \t]+{_TAG_ATTR})*[ \t]*/?>", re.IGNORECASE)
# Half tags of the elements farms use, left when the tag was cut apart: "12font>3" (no "</"),
# "1<font2" (no ">"). Only these long names: a half "p>" or "<b" could be real text ("p>0.05").
HALF_TAG = re.compile(
    r"(?<![a-z</])/?(?:font|strike|menu|span)>|</?(?:font|strike|menu|span)(?=[\d" + CJK + "])",
    re.IGNORECASE,
)
# '?;' where a farm's mis-decoding swallowed a character ("规模?;发展"): never in a clean text
# (a question mark then a semicolon), and only taken out between a CJK character and a letter.
MOJIBAKE_QSEMI = re.compile(rf"(?<=[{CJK}])\?;(?=[\w{CJK}])")
# Pinyin that Traditional-character farms put after characters, a different set on each copy:
# "數(shù)字", "經(jīng)濟", "會(huì )". Only a single plausible syllable (optional initial, at
# most two plain vowels either side of one tone-marked vowel, optional n/ng/r) in parentheses
# directly after a CJK character: "(CPI)", "(GDP)", English words and "(de)" are never taken, so
# the tone mark is what makes it safe. Toneless annotations such as "的(de)" were not found on
# any page of the real-world set or the dev crawl, so they are left alone. A clean story that
# glosses a rare name ("六(lù)安") loses the gloss in every copy alike, which compares equal.
_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
PINYIN_SYLLABLE = rf"(?:[zcs]h|[bpmfdtnlgkhjqxrzcsyw])?[aeiouü]{{0,2}}[{_TONED}][aeiouü]{{0,2}}(?:ng|n|r)?"
_PINYIN_PARENS = rf"\([ \t]?{PINYIN_SYLLABLE}[ \t]?\)"
# (The lookbehind comes after the "(": a pattern that starts with a literal is searched for fast.)
PINYIN_NOTE = re.compile(rf"\((?<=[{CJK}]\()[ \t]?{PINYIN_SYLLABLE}[ \t]?\)(?:{_PINYIN_PARENS})*", re.IGNORECASE)
# "??" opening a line: a paragraph indent (two U+3000) that a farm's encoding turned into "?".
# Only before text ("??据介绍"), so a line that is all question marks stays.
QMARK_INDENT = re.compile(rf"^[ \t]*\?\?[ \t?]*(?=[{CJK}\d])", re.MULTILINE)
# A comma a farm adds before other punctuation: ",," for ",", ",、" for "、", ",。" for "。".
EXTRA_COMMA = re.compile(r",(?=[,、。;:!?])")
# "06时" and "6时", "2024年08月06日" and "2024年8月6日": copies write times and dates both ways.
# Not after a digit, a decimal point, a colon or a thousands separator ("1.05点", "20:05点",
# "3,005点" stay); all zeros keep one ("00时" is "0时").
# Runs before Traditional->Simplified, so it names the Traditional "時" and "點" too.
# (Possessive "*+" so that a long run of zeros is not retried from every length: linear time.)
LEADING_ZERO = re.compile(r"0(?<![\d.:]0)(?<!\d,0)(?:0*+(?=[1-9]\d*+[时時日月点點])|0*(?=0[时時日月点點]))")


def strip_farm_junk(text: str) -> str:
    """Take out the noise content farms add (tags, pinyin, mojibake, extra commas, leading zeros).

    Expects NFKC text. The order matters for idempotence: what one rule takes out must not make
    a match for an earlier rule ("數<font>(shù)": tags go before pinyin). The hypothesis test
    of normalize_text on strings of farm junk checks this.
    """
    text = text.replace(REPLACEMENT_CHAR, "")
    if "<" in text or ">" in text:  # the tag rules are the slowest: run them only where they can match
        # Until nothing changes: taking out one fragment can join two others ("<font<font>").
        while (stripped := HALF_TAG.sub("", HTML_TAG.sub("", text))) != text:
            text = stripped
    text = EXTRA_COMMA.sub("", text)  # before the "?" rules: "?,;" and "?,?" hide "?;" and "??"
    if "?;" in text:
        text = MOJIBAKE_QSEMI.sub("", text)
    text = PINYIN_NOTE.sub("", text)
    if "??" in text:  # the pattern needs two: a multi-line "^" is otherwise tried at every character
        text = QMARK_INDENT.sub("", text)
    return LEADING_ZERO.sub("", text)


# A line of porn or gambling search keywords that farms put above a copied story: short phrases
# joined by commas or underscores, no sentence punctuation, most of them with one of these words.
# The words alone are not enough ("自拍", "博彩", "久久" occur in news), nor the shape alone (a
# list of places; "一区,二区,三区,四区" is one, so only the farm's "一区二区" counts). Together
# they matched no line of the dev crawl or of the 新闻联播 stories, and all five such lines of
# the real-world farm pages. Other spam (a gambling site's name inside a sentence) is left: no
# rule found for it would spare story text.
SPAM_WORD = re.compile(
    r"在线观看|在线播放|在线视频|免费观看|免费视频|视频在线|一区二区|无码|有码|毛片|"
    r"(?<![a-z])av(?![a-z])|久久|国产精品|精品国产|国产免费|亚洲欧美|欧美日韩|黄页|色情|人妻|偷拍|"
    r"自拍|夜夜|乱伦|百家乐|娱乐城|时时彩|六合彩|老虎机|博彩|赌场",
    re.IGNORECASE,
)
SPAM_SEPARATOR = re.compile(r"[,_|]")  # the phrases are joined with commas, underscores or bars
SENTENCE_MARK = re.compile(r"[。!?;:“”\"《》()]")
MIN_PHRASES = 4  # a keyword line has at least this many phrases
MIN_SPAM_PHRASES = 3  # ... at least this many of them with a spam word, and at least half of them
MAX_SPAM_PHRASE = 24  # characters: a keyword phrase, not a clause


def is_keyword_spam(line: str) -> bool:
    """True for a line of porn/gambling keyword phrases (folded text): farm furniture, not story."""
    if SENTENCE_MARK.search(line):
        return False
    phrases = [p.strip() for p in SPAM_SEPARATOR.split(line)]
    if len(phrases) < MIN_PHRASES:
        return False
    if any(not p or len(p) > MAX_SPAM_PHRASE for p in phrases):
        return False
    hits = sum(1 for p in phrases if SPAM_WORD.search(p))
    return hits >= MIN_SPAM_PHRASES and 2 * hits >= len(phrases)


def fold(text: str) -> str:
    """NFKC (full-width forms to plain ones), farm junk taken out, Simplified, spaces."""
    text = to_simplified(strip_farm_junk(nfkc(text)))
    return WS.sub(" ", text) if any(w in text for w in WS_OTHER) else text


# Lines longer than this are story text, not furniture: not counted for learning (keeps the
# counting table to short lines only).
MAX_LEARNED_LINE = 120


def learnable_lines(text: str) -> set[str]:
    """The distinct short lines of a text, folded as normalize_text folds them (for learning)."""
    out = set()
    for raw in fold(text).split("\n"):
        line = raw.strip()
        if 2 <= len(line) <= MAX_LEARNED_LINE:
            out.add(line)
    return out


@dataclass(frozen=True)
class _Matcher:
    """The boilerplate patterns as few searches: true of a line when any one pattern finds a match."""

    patterns: tuple[re.Pattern, ...]
    anchored: re.Pattern | None  # those that can only match at the start, as one alternation (.match)
    floating: re.Pattern | None  # the other combinable ones, as one alternation (.search)
    apart: tuple[re.Pattern, ...]  # flags or groups of their own: searched one by one

    def __call__(self, line: str) -> bool:
        return (
            (self.anchored is not None and self.anchored.match(line) is not None)
            or (self.floating is not None and self.floating.search(line) is not None)
            or any(p.search(line) for p in self.apart)
        )


def _starts_anchored(p: re.Pattern) -> bool:
    """Whether every match of p starts at the start of the string (it opens with "^", not in a branch)."""
    parser = getattr(re, "_parser", None)  # the stdlib's own parser (3.11+); without it, assume not
    if parser is None or p.flags & re.MULTILINE:
        return False
    try:
        data = parser.parse(p.pattern, p.flags).data
    except Exception:  # noqa: BLE001 - an internal API: any surprise means "not known to be anchored"
        return False
    return bool(data) and data[0] == (parser.AT, parser.AT_BEGINNING)


_matcher_cache: list[_Matcher] = []


def boilerplate_matcher(patterns: list[re.Pattern]) -> _Matcher:
    """A test equal to `any(p.search(line) for p in patterns)`, faster.

    Searching ~35 patterns one by one cost 40 us a story; most of them open with "^", so joined as
    one alternation matched at the start, the rest joined as another, it is 9 us. Only patterns
    without flags or groups are joined (an alternation shares its flags and numbers its groups).
    """
    key = tuple(patterns)
    if _matcher_cache and _matcher_cache[0].patterns == key:
        return _matcher_cache[0]
    plain = [p for p in key if p.flags == re.UNICODE and p.groups == 0 and isinstance(p.pattern, str)]
    start = [p.pattern for p in plain if _starts_anchored(p)]
    anywhere = [p.pattern for p in plain if not _starts_anchored(p)]
    matcher = _Matcher(
        key,
        re.compile("|".join(f"(?:{s})" for s in start)) if start else None,
        re.compile("|".join(f"(?:{s})" for s in anywhere)) if anywhere else None,
        tuple(p for p in key if p not in plain),
    )
    _matcher_cache[:] = [matcher]
    return matcher


class LineParts(NamedTuple):
    """What normalizing makes of one line of a text, whatever the site (a site's learned lines are
    tested by the caller: the same line is boilerplate on one site and story text on another).
    Everything here depends on the line and the boilerplate patterns alone, so that a sign worker
    can keep it for the lines it meets again (the copies of a story share most of their lines)."""

    line: str  # folded and stripped ("" for an empty line)
    credit: bool  # a credit, byline or editor line (dedup.credits): taken out as evidence
    boiler: bool  # known boilerplate (the patterns) or a line of keyword spam
    kept: str  # what is compared of it: lowercased, a trailing call and an opening dateline out
    dateline: tuple[str, ...]  # "来源:NAME" for the agencies an opening dateline credits


def line_parts(raws: list[str], patterns: list[re.Pattern]) -> list[LineParts]:
    """LineParts of some lines (without "\n"), in order. They are folded as one text: each rule
    of fold stays within a line, and one call per text costs less than one per line."""
    folded = fold("\n".join(raws)).split("\n")
    if len(folded) != len(raws):  # never seen: a rule made or removed a line break
        folded = [fold(raw).replace("\n", " ") for raw in raws]
    boiler = boilerplate_matcher(patterns)
    return [_line_parts(line.strip(), boiler) for line in folded]


def _line_parts(line: str, boiler: _Matcher) -> LineParts:
    if not line:
        return LineParts("", False, False, "", ())
    # Credit, byline and editor lines (dedup.credits): evidence for attribution, not story text.
    if is_credit_line(line):
        return LineParts(line, True, False, "", ())
    if boiler(line) or is_keyword_spam(line):
        return LineParts(line, False, True, "", ())
    kept = line
    if "全文" in kept:  # TRAILING needs it; its pattern has no literal start to search for
        kept = TRAILING.sub("", kept)
    dateline: tuple[str, ...] = ()
    m = DATELINE.match(kept)
    if m:
        # An agency's dateline credits it as surely as a 来源 line does.
        dateline = tuple(f"来源:{name}" for name in source_names(m.group(0)))
        kept = kept[m.end() :]
    return LineParts(line, False, False, kept.lower(), dateline)


def normalize_parts(parts: list[LineParts], learned: frozenset[str] = frozenset()) -> Normalized:
    """A text's LineParts put together with its site's learned lines: what normalize_text gives."""
    out = Normalized(text="")
    kept: list[str] = []
    for i, p in enumerate(parts):
        if not p.line:
            continue
        if p.credit:
            out.credits.append(p.line)
        elif p.boiler or p.line in learned:
            out.boilerplate.append(p.line)
        else:
            out.credits.extend(p.dateline)
            if p.kept:
                kept.append(p.kept)
                out.kept.append(i)
    out.text = "\n".join(kept)
    return out


def normalize_text(text: str, patterns: list[re.Pattern], learned: frozenset[str] = frozenset()) -> Normalized:
    """Fold the text and take out credit lines, known boilerplate and lines learned as boilerplate."""
    return normalize_parts(line_parts(text.split("\n"), patterns), learned)
