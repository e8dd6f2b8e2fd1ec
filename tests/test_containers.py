"""Container files on disk -> the exact pages inside them and the exact reasons for the rest.

The WARCs are written with warcio's own WARCWriter, as a crawler would write them; damage (a file
cut mid-record, a gzip bomb, a bad checksum) is made from those genuine bytes.
"""

import gzip
import io
import zlib
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from dedup.containers import Entry, container_kind, open_container

DATE1 = "2023-03-12T08:00:00Z"
DATE2 = "2023-03-12T09:30:15Z"
URL1 = "http://www.qcnews.cn/2023/0312/1000234567.html"
URL2 = "http://www.163.com/2023/0312/HVQ3K9QF05149C8E.html"
PAGE1 = (
    "<html><head><meta charset='utf-8'><title>青川县开展春季植树活动_青川新闻网</title></head>"
    "<body><p>3月12日，青川县干部群众在乔庄镇开展义务植树活动，共栽植苗木两万余株。</p></body></html>"
).encode()
# GBK bytes; only the HTTP header says so (no meta charset), as many older Chinese sites serve them.
PAGE2 = (
    "<html><head><title>青川县植树节活动_网易新闻</title></head>"
    "<body><p>来源：青川新闻网。3月12日，青川县干部群众开展义务植树活动。</p></body></html>"
).encode("gbk")
TRUNCATED_HEADERS = "truncated WARC record (the file ends inside the record headers)"
REST = "the rest of the file is not read"


class Records:
    """Builds genuine warcio records with fixed ids, so files are byte-for-byte reproducible."""

    def __init__(self, gz: bool) -> None:
        self.buf = io.BytesIO()
        self.writer = WARCWriter(self.buf, gzip=gz)
        self.n = 0
        self.offsets: list[int] = []  # where each record starts in the file

    def _headers(self, date: str, extra: dict | None = None) -> dict:
        self.n += 1
        return {
            "WARC-Record-ID": f"<urn:uuid:00000000-0000-4000-8000-{self.n:012d}>",
            "WARC-Date": date,
            **(extra or {}),
        }

    def _write(self, record) -> None:
        self.offsets.append(self.buf.tell())
        self.writer.write_record(record)

    def warcinfo(self) -> None:
        payload = b"software: Wget/1.21.3 (linux-gnu)\r\nformat: WARC File Format 1.0\r\n"
        self._write(
            self.writer.create_warc_record(
                "",
                "warcinfo",
                payload=io.BytesIO(payload),
                length=len(payload),
                warc_content_type="application/warc-fields",
                warc_headers_dict=self._headers(DATE1, {"WARC-Filename": "crawl.warc.gz"}),
            )
        )

    def request(self, url: str, date: str = DATE1) -> None:
        path = "/" + url.split("/", 3)[3]
        http = StatusAndHeaders(f"GET {path} HTTP/1.1", [("Host", url.split("/")[2])], is_http_request=True)
        self._write(
            self.writer.create_warc_record(url, "request", http_headers=http, warc_headers_dict=self._headers(date))
        )

    def response(
        self,
        url: str,
        body: bytes,
        *,
        status: str = "200 OK",
        content_type: str = "text/html; charset=utf-8",
        date: str = DATE1,
        extra: dict | None = None,
        http_extra: list | None = None,
    ) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))] + (http_extra or [])
        http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
        record = self.writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=self._headers(date, extra)
        )
        self._write(record)

    def metadata(self, url: str) -> None:
        payload = b"outlink: http://www.qcnews.cn/ E =EMBED_MISC\r\n"
        self._write(
            self.writer.create_warc_record(
                url,
                "metadata",
                payload=io.BytesIO(payload),
                length=len(payload),
                warc_content_type="application/warc-fields",
                warc_headers_dict=self._headers(DATE1),
            )
        )

    def data(self) -> bytes:
        return self.buf.getvalue()


def on_disk(tmp_path: Path, name: str, data: bytes) -> tuple[str, bytes]:
    """Write the file and read it back, as the pipeline will (relative path, bytes)."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return name, path.read_bytes()


def zeros_gzip(prefix: bytes, mebibytes: int) -> bytes:
    """A gzip file of `prefix` then that many MiB of zeros, built in milliseconds.

    A fully flushed deflate block refers to nothing before it, so one block of a MiB of zeros can be
    repeated; only the CRC-32 needs the whole expansion (compressing 200 MiB would take over a second).
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(2**20)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    size = (len(prefix) + mebibytes * 2**20) % 2**32
    end = b"\x03\x00" + crc.to_bytes(4, "little") + size.to_bytes(4, "little")  # empty final block, trailer
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + head + block * mebibytes + end


