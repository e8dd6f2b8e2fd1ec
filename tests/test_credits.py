"""Credit parsing: one test per credit format, Simplified and Traditional, and what is not a source."""

import ast
import dataclasses
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dedup.credits import Credit, add_sources, clean_name, is_credit_line, load_formats, parse_credits, source_names
from dedup.errors import ConfigError
from dedup.extract import read_txt
from dedup.models import Params
from dedup.normalize import load_patterns, normalize_text
from dedup.pipeline import prepare_document

BODY = "全市春季植树活动今天启动，各区共安排植树点四十二处，计划新植苗木三十二万株。"
TRAD_BODY = "全市春季植樹活動今天啟動，各區共安排植樹點四十二處，計劃新植苗木三十二萬株。"


def kinds(text: str) -> list[tuple[str, str]]:
    return [(c.kind, c.name) for c in parse_credits(text)]


# --------------------------------------------------------------------------- source: labels


SOURCE_LINES = ["来源:青川日报", "来源：青川日报", "來源:青川日報", "【来源：青川日报】", "(来源:青川日报)"]


@pytest.mark.parametrize("line", SOURCE_LINES)
def test_source_label(line):
    name = "青川日報" if "報" in line else "青川日报"
    assert source_names(f"{BODY}\n{line}") == [name]
    assert is_credit_line(line)


def test_source_label_without_colon_only_on_a_short_line_of_its_own():
    assert source_names("来源 青川新闻网") == ["青川新闻网"]
    assert source_names("來源 青川新聞網") == ["青川新聞網"]
    assert source_names("本文来源于网络整理，转载请注明出处") == []
    assert source_names("来源 青川新闻网 记者走访了全市四十二个植树点") == []


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("稿源：青川日报", "青川日报"),
        ("信息来源：青川县林业局", "青川县林业局"),
        ("文章来源：青川日报", "青川日报"),
        ("转载自：青川日报", "青川日报"),
        ("轉載自：青川日報", "青川日報"),
        ("转自：青川日报", "青川日报"),
        ("出处：青川日报", "青川日报"),
        ("出處：青川日報", "青川日報"),
        ("来自：青川日报", "青川日报"),
        ("消息來源：青川日報", "青川日報"),
    ],
)
def test_other_source_labels(line, name):
    assert kinds(line) == [("source", name)]
    assert is_credit_line(line)


def test_a_date_before_a_paper_credits_the_paper():
    assert source_names("来源：5月25日《青川日报》") == ["青川日报"]
    assert source_names("來源:2023年5月25日《青川日報》") == ["青川日報"]
    assert source_names("来源：青川日报 2023-05-25 08:30") == ["青川日报"]


def test_several_labels_on_one_line():
    line = "选稿：王小明   来源：青川日报"
    assert kinds(line) == [("editor", "王小明"), ("source", "青川日报")]
    assert is_credit_line(line)
    assert kinds("選稿:王小明 來源:青川日報") == [("editor", "王小明"), ("source", "青川日報")]


def test_several_names_after_one_label():
    assert source_names("综合来源：应急管理部、新华社、中央气象台等") == ["应急管理部", "新华社", "中央气象台"]
    assert source_names("綜合來源:應急管理部、新華社、中央氣象臺等") == ["應急管理部", "新華社", "中央氣象臺"]


def test_pinyin_glosses_are_not_part_of_a_name():
    # Content farms gloss Traditional characters with pinyin, labels and names alike.
    assert source_names("來(lái)源:央視新聞客戶(hù)端") == ["央視新聞客戶端"]
    assert source_names("據(jù)青川日報消息,全市植樹活動今天啟動。") == ["青川日報"]


# --------------------------------------------------------------------------- source: lead-ins, datelines


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("据央视网消息，" + BODY, "央视网"),
        ("据新华社报道，" + BODY, "新华社"),
        ("据青川日报消息，" + BODY, "青川日报"),
        ("据青川新闻网3月12日消息，" + BODY, "青川新闻网"),
        ("据青川县林业局网站消息，" + BODY, "青川县林业局网站"),
        ("據央視網消息，" + TRAD_BODY, "央視網"),
        ("據新華社報道，" + TRAD_BODY, "新華社"),
        ("【全市启动春季植树】据青川日报消息，" + BODY, "青川日报"),
        ("3月12日，据青川日报消息，" + BODY, "青川日报"),
        ("青川网3月12日电 据青川日报消息，" + BODY, "青川日报"),
    ],
)
def test_ju_x_xiaoxi_opening_a_story(text, name):
    assert name in source_names(text)
    assert not is_credit_line(text)


