"""The readers on real pages from the sample crawl and the example page."""

import json

import pytest

from dedup.discover import discover_files, read_source
from dedup.extract import extract_documents, read_html, read_txt, split_title
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
    found = [(sf.kind if sf else None, rel) for sf, rel in discover_files(tmp_path)]
    assert found == [("jsonl", "a.jsonl"), (None, "c.png"), ("html", "b/x.html")]


def test_every_sample_file_reads():
    for sf, rel in discover_files(SAMPLE):
        if sf is None:
            continue
        for d in extract_documents(read_source(SAMPLE, sf)):
            assert isinstance(d, Document), (rel, d)
            assert d.title and d.text and d.published_at, rel


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
