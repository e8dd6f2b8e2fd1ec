"""The readers on real pages from the sample crawl and the example page."""

import json

import pytest

from dedup.discover import discover_files, read_source
from dedup.extract import clean_strings, extract_documents, read_html, read_txt, split_title
from dedup.models import Document, Skipped, SourceFile
from tests.conftest import EXAMPLE, SAMPLE


def docs_of(path: str) -> list:
    sf = SourceFile(path, path.rsplit(".", 1)[1].replace("htm", "html").replace("htmll", "html"), 0, 0, "")
    return extract_documents(read_source(SAMPLE, sf))


def test_publisher_page():
    (d,) = docs_of("www.qcnews.cn/2023/0312/1000234567.html")
    assert d.title == "青川市林业局启动2023年春季义务植树活动 全市计划新植苗木32万株"
    assert d.published_at == "2023-03-12T08:30:00+08:00"
    assert d.canonical_url == "http://www.qcnews.cn/2023/0312/1000234567.html"
    assert d.site == "www.qcnews.cn"
    assert "青川新闻网" in d.site_names
    # Main text only: no navigation, sidebar titles, comments or footer.
    assert d.text.startswith("本报讯")
    for furniture in ("网友评论", "版权所有", "首页", "热点推荐"):
        assert furniture not in d.text


def test_platform_repost_credit_and_gb18030_original():
    (d,) = docs_of("www.sohu.com/2023/0312/656912345_121118820.html")
    assert "青川日报" in d.credits
    (g,) = docs_of("www.qingchuan.gov.cn/2023/0309/art_1021_58731.html")
    assert g.encoding == "gb18030"
    assert "防汛" in g.text and "\ufffd" not in g.text


def test_json_and_jsonl_records():
    (w,) = docs_of("mp.weixin.qq.com/2023/0313/3xKp9vQmT2bWnR7cLd4EfA.json")
    assert w.kind == "json" and w.site == "mp.weixin.qq.com" and w.published_at
    feed = docs_of("feeds/crawl-20230315.jsonl")
    assert [d.path for d in feed] == [f"feeds/crawl-20230315.jsonl#{i}" for i in range(3)]
    assert feed[0].site == "new.qq.com"


def test_bom_page():
    (d,) = docs_of("www.163.com/2023/0310/HVKQ8E2M0514D8K2.html")
    assert d.encoding == "utf-8" and not d.title.startswith("\ufeff")


@pytest.mark.skipif(not EXAMPLE.exists(), reason="../shared/examples not beside the checkout")
def test_example_txt_layout():
    d = read_txt(EXAMPLE.read_text(encoding="utf-8"), "x/2024/0523/1.txt")
    assert d.credits[0] == "张广才问答网"
    assert d.published_at == "2024-05-23T15:36:31+08:00"
    assert d.title == "党建领航 创新未来 ——上饶市科技局推动党建与业务工作同频共振"
    assert d.text.startswith("“我们坚持党对科技事业的全面领导")


def test_hidden_elements_are_not_text():
    html = (
        "<html><body><h1>标题</h1><div class='c'><p>正文第一段，内容足够长，超过十个字。</p>"
        "<p style='display:none'>隐藏的广告文字不应出现在正文里面</p><p hidden>另一个隐藏段落也不应出现</p>"
        "<p>正文第二段，同样足够长，超过十个字。</p></div></body></html>"
    )
    d = read_html(html, "x.cn/1.html")
    assert "隐藏" not in d.text and "正文第二段" in d.text


def test_bad_json_is_skipped_with_reason():
    sf = SourceFile("a.json", "json", 0, 0, "", data=json.dumps({"title": "只有标题"}).encode())
    (s,) = extract_documents(sf)
    assert isinstance(s, Skipped) and "no article text" in s.reason


