from hypothesis import given
from hypothesis import strategies as st

from dedup.normalize import fold, load_patterns, normalize_text

PATTERNS = load_patterns()


def test_boilerplate_and_credits_are_taken_out():
    text = (
        "来源: 青川日报\n"
        "ＡＢＣ　全角文字，２０２３年。\n"
        "正文内容……点击阅读全文\n"
        "发布于：临溪县\n"
        "声明：该文观点仅代表作者本人，搜狐号系信息发布平台，搜狐仅提供信息存储空间服务。\n"
        "（本文来源于网络，由某某资讯网整理发布）\n"
        "【责任编辑：张三】\n"
    )
    n = normalize_text(text, PATTERNS)
    assert n.text == "abc 全角文字,2023年。\n正文内容"
    assert n.credits == ["来源: 青川日报", "【责任编辑:张三】"]
    assert len(n.boilerplate) == 3


def test_learned_lines_are_taken_out():
    n = normalize_text("正文\n关注本站获取更多", PATTERNS, learned=frozenset({"关注本站获取更多"}))
    assert n.text == "正文" and n.boilerplate == ["关注本站获取更多"]


@given(st.text(alphabet=st.sampled_from(list("上饶市科技局，。：:1２ａA　 \n发布于声明来源【】")), max_size=200))
def test_normalization_is_idempotent(s):
    once = normalize_text(s, PATTERNS).text
    assert normalize_text(once, PATTERNS).text == once


def test_fold():
    assert fold("１２３，ＡＢＣ") == "123,ABC"


def test_traditional_folds_to_simplified():
    trad = "上饒市科技局推動黨建與業務工作同頻共振，這是一項事業從無到有的時間線。"
    simp = "上饶市科技局推动党建与业务工作同频共振,这是一项事业从无到有的时间线。"
    assert normalize_text(trad, PATTERNS).text == simp
    assert normalize_text(simp, PATTERNS).text == simp


def test_datelines_are_evidence_not_text():
    n = normalize_text("新华社北京3月5日电 十四届全国人大一次会议今天开幕。", PATTERNS)
    assert n.text == "十四届全国人大一次会议今天开幕。"
    assert n.credits == ["来源:新华社"]
    assert normalize_text("本报讯 记者报道,会议召开。", PATTERNS).credits == []


def test_yuan_biaoti_is_a_credit_line():
    from dedup.normalize import ORIGINAL_TITLE

    n = normalize_text("原标题：全市春季植树活动启动\n正文内容。", PATTERNS)
    assert n.text == "正文内容。"
    assert ORIGINAL_TITLE.match(n.credits[0]).group(1) == "全市春季植树活动启动"
