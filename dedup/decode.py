"""bytes -> str, layered: BOM, strict UTF-8, the declared charset, a detector; unsure means skipped.

A page decoded with the wrong codec would be stored as mojibake and compared as noise, so every
layer must be sure of itself; when none is, the caller records the file as skipped with the reason.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Browsers decode these labels with a superset codec (WHATWG Encoding Standard): a page that says
# gb2312 routinely carries GBK or GB18030 characters.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "chinese": "gb18030",
    "big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "cp950": "big5hkscs",
    "utf8": "utf-8",
    "unicode": "utf-16",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
}

_DECLARED = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})""", re.I)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_HIGH = re.compile(r"[^\x00-\x7f]")
# UTF-8 bytes of CJK text read as latin-1/cp1252: lead bytes e4-e9 show as these letters,
# followed by continuation bytes 80-bf.
_MOJIBAKE = re.compile(
    "[\u00e4-\u00e9][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u02c6\u02dc\u2013-\u203a\u20ac\u2122]{2}"
)


@dataclass
class Decoded:
    text: str
    encoding: str
    how: str  # bom | utf-8 | declared | detected


class DecodeFailure(Exception):
    """The bytes cannot be decoded with confidence; the message is the reason."""


def declared_charset(data: bytes) -> str | None:
    """The charset a page declares in its first 4 KB (meta, http-equiv or XML declaration)."""
    m = _DECLARED.search(data[:4096])
    if not m:
        return None
    label = m.group(1).decode("ascii", "replace").lower()
    label = CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def is_plausible_chinese(text: str) -> bool:
    """True when the non-ASCII characters look like real text, not mojibake or binary."""
    high = _HIGH.findall(text)
    if len(high) < 20:
        return "\x00" not in text
    if text.count("\ufffd") > 3 or "\x00" in text:
        return False
    if len(_MOJIBAKE.findall(text)) > 5:
        return False
    cjk = sum(1 for c in high if _CJK.match(c))
    # CJK text also carries full-width punctuation and the odd symbol; a wrong codec gives a
    # scatter of Latin-1 letters, rare Hangul or private-use characters instead.
    return cjk / len(high) >= 0.5


def _strict_utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A file cut in the middle of its last character is still UTF-8.
        if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            try:
                return data[: exc.start].decode("utf-8")
            except UnicodeDecodeError:
                return None
        return None


def decode_bytes(data: bytes) -> Decoded:
    """Decode a page; raises DecodeFailure with the reason when no layer is sure."""
    if not data:
        raise DecodeFailure("empty file")
    for bom, enc in BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data[len(bom) :].decode(enc), enc, "bom")
            except UnicodeDecodeError as exc:
                raise DecodeFailure(f"{enc} byte-order mark but invalid {enc} at byte {exc.start}") from None
    head = data[:4096]
    if head.count(b"\x00") > 2:
        # UTF-16 without a byte-order mark: ASCII markup leaves a NUL in every other byte.
        even, odd = head[0::2].count(0), head[1::2].count(0)
        for enc, zeros, half in (("utf-16-le", odd, len(head[1::2])), ("utf-16-be", even, len(head[0::2]))):
            if zeros > 0.3 * half:
                try:
                    text = data.decode(enc)
                except UnicodeDecodeError:
                    continue
                if is_plausible_chinese(text):
                    return Decoded(text, enc, "detected")
        raise DecodeFailure("binary content (NUL bytes), not a text page")
    text = _strict_utf8(data)
    if text is not None:
        if not is_plausible_chinese(text):
            raise DecodeFailure("valid UTF-8 but looks like mojibake (UTF-8 read as Latin-1 and saved again)")
        return Decoded(text, "utf-8", "utf-8")
    declared = declared_charset(data)
    if declared and declared != "utf-8":
        try:
            text = data.decode(declared)
        except UnicodeDecodeError:
            text = None
        if text is not None and is_plausible_chinese(text):
            return Decoded(text, declared, "declared")
    best = from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        enc = CHARSET_ALIASES.get(best.encoding, best.encoding)
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            text = None
        if text is not None and is_plausible_chinese(text):
            return Decoded(text, codecs.lookup(enc).name, "detected")
    hint = f" (declares {declared})" if declared else ""
    raise DecodeFailure(f"cannot decode with confidence{hint}: not UTF-8 and no codec gives plausible text")