def header_length(record_bytes: bytes) -> int:
    """Length of a WARC record's header block, up to and including the blank line."""
    return record_bytes.index(b"\r\n\r\n") + 4


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("crawl.warc.gz", "warc"),
        ("crawls/2023/CRAWL-00001.WARC.GZ", "warc"),
        ("crawl.warc", "warc"),
        ("a/b.html.gz", "gzip"),
        ("a/b.htm.gz", "gzip"),
        ("feed.txt.gz", "gzip"),
        ("feed.json.gz", "gzip"),
        ("feed.jsonl.gz", "gzip"),
        ("a/b.html", None),
        ("backup.tar.gz", None),
        ("image.png.gz", None),
        ("x.gz", None),
        ("crawl.warc.gz.tmp", None),
    ],
)
def test_container_kind(name, kind):
    assert container_kind(name) == kind


def test_a_name_that_is_no_container_is_a_skip():
    assert open_container("a/b.html", b"<html></html>") == (
        [],
        [("a/b.html", "not a container file (expected .warc, .warc.gz or a page extension + .gz)")],
    )


# --------------------------------------------------------------------------- WARC


def test_warc_gz_pages_and_skips(tmp_path):
    w = Records(gz=True)
    w.warcinfo()  # 0
    w.request(URL1)  # 1
    w.response(URL1, PAGE1)  # 2
    w.request(URL2, DATE2)  # 3
    w.response(URL2, PAGE2, content_type="text/html; charset=gbk", date=DATE2)  # 4
    w.response("http://www.qcnews.cn/missing.html", b"<html><body>404 Not Found</body></html>", status="404 Not Found")
    w.response("http://www.qcnews.cn/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(200), content_type="image/png")  # 6
    w.metadata(URL1)  # 7
    w.response(
        "http://www.qcnews.cn/2023/0312/big.html", PAGE1[:60], extra={"WARC-Truncated": "length"}
    )  # 8: the crawler stopped reading the page at its size limit
    whole = w.data()
    w.response("http://www.qcnews.cn/2023/0313/1000234801.html", PAGE1 * 20)  # 9: the file is cut inside it
    last = w.data()[len(whole) :]
    cut = last[: len(last) * 3 // 4]  # a crawler killed while writing: the gzip member ends early
    name, data = on_disk(tmp_path, "crawls/crawl.warc.gz", whole + cut)

    # What reached warcio of record 9: its header block, then part of its content block.
    got = len(zlib.decompressobj(31).decompress(cut))
    full = gzip.decompress(last)
    header = header_length(full)
    declared = len(full) - header - 4  # the record ends with two CRLFs outside Content-Length

    members, skips = open_container(name, data)
    assert members == [
        Entry(
            path="crawls/crawl.warc.gz#2",
            kind="html",
            data=PAGE1,
            url=URL1,
            fetched_at="2023-03-12T08:00:00+00:00",
            http_charset="utf-8",
        ),
        Entry(
            path="crawls/crawl.warc.gz#4",
            kind="html",
            data=PAGE2,
            url=URL2,
            fetched_at="2023-03-12T09:30:15+00:00",
            http_charset="gbk",
        ),
    ]
    assert members[1].data.decode(members[1].http_charset).startswith("<html><head><title>青川县植树节活动")
    assert skips == [
        ("crawls/crawl.warc.gz#5", "HTTP status 404 (only 200 responses are pages)"),
        ("crawls/crawl.warc.gz#8", "truncated WARC record (WARC-Truncated: length)"),
        (
            "crawls/crawl.warc.gz#9",
            f"truncated WARC record (the file ends after {got - header} of {declared} bytes of the record)",
        ),
    ]
    assert 0 < got - header < declared


def test_uncompressed_warc(tmp_path):
    w = Records(gz=False)
    w.warcinfo()
    w.response(URL1, PAGE1)
    w.request(URL2)
    w.response(URL2, PAGE2, content_type="text/html;charset=GBK", date=DATE2)
    data = w.data()
    name, data = on_disk(tmp_path, "crawl.warc", data)
    members, skips = open_container(name, data)
    assert [(m.path, m.url, m.kind, m.fetched_at, m.http_charset, m.data) for m in members] == [
        ("crawl.warc#1", URL1, "html", "2023-03-12T08:00:00+00:00", "utf-8", PAGE1),
        ("crawl.warc#3", URL2, "html", "2023-03-12T09:30:15+00:00", "gbk", PAGE2),
    ]
    assert skips == []


def _two_pages_plain() -> tuple[bytes, int]:
    w = Records(gz=False)
    w.response(URL1, PAGE1)
    w.response(URL2, PAGE2, content_type="text/html; charset=gbk")
    return w.data(), w.offsets[1]


def test_uncompressed_warc_cut_inside_the_payload(tmp_path):
    data, start = _two_pages_plain()
    record = data[start:]
    header = header_length(record)
    declared = len(record) - header - 4
    name, cut = on_disk(tmp_path, "cut.warc", data[: start + header + 100])
    members, skips = open_container(name, cut)
    assert [m.path for m in members] == ["cut.warc#0"]
    assert skips == [
        ("cut.warc#1", f"truncated WARC record (the file ends after 100 of {declared} bytes of the record)")
    ]


@pytest.mark.parametrize("where", ["first line", "inside the WARC headers", "after the WARC headers"])
def test_uncompressed_warc_cut_inside_the_headers(tmp_path, where):
    data, start = _two_pages_plain()
    at = {"first line": 4, "inside the WARC headers": 60, "after the WARC headers": header_length(data[start:])}[where]
    # Cut right after the WARC headers, warcio's HTTP header parser meets the end of data and warcio
    # ends the iteration as if the file were complete; this module still sees the lost record.
    name, cut = on_disk(tmp_path, "cut.warc", data[: start + at])
    members, skips = open_container(name, cut)
    assert [m.path for m in members] == ["cut.warc#0"]
    assert skips == [("cut.warc#1", TRUNCATED_HEADERS)]


def test_a_cut_after_the_last_record_loses_nothing(tmp_path):
    data, _ = _two_pages_plain()
    name, cut = on_disk(tmp_path, "cut.warc", data[:-3])  # only the closing CRLFs are missing
    members, skips = open_container(name, cut)
    assert [m.path for m in members] == ["cut.warc#0", "cut.warc#1"]
    assert skips == []


def test_warc_gz_cut_between_members(tmp_path):
    w = Records(gz=True)
    w.response(URL1, PAGE1)
    whole = w.data()
    w.response(URL2, PAGE2, content_type="text/html; charset=gbk")
    # Five bytes of the next gzip member: zlib gives nothing from them and warcio would stop quietly.
    name, data = on_disk(tmp_path, "crawl.warc.gz", w.data()[: len(whole) + 5])
    members, skips = open_container(name, data)
    assert [m.path for m in members] == ["crawl.warc.gz#0"]
    assert skips == [("crawl.warc.gz#1", TRUNCATED_HEADERS)]


def test_warc_record_with_a_wrong_content_length(tmp_path, capsys):
    w = Records(gz=False)
    w.response(URL1, PAGE1)
    w.response(URL2, PAGE2, content_type="text/html; charset=gbk")
    data = w.data()
    first = data[: w.offsets[1]]
    length = header_length(first)
    declared = f"Content-Length: {len(first) - length - 4}".encode()
    bad = first.replace(declared, f"Content-Length: {len(first) - length - 4 - 6}".encode())
    name, data = on_disk(tmp_path, "bad.warc", bad + data[w.offsets[1] :])
    members, skips = open_container(name, data)
    # warcio finds the next record after the stray bytes; the record it cut short is not trusted.
    assert [m.path for m in members] == ["bad.warc#1"]
    assert skips == [("bad.warc#0", "WARC record not followed by a blank line (wrong Content-Length?)")]
    assert capsys.readouterr().err == ""  # warcio's warning does not reach the terminal


def test_chunked_gzip_encoded_response_is_decoded(tmp_path):
    body = gzip.compress(PAGE1, mtime=0)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:50], body[50:])) + b"0\r\n\r\n"
    w = Records(gz=True)
    w.response(
        URL1,
        chunked,
        content_type="text/html; charset=UTF-8",
        http_extra=[("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")],
    )
    name, data = on_disk(tmp_path, "enc.warc.gz", w.data())
    members, skips = open_container(name, data)
    assert [(m.path, m.data, m.http_charset) for m in members] == [("enc.warc.gz#0", PAGE1, "utf-8")]
    assert skips == []


