"""Credits: what a text says about where it, its photos and its page came from, and who wrote it.

One parser for every credit format, driven by the patterns of `dedup/data/credits.toml`: text in,
`Credit` records out, each of a kind (see the data file). Only `source` credits name where a story
came from; photo, data and copyright credits, bylines and editors are kept apart. Pure: the data
file is read once, through importlib.resources, so that a wheel carries it.
"""

from __future__ import annotations

import bisect
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from dedup.errors import ConfigError

KINDS = ("source", "self", "photo", "data", "copyright", "original_title", "byline", "editor")
VALUES = ("names", "people", "title", "none")
# Kinds whose lines normalize takes out of the compared text. A copyright notice is not one: it
# is page furniture that the boilerplate rules take out (and count as evidence of a platform).
LINE_KINDS = frozenset(KINDS) - {"copyright"}

# A line is a credit line when it opens with a credit and what the credits leave of it is no
# sentence: at most this many letters, digits or CJK characters (a time and a view counter,
# "2023-10-06 22:16:14 阅读:3331" = 20) and no sentence-ending mark. A paragraph that merely
# starts with "来源:X" keeps its text.
MAX_LEFTOVER = 30
LEADING = re.compile(r"""[\s(\[【「『"“'‘·•|>*\-—―]*""")
SENTENCE_END = re.compile(r"[。!?]")
NOT_WORD = re.compile(r"[\W_]+")
FRAGMENT = re.compile(r"\{\{(\w+)\}\}")
# A pinyin gloss after a character ("網(wǎng)", "戶(hù)"): content farms add them to Traditional
# text, and a name must not keep one. A tone mark makes it pinyin, not an English "(CCTV)".
# (dedup.normalize takes them out of the compared text the same way.)
PINYIN_GLOSS = re.compile(
    r"(?<=[\u3400-\u9fff])\(\s?(?=[a-zü]*[āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ])[a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]{1,7}\s?\)",
    re.IGNORECASE,
)
# Dates and times inside a credited name ("人民日报2023-05-25", "5月25日《X》", "sp20241122", "X 25日").
NAME_DATE = re.compile(
    r"(?:19|20)\d{2}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?|(?:19|20)\d{6}|\d{1,2}\s*月\s*\d{1,2}\s*日"
    r"|(?:19|20)\d{2}\s*年|\d{1,2}:\d{2}(?::\d{2})?|\d{1,2}\s*日$"
)
NAME_EDGES = "\t\n\r @©·•:：\"'“”‘’《》「」『』<>,，.。;；!！?？、|-—"
TAG = re.compile(r"<[^>]*>")
CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
LETTER = re.compile(r"[A-Za-z]")

# The characters that keep most Chinese text from being NFKC already (in 3,000 crawled stories: the
# full-width comma in all but one, the parentheses in half, semicolon, colon, ?, ! and the
# ideographic space in fewer), each with its compatibility decomposition: plain ASCII, which no
# canonical reordering or composition touches, so replacing them first leaves NFKC's result as it
# was, and what is left is usually NFKC already, which unicodedata.normalize checks quickly
# instead of decomposing and recomposing every character (97 -> 12 us for a 490-character story).
_NFKC_COMMON = tuple((c, unicodedata.normalize("NFKD", c)) for c in "，（）；：？！\u3000")


def nfkc(text: str) -> str:
    """unicodedata.normalize("NFKC", text), faster on Chinese text (see _NFKC_COMMON)."""
    # isascii is O(1) for a str; is_normalized is NFKC's own quick check, which stops at the first
    # character NFKC would change (lines of a text folded already pass it whole).
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    for char, plain in _NFKC_COMMON:
        if char in text:
            text = text.replace(char, plain)
    return unicodedata.normalize("NFKC", text)


@dataclass(frozen=True)
class Credit:
    """One credit found in a text."""

    kind: str  # one of KINDS
    name: str  # the cleaned name (original_title: the title; byline/editor: the people)
    line: str  # the line it was found in, as written