def test_ju_an_organisation_or_unnamed_media_is_where_the_facts_came_from():
    assert source_names("据青川县林业局消息，" + BODY) == []
    assert source_names("据某某行业协会3月12日消息，" + BODY) == []
    assert source_names("据美国媒体25日报道，" + BODY) == []


def test_ju_inside_a_paragraph_is_a_citation_not_a_credit():
    assert source_names("问：据报道，青川今年植树四十二万株，请问是否属实？") == []
    assert source_names("問：據外國媒體報道，青川今年植樹，請問是否屬實？") == []
    assert source_names(BODY + "据青川日报消息，活动还将持续一周。") == []
    assert source_names("据最新消息称，" + BODY) == []


def test_x_xiaoxi_colon_opening_a_story():
    line = "央视网消息：中央气象台继续发布暴雨蓝色预警："
    assert source_names(line) == ["央视网"]
    assert not is_credit_line(line)  # short, but it opens the story: its text is compared


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("新华社北京3月5日电 " + BODY, "新华社"),
        ("新華社北京3月5日電 " + TRAD_BODY, "新華社"),
        ("中新网3月5日电 " + BODY, "中新网"),
        ("中新網 3月5日電 " + TRAD_BODY, "中新網"),
        ("中新社太原3月5日电 （李明）" + BODY, "中新社"),
        ("据新华社北京3月5日电 " + BODY, "新华社"),
        ("新华社电 " + BODY, "新华社"),
        ("青川晚报讯（首席记者 王小明）" + BODY, "青川晚报"),
        ("青川日报北京3月5日电（记者 王小明）" + BODY, "青川日报"),
    ],
)
def test_datelines_credit_the_agency_or_paper(text, name):
    assert source_names(text)[0] == name
    assert not is_credit_line(text)


def test_a_dateline_needs_its_date_or_a_known_agency():
    # "X网…电" without a date is a word ("南方电网电力公司"), not a dateline.
    assert source_names("青川电网电力公司今天宣布，" + BODY) == []
    assert source_names("中国网络电视台今天播出了植树活动。") == []
    assert source_names("新华社长篇通讯：植树人的春天") == []


@pytest.mark.parametrize("text", ["本报讯 " + BODY, "本报广州3月5日讯 " + BODY, "本報訊（記者王小明）" + TRAD_BODY])
def test_benbaoxun_is_a_self_credit_not_a_source(text):
    found = parse_credits(text)
    assert found[0].kind == "self"
    assert source_names(text) == []


def test_a_reporter_in_an_agency_dateline_credits_the_agency():
    text = "新华社北京2月26日电（记者王小明）" + BODY
    assert kinds(text) == [("source", "新华社"), ("byline", "王小明")]
    assert kinds("（新华社记者王小明）") == [("source", "新华社"), ("byline", "王小明")]
    assert source_names("新華社記者 王小明 報道") == ["新華社"]


def test_a_reporter_without_an_agency_is_not_a_source():
    text = BODY + "（记者王小明）"
    assert kinds(text) == [("byline", "王小明")]
    assert source_names(text) == []
    assert source_names(TRAD_BODY + "（記者 王小明 李小紅）") == []
    assert source_names("【全媒体记者 王小明】" + BODY) == []


# --------------------------------------------------------------------------- source: closing credits


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (f"{BODY}\n活动还将持续一周。（青川日报）", "青川日报"),
        (f"{TRAD_BODY}\n活動還將持續一週。(青川日報)", "青川日報"),
        (f"{BODY}(央视新闻)\n浏览量:", "央视新闻"),
        (f"{TRAD_BODY}（央視新聞）", "央視新聞"),
    ],
)
def test_a_bracketed_source_closing_a_paragraph(text, name):
    assert source_names(text) == [name]


def test_a_bracketed_word_that_is_no_source():
    for tail in ("（完）", "（试行）", "（合作社）", "（平台）", "（二〇二三年）", "（资料图）"):
        assert source_names(BODY + tail) == [], tail


DASH_LINES = [("—— 央视新闻", "央视新闻"), ("——新华社", "新华社"), ("——央視新聞", "央視新聞")]


