"""bytes -> str, layered: BOM, strict UTF-8, the declared charset, a detector; unsure means skipped.

A page decoded with the wrong codec would be stored as mojibake and compared as noise, so every
layer must be sure of itself; when none is, the caller records the file as skipped with the reason.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

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
    # cp936 is Microsoft's name for GBK and what detectors often report (WHATWG lists it as a GBK label).
    "cp936": "gb18030",
    "windows-936": "gb18030",
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

# The detector reads at most this much; its verdict is then checked on the whole file.
DETECT_BYTES = 200_000
_NEVER_BOUNDARY = bytes(range(0x30, 0x100))

_DECLARED = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})""", re.I)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
# Runs of them: a page's CJK characters come in long runs between punctuation, so summing the
# lengths of the runs counts them with a few dozen matches, where removing each character
# (_CJK.sub) cost most of the time to decode a page (37 -> ~5 us for a 2 KB page).
_CJK_RUN = re.compile(_CJK.pattern + "+")
# UTF-8 bytes of CJK text read as latin-1/cp1252: lead bytes e4-e9 show as these letters,
# followed by continuation bytes 80-bf.
_MOJIBAKE = re.compile(
    "[\u00e4-\u00e9][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u02c6\u02dc\u2013-\u203a\u20ac\u2122]{2}"
)

# Roughly the 280 most frequent characters of modern written Chinese (after the head of Jun Da's
# character frequency list; exact rank and membership do not matter), their Traditional forms and the
# commonest Cantonese function characters. Running Chinese text, Simplified or Traditional, is made of
# them to a large part: 43-61% of the CJK characters on every page with 20 or more of them in
# data/sample_crawl and tests/fixtures/encoding (correct Japanese: 47%). Bytes decoded with the wrong
# double-byte codec land on characters spread over the whole table: Big5 read as GB18030 gave 4-11%,
# Shift_JIS or EUC-KR read as GB18030 0-3%, GBK read as Big5 0.5% (measured on those fixtures).
# Only this measure separates EUC-KR read as GB2312: its Hangul rows map onto GB2312's level-1 hanzi,
# so that garbage is 100% "common" characters and passes every code-range test.
_FREQUENT = frozenset(
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用"
    "道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意"
    "无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二"
    "等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入"
    "几口认条平系气题活更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统"
    "区保至队形社便空决治展马科司五基"
    "這個們來爲為國說時會對於過發後裏裡種經麼學現當沒動還進樣開從實軍無與長機關點業將兩間問並應戰頭體見產話內給"
    "門兒東聲員論處義幾認條氣題別變總電數報結務場計資許統區隊決馬著"
    "嘅係咗喺佢唔啲嚟冇哋咁噉乜嘢"
)
# Real text is at 0.43 or more, wrong-codec text at 0.11 or less; 0.2 sits between with room on both sides.
MIN_FREQUENT_SHARE = 0.2


@dataclass
class Decoded:
    text: str
    encoding: str
    how: str  # bom | utf-8 | declared | detected | repaired (mojibake undone, see _undo_mojibake)


class DecodeFailure(Exception):
    """The bytes cannot be decoded with confidence; the message is the reason."""


def _charset_name(label: str) -> str | None:
    """The Python codec a browser would use for a charset label, or None for an unknown label."""
    label = label.strip().lower()
    label = CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_charset(data: bytes) -> str | None:
    """The charset a page declares in its first 4 KB (meta, http-equiv or XML declaration)."""
    m = _DECLARED.search(data[:4096])
    if not m:
        return None
    return _charset_name(m.group(1).decode("ascii", "replace"))


def is_plausible_chinese(text: str) -> bool:
    """True when the non-ASCII characters look like real text, not mojibake or binary."""
    # Counted without building lists of matches (findall was a tenth of the time to read a file).
    high = len(text) - len(text.encode("ascii", "ignore"))
    if high < 20:
        return "\x00" not in text
    if text.count("\ufffd") > 3 or "\x00" in text:
        return False
    if len(_MOJIBAKE.findall(text)) > 5:
        return False
    cjk = sum(map(len, _CJK_RUN.findall(text)))  # every CJK character is a high one
    # CJK text also carries full-width punctuation and the odd symbol; a wrong codec gives a
    # scatter of Latin-1 letters, rare Hangul or private-use characters instead.
    return cjk / high >= 0.5