def test_warc_payload_over_the_cap(tmp_path):
    w = Records(gz=True)
    w.response(URL1, PAGE1 * 20)
    w.response(URL2, PAGE2, content_type="application/xhtml+xml; charset=gbk")
    name, data = on_disk(tmp_path, "big.warc.gz", w.data())
    members, skips = open_container(name, data, max_bytes=1024)
    assert [(m.path, m.kind) for m in members] == [("big.warc.gz#1", "html")]
    assert skips == [("big.warc.gz#0", "WARC payload larger than 1 KiB; skipped")]


def test_warc_gz_with_a_bad_checksum(tmp_path):
    w = Records(gz=True)
    w.response(URL1, PAGE1)
    w.response(URL2, PAGE2, content_type="text/html; charset=gbk")
    data = bytearray(w.data())
    data[w.offsets[1] - 8] ^= 0xFF  # the CRC-32 that ends the first gzip member
    name, data = on_disk(tmp_path, "crc.warc.gz", bytes(data))
    assert open_container(name, data) == ([], [("crc.warc.gz#0", f"corrupt gzip (incorrect data check); {REST}")])


def test_warc_gz_bomb(tmp_path):
    # A WARC status line then 200 MiB of zeros: warcio would gather the zeros into one header line in memory.
    name, data = on_disk(tmp_path, "bomb.warc.gz", zeros_gzip(b"WARC/1.0\r\n", 200))
    assert open_container(name, data) == (
        [],
        [("bomb.warc.gz#0", f"WARC record headers run past 1 MiB (not WARC, or a gzip bomb); {REST}")],
    )