@dataclass(frozen=True)
class Format:
    """One compiled entry of the data file."""

    kind: str
    value: str
    regex: re.Pattern
    opens_story: bool = False  # a dateline or lead-in: the rest of its line is story text
    gate: re.Pattern | None = None  # its `requires` words: a line without one cannot match
    note: str = ""
    # The first characters of its `requires` words (empty: no gate, or a word that is empty):
    # a line with none of them cannot pass the gate. When every word is one character, that is
    # the whole gate and no search is needed (`gate_is_chars`).
    gate_chars: frozenset[str] = frozenset()
    gate_is_chars: bool = False


@dataclass(frozen=True)
class Formats:
    """The compiled data file: formats in priority order and the vague names."""

    formats: tuple[Format, ...]
    vague: frozenset[str]
    # Every format's `requires` words in one alternation, when every format has some: a line
    # with none of them has no credit, found with one search instead of one per format (most
    # lines of a story; the credit scan was a fifth of the time to read a file).
    gate: re.Pattern | None = None
    # Which formats a line can match, from the characters it has: a third of a story's lines pass
    # the common gate (it holds ")", "文", "电"), and searching each format's own gate after it was
    # most of the time credit lines took. One scan for the gate words' first characters
    # (`first_chars`) finds the few formats whose gate can pass (`by_char`, plus `ungated`):
    # scanning the lines of a story went from 54 to 38 us.
    first_chars: re.Pattern | None = None
    by_char: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False, compare=False)
    ungated: tuple[int, ...] = ()
    # The formats of credit lines (LINE_KINDS) as one alternation, their groups made plain: a line
    # that is only credits has a credit at its start (after leading marks, `LEADING`), so a line
    # where this matches at none of those places is not one, without the scan of every format
    # over the whole line (most story lines: is_credit_line went from ~72 to ~50 us a story).
    # None when a pattern cannot be joined so (a back reference or a global flag).
    line_start: re.Pattern | None = None
    # The `requires` words of the formats that can name a source (kind "source", or a group
    # `source`: a byline's agency), when each of them has some: a line with none of them names no
    # source, whatever else it credits (source_names skips it). A fifth of the lines that pass
    # the common gate (3,529 of 17,110 in the texts of a twentieth of the generated 100k crawl)
    # pass it only for a byline's "文", a photo's "图", an editor's title or the like.
    source_gate: re.Pattern | None = None


@dataclass(frozen=True)
class _Match:
    kind: str
    value: str
    start: int
    end: int
    names: tuple[str, ...]  # raw names ("" for a format that names nobody)
    sources: tuple[str, ...]  # raw agency names that a byline also credits
    opens_story: bool


# --------------------------------------------------------------------------- the data file


def _expand(regex: str, fragments: dict[str, str], where: str) -> str:
    for _ in range(5):  # fragments may use fragments; five levels is plenty
        if not FRAGMENT.search(regex):
            return regex
        try:
            regex = FRAGMENT.sub(lambda m: fragments[m.group(1)], regex)
        except KeyError as exc:
            raise ConfigError(f"{where}: unknown fragment {{{{{exc.args[0]}}}}}") from None
    raise ConfigError(f"{where}: fragments nested too deeply")


def _value_regex(value: str, fragments: dict[str, str], next_label: str) -> str:
    """The regex of a label's value: a name list, people or a title, ending where the next label starts."""
    if value == "names":
        item = rf"""[《“"「]?{fragments["name"]}[》”"」]?"""
        date = fragments["date"]
        return rf"(?:<[^>]*>\s*)?(?:{date}\s*)?(?P<name>{item}(?:\s*、\s*{item})*)"
    if value == "people":
        return rf"(?P<name>[^()\[\]【】<>。!?]{{1,40}}?)(?=\s*(?:{next_label})\s*[:/]|\s*[()\[\]【】]|\s*$)"
    if value == "title":
        return rf"(?P<name>.+?)(?=\s*[)\]】]?\s*$|\s+(?:{next_label})\s*[:/])"
    return ""