def _frequent_share(text: str) -> float | None:
    """Share of the CJK characters that are among the most frequent ones; None when too few to judge."""
    cjk = _CJK.findall(text)
    if len(cjk) < 20:
        return None
    return sum(1 for c in cjk if c in _FREQUENT) / len(cjk)


def _is_plausible_guess(text: str) -> bool:
    """is_plausible_chinese, plus real-word evidence, for text whose codec was guessed or declared.

    Fix: GB18030 decodes almost any byte string without error, so Shift_JIS, EUC-KR or Big5 under a
    gb2312/gbk label came out as a page of hanzi (CJK share 1.0) and was accepted as Chinese. Strict
    UTF-8 does not need this test: valid multi-byte UTF-8 is itself strong evidence of the codec.
    """
    if not is_plausible_chinese(text):
        return False
    share = _frequent_share(text)
    return share is None or share >= MIN_FREQUENT_SHARE


def _decode_cut(data: bytes, enc: str) -> str:
    """Strict decode, except that a character cut by the end of the data (a truncated file) is dropped.

    Fix: this was only allowed for UTF-8, so a GBK or Big5 download cut inside its last double-byte
    character failed both the declared charset and the detector and was skipped.
    """
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        # UTF-8 says "unexpected end of data", the CJK codecs "incomplete multibyte sequence", UTF-16
        # "truncated data"; a character is at most 4 bytes, so the cut starts in the last 3.
        cut = exc.reason in ("unexpected end of data", "incomplete multibyte sequence", "truncated data")
        if cut and exc.end == len(data) and exc.start >= len(data) - 3:
            return data[: exc.start].decode(enc)
        raise


def _strict_utf8(data: bytes) -> str | None:
    try:
        return _decode_cut(data, "utf-8")
    except UnicodeDecodeError:
        return None


def _describe_error(enc: str, data: bytes, exc: UnicodeDecodeError) -> str:
    return f"{enc} fails at byte {exc.start} (0x{data[exc.start : exc.end].hex()})"


# Each character of Latin-1 or Windows-1252 text back to the byte it was read from. Latin-1 covers
# 0x00-0xff; Windows-1252 shows 27 of the bytes 0x80-0x9f as other characters (€, “, ™ ...) and
# browsers pass its five unassigned bytes through as U+0081 etc., which Latin-1 already covers.
_SINGLE_BYTE = {chr(b): b for b in range(256)}
_SINGLE_BYTE.update({bytes([b]).decode("cp1252", "ignore"): b for b in range(0x80, 0xA0)})
_SINGLE_BYTE.pop("", None)


def _undo_mojibake(text: str) -> str | None:
    """The text UTF-8 mojibake was made from, when that is certain; else None.

    Fix: UTF-8 read as Latin-1/Windows-1252 and saved again as UTF-8 (once or twice) was always
    skipped, though it loses nothing when every character maps back to a byte. It is undone only when
    every character maps back, the bytes are strict UTF-8 again (random Latin-1 text almost never is:
    every accented letter would have to be followed by exactly the right continuation characters)
    and the result is plausible Chinese; a copy where bytes were replaced by '?' stays refused.
    """
    for _ in range(3):  # mojibake of mojibake exists; three rounds is more than any seen
        # No _MOJIBAKE gate: a second layer shows as Ã¤Â¸Â, which it does not match. The byte mapping
        # is the filter: any real CJK character, or an accented letter not followed by exactly the right
        # continuation characters, ends the attempt.
        try:
            raw = bytes(_SINGLE_BYTE[c] for c in text)
        except KeyError:
            return None
        fixed = _strict_utf8(raw)
        if fixed is None:
            return None
        if is_plausible_chinese(fixed) and _CJK.search(fixed):
            return fixed
        text = fixed
    return None


def _detect(data: bytes) -> list[str]:
    """charset-normalizer's best codec for the start of the data (a few when unsure where it ends)."""
    from charset_normalizer import from_bytes  # here: most pages never need it (~10 ms to import)

    sample = data[:DETECT_BYTES]
    # Fix: the detector only considers codecs that decode its whole sample, so a sample (or a truncated
    # file) ending inside a multi-byte character lost the right codec and a single-byte one won instead
    # (cp874 for a cut GBK page), or none did: a GBK file over 200 KB failed about half the time. Bytes
    # below 0x30 never occur inside a multi-byte character of UTF-8, GB18030, Big5, Shift_JIS or EUC-*,
    # so the sample ends after the last of them (the whole file is still checked after detection).
    # With no such byte in the second half (one long line of hanzi), try each place the cut can be.
    whole = sample.rstrip(_NEVER_BOUNDARY)
    cuts = [whole] if len(whole) >= len(sample) // 2 else [sample[: len(sample) - drop] for drop in range(4)]
    found: list[str] = []
    for part in cuts:
        best = from_bytes(part).best()
        if best is not None and best.encoding and best.encoding not in found:
            found.append(best.encoding)
    return found