def test_split_title():
    assert split_title("1-4月我国服务贸易总体保持增长态势-新华网") == ("1-4月我国服务贸易总体保持增长态势", ["新华网"])
    assert split_title("李强会见总干事--江西频道--人民网") == ("李强会见总干事", ["江西频道", "人民网"])
    assert split_title("只有标题") == ("只有标题", [])


def test_discover_lists_every_file_in_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b/x.html").write_text("x")
    (tmp_path / "a.jsonl").write_text("x")
    (tmp_path / "c.png").write_bytes(b"x")
    (tmp_path / ".hidden").write_text("x")
    found = [(f.source.kind if f.source else None, f.path, f.supported) for f in discover_files(tmp_path)]
    assert found == [("jsonl", "a.jsonl", True), (None, "c.png", False), ("html", "b/x.html", True)]


def test_every_sample_file_reads():
    for f in discover_files(SAMPLE):
        assert f.problem is None, f
        if f.source is None:
            continue
        for d in extract_documents(read_source(SAMPLE, f.source)):
            assert isinstance(d, Document), (f.path, d)
            assert d.title and d.text and d.published_at, f.path


SENTENCES = [
    "青川市今天举行城市公共交通线路调整发布会，新开通的公交线路将连接高铁站与新区。",
    "全程约十八公里，沿途设置站点二十三个，首末班时间分别为早上六点半和晚上十点。",
    "市交通运输局有关负责人表示，新线路开通后将大大方便市民出行，同时缓解新区交通压力。",
]


def _signed(html: str):
    from dedup.models import Params
    from dedup.normalize import load_patterns
    from dedup.pipeline import prepare_document

    return prepare_document(read_html(html, "x.cn/1.html"), Params(), load_patterns())


def test_page_variants_compare_equal():
    plain = (
        "<html><body><h1>标题</h1><div class='content'>"
        + "".join(f"<p>{s}</p>" for s in SENTENCES)
        + "</div></body></html>"
    )
    # one sentence per element, in spans and divs
    spans = (
        "<html><body><h1>标题</h1><div class='content'>"
        + "".join(f"<span>{s}</span>" for s in SENTENCES)
        + "</div></body></html>"
    )
    divs = (
        "<html><body><h1>标题</h1><div class='content'>"
        + "".join(f"<div>{s}</div>" for s in SENTENCES)
        + "</div></body></html>"
    )
    # the article embedded twice (a print copy beside the screen copy)
    body = "".join(f"<p>{s}</p>" for s in SENTENCES)
    double = f"<html><body><h1>标题</h1><div class='screen'>{body}</div><div class='print'>{body}</div></body></html>"
    # a mobile copy hidden with aria-hidden
    hidden = f"<html><body><h1>标题</h1><div class='a'>{body}</div><div aria-hidden='true'>{body}</div></body></html>"
    ref = _signed(plain)
    for html in (spans, divs, double, hidden):
        d = _signed(html)
        assert d.content_hash == ref.content_hash or d.signature == ref.signature, html[:80]
        assert d.n_shingles == ref.n_shingles


def test_an_article_in_a_column_called_right_is_still_the_article():
    paras = "".join(f"<p>{s}</p>" for s in SENTENCES)
    html = (
        "<html><body><div class='left'><ul><li><a href='/1'>栏目一</a></li></ul></div>"
        f"<div class='right'><h1>标题</h1>{paras}</div>"
        "<div class='side hot'><p>热门文章标题一</p><p>热门文章标题二</p></div></body></html>"
    )
    d = read_html(html, "x.cn/1.html")
    assert SENTENCES[0] in d.text and SENTENCES[2] in d.text
    assert "热门文章" not in d.text


def test_txt_header_in_another_order():
    text = "青川举行防汛演练\n2023-03-10 09:18\n来源：青川日报\n\n" + "\n".join(SENTENCES)
    d = read_txt(text, "www.x.cn/2023/0310/1.txt")
    assert d.title == "青川举行防汛演练"
    assert d.published_at == "2023-03-10T09:18:00+08:00"
    assert d.credits == ["青川日报"]
    assert d.text.startswith(SENTENCES[0])


