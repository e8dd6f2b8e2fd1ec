"""Tokens (jieba, precise mode, HMM off) -> word k-shingles, plus the numbers a text states.

HMM is off: it finds new words by guessing, which makes tokens depend on context and is slower.
The tokens come from rjieba (jieba-rs: the same dictionary and algorithm in Rust) when it is
installed: on 2,000 news stories it gave tokens identical to jieba's and was 15x faster (5.6 s
vs 0.38 s); jieba itself is the fallback, so signatures do not depend on which one ran.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import re
import zlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

WORD = re.compile(r"[\w\u3400-\u9fff]")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
WHOLE_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
# jieba dictionary tags of the words a template changes: person, place and organisation names.
ANCHOR_TAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt"})


# Whether a token is a word (WORD.search), by token, for the tokens that do not open with a CJK
# ideograph (see tokenize): a crawl's vocabulary is small next to its token count, and a dict
# lookup costs a tenth of the regular expression (it was 0.15 ms of the ~2 ms a document took to
# sign). Cleared when it grows past WORD_CACHE_MAX.
_is_word: dict[str, bool] = {}
WORD_CACHE_MAX = 500_000


# jieba and rjieba are imported on first use, not with this module (~0.35 and ~0.5 s): a rescan
# with nothing to sign or align needs neither.
@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)  # jieba prints its dictionary loading to stderr otherwise
    return jieba


@lru_cache(maxsize=1)
def _cut() -> Callable[[str], list[str]]:
    """The tokenizer: rjieba's when it is installed, else jieba's (the same tokens)."""
    try:
        import rjieba
    except ImportError:  # pragma: no cover - the pure-Python tokenizer gives the same tokens
        jieba = _jieba()
        return lambda text: jieba.lcut(text, cut_all=False, HMM=False)
    return lambda text: rjieba.cut(text, hmm=False)


def load_tokenizer() -> None:
    """Import the tokenizer now. A scan does so before it starts worker processes that sign:
    forked, they share it, where each would otherwise import it."""
    _cut()


def tokenize(text: str) -> list[str]:
    """Word tokens of normalized text; punctuation and whitespace dropped."""
    return _words(_cut()(text))


def tokenize_lines(lines: list[str]) -> list[list[str]]:
    """tokenize of each of some lines (without "\n"), cut as one text: jieba cuts a text into
    blocks at whitespace and punctuation, so a line break is a token of its own and no word spans
    two lines; one call per text costs less than one per line."""
    if len(lines) < 2:
        return [tokenize(line) for line in lines]
    cuts: list[list[str]] = [[]]
    for token in _cut()("\n".join(lines)):
        if token == "\n":
            cuts.append([])
        else:
            cuts[-1].append(token)
    if len(cuts) != len(lines):  # never seen: the tokenizer kept a break inside a token
        return [tokenize(line) for line in lines]
    return [_words(raw) for raw in cuts]


def _words(raw: list[str]) -> list[str]:
    """The word tokens of a tokenizer's output."""
    known = _is_word
    if len(known) > WORD_CACHE_MAX:
        known.clear()
    get = known.get
    # A token that opens with a CJK ideograph (U+3400-U+9FFF, which WORD matches) is a word: two
    # string comparisons instead of a lookup for ~80% of the tokens of a story (58 -> 22 us).
    return [t for t in raw if "\u3400" <= t < "\ua000" or get(t) or (t not in known and _learn_word(t))]


def _learn_word(token: str) -> bool:
    """Whether a token not seen yet is a word, remembered in _is_word."""
    word = _is_word[token] = WORD.search(token) is not None
    return word


def tokenize_jieba(text: str) -> list[str]:
    """The same with the pure-Python jieba (the reference the fast path is checked against)."""
    return [t for t in _jieba().lcut(text, cut_all=False, HMM=False) if WORD.search(t)]