@pytest.mark.parametrize(("line", "name"), DASH_LINES)
def test_a_dash_credit_after_the_text(line, name):
    assert source_names(f"{BODY}\n\n{line}") == [name]
    assert is_credit_line(line)


def test_a_dash_subtitle_is_no_credit():
    assert source_names("——基于城市绿化工作的思考") == []


# --------------------------------------------------------------------------- photo, data, copyright


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("图片来源：视觉青川", "视觉青川"),
        ("圖片來源:視覺青川", "視覺青川"),
        ("图源：青川日报", "青川日报"),
        ("图/王小明", "王小明"),
        ("圖/王小明", "王小明"),
        ("摄影：王小明", "王小明"),
        ("攝影:王小明", "王小明"),
        ("（王小明 摄）", "王小明"),
        ("新华社记者 王小明 摄", "新华社"),
        ("新華社發（王小明 攝）", "新華社"),
    ],
)
def test_photo_credits_are_not_sources(line, name):
    assert kinds(line) == [("photo", name)]
    assert source_names(line) == []


@pytest.mark.parametrize("line", ["（资料图片仅供参考）", "(相关资料图)", "（資料圖片）", "(資料圖片僅供參考)"])
def test_a_photo_note_names_nobody_and_is_a_credit_line(line):
    assert parse_credits(line) == []
    assert is_credit_line(line)


def test_a_data_credit_is_not_a_source():
    assert kinds("数据来源：青川县统计局") == [("data", "青川县统计局")]
    assert kinds("數據來源:青川縣統計局") == [("data", "青川縣統計局")]
    assert source_names("數據來源:青川縣統計局") == []


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("@青川城 版权所有 转载需经授权", "青川城"),
        ("青川新闻网版权所有", "青川新闻网"),
        ("版權所有：青川新聞網", "青川新聞網"),
        ("Copyright © 2008-2024 qcnews.example. All Rights Reserved", "qcnews.example"),
        ("© 2024 青川新闻网", "青川新闻网"),
        ("本网注明“来源：青川新闻网”的所有作品，版权均属于青川新闻网", "青川新闻网"),
        ("凡注明“來源:青川新聞網”的所有作品，版權均屬於青川新聞網", "青川新聞網"),
    ],
)
def test_copyright_names_the_publishing_site_not_a_source(line, name):
    assert ("copyright", name) in kinds(line)
    assert source_names(line) == []
    assert not is_credit_line(line)  # page furniture: the boilerplate rules take it out


def test_a_copyright_notice_without_a_site():
    for line in ("© 版权声明", "Copyright © 2024 All Rights Reserved", "免责声明：版权归原作者所有"):
        assert [c for c in parse_credits(line) if c.kind == "copyright"] == [], line


# --------------------------------------------------------------------------- original title, bylines


@pytest.mark.parametrize(
    ("line", "title"),
    [
        ("原标题：全市春季植树活动启动", "全市春季植树活动启动"),
        ("原文标题：全市春季植树活动启动", "全市春季植树活动启动"),
        ("原標題:全市春季植樹活動啟動", "全市春季植樹活動啟動"),
        ("【原标题：暴雨蓝色预警！多地有大暴雨】", "暴雨蓝色预警!多地有大暴雨"),
        ("原标题：《3月12日起全市植树》", "3月12日起全市植树"),
    ],
)
def test_original_title(line, title):
    assert kinds(line) == [("original_title", title)]  # dates stay: they are part of the title
    assert is_credit_line(line)


@pytest.mark.parametrize(
    ("line", "kind", "name"),
    [
        ("作者：王小明", "byline", "王小明"),
        ("記者：王小明", "byline", "王小明"),
        ("文/王小明", "byline", "王小明"),
        ("全媒体记者：王小明 李小红", "byline", "王小明 李小红"),
        ("编辑：王小明", "editor", "王小明"),
        ("編輯:王小明", "editor", "王小明"),
        ("责任编辑：王小明", "editor", "王小明"),
        ("【責任編輯：王小明】", "editor", "王小明"),
        ("（编辑：王小明 审核：李小红）", "editor", "王小明"),
    ],
)
def test_bylines_and_editors_are_not_sources(line, kind, name):
    assert kinds(line)[0] == (kind, name)
    assert source_names(line) == []
    assert is_credit_line(line)