@pytest.mark.parametrize(
    ("data", "skip"),
    [
        (b"", ("x.warc", "empty file")),
        (b"<!DOCTYPE html>\n<html></html>\n", ("x.warc", "not a WARC file (first line: <!DOCTYPE html>)")),
        (b"\r\n\r\n", ("x.warc", "not a WARC file (no valid Content-Length header)")),
        (gzip.compress(b""), ("x.warc", "no WARC records in the file")),
    ],
)
def test_files_that_hold_no_warc(tmp_path, data, skip):
    name, data = on_disk(tmp_path, "x.warc", data)
    assert open_container(name, data) == ([], [skip])


# --------------------------------------------------------------------------- gzip


def test_html_gz(tmp_path):
    name, data = on_disk(tmp_path, "www.qcnews.cn/2023/0312/1000234567.html.gz", gzip.compress(PAGE1))
    assert open_container(name, data) == (
        [Entry(path="www.qcnews.cn/2023/0312/1000234567.html.gz", kind="html", data=PAGE1)],
        [],
    )


def test_multi_member_jsonl_gz(tmp_path):
    lines = [b'{"title": "\xe4\xb8\x80"}\n', b'{"title": "\xe4\xba\x8c"}\n']
    name, data = on_disk(tmp_path, "feeds/crawl.jsonl.gz", b"".join(gzip.compress(line) for line in lines))
    members, skips = open_container(name, data)
    assert [(m.path, m.kind, m.data) for m in members] == [("feeds/crawl.jsonl.gz", "jsonl", b"".join(lines))]
    assert skips == []


def test_gzip_bomb(tmp_path):
    name, data = on_disk(tmp_path, "a/b.html.gz", zeros_gzip(b"", 200))  # 200 MiB of zeros
    assert len(data) < 300_000
    assert open_container(name, data, max_bytes=2**20) == (
        [],
        [("a/b.html.gz", "gzip expands beyond 1 MiB (possible gzip bomb); skipped")],
    )


def test_the_bomb_is_a_genuine_gzip_file():
    bomb = zeros_gzip(b"<html>", 3)
    assert gzip.decompress(bomb) == b"<html>" + bytes(3 * 2**20)


def test_gzip_exactly_at_the_cap_is_kept(tmp_path):
    name, data = on_disk(tmp_path, "a.txt.gz", gzip.compress(b"x" * 2**20))
    members, skips = open_container(name, data, max_bytes=2**20)
    assert [(m.path, m.kind, len(m.data)) for m in members] == [("a.txt.gz", "txt", 2**20)]
    assert skips == []


def _bad_crc() -> bytes:
    good = bytearray(gzip.compress(PAGE1))
    good[-8] ^= 0xFF
    return bytes(good)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (PAGE1, "not a gzip file (no gzip header)"),
        (gzip.compress(PAGE1)[:-20], "truncated gzip (the data ends inside a compressed member)"),
        (gzip.compress(PAGE1)[:5], "truncated gzip (the data ends inside a compressed member)"),
        (_bad_crc(), "corrupt gzip (incorrect data check)"),
        (gzip.compress(PAGE1) + b"trailing garbage", "corrupt gzip (incorrect header check)"),
        (b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 40, "corrupt gzip (invalid block type)"),
    ],
)
def test_corrupt_gz(tmp_path, data, reason):
    name, data = on_disk(tmp_path, "a/b.html.gz", data)
    assert open_container(name, data) == ([], [("a/b.html.gz", reason)])


def test_gzip_zero_padding_is_allowed(tmp_path):
    name, data = on_disk(tmp_path, "a.json.gz", gzip.compress(b'{"a": 1}') + bytes(512))
    assert open_container(name, data) == ([Entry(path="a.json.gz", kind="json", data=b'{"a": 1}')], [])
