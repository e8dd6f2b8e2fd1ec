"""Container files -> the pages inside them: WARC records (.warc, .warc.gz) and gzipped pages (.html.gz, ...).

Contract: `open_container(name, data)` never raises on bad input. It returns the pages it could read as
`Entry`s and one `(virtual path, reason)` per page it could not read, both in file order. Output is
bounded by `max_bytes` per page, so a gzip bomb costs at most that much memory before it is skipped.

Virtual paths: `<file>#<n>` for the n-th WARC record, n counting from 0 over *every* record in file
order (warcinfo, request, metadata ... included), so a number always names the same record whatever
this module keeps; a gzipped page keeps the file's own path (`a/b.html.gz`), its kind comes from the
extension inside (`.html`).
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from dedup.discover import container_kind, kind_of

DEFAULT_MAX_BYTES = 64 * 2**20
CHUNK = 2**16
GZIP_MAGIC = b"\x1f\x8b"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Real WARC + HTTP headers take a few KiB (tens with many cookies). warcio reads a header line without
# any limit, so a stream of zeros (a .warc.gz bomb) would be gathered into one "line" in memory: past
# this much before a record's headers are parsed, the rest of the file is not read.
HEADER_BUDGET = 2**20

REST_NOT_READ = "the rest of the file is not read"
TRUNCATED_HEADERS = "truncated WARC record (the file ends inside the record headers)"


@dataclass
class Entry:
    """One page inside a container file."""

    path: str  # virtual path: '<file>#<record index>' for WARC, the file's own path for gzip
    kind: str  # html | txt | json | jsonl: the reader kind of the inner content
    data: bytes
    url: str = ""  # WARC-Target-URI
    fetched_at: str | None = None  # WARC-Date as ISO 8601 with offset: the crawl time, NOT a publish time
    http_charset: str | None = None  # charset of the HTTP Content-Type header of a WARC response, if any


def open_container(
    name: str, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[list[Entry], list[tuple[str, str]]]:
    """The pages in one container file and the (virtual path, one-line reason) of those skipped.

    Only a caller's mistake raises: ValueError for max_bytes < 1.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    kind = container_kind(name)
    if kind is None:
        return [], [(name, "not a container file (expected .warc, .warc.gz or a page extension + .gz)")]
    if not data:
        return [], [(name, "empty file")]
    if kind == "gzip":
        return _open_gzip(name, data, max_bytes)
    return _open_warc(name, data, max_bytes)


# --------------------------------------------------------------------------- bounded gunzip


class _Damaged(Exception):
    """The container's bytes are unreadable from here on; the message is the reason."""


class _OverBudget(_Damaged):
    """More bytes than a WARC record's headers can take were read without finding them."""


class _Cut(Exception):
    """The data ends before the record's declared Content-Length."""


class _Malformed(Exception):
    """A record without the headers that say what it is and where it ends."""


class _Stream:
    """The (gunzipped if need be) bytes of a file as the file object warcio reads, in bounded pieces.

    Decompressing here rather than in warcio lets this module see what warcio hides: warcio stops
    quietly at the end of a cut gzip member, and on corrupt gzip data it either prints the zlib error
    to stderr and goes on with the bytes it got, or reports a bad CRC as "Unknown archive format".
    Concatenated gzip members (one per WARC record, as wget and Heritrix write) are read in turn;
    zero padding after the last member is allowed, as Python's gzip module allows it.
    """

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._gzip = data[:2] == GZIP_MAGIC
        self._inflater: zlib._Decompress | None = None  # None between gzip members
        self._pending = b""  # compressed bytes not yet given to the inflater
        self.delivered = 0
        self.head = b""  # the first bytes delivered
        self.at_end = False  # the data is used up
        self.truncated = False  # ... and it ended inside a gzip member
        self.member_out = 0  # bytes the current gzip member gave so far
        self.limit: int | None = None  # raise _OverBudget when more than this much was delivered

    def tell(self) -> int:
        return self.delivered

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK
        out = self._inflate(size) if self._gzip else self._slice(size)
        if not self.head:
            self.head = out[:16]
        self.delivered += len(out)
        if self.limit is not None and self.delivered > self.limit:
            raise _OverBudget(f"WARC record headers run past {_size(HEADER_BUDGET)} (not WARC, or a gzip bomb)")
        return out

    def _slice(self, size: int) -> bytes:
        out = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(out)
        self.at_end = not out
        return out

    def _inflate(self, size: int) -> bytes:
        while not self.at_end:
            if not self._pending:
                self._pending = self._slice(CHUNK)
                if not self._pending:
                    self.truncated = self._inflater is not None
                    return b""
            if self._inflater is None:
                self._pending = self._pending.lstrip(b"\0")
                if not self._pending:
                    continue
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self.member_out = 0
            try:
                # max_length bounds the output of this call whatever the compression ratio.
                out = self._inflater.decompress(self._pending, size)
            except zlib.error as exc:
                raise _Damaged(_zlib_reason(exc)) from None
            if self._inflater.eof:
                self._pending = self._inflater.unused_data
                self._inflater = None
            else:
                self._pending = self._inflater.unconsumed_tail
            if out:
                self.member_out += len(out)
                return out
        return b""