def test_a_body_hidden_until_scripts_run_is_still_read():
    paras = "".join(f"<p>{s}</p>" for s in SENTENCES)
    d = read_html(f"<html><body style='visibility:hidden'><h1>标题</h1><div>{paras}</div></body></html>", "x.cn/1.html")
    assert SENTENCES[0] in d.text


def test_an_article_hidden_until_scripts_run_is_still_read():
    paras = "".join(f"<p>{s}</p>" for s in SENTENCES)
    html = (
        "<html><body><h1>标题</h1><div class='rich_media_content' id='js_content' style='visibility: hidden;'>"
        f"{paras}</div><div class='foot'>阅读 1000</div></body></html>"
    )
    d = read_html(html, "mp.weixin.qq.com/1.html")
    assert SENTENCES[2] in d.text


# --------------------------------------------------------------------------- debris in feeds

# Made-up bulletins of a city bureau (not real pages).
BULLETINS = [
    {
        "title": "青川市水务局发布城区停水通告",
        "content": "为提升城区供水保障能力，市水务局定于近日对滨河路至学府街一带的老旧供水管网进行改造。"
        "施工期间沿线小区将分时段临时停水，请居民提前做好储水准备。",
        "url": "http://www.qcswj.gov.cn/tzgg/202405/t20240521_1.html",
        "publish_time": "2024-05-21 09:30",
    },
    {
        "title": "青川市交通运输局调整三条公交线路",
        "content": "因学府街管网改造施工，市交通运输局决定自下周一起临时调整三路、九路和十二路公交线路走向。"
        "调整期间，上述线路绕行滨河东路，沿途增设临时站点四个，恢复时间另行通知。",
        "url": "http://www.qcjt.gov.cn/gsgg/202405/t20240522_2.html",
        "publish_time": "2024-05-22 16:00",
    },
    {
        "title": "青川市市场监管局开展夏季食品安全专项检查",
        "content": "市市场监管局近日组织执法人员对城区农贸市场、校园周边餐饮门店开展夏季食品安全专项检查。"
        "检查共出动执法人员六十余人次，督促整改问题十二处，对两家无证经营门店依法立案调查。",
        "url": "http://www.qcscjg.gov.cn/gzdt/202405/t20240523_3.html",
        "publish_time": "2024-05-23 10:15",
    },
]


def _line(obj, encoding: str = "utf-8") -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode(encoding)


def _assert_storable(items) -> None:
    """No lone surrogate in any string that leaves extract_documents (the store encodes them as UTF-8)."""
    for item in items:
        for value in vars(item).values():
            for s in value if isinstance(value, list) else [value]:
                if isinstance(s, str):
                    s.encode("utf-8")