def load_formats(path: Path | None = None) -> Formats:
    """Compile a credit data file (by default the one shipped in the package)."""
    where = str(path) if path else "dedup/data/credits.toml"
    try:
        if path is None:
            raw = (resources.files("dedup") / "data" / "credits.toml").read_text(encoding="utf-8")
        else:
            raw = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read credit formats {where}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    fragments = {k: str(v) for k, v in data.get("fragments", {}).items()}
    for needed in ("name", "date"):
        if needed not in fragments:
            raise ConfigError(f"{where}: [fragments] needs `{needed}` (label values use it)")
    entries = data.get("format", [])
    if not entries:
        raise ConfigError(f"{where}: no [[format]] entries")
    all_labels = sorted(
        {unicodedata.normalize("NFKC", w) for e in entries for w in e.get("labels", [])}, key=len, reverse=True
    )
    next_label = "|".join(map(re.escape, all_labels)) or "(?!)"
    formats = []
    for n, e in enumerate(entries, 1):
        here = f"{where}: format {n} ({e.get('note', e.get('kind', '?'))})"
        kind, value = e.get("kind"), e.get("value", "names")
        if kind not in KINDS:
            raise ConfigError(f"{here}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if value not in VALUES:
            raise ConfigError(f"{here}: value must be one of {', '.join(VALUES)}, got {value!r}")
        if ("regex" in e) == ("labels" in e):
            raise ConfigError(f"{here}: give either `regex` or `labels`")
        if "regex" in e:
            source = _expand(e["regex"], fragments, here)
            requires = tuple(unicodedata.normalize("NFKC", w) for w in e.get("requires", []))
        else:
            labels = sorted((unicodedata.normalize("NFKC", w) for w in e["labels"]), key=len, reverse=True)
            requires = tuple(labels)
            boundary = r"(?<![\u3400-\u9fff])" if e.get("boundary") else ""
            sep = e.get("separator", r"\s*:\s*")
            words = "|".join(map(re.escape, labels))
            source = f"{boundary}(?:{words}){sep}{_value_regex(value, fragments, next_label)}"
        if unicodedata.normalize("NFKC", source) != source:
            raise ConfigError(f"{here}: write the pattern in NFKC form (text is folded before matching)")
        try:
            regex = re.compile(source)
        except re.error as exc:
            raise ConfigError(f"{here}: bad pattern: {exc}") from None
        if value != "none" and "name" not in regex.groupindex:
            raise ConfigError(f'{here}: the pattern needs a group (?P<name>...) (or value = "none")')
        opens = bool(e.get("opens_story", False))
        # A literal alternation is searched fast (the regex engine skips to its first characters).
        gate = re.compile("|".join(map(re.escape, requires))) if requires else None
        chars = frozenset(w[0] for w in requires) if requires and all(requires) else frozenset()
        one_char = bool(chars) and all(len(w) == 1 for w in requires)
        formats.append(Format(kind, value, regex, opens, gate, e.get("note", ""), chars, one_char))
    vague = frozenset(unicodedata.normalize("NFKC", v) for v in data.get("names", {}).get("vague", []))
    gate = None
    if all(f.gate is not None for f in formats):
        gate = re.compile("|".join(f.gate.pattern for f in formats))
    by_char: dict[str, list[int]] = {}
    for i, f in enumerate(formats):
        for c in f.gate_chars:
            by_char.setdefault(c, []).append(i)
    first = re.compile("[" + "".join(map(re.escape, sorted(by_char))) + "]") if by_char else None
    ungated = tuple(i for i, f in enumerate(formats) if not f.gate_chars)
    naming = [f for f in formats if f.kind == "source" or "source" in f.regex.groupindex]
    source_gate = None
    if all(f.gate is not None for f in naming):
        source_gate = re.compile("|".join(f.gate.pattern for f in naming) or "(?!)")
    return Formats(tuple(formats), vague, gate, first, {c: tuple(v) for c, v in by_char.items()}, ungated,
                   _line_start([f.regex.pattern for f in formats if f.kind in LINE_KINDS]), source_gate)  # fmt: skip


_UNJOINABLE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(|^\(\?[aiLmsux]+\)")


def _line_start(patterns: list[str]) -> re.Pattern | None:
    """Formats.line_start: the patterns joined, named groups made non-capturing."""
    if not patterns or any(_UNJOINABLE.search(p) for p in patterns):
        return None
    try:
        plain = (re.sub(r"(?<!\\)\(\?P<\w+>", "(?:", p) for p in patterns)
        return re.compile("|".join(f"(?:{p})" for p in plain))
    except re.error:  # a data file's pattern that does not join: every line is scanned
        return None


@lru_cache(maxsize=1)
def _formats() -> Formats:
    return load_formats()


def preload() -> None:
    """Compile the shipped formats now (~0.05-0.1 s): a scan does so before its workers fork, so
    that they share them instead of each compiling them on its first page."""
    _formats()


# --------------------------------------------------------------------------- names


def _strip(name: str) -> str:
    return name.strip(NAME_EDGES)


def clean_name(raw: str) -> str | None:
    """A credited source name cleaned (quotes, dates, trailing punctuation, 等), or None if vague."""
    name = _strip(PINYIN_GLOSS.sub("", TAG.sub("", nfkc(raw))))
    name = _strip(NAME_DATE.sub("", name))
    if len(name) > 3 and name.endswith("等"):  # 综合来源:A、B、C等
        name = _strip(name[:-1])
    if len(name) < 2 or name in _formats().vague:
        return None
    # A name must have a CJK character or a word's worth of letters: "sp20241122" is a stamp.
    if not CJK_CHAR.search(name) and len(LETTER.findall(name)) < 3:
        return None
    return name


def _clean(value: str, raw: str) -> str | None:
    if value == "names":
        return clean_name(raw)
    text = re.sub(r"\s+", " ", raw).strip()
    text = text.strip(" \"'“”‘’《》「」") if value == "title" else _strip(text)
    return text or None


# --------------------------------------------------------------------------- matching


def _prepare(line: str) -> str:
    line = nfkc(line)
    # A gloss needs a "(": most lines have none, and the pattern, which opens with a lookbehind,
    # is otherwise tried at every character.
    return PINYIN_GLOSS.sub("", line) if "(" in line else line


def _scan(prepared: str, formats: Formats) -> list[_Match]:
    """The credits of one prepared line, in order; earlier formats claim their text first."""
    if formats.gate is not None and formats.gate.search(prepared) is None:
        return []
    taken: list[tuple[int, int]] = []  # claimed spans, sorted and disjoint
    found: list[_Match] = []
    candidates = set(formats.ungated)  # the formats whose gate may pass (see Formats.by_char)
    if formats.first_chars is not None:
        by_char = formats.by_char
        for c in set(formats.first_chars.findall(prepared)):
            candidates.update(by_char[c])
    for n in sorted(candidates):
        f = formats.formats[n]
        if f.gate is not None and f.gate_chars and not f.gate_is_chars and f.gate.search(prepared) is None:
            continue
        for m in f.regex.finditer(prepared):
            start, end = m.span()
            i = bisect.bisect_right(taken, (start, end))
            if start == end or (i and taken[i - 1][1] > start) or (i < len(taken) and taken[i][0] < end):
                continue
            taken.insert(i, (start, end))
            raw = m.groupdict().get("name") or ""
            names = tuple(raw.split("、")) if f.value == "names" else (raw,)
            source = m.groupdict().get("source")
            found.append(_Match(f.kind, f.value, start, end, names, (source,) if source else (), f.opens_story))
    found.sort(key=lambda x: x.start)
    return found


def parse_credits(text: str) -> list[Credit]:
    """All credits in a text (any number of lines), in order, each (kind, name) once."""
    out: list[Credit] = []
    seen: set[tuple[str, str]] = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        for kind, name in _credits_of_line(_prepare(line)):
            if name and (kind, name) not in seen:
                seen.add((kind, name))
                out.append(Credit(kind, name, line))
    return out


def _line_credits(prepared: str) -> tuple[tuple[str, str | None], ...]:
    """The credits of one line (as _prepare makes it), in order, as (kind, name) pairs: the name
    cleaned, None where cleaning leaves nothing of it (parse_credits drops those)."""
    found: list[tuple[str, str | None]] = []
    for m in _scan(prepared, _formats()):
        found.extend(("source", clean_name(raw)) for raw in m.sources)
        found.extend((m.kind, _clean(m.value, raw)) for raw in m.names)
    return tuple(found)


# A crawl repeats lines: a site's header and footer lines on each of its pages, a story's credit
# lines on each of its copies. parse_credits keeps what it found in the last LINE_CACHE lines it
# parsed (per process, by the line as _prepare makes it, which source_names' gate reads too): on
# the generated 100k crawl, in the order a read worker gets its files, a third of the lines were
# among its last 16,384 (source_names was ~30 % of read_file's time; read_file's CPU a page
# 416-805 -> 344-517 us in six alternating pairs; not shown end to end, where this machine's noise
# is larger: benchmarks/RESULTS.md). A longer line than CACHED_LINE_MAX is parsed each time, so the
# cache holds at most ~32 MB of lines (two bytes a CJK character).
LINE_CACHE = 16_384
CACHED_LINE_MAX = 1_000
_recent_line_credits = lru_cache(maxsize=LINE_CACHE)(_line_credits)


def _credits_of_line(prepared: str) -> tuple[tuple[str, str | None], ...]:
    """_line_credits, kept among the last LINE_CACHE lines' when it is CACHED_LINE_MAX long or less."""
    return _recent_line_credits(prepared) if len(prepared) <= CACHED_LINE_MAX else _line_credits(prepared)


def source_names(text: str) -> list[str]:
    """The names that a text credits as the source of its story, in order (those of
    parse_credits, each once). Lines that cannot name a source (Formats.source_gate) are not
    parsed: the other formats only claim text before the source formats see it."""
    gate = _formats().source_gate
    if gate is None:
        return [c.name for c in parse_credits(text) if c.kind == "source"]
    names: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        prepared = _prepare(line)
        if gate.search(prepared) is None:
            continue
        for kind, name in _credits_of_line(prepared):
            if kind == "source" and name and name not in names:
                names.append(name)
    return names


def is_credit_line(line: str, kinds: Iterable[str] | None = None) -> bool:
    """True for a line that is only credits (source, byline, editor, photo, original title...).

    `kinds` narrows it to lines whose first credit is of those kinds (a vague `来源:网络` line
    is a source line although it names nobody).
    """
    return credit_line_in(line, kinds, _formats())


def credit_line_in(line: str, kinds: Iterable[str] | None, formats: Formats) -> bool:
    """is_credit_line with these formats (compiled from a data file by load_formats)."""
    prepared = _prepare(line).strip()
    if formats.line_start is not None:
        lead = LEADING.match(prepared).end()
        if not any(formats.line_start.match(prepared, pos) for pos in range(lead + 1)):
            return False
    matches = [m for m in _scan(prepared, formats) if m.kind in LINE_KINDS]
    if not matches:
        return False
    first = matches[0]
    if kinds is not None and first.kind not in set(kinds):
        return False
    if LEADING.fullmatch(prepared[: first.start]) is None:
        return False
    leftover, pos = [], 0
    for m in matches:
        leftover.append(prepared[pos : m.start])
        pos = max(pos, m.end)
    leftover.append(prepared[pos:])
    rest = NOT_WORD.sub("", "".join(leftover))
    if any(m.opens_story for m in matches):
        return not rest  # "央视网消息:中央气象台发布预警:" opens a story, short as it is
    return not SENTENCE_END.search("".join(leftover)) and len(rest) <= MAX_LEFTOVER


def add_sources(credits: list[str], names: Iterable[str]) -> None:
    """Append the usable source names (cleaned, vague ones dropped) not already in `credits`."""
    for raw in names:
        name = clean_name(raw) if raw else None
        if name and name not in credits:
            credits.append(name)


def title_regex() -> re.Pattern:
    """The pattern of an original-title line (group 1 is the title), for callers of the old API."""
    return next(f.regex for f in _formats().formats if f.kind == "original_title")