def _read_capped(stream, max_bytes: int) -> tuple[bytes, bool]:
    """All of a stream, or (b'', True) as soon as it gives more than max_bytes."""
    parts: list[bytes] = []
    total = 0
    while True:
        piece = stream.read(min(CHUNK, max_bytes + 1 - total))
        if not piece:
            return b"".join(parts), False
        parts.append(piece)
        total += len(piece)
        if total > max_bytes:
            return b"", True


def _open_gzip(name: str, data: bytes, max_bytes: int) -> tuple[list[Entry], list[tuple[str, str]]]:
    if data[:2] != GZIP_MAGIC:
        return [], [(name, "not a gzip file (no gzip header)")]
    stream = _Stream(data)
    try:
        content, over = _read_capped(stream, max_bytes)
    except _Damaged as exc:
        return [], [(name, str(exc))]
    if over:
        return [], [(name, f"gzip expands beyond {_size(max_bytes)} (possible gzip bomb); skipped")]
    if stream.truncated:
        return [], [(name, "truncated gzip (the data ends inside a compressed member)")]
    return [Entry(path=name, kind=kind_of(name[:-3]) or "", data=content)], []


# --------------------------------------------------------------------------- WARC


def _open_warc(name: str, data: bytes, max_bytes: int) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Every record in turn; the first unreadable one ends the file (where the next starts is unknown)."""
    from warcio.archiveiterator import WARCIterator  # here: only WARC files need it (~8 ms to import)

    members: list[Entry] = []
    skips: list[tuple[str, str]] = []
    stream = _Stream(data)
    records = WARCIterator(stream)
    index = 0
    while True:
        here = f"{name}#{index}"
        stream.limit = stream.delivered + HEADER_BUDGET
        try:
            with _quiet():
                record = next(records)
        except StopIteration:
            # warcio ends quietly when a record stops right after its WARC headers (its HTTP header parser
            # meets the end of data; `offset` is then short of what it was given), and when a gzip member
            # is cut before it gives any byte. A member cut in its trailer, after all of its record, loses
            # nothing: every record kept was checked against its Content-Length.
            partial = getattr(records, "offset", stream.delivered) < stream.delivered
            if partial or (stream.truncated and not stream.member_out):
                skips.append((here, TRUNCATED_HEADERS))
            break
        except Exception as exc:  # noqa: BLE001 - warcio raises many types on damaged input; none may escape
            skips.append(_unreadable(name, here, index, exc, stream, records))
            break
        stream.limit = None
        try:
            outcome = _read_record(here, record, max_bytes)
        except _Damaged as exc:
            skips.append((here, f"{exc}; {REST_NOT_READ}"))
            break
        except _Cut as exc:
            skips.append((here, f"truncated WARC record (the file ends after {exc} bytes of the record)"))
            break
        except _Malformed as exc:
            skips.append(_unreadable(name, here, index, exc, stream, records))
            break
        # Move past the blank lines that end the record; warcio prints a warning (and counts it) when
        # they are missing: the record's Content-Length was wrong, so its content is not trusted.
        stream.limit = stream.delivered + HEADER_BUDGET
        damage = None
        try:
            with _quiet() as err:
                records.read_to_end()
        except _Damaged as exc:
            damage = (f"{name}#{index + 1}", f"{exc}; {REST_NOT_READ}")
        else:
            if err.getvalue().strip():
                outcome = "WARC record not followed by a blank line (wrong Content-Length?)"
        if isinstance(outcome, Entry):
            members.append(outcome)
        elif outcome:
            skips.append((here, outcome))
        if damage:
            skips.append(damage)
            break
        index += 1
    if not members and not skips:
        skips.append((name, "no WARC records in the file"))
    return members, skips


def _read_record(here: str, record, max_bytes: int) -> Entry | str | None:
    """A record -> Entry, a skip reason or None (not a page); raises _Cut / _Malformed / _Damaged."""
    declared = _content_length(record)
    if declared is None:
        # Without a length warcio would read the rest of the file as this record.
        raise _Malformed("no valid Content-Length header")
    if not record.rec_type:
        raise _Malformed("no WARC-Type header")
    http = record.http_headers
    page = record.rec_type == "response" and http is not None
    media, charset = _media_type(http.get_header("Content-Type") if http is not None else None)
    page = page and media in HTML_TYPES
    status = http.get_statuscode() if page else None
    warc_truncated = record.rec_headers.get_header("WARC-Truncated")
    segment = record.rec_headers.get_header("WARC-Segment-Number")
    outcome: Entry | str | None = None
    if page and status == "200" and not warc_truncated and not segment:
        outcome = _read_payload(here, record, max_bytes, charset)
    # Read what is left of the record block to learn whether the file holds all of it.
    while record.raw_stream.read(CHUNK):
        pass
    got = record.raw_stream.tell()
    if got < declared:
        raise _Cut(f"{got} of {declared}")
    if not page:
        return None  # warcinfo, request, metadata, revisit, dns, images ...: not pages, nothing to report
    if status != "200":
        return f"HTTP status {_short(status or 'missing')} (only 200 responses are pages)"
    if warc_truncated:
        return f"truncated WARC record (WARC-Truncated: {_short(warc_truncated)})"
    if segment:
        return f"segmented WARC record (WARC-Segment-Number: {_short(segment)}); segments are not joined"
    return outcome


def _read_payload(here: str, record, max_bytes: int, charset: str | None) -> Entry | str:
    """The HTTP payload of a page, decoded from chunked and gzip/deflate/br transfer by warcio."""
    try:
        with _quiet() as err:
            payload, over = _read_capped(record.content_stream(), max_bytes)
    except _Damaged:
        raise
    except Exception as exc:  # noqa: BLE001 - warcio's decoders raise many types on damaged bodies
        return f"HTTP body unreadable ({_short(exc)})"
    if err.getvalue().strip():
        # warcio prints a decompression error and returns the body cut where it failed.
        encoding = record.http_headers.get_header("Content-Encoding") or "content-encoding"
        return f"HTTP body does not decode ({_short(encoding)}: {_short(_zlib_detail(err.getvalue()))})"
    if over:
        return f"WARC payload larger than {_size(max_bytes)}; skipped"
    return Entry(
        path=here,
        kind="html",
        data=payload,
        url=record.rec_headers.get_header("WARC-Target-URI") or "",
        fetched_at=_iso_date(record.rec_headers.get_header("WARC-Date")),
        http_charset=charset,
    )


def _unreadable(name: str, here: str, index: int, exc: Exception, stream: _Stream, records) -> tuple[str, str]:
    """(path, reason) for a record warcio could not parse."""
    from warcio.exceptions import ArchiveLoadFailed

    if isinstance(exc, _Damaged):
        return here, f"{exc}; {REST_NOT_READ}"
    if isinstance(exc, ArchiveLoadFailed | _Malformed):
        detail = _short(exc).removeprefix("Invalid WARC record, ")  # 'first line: ...'
    else:
        detail = f"{type(exc).__name__}: {_short(exc)}"  # e.g. AttributeError when WARC-Target-URI is missing
    if index == 0 and not stream.head.startswith(b"WARC/"):
        return name, f"not a WARC file ({detail})"
    # The parser failed on the last bytes of the file: the record was cut, not malformed.
    reader = getattr(records, "reader", None)
    buffered = reader.rem_length() if reader is not None else 0
    if stream.at_end and not buffered:
        return here, TRUNCATED_HEADERS
    return here, f"invalid WARC record ({detail}); {REST_NOT_READ}"


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Catch what warcio writes to sys.stderr: it reports some damage there instead of raising."""
    sink = io.StringIO()
    with contextlib.redirect_stderr(sink):
        yield sink