def test_a_byline_label_does_not_hide_a_source_label():
    assert kinds("作者：王小明 来源：青川日报") == [("byline", "王小明"), ("source", "青川日报")]


# --------------------------------------------------------------------------- names


VAGUE_LINES = ["来源：网络", "來源:互聯網", "来源：本站", "来源: 网友", "来源：综合", "来源：原创", "稿源：未知"]


@pytest.mark.parametrize("line", [*VAGUE_LINES, "来源：sp20240101"])
def test_vague_names_are_dropped_but_the_line_is_still_a_credit_line(line):
    assert source_names(line) == []
    assert is_credit_line(line)
    assert is_credit_line(line, kinds=("source",))


def test_clean_name():
    assert clean_name("《青川日报》") == "青川日报"
    assert clean_name("“青川日报”。") == "青川日报"
    assert clean_name("青川日报2023-05-25") == "青川日报"
    assert clean_name("５月25日青川日报") == "青川日报"
    assert clean_name("<a href='x'>青川日报</a>") == "青川日报"
    assert clean_name("ＣＣＴＶ") == "CCTV"
    assert clean_name("网络") is None and clean_name("12345") is None and clean_name("sp") is None


def test_add_sources_keeps_order_and_drops_repeats_and_vague_names():
    names = ["青川日报"]
    add_sources(names, ["青川新闻网", "网络", "青川日报", "", "《青川新闻网》"])
    assert names == ["青川日报", "青川新闻网"]


# --------------------------------------------------------------------------- lines and API


def test_a_paragraph_that_starts_with_a_credit_keeps_its_text():
    assert not is_credit_line("来源：青川日报 " + BODY)
    assert not is_credit_line(BODY + "（来源：青川日报）")
    assert is_credit_line("来源：青川日报　2023-10-06 22:16:14　阅读：3331")
    assert not is_credit_line(BODY)
    assert not is_credit_line("")


def test_is_credit_line_narrowed_to_kinds():
    assert is_credit_line("来源：青川日报", kinds=("source",))
    assert not is_credit_line("原标题：全市春季植树活动启动", kinds=("source",))
    assert not is_credit_line("作者：王小明", kinds=("source",))


def test_parse_credits_is_in_order_without_repeats_and_keeps_the_line():
    lines = ["来源：新华社", "（记者王小明）", "图片来源：视觉青川", "责任编辑：李小红", "来源：新华社"]
    text = "\n".join([f"新华社北京3月5日电 {BODY}", *lines])
    found = parse_credits(text)
    assert [(c.kind, c.name) for c in found] == [
        ("source", "新华社"),
        ("byline", "王小明"),
        ("photo", "视觉青川"),
        ("editor", "李小红"),
    ]
    assert found[0].line == f"新华社北京3月5日电 {BODY}"
    assert found[2].line == "图片来源：视觉青川"
    assert source_names(text) == ["新华社"]
    assert isinstance(found[0], Credit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].name = "x"


CREDIT_CHARS = list("来源：:据消息新华社电讯报网(（)）【】记者编辑图摄版权所有—原标题青川日 \n12月")


@given(st.text(alphabet=st.sampled_from(CREDIT_CHARS), max_size=120))
def test_credits_are_named_and_unique_whatever_the_text(text):
    found = parse_credits(text)
    assert all(c.name and c.kind for c in found)
    assert len({(c.kind, c.name) for c in found}) == len(found)
    for line in text.splitlines():
        is_credit_line(line)


# --------------------------------------------------------------------------- callers


def test_txt_reader_credits_sources_not_photos_or_copyright():
    text = (
        "来源：青川日报\n2023-03-12 08:30\n全市春季植树活动启动\n\n"
        f"（资料图片仅供参考）\n新华社北京3月12日电 {BODY}\n图片来源：视觉青川\n"
        "@青川城 版权所有\n活动将持续一周。（青川晚报）"
    )
    d = read_txt(text, "www.x.cn/1.txt")
    assert d.title == "全市春季植树活动启动"
    assert d.credits == ["青川日报", "新华社", "青川晚报"]


def test_a_source_line_in_the_txt_header_is_not_the_title():
    d = read_txt(f"來源: 互聯網\n全市春季植樹活動啟動\n\n{TRAD_BODY}", "www.x.cn/1.txt")
    assert d.title == "全市春季植樹活動啟動" and d.credits == []