def shingle_list(tokens: list[str], k: int) -> list[str]:
    """Word k-shingles in text order (repeats kept)."""
    if len(tokens) < k:
        return [" ".join(tokens)] if tokens else []
    if k < 1:  # not a shingle size Params allows; kept as it always was
        return [" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]
    # zip of k shifted views (the shorter ones end it), joined by map: no slice per shingle
    # (90 -> 33 us a story).
    return list(map(" ".join, zip(*(tokens[i:] for i in range(k)), strict=False)))


def window_spans(n: int, size: int, step: int) -> list[tuple[int, int]]:
    """(start, stop) of overlapping windows of `size` shingles every `step`, for texts of `n`
    shingles (in text order) at least twice that long; the last window ends with the text.

    A short story inside a long compilation shares few shingles with the whole page (Jaccard
    1/k for k stories) but most of a window's: the windows let the banded index find it.
    """
    if n < 2 * size:
        return []
    starts = list(range(0, n - size + 1, step))
    if starts[-1] != n - size:
        starts.append(n - size)
    return [(s, s + size) for s in starts]


def shingles(tokens: list[str], k: int) -> set[str]:
    """Word k-shingles as a set (a text shorter than k gives one shingle of all its tokens)."""
    return set(shingle_list(tokens, k))


class Words(NamedTuple):
    """A text's words, and the same joined as they are stored and hashed: by U+001F (never inside
    a token: tokenize keeps word characters only), in UTF-8. Tokenizing a text hashes them and
    signing it packs them, made once: each joined and encoded them again (~12 us of the ~700 a
    text of the generated crawl took to tokenize and sign)."""

    tokens: list[str]
    joined: bytes


def pack_words(joined: bytes) -> bytes:
    """Words as stored: joined (Words.joined) and zlib-compressed at its fastest level (~1.5 KB for
    a 3 KB story)."""
    return zlib.compress(joined, 1)


def unpack_words(blob: bytes) -> list[str]:
    text = zlib.decompress(blob).decode("utf-8")
    return text.split("\x1f") if text else []


def content_hash(joined: bytes) -> str:
    """Hash of the token sequence (Words.joined): equal for copies that differ only in spacing or punctuation."""
    return hashlib.sha1(joined).hexdigest()


# A line of jieba's dictionary file is "word frequency tag"; the names are the lines tagged so.
NAME_LINE = re.compile(rf"^(\S{{2,}}) \d+ (?:{'|'.join(sorted(ANCHOR_TAGS))})\r?$", re.MULTILINE)


def dictionary_path() -> Path:
    """jieba's default dictionary (dict.txt in its package), found without importing jieba (~0.35 s)."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:  # pragma: no cover - jieba is a dependency
        raise RuntimeError("jieba is not installed")
    return Path(spec.origin).with_name("dict.txt")


def dictionary_text() -> str:
    return dictionary_path().read_text("utf-8")


def names_in(dictionary: str) -> frozenset[str]:
    """The person, place and organisation names of two characters or more in a dictionary file's
    text: the words jieba.posseg tags so (a test compares), found by one regular expression over
    the file (a dict of all 349,000 words' tags took ~0.6 s in every process that signs or aligns)."""
    return frozenset(NAME_LINE.findall(dictionary))


# The name table as shipped: names_in(jieba 0.42.1's dict.txt), one per line, under a first line
# that gives that file's size. Reading it takes 0.04-0.05 s where the expression over the dictionary
# took 0.15 s, paid by every scan that signs (its process loads the table before it forks the
# workers): 3 % of a nightly rescan with 1,000 new files of 100,000. Another dictionary (another
# size) is read itself. `write_name_table` remakes the file; a test says when it is due.
NAME_TABLE = Path(__file__).parent / "data" / "names.txt.gz"


def _table_header(dictionary_size: int) -> str:
    return f"# names of jieba's dict.txt of {dictionary_size} bytes\n"


def write_name_table(path: Path = NAME_TABLE) -> None:
    dictionary = dictionary_path()
    names = names_in(dictionary.read_text("utf-8"))
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write(_table_header(dictionary.stat().st_size) + "\n".join(sorted(names)))


def read_name_table(path: Path, dictionary_size: int) -> frozenset[str] | None:
    """The shipped names, or None when the table is missing, unreadable or of another dictionary."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            if f.readline() != _table_header(dictionary_size):
                return None
            return frozenset(f.read().split("\n"))
    except (OSError, EOFError, UnicodeDecodeError):
        return None


@lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    """The dictionary's person, place and organisation names of two characters or more."""
    path = dictionary_path()
    shipped = read_name_table(NAME_TABLE, path.stat().st_size)
    return shipped if shipped is not None else names_in(path.read_text("utf-8"))


def is_name(token: str) -> bool:
    """A person, place or organisation name in the jieba dictionary (two characters or more)."""
    return token in _names()


def load_names() -> None:
    """Read the name table now. A scan does so before it starts worker processes that sign or
    align: forked, they share it, where each would otherwise read it again."""
    _names()


def anchors(tokens: list[str]) -> list[tuple[int, int]]:
    """(context, word) hashes of every number and name in the text, the context being its two
    neighbouring words.

    Two texts that put different numbers or names in the same context are not copies: that is
    what a template sibling does ("南昌" -> "福州", "6届" -> "5届"). Typos change the context
    (no verdict); truncation and paragraph drops remove contexts (no verdict).
    """
    names = _names()
    number = WHOLE_NUMBER.match
    # This runs once per word of every document: the test is a set lookup and, for the few
    # tokens that start with a digit, the regular expression.
    hits = [i for i in range(1, len(tokens) - 1) if (t := tokens[i]) in names or (t[0].isdigit() and number(t))]
    # _h written out: two calls fewer for each of the ~50 hits of a story (60 -> 51 us).
    crc = zlib.crc32
    return [(crc(f"{tokens[i - 1]}\x1f{tokens[i + 1]}".encode()), crc(tokens[i].encode())) for i in hits]


# Numbers on lines shorter than this are left out: such lines are counters and furniture that
# change from page to page ("阅读 38779", "点击：1234", "第3页") more often than story text.
MIN_NUMBER_LINE = 20


def numbers(text: str) -> list[str]:
    """The numbers a text states in its sentences, in order: the facts a template sibling changes."""
    return [n for line in text.split("\n") if len(line) >= MIN_NUMBER_LINE for n in NUMBER.findall(line)]


def line_numbers(line: str) -> list[str]:
    """numbers of one line (without "\n")."""
    return NUMBER.findall(line) if len(line) >= MIN_NUMBER_LINE else []