def _content_length(record) -> int | None:
    # warcio turns an invalid Content-Length into 0; read the header itself.
    value = record.rec_headers.get_header("Content-Length")
    try:
        length = int(value)
    except (TypeError, ValueError):
        return None
    return length if length >= 0 else None


def _media_type(value: str | None) -> tuple[str, str | None]:
    """'text/html; charset="GBK"' -> ('text/html', 'gbk')."""
    if not value:
        return "", None
    media, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'").strip().lower() or None
    return media.strip().lower(), charset


def _iso_date(value: str | None) -> str | None:
    """WARC-Date (UTC, 'Z') -> ISO 8601 with offset; None when missing or malformed."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # WARC dates are UTC by definition (WARC 1.1, 5.4)
    return dt.isoformat()


# --------------------------------------------------------------------------- reasons


def _zlib_detail(message: str) -> str:
    """'Error -3 while decompressing data: invalid block type' -> 'invalid block type'."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first.split(": ", 1)[1] if ": " in first else first


def _zlib_reason(exc: zlib.error) -> str:
    return f"corrupt gzip ({_short(_zlib_detail(str(exc)))})"


def _size(n: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _short(value: object) -> str:
    """One printable line of at most 200 characters (reasons are shown to users; pages are untrusted)."""
    text = str(value).strip()
    if not text and isinstance(value, Exception):
        text = type(value).__name__
    line = text.splitlines()[0] if text else ""
    return "".join(c if c.isprintable() else "?" for c in line[:200])