def test_normalize_takes_credit_lines_out_and_keeps_them():
    text = f"原標題：全市春季植樹活動啟動\n{TRAD_BODY}\n選稿：王小明 來源：青川日報\n（資料圖片僅供參考）\n—— 央視新聞"
    n = normalize_text(text, load_patterns())
    assert n.credits == ["原标题:全市春季植树活动启动", "选稿:王小明 来源:青川日报", "(资料图片仅供参考)"] + [
        "—— 央视新闻"
    ]
    assert n.text.startswith("全市春季植树活动今天启动")
    assert normalize_text("中新网3月5日电 " + BODY, load_patterns()).credits == ["来源:中新网"]


def test_prepare_document_reads_sources_and_the_original_title():
    text = f"2023-03-12 08:30\n全市植樹\n\n原標題：全市春季植樹活動啟動\n{TRAD_BODY * 3}\n圖/王小明\n（青川日報）"
    d = read_txt(text, "x.cn/1.txt")
    prepare_document(d, Params(), load_patterns())
    assert d.original_title == "全市春季植树活动启动"
    assert d.credits == ["青川日報", "青川日报"]  # as published by the reader, folded by normalize


# --------------------------------------------------------------------------- the data file


def test_the_data_file_ships_in_the_package():
    formats = load_formats()
    assert {f.kind for f in formats.formats} == {
        "source",
        "self",
        "photo",
        "data",
        "copyright",
        "original_title",
        "byline",
        "editor",
    }
    assert "网络" in formats.vague and "互聯網" in formats.vague
    assert (Path(__file__).parents[1] / "dedup" / "data" / "credits.toml").is_file()


FRAGMENTS = "[fragments]\nname = 'x'\ndate = 'y'\n"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (f"{FRAGMENTS}[[format]]\nkind = 'sauce'\nregex = '(?P<name>x)'", "kind must be one of"),
        ("[[format]]\nkind = 'source'\nregex = '(?P<name>x)'", "needs `name`"),
        (f"{FRAGMENTS}[[format]]\nkind = 'source'\nregex = '(?P<name>x'", "bad pattern"),
        (f"{FRAGMENTS}[[format]]\nkind = 'source'\nregex = 'x'", "needs a group"),
        (f"{FRAGMENTS}[[format]]\nkind = 'source'\nregex = '{{{{nope}}}}'", "unknown fragment"),
        (f"{FRAGMENTS}[[format]]\nkind = 'source'\nregex = '来源：(?P<name>x)'", "NFKC"),
        ("[[format]\n", "not valid TOML"),
    ],
)
def test_a_bad_data_file_is_a_config_error(tmp_path, toml, message):
    path = tmp_path / "credits.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_formats(path)


def test_credits_imports_only_the_stdlib_and_the_plain_modules():
    tree = ast.parse((Path(__file__).parents[1] / "dedup" / "credits.py").read_text(encoding="utf-8"))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in modules if m.startswith("dedup")} <= {"dedup.models", "dedup.errors"}
    assert not modules & {"jieba", "rjieba", "click", "sqlite_utils", "rich", "opencc"}


# Fragments of credit lines and of story lines, joined at random: the quick test at a line's start
# (Formats.line_start) must never call a credit line something else.
_FRAGMENTS = [
    "来源", "來源", "稿源", "记者", "記者", "编辑", "责任编辑", "图", "文", "摄", "原标题", "据", "本报", "新华社",
    "人民日报", "上饶日报", "央视网消息", "通讯员", ":", "：", " ", "(", ")", "【", "】", "|", "/", "·", "——",
    "张三", "李小明", "王", "青川市", "今天", "举行", "。", "，", "、", "12月3日", "2023年", "电", "讯", "网络",
    "Copyright", "©", "版权所有", "图片来源", "数据来源", "作者", "校对", "审核",
]  # fmt: skip


@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=12).map("".join))
@example("·编辑:张三")  # a credit after leading marks its pattern does not take itself
@example("| 责任编辑:王 校对:李小明")
@example("——来源:新华社")
@example("【记者 李小明】青川市今天举行")
@example("(图/新华社)")
@example("据新华社电 青川市今天举行")
def test_the_quick_test_at_a_line_start_changes_no_answer(line):
    from dedup.credits import _formats, credit_line_in

    formats = _formats()
    assert formats.line_start is not None  # the shipped formats join
    scanned = dataclasses.replace(formats, line_start=None)
    for kinds in (None, ("source",)):
        assert credit_line_in(line, kinds, formats) == credit_line_in(line, kinds, scanned), line


