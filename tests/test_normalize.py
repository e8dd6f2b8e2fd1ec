from hypothesis import given
from hypothesis import strategies as st

from dedup.normalize import fold, line_parts, load_patterns, normalize_text

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
    from dedup.credits import title_regex

    n = normalize_text("原标题：全市春季植树活动启动\n正文内容。", PATTERNS)
    assert n.text == "正文内容。"
    assert title_regex().match(n.credits[0]).group(1) == "全市春季植树活动启动"


# --- content-farm junk (texts composed for the tests, in the shapes farm pages use) -------------

CLEAN = "临溪县数字经济发展报告会今日召开,会议总结了产业发展经验。"


def test_pinyin_notes_are_taken_out_whichever_characters_carry_them():
    one = "臨溪縣數(shù)字經(jīng)濟發(fā)展報告會今日召開,會議總結了產(chǎn)業發展經驗。"
    two = "臨溪縣數字經濟發展報(bào)告會(huì)今日召開,會議總(zǒng)結了產業發展經(jīng)驗。"
    assert normalize_text(one, PATTERNS).text == CLEAN
    assert normalize_text(two, PATTERNS).text == CLEAN


def test_pinyin_note_shapes():
    assert fold("會（huì）議") == "会议"  # full-width parentheses fold to "(" first
    assert fold("會(huì )議") == "会议"  # a space before the closing parenthesis
    assert fold("綠(lǜ)色") == "绿色"
    assert fold("兒(ér)童") == "儿童"
    assert fold("創(chuàng)新") == "创新"


def test_what_looks_like_pinyin_but_is_text_stays():
    kept = [
        "居民消费价格指数(CPI)同比上涨",
        "国内生产总值(GDP)增长",
        "我的(de)字",  # no tone mark: not taken (toneless notes were not seen on farm pages)
        "品牌(Apple)发布",
        "版本v(ā)",  # not directly after a CJK character
        "词语 (fā) 注音",
        "模型(xiǎngxiàng)",  # two syllables: not one note
    ]
    for text in kept:
        assert normalize_text(text, PATTERNS).text == text.lower()


def test_mojibake_and_doubled_punctuation():
    text = "??临溪县数字经济发展报告会今日召开,,会议总结了产业\ufffd发展经验,。"
    assert normalize_text(text, PATTERNS).text == CLEAN
    assert fold("今日召开，，会议") == "今日召开,会议"
    assert fold("发展、,规划") == "发展、,规划"  # only a comma before other punctuation goes
    assert fold("市场化,、法治化") == "市场化、法治化"
    assert fold("规模?;扩大") == "规模扩大"
    assert fold("是吗?;") == "是吗?;"
    assert fold("??") == "??"  # a line of question marks is not an indent
    assert fold("?据介绍") == "?据介绍"


def test_markup_inside_the_text_is_taken_out():
    assert fold('新增病例1<font color="red">2</font>3例') == "新增病例123例"
    assert fold("新增病例12font>3例,<font>45</font>例") == "新增病例123例,45例"
    assert fold("新增病例4<font5例") == "新增病例45例"
    assert fold('<strike id="x7k2"></strike>正文<menu id="x7k2"></menu>') == "正文"
    assert fold("<SPAN class=a>正文</SPAN>") == "正文"


def test_angle_brackets_in_text_stay():
    for text in ["若x<y且y>z", "p>0.05,差异不显著", "当a<b 时成立", "临溪县> 新闻> 正文", "<<临溪县志>>"]:
        assert fold(text) == text


def test_keyword_spam_lines_are_taken_out():
    spam = "百家乐在线娱乐城,时时彩免费试玩,六合彩开奖直播平台,老虎机博彩官网,最新电影免费观看"
    n = normalize_text(f"临溪县新闻\n{spam}\n{CLEAN}", PATTERNS)
    assert n.text == f"临溪县新闻\n{CLEAN}"
    assert n.boilerplate == [spam]
    underscores = "高清视频在线播放_国产精品大全_无码专区_免费视频下载_热门影视推荐"
    assert normalize_text(underscores, PATTERNS).boilerplate == [underscores]


def test_story_lines_that_look_like_keyword_lists_stay():
    kept = [
        "北京,天津,上海,重庆,河北",
        "一区,二区,三区,四区",  # districts of a town: only the farm's run-on "一区二区" counts
        "警方捣毁一个六合彩、百家乐赌博团伙,查获赌资,抓获嫌疑人,涉案金额巨大。",
        "关键词:博彩,赌场,老虎机,时时彩",  # a colon: a sentence, not a keyword line
        "自拍,久久,夜夜",  # too few phrases
    ]
    for line in kept:
        n = normalize_text(line, PATTERNS)
        assert n.text == line and n.boilerplate == []


def test_leading_zeros_of_times_and_dates_fold():
    assert fold("8月18日06时发布") == fold("8月18日6时发布") == "8月18日6时发布"
    assert fold("2024年08月06日") == "2024年8月6日"
    assert fold("8月18日06時") == "8月18日6时"  # Traditional, folded to Simplified afterwards
    assert fold("05点30分") == "5点30分"
    assert fold("00时") == "0时"
    for text in ["0时", "10时", "100点", "1.05点", "20:05点", "3,005点", "第006号", "0.6%"]:
        assert fold(text) == text


def test_a_farm_copy_compares_equal_to_a_clean_copy():
    clean = "临溪县消息 8月6日6时,临溪县发布暴雨预警。\n据介绍,全县已转移群众120人。"
    farm = (
        "臨溪縣消(xiāo)息 8月06日06時,,臨溪縣發(fā)佈暴雨預(yù)警,。\n"
        "百家乐在线娱乐城,时时彩免费试玩,六合彩开奖直播平台,老虎机博彩官网\n"
        '??據介紹,全縣已轉移群眾1<font color="#c00">2</font>0人\ufffd。'
    )
    assert normalize_text(farm, PATTERNS).text == normalize_text(clean, PATTERNS).text


FARM_PIECES = [
    "數", "字", "会", "(shù)", "（jīng）", "(Huì)", "(CPI)", "(de)", "<font>", "</font>", "font>", "<font",
    "<", ">", "/", "0", "6", "1", "时", "時", "日", "点", ".", ":", "?", "??", ";", ",", "，", "。", "、",
    "\ufffd", "\n", " ", "a", "AV", "_", "在线观看", "国产精品", "久久", "博彩",
]  # fmt: skip


@given(st.lists(st.sampled_from(FARM_PIECES), max_size=60).map("".join))
def test_normalization_with_farm_junk_is_idempotent(s):
    once = normalize_text(s, PATTERNS).text
    assert normalize_text(once, PATTERNS).text == once


TRADITIONAL_PIECES = ["臨溪縣", "發佈", "預警", "數據", "一目瞭然", "反覆", "時", "點"]
SPACES = ["\u3000", "\u00a0", "\r", "\u2028", "\t"]


@given(st.lists(st.sampled_from(FARM_PIECES + TRADITIONAL_PIECES + SPACES), max_size=80).map("".join))
def test_folding_stays_within_lines(s):
    """Every rule of fold keeps to its line: a sign worker folds only the lines it has not met
    (ingest._LINES), and what they give must be what folding the whole text gives."""
    lines = s.split("\n")
    assert fold(s).split("\n") == [fold(line) for line in lines]
    assert line_parts(lines, PATTERNS) == [line_parts([line], PATTERNS)[0] for line in lines]
