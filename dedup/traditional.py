"""Which texts OpenCC's Traditional -> Simplified conversion (t2s) can change, read from its own tables.

normalize.to_simplified converts every text, and on a Chinese crawl most of them are Simplified
and come out as they went in; the conversion still walks each one (~50 ns a character: 6 % of a
read worker's time on the generated 100k crawl, and the sign stage converts each text again).
`ChangeTest(changing_characters(...))(text)` says, with one regular-expression search, whether
a text holds a character that t2s could change; normalize.to_simplified leaves a text without one
as it is.

Why that is exact. t2s (its JSON configuration: a normalization step, then a conversion chain)
cuts a text into the longest keys of its dictionaries, characters or phrases, and puts each
key's first value in its place; text that is no key passes through. A key changes only the
places where its value differs from it, so a text without any character found at such a place,
in any key of any of those dictionaries, comes out unchanged. The dictionaries are OpenCC's
`.ocd2` files: a marisa trie of the keys (read here with marisa-trie) and their values (read here
by converting each key with OpenCC itself, which gives its value as t2s would put it). Phrases
matter: 瞭 alone stays 瞭, but 一目瞭然 becomes 一目了然, so 瞭 is one of the characters.

When the tables cannot be read (another layout, marisa-trie missing), `changing_characters`
returns None and every text is converted, as before.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# What an OpenCC 1.1+ `.ocd2` dictionary starts with; the marisa trie of its keys follows.
OCD2_MAGIC = b"OPENCC_MARISA_0.2.5"


def dictionary_files(config: Path) -> list[Path]:
    """The `.ocd2` files an OpenCC JSON configuration uses (normalization and conversion chain)."""
    data = json.loads(config.read_text(encoding="utf-8"))

    def files(node) -> Iterator[str]:
        if isinstance(node, dict):
            if node.get("type") == "ocd2" and "file" in node:
                yield node["file"]
            for value in node.values():
                yield from files(value)
        elif isinstance(node, list):
            for item in node:
                yield from files(item)

    return [config.parent / name for name in dict.fromkeys(files(data))]


def dictionary_keys(path: Path) -> list[str]:
    """The keys of an `.ocd2` dictionary. Raises ValueError for a file of another layout."""
    import marisa_trie

    data = path.read_bytes()
    if not data.startswith(OCD2_MAGIC):
        raise ValueError(f"{path.name}: not an OpenCC marisa dictionary")
    trie = marisa_trie.Trie()
    trie.frombytes(data[len(OCD2_MAGIC) :])
    return trie.keys()


def changing_characters(config: Path, convert: Callable[[str], str]) -> frozenset[str] | None:
    """The characters at which some key of the configuration's dictionaries differs from its value
    (`convert`: the configured conversion), or None when the dictionaries cannot be read."""
    try:
        paths = dictionary_files(config)
        keys = [k for p in paths for k in dictionary_keys(p)]
    except (OSError, ValueError, ImportError, RuntimeError):
        return None
    if not paths or not keys:
        return None
    out: set[str] = set()
    for key in keys:
        value = convert(key)
        if len(value) != len(key):
            out.update(key)  # a key that changes length: all of its characters
        else:
            out.update(a for a, b in zip(key, value, strict=True) if a != b)
    return frozenset(out)


def _class(chars: list[str]) -> str:
    """A regular-expression character class body of sorted characters, runs as ranges."""
    runs: list[list[int]] = []
    for c in chars:
        o = ord(c)
        if runs and runs[-1][1] == o - 1:
            runs[-1][1] = o
        else:
            runs.append([o, o])
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in runs)


# CPython keeps a str with a character above U+FFFF at four bytes a character (PEP 393), so its
# size says, without reading it, whether it may hold one: `_may_hold_astral`. Where sizes do not
# follow that rule (another Python), every text is searched.
_UCS4_HEADER = sys.getsizeof("\U00010000") - 8


def _sizes_tell_astral() -> bool:
    samples = ("", "a", "ab", "é", "中文", "\U00010000", "a\U00020000b", "中" * 100 + "\U0002a6a5")
    return all(
        (sys.getsizeof(s) == _UCS4_HEADER + 4 * (len(s) + 1)) == (max(s, default="a") > "\uffff") for s in samples
    )


_SIZES_TELL_ASTRAL = _sizes_tell_astral()
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _may_hold_astral(text: str) -> bool:
    if _SIZES_TELL_ASTRAL and type(text) is str:  # (a subclass's instances are larger)
        return sys.getsizeof(text) == _UCS4_HEADER + 4 * (len(text) + 1)
    return _ASTRAL.search(text) is not None


class ChangeTest:
    """`test(text)`: whether a text holds one of `chars`.

    The characters of the Basic Multilingual Plane as one character class, searched by `re` in C
    (a fifth of the conversion's time on the generated crawl's texts, less on long ones); those
    above it apart, in a set: a class that holds them makes `re` test each character against
    every range (slower than converting). A text holds such a character rarely, and its size
    tells whether it may."""

    def __init__(self, chars: frozenset[str]) -> None:
        bmp = sorted(c for c in chars if ord(c) < 0x10000)
        self.astral = frozenset(c for c in chars if ord(c) >= 0x10000)
        self.bmp = re.compile(f"[{_class(bmp)}]") if bmp else None

    def __call__(self, text: str) -> bool:
        if self.bmp is not None and self.bmp.search(text) is not None:
            return True
        return bool(self.astral) and _may_hold_astral(text) and not self.astral.isdisjoint(text)