@given(st.lists(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=10).map("".join), max_size=6).map("\n".join))
@example("图/新华社\n文/人民日报")  # a photo's and a byline's credit: no source
@example("(图/新华社)\n——新华社")
@example("新华社记者 张三 摄\n新华社记者李小明报道")  # a byline's agency is a source
@example("来(lái)源:青川日报\n（青川日报）")  # a pinyin gloss inside the label; full-width marks
@example("版权所有 来源:新华社\n原标题:来源:上饶日报")
def test_source_names_skips_only_lines_that_name_no_source(text):
    """source_names leaves out the lines that no source format's gate passes (Formats.source_gate):
    the same names, in the same order, as every credit parse_credits finds."""
    from dedup.credits import _formats

    assert _formats().source_gate is not None  # the shipped formats all have gates
    assert source_names(text) == [c.name for c in parse_credits(text) if c.kind == "source"]


def test_a_source_format_without_required_words_leaves_no_source_gate(tmp_path):
    photo = "[[format]]\nkind = 'photo'\nregex = '图/(?P<name>\\w+)'\nrequires = ['图']\n"
    source = "[[format]]\nkind = 'source'\nregex = '来源:(?P<name>\\w+)'\n"
    path = tmp_path / "credits.toml"
    path.write_text(f"{FRAGMENTS}{photo}{source}", encoding="utf-8")
    assert load_formats(path).source_gate is None  # every line is parsed for sources
    path.write_text(f"{FRAGMENTS}{photo}{source}requires = ['来源']\n", encoding="utf-8")
    gate = load_formats(path).source_gate
    assert gate.search("来源:青川日报") and not gate.search("图/青川日报")


def test_formats_that_do_not_join_are_scanned_whole(tmp_path):
    from dedup.credits import _line_start

    assert _line_start([r"(?P<name>\w+)\s*(?P=name)"]) is None  # a back reference
    assert _line_start([r"来源:(?P<name>\w+)", r"记者(?P<name>\w+)"]).match("记者张三")


def test_lines_parsed_again_come_from_the_cache_which_stays_bounded(monkeypatch):
    import dedup.credits as credits

    page = f"来源：青川日报\n{BODY}\n（记者 李小明）\n责任编辑：张三"
    expected = [("source", "青川日报"), ("byline", "李小明"), ("editor", "张三")]
    credits._recent_line_credits.cache_clear()
    assert kinds(page) == expected
    first = credits._recent_line_credits.cache_info()
    assert first.misses == 4 and first.hits == 0
    assert kinds(page) == expected  # every line again, from the cache
    assert credits._recent_line_credits.cache_info().hits == 4

    # A line longer than CACHED_LINE_MAX is parsed each time and not kept.
    monkeypatch.setattr(credits, "CACHED_LINE_MAX", 40)
    long_line = "来源：上饶日报 " + BODY
    assert len(long_line) > 40
    assert kinds(long_line) == [("source", "上饶日报")]
    assert credits._recent_line_credits.cache_info().currsize == 4

    # Kept lines are at most LINE_CACHE (the oldest go first) and still parsed right.
    for n in range(credits.LINE_CACHE + 5):
        assert kinds(f"第{n}段") == []
    assert credits._recent_line_credits.cache_info().currsize == credits.LINE_CACHE
    assert kinds("责任编辑：张三") == [("editor", "张三")]


def test_a_scan_compiles_the_formats_once_before_its_workers_fork(crawl, tmp_path, monkeypatch):
    """The read workers are forked with the formats compiled (ingest.read_files, preload_signing):
    they do not compile them again on their first page."""
    import os

    import dedup.credits as credits
    from dedup.pipeline import scan

    calls = tmp_path / "compiled"
    load = credits.load_formats

    def counted(path=None):
        with calls.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return load(path)

    monkeypatch.setattr(credits, "load_formats", counted)
    credits._formats.cache_clear()
    try:
        result = scan(crawl, tmp_path / "d.db", Params(), jobs=2)
    finally:
        credits._formats.cache_clear()
    assert result.documents > 10
    assert calls.read_text().split() == [str(os.getpid())]  # here, once; in no worker