def _utf16_without_bom(data: bytes) -> Decoded | None:
    """UTF-16 without a byte-order mark, recognised by where its NUL bytes sit; None if not that."""
    head = data[:4096]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    # Fix: this required NULs in 30% of the high bytes, true of HTML markup but not of Chinese plain
    # text, whose few ASCII characters (digits, newlines) are the only source of NULs. Each ASCII
    # character puts its NUL in the high byte; only hanzi such as 一 (U+4E00) or the ideographic
    # space (U+3000) put one in the low byte, so the side with clearly more NULs is the high byte.
    for enc, high, low in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if high > 2 * low:
            try:
                text = _decode_cut(data, enc)
            except UnicodeDecodeError:
                return None
            if _is_plausible_guess(text) and not re.search(r"[\x00-\x08\x0b\x0e-\x1f]", text):
                return Decoded(text, enc, "detected")
    return None


def decode_bytes(data: bytes, http_charset: str | None = None) -> Decoded:
    """Decode a page; raises DecodeFailure with the reason when no layer is sure.

    http_charset is the charset of an HTTP Content-Type header, when the crawler kept it: it is tried
    before the page's own declaration, as browsers do, and like it only when it gives plausible text.
    """
    if not data:
        raise DecodeFailure("empty file")
    for bom, enc in BOMS:
        if data.startswith(bom):
            try:
                return Decoded(_decode_cut(data[len(bom) :], enc), enc, "bom")
            except UnicodeDecodeError as exc:
                raise DecodeFailure(f"{enc} byte-order mark but invalid {enc} at byte {exc.start}") from None
    if data[:4096].count(b"\x00") > 2:
        # UTF-16 without a byte-order mark: ASCII characters leave a NUL in every other byte.
        decoded = _utf16_without_bom(data)
        if decoded is not None:
            return decoded
        raise DecodeFailure("binary content (NUL bytes), not a text page")
    text = _strict_utf8(data)
    if text is not None:
        if is_plausible_chinese(text):
            return Decoded(text, "utf-8", "utf-8")
        fixed = _undo_mojibake(text)
        if fixed is not None:
            return Decoded(fixed, "utf-8", "repaired")
        if _MOJIBAKE.search(text):
            raise DecodeFailure(
                "valid UTF-8 but looks like mojibake (bytes read as Latin-1 and saved again), not undoable exactly"
            )
        if all(c in _SINGLE_BYTE for c in text):
            raise DecodeFailure("valid UTF-8 but only Latin-1 letters: not Chinese, or mojibake that cannot be undone")
        raise DecodeFailure("valid UTF-8 but not plausible Chinese text")
    # Fix (reasons): the refusal used to say only "no codec gives plausible text"; it now says what each
    # layer found, so a skipped file can be checked without re-running the decoder.
    tried: list[str] = []
    declared = [c for c in (http_charset and _charset_name(http_charset), declared_charset(data)) if c]
    for enc in dict.fromkeys(declared):
        if enc == "utf-8":
            tried.append("declared utf-8 is invalid")
            continue
        try:
            text = _decode_cut(data, enc)
        except UnicodeDecodeError as exc:
            tried.append(f"declared {_describe_error(enc, data, exc)}")
            continue
        if _is_plausible_guess(text):
            return Decoded(text, enc, "declared")
        tried.append(f"declared {enc} gives implausible text")
    detected = _detect(data)
    if not detected:
        tried.append("detector found no codec that decodes the start cleanly")
    for label in detected:
        enc = CHARSET_ALIASES.get(label, label)
        try:
            text = _decode_cut(data, enc)
        except UnicodeDecodeError as exc:
            tried.append(f"detected {_describe_error(enc, data, exc)}")
        except LookupError:
            tried.append(f"detected {label}, unknown to Python")
        else:
            if _is_plausible_guess(text):
                return Decoded(text, codecs.lookup(enc).name, "detected")
            tried.append(f"detected {codecs.lookup(enc).name} gives implausible text")
    raise DecodeFailure("cannot decode with confidence: not UTF-8; " + "; ".join(tried))