def test_one_bad_line_costs_one_record():
    lines = [
        _line(BULLETINS[0]),  # 0
        _line(BULLETINS[1], "gbk"),  # 1: another codec
        b'{"title": "\xff\xfe\xfa", "content": "\x80\x80\x81\xfe\xff"}',  # 2: junk bytes
        b"",  # 3: blank
        json.dumps({**BULLETINS[2], "title": "\ud800" + BULLETINS[2]["title"]}).encode(),  # 4: "\ud800" escape
        b"[1, 2, 3]",  # 5: not an object
        b"42",  # 6
        b'{"content": "\x00\x00\x00\x00"}',  # 7: NUL junk
        b'{"content": "\xe9\x9d\x92\xe5\xb7\x9d", "publish_time": Infinity}',  # 8: a time that is no number
        b"[" * 100_000,  # 9: nesting too deep for the parser
        b"{truncated",  # 10
        _line(BULLETINS[0] | {"url": "http://www.qcswj.gov.cn/tzgg/202405/t20240521_9.html"}) + b"\r",  # 11
    ]
    sf = SourceFile("feeds/day.jsonl", "jsonl", 0, 0, "", data=b"\n".join(lines) + b"\n")
    out = extract_documents(sf)
    _assert_storable(out)
    by_path = {x.path: x for x in out}
    assert list(by_path) == [f"feeds/day.jsonl#{n}" for n in (0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11)]
    docs = {p: d for p, d in by_path.items() if isinstance(d, Document)}
    assert set(docs) == {"feeds/day.jsonl#0", "feeds/day.jsonl#1", "feeds/day.jsonl#4", "feeds/day.jsonl#11"}
    assert docs["feeds/day.jsonl#0"].encoding == "utf-8" and docs["feeds/day.jsonl#0"].title == BULLETINS[0]["title"]
    assert docs["feeds/day.jsonl#1"].encoding == "gb18030" and docs["feeds/day.jsonl#1"].title == BULLETINS[1]["title"]
    assert docs["feeds/day.jsonl#4"].title == "\ufffd" + BULLETINS[2]["title"]
    reasons = {p: s.reason for p, s in by_path.items() if isinstance(s, Skipped)}
    assert reasons["feeds/day.jsonl#2"].startswith("line 3: not UTF-8")
    assert reasons["feeds/day.jsonl#5"] == "line 6: expected a JSON object, got list"
    assert reasons["feeds/day.jsonl#6"] == "line 7: expected a JSON object, got int"
    assert reasons["feeds/day.jsonl#7"].startswith("line 8: ")
    assert reasons["feeds/day.jsonl#8"].startswith("line 9: ")
    assert reasons["feeds/day.jsonl#9"].startswith("line 10: ")
    assert reasons["feeds/day.jsonl#10"].startswith("line 11: Expecting property name")
    assert all("\n" not in r and len(r) <= 220 for r in reasons.values())


def test_a_feed_in_one_codec_reads_as_before():
    data = b"\n".join(_line(b, "gbk") for b in BULLETINS)
    out = extract_documents(SourceFile("feeds/gbk.jsonl", "jsonl", 0, 0, "", data=data))
    assert [d.path for d in out] == [f"feeds/gbk.jsonl#{n}" for n in range(3)]
    assert all(isinstance(d, Document) and d.encoding == "gb18030" for d in out)
    # UTF-16 (whose LF is two bytes) is decoded whole, as before.
    data = "\n".join(json.dumps(b, ensure_ascii=False) for b in BULLETINS).encode("utf-16")
    out = extract_documents(SourceFile("feeds/u16.jsonl", "jsonl", 0, 0, "", data=data))
    assert [d.path for d in out] == [f"feeds/u16.jsonl#{n}" for n in range(3)]
    assert all(isinstance(d, Document) for d in out)


def test_lone_surrogates_never_leave_extraction():
    rec = {
        "title": "青川\udc80通告",
        "content": BULLETINS[0]["content"] + "\ud83d",
        "source": "青川日报\udfff",
        "url": "http://www.qcswj.gov.cn/1.html",
    }
    (d,) = extract_documents(SourceFile("x.json", "json", 0, 0, "", data=json.dumps(rec).encode()))
    assert isinstance(d, Document)
    assert d.title == "青川\ufffd通告" and d.text.endswith("\ufffd")
    _assert_storable([d])
    # A proper pair stays a character.
    rec["title"] = "青川\U0001f600通告"
    (d,) = extract_documents(SourceFile("x.json", "json", 0, 0, "", data=json.dumps(rec).encode()))
    assert d.title == "青川\U0001f600通告"
    s = Skipped("a\udcb2.html", "bad \ud800 reason")
    clean_strings(s)
    assert s.path == "a\ufffd.html" and s.reason == "bad \ufffd reason"


def test_a_json_file_whose_top_level_is_not_an_object():
    for data, kind in ((b"[1, 2]", "list"), (b'"text"', "str"), (b"3.5", "float")):
        (s,) = extract_documents(SourceFile("x.json", "json", 0, 0, "", data=data))
        assert isinstance(s, Skipped) and s.reason == f"expected a JSON object, got {kind}"
