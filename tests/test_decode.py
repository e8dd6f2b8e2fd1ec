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


def test_reversible_mojibake_is_repaired():
    garbled = page().encode("utf-8").decode("latin-1").encode("utf-8")
    d = decode_bytes(garbled)
    assert (d.encoding, d.how) == ("utf-8", "repaired")
    assert TEXT in d.text
    twice = garbled.decode("latin-1").encode("utf-8")
    assert decode_bytes(twice).text == d.text


def test_lossy_mojibake_is_refused():
    # Bytes that Windows-1252 leaves unassigned became "?": the original can no longer be rebuilt.
    garbled = page().encode("utf-8").decode("cp1252", "replace").replace("\ufffd", "?").encode("utf-8")
    with pytest.raises(DecodeFailure, match="mojibake"):
        decode_bytes(garbled)


def test_latin1_text_is_not_repaired_into_anything():
    # Undoing mojibake needs the whole text to map back to strict UTF-8: real accented text never does.
    for text in ("Le conseil a approuvé le réseau de pistes cyclables à l'unanimité. " * 5, "àéèùâêîôûç " * 10):
        with pytest.raises(DecodeFailure, match="Latin-1"):
            decode_bytes(text.encode("utf-8"))


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


@pytest.mark.parametrize("meta, how", [('<meta charset="gbk">', "declared"), ("", "detected")])
def test_truncated_gbk_is_still_gbk(meta, how):
    data = page(meta).encode("gb18030")
    cut = data[: data.rindex("亿元".encode("gb18030")) + 3]  # after the first byte of the last 元
    d = decode_bytes(cut)
    assert (d.encoding, d.how) == ("gb18030", how) and d.text.endswith(TEXT[:-2])


def test_detector_sample_cut_inside_a_character():
    # The detector reads the first 200 KB; a GBK file whose 200,000th byte starts a hanzi was refused.
    filler = ("党建与业务工作同频共振，" * 9000).encode("gb18030")  # two bytes a character
    data = b"<p>" + filler + b"</p>" + page().encode("gb18030")
    assert len(filler) > 200_000 and data[199_999] >= 0x80  # 3 + an even count: byte 199,999 is a lead byte
    d = decode_bytes(data)
    assert (d.encoding, d.how) == ("gb18030", "detected") and TEXT in d.text


def test_shift_jis_under_a_gb2312_label_is_not_read_as_chinese():
    ja = "市中心部の商店街で週末、恒例の秋祭りが開かれ、二日間でおよそ三万人の人出があった。" * 3
    data = f'<meta charset="gb2312"><p>{ja}</p>'.encode("shift_jis")
    data.decode("gb18030")  # GB18030 decodes it without a single error, into hanzi no real text is made of
    d = decode_bytes(data)  # refused, or (as here, where kanji dominate) the detector's correct Japanese
    assert (d.encoding, d.how) == ("cp932", "detected") and ja in d.text


def test_utf16_plain_text_without_bom():
    data = (TEXT + "\n").encode("utf-16-be")
    d = decode_bytes(data)
    assert (d.encoding, d.how) == ("utf-16-be", "detected") and TEXT in d.text


def test_http_charset_comes_before_the_meta():
    data = page('<meta charset="big5">').encode("gb18030")
    d = decode_bytes(data, http_charset="GBK")
    assert (d.encoding, d.how) == ("gb18030", "declared") and TEXT in d.text
    # A wrong header (a server default) does not win over a page that says what it is.
    d = decode_bytes(page('<meta charset="gbk">').encode("gb18030"), http_charset="iso-8859-1")
    assert (d.encoding, d.how) == ("gb18030", "declared")


def test_refusal_says_what_each_layer_found():
    data = page('<meta charset="gbk">').encode("gb18030")
    at = data.index("，".encode("gb18030"))
    data = data[:at] + b"\xff" + data[at:]
    with pytest.raises(DecodeFailure) as info:
        decode_bytes(data)
    assert f"declared gb18030 fails at byte {at} (0xff)" in str(info.value)
    assert "\n" not in str(info.value)
