"""The decoding layers, on bytes written the way real pages come."""

import codecs

import pytest

from dedup.decode import DecodeFailure, declared_charset, decode_bytes, is_plausible_chinese

TEXT = "上饶市科技局推动党建与业务工作同频共振，全市科技型中小企业入库553家，技术合同成交额21.54亿元。" * 3
PAGE = "<html><head>{meta}<title>新闻</title></head><body><p>" + TEXT + "</p></body></html>"


def page(meta: str = "") -> str:
    return PAGE.format(meta=meta)


@pytest.mark.parametrize(
    "data, encoding, how",
    [
        (page().encode("utf-8"), "utf-8", "utf-8"),
        (codecs.BOM_UTF8 + page().encode("utf-8"), "utf-8", "bom"),
        (codecs.BOM_UTF16_LE + page().encode("utf-16-le"), "utf-16-le", "bom"),
        (page().encode("utf-16-le"), "utf-16-le", "detected"),
        (page('<meta charset="gb2312">').encode("gb18030"), "gb18030", "declared"),
        (
            page('<meta http-equiv="Content-Type" content="text/html; charset=GBK">').encode("gbk"),
            "gb18030",
            "declared",
        ),
    ],
)
def test_layers(data, encoding, how):
    d = decode_bytes(data)
    assert (d.encoding, d.how) == (encoding, how)
    assert TEXT in d.text


def test_gbk_without_meta_is_detected():
    d = decode_bytes(page().encode("gb18030"))
    assert d.how == "detected"
    assert TEXT in d.text


def test_wrong_meta_falls_through_to_the_detector():
    d = decode_bytes(page('<meta charset="utf-8">').encode("gb18030"))
    assert TEXT in d.text


def test_truncated_utf8_is_still_utf8():
    data = page().encode("utf-8")
    cut = data[: data.index("党建".encode()) + 1]  # in the middle of 党
    d = decode_bytes(cut)
    assert d.encoding == "utf-8" and d.text.endswith("推动")


def test_mojibake_is_refused():
    garbled = page().encode("utf-8").decode("latin-1").encode("utf-8")
    with pytest.raises(DecodeFailure, match="mojibake"):
        decode_bytes(garbled)


def test_binary_and_empty_are_refused():
    with pytest.raises(DecodeFailure, match="binary"):
        decode_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(DecodeFailure, match="empty"):
        decode_bytes(b"")


def test_declared_charset_maps_like_a_browser():
    assert declared_charset(b'<meta charset="gb2312">') == "gb18030"
    assert declared_charset(b'<?xml version="1.0" encoding="GBK"?>') == "gb18030"
    assert declared_charset(b"<html>") is None


def test_plausibility():
    assert is_plausible_chinese(TEXT)
    assert not is_plausible_chinese(TEXT.encode("utf-8").decode("latin-1"))


def test_big5_page_with_meta():
    trad = "上饒市科技局推動黨建與業務工作同頻共振，全市科技型中小企業入庫553家。" * 3
    data = f'<html><head><meta charset="big5"></head><body><p>{trad}</p></body></html>'.encode("big5")
    d = decode_bytes(data)
    assert (d.encoding, d.how) == ("big5hkscs", "declared")
    assert trad in d.text
