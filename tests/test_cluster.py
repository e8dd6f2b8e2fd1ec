"""Clustering on real story texts: copies join, template siblings and compilations do not merge."""

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.candidates import cluster_documents, document_sig
from dedup.cluster import DocSig, UnionFind, component_roots, number_conflicts, substitutions
from dedup.discover import read_source
from dedup.extract import extract_documents
from dedup.models import ROLE_COMPILATION, Document, Params, SourceFile
from dedup.normalize import load_patterns
from dedup.pipeline import prepare_document
from tests.conftest import BUS, FLOOD, SAMPLE, TREES

P = Params()
PATTERNS = load_patterns()


def story(path: str) -> str:
    (d,) = extract_documents(read_source(SAMPLE, SourceFile(path, "html", 0, 0, "")))
    return d.text


def sig(doc_id: int, text: str) -> DocSig:
    """A document signed by the pipeline's own stage, as clustering reads it back from the store."""
    d = prepare_document(Document(path=f"{doc_id}", file_path=f"{doc_id}", kind="txt", text=text), P, PATTERNS)
    return document_sig(d, doc_id, P)


TREES_T, BUS_T, FLOOD_T = story(TREES), story(BUS), story(FLOOD)


def sibling(text: str) -> str:
    """The same bulletin template with other figures: what a city writes every month."""
    out = []
    for ch in text:
        out.append(str((int(ch) + 3) % 10) if ch.isdigit() else ch)
    return "".join(out)


def typo(text: str) -> str:
    return text.replace("活动", "活洞", 1).replace("工作", "公作", 1)


def groups_as_sets(groups) -> list[set[int]]:
    return sorted(({i for i, r in g.members.items() if r != ROLE_COMPILATION} for g in groups), key=min)


def test_copies_join_and_unrelated_stay_apart():
    docs = [
        sig(1, TREES_T),
        sig(2, typo(TREES_T)),  # a copy with typos
        sig(3, TREES_T[: len(TREES_T) * 6 // 10]),  # truncated to 60 %
        sig(4, "发布于：某县\n" + TREES_T),  # boilerplate around it
        sig(5, BUS_T),
        sig(6, TREES_T),  # exact copy
        sig(7, "阅读 38779\n" + TREES_T + "\n点击:1234 评论 56"),  # page counters around it
        sig(8, TREES_T.replace("青川市2023年春季", "青川市春季", 1)),  # an edit drops the year
    ]
    assert groups_as_sets(cluster_documents(docs, P)) == [{1, 2, 3, 4, 6, 7, 8}]


def test_template_sibling_is_not_a_copy():
    docs = [sig(1, TREES_T), sig(2, typo(TREES_T)), sig(3, sibling(TREES_T)), sig(4, sibling(typo(TREES_T)))]
    assert groups_as_sets(cluster_documents(docs, P)) == [{1, 2}, {3, 4}]
    assert number_conflicts(docs[0], docs[2]) >= 1


def test_compilation_joins_each_story_and_merges_none():
    comp = sig(9, TREES_T + "\n" + FLOOD_T + "\n" + BUS_T)
    docs = [sig(1, TREES_T), sig(2, typo(TREES_T)), sig(3, FLOOD_T), sig(4, typo(FLOOD_T)), sig(5, BUS_T),
            sig(6, typo(BUS_T)), comp]  # fmt: skip
    groups = cluster_documents(docs, P)
    assert groups_as_sets(groups) == [{1, 2}, {3, 4}, {5, 6}]
    for g in groups:
        assert g.members[9] == ROLE_COMPILATION


@settings(max_examples=15, deadline=None)
@given(st.randoms(use_true_random=False))
def test_clusters_partition_the_input_whatever_the_order(rnd: random.Random):
    texts = [TREES_T, typo(TREES_T), BUS_T, typo(BUS_T), FLOOD_T, sibling(FLOOD_T)]
    order = list(range(len(texts)))
    rnd.shuffle(order)
    docs = [sig(i, texts[i]) for i in order]
    got = groups_as_sets(cluster_documents(docs, P))
    assert got == [{0, 1}, {2, 3}]
    seen = [i for g in got for i in g]
    assert len(seen) == len(set(seen))


def test_too_little_content_never_joins():
    docs = [sig(1, "短讯。"), sig(2, "短讯。"), sig(3, TREES_T), sig(4, TREES_T)]
    # The pipeline gates short documents before clustering; clustering alone groups exact copies.
    short = [d for d in docs if d.n_shingles >= P.min_shingles]
    assert groups_as_sets(cluster_documents(short, P)) == [{3, 4}]


def test_union_find():
    uf = UnionFind()
    uf.union(1, 2)
    uf.union(3, 4)
    uf.union(2, 4)
    assert len({uf.find(i) for i in (1, 2, 3, 4)}) == 1 and uf.find(5) == 5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=120))
def test_component_roots_are_the_union_finds_components(edges):
    """The numpy components (root hooking, pointer jumping) equal a union-find's: the same ids,
    and each id's root is the smallest id of its component."""
    uf = UnionFind()
    for x, y in edges:
        uf.union(x, y)
    smallest: dict[int, int] = {}
    for x in sorted(uf.parent):
        smallest.setdefault(uf.find(x), x)
    a = np.array([x for x, _ in edges], np.int64)
    b = np.array([y for _, y in edges], np.int64)
    ids, roots = component_roots(a, b)
    assert ids.tolist() == sorted(uf.parent)
    assert roots.tolist() == [smallest[uf.find(x)] for x in ids.tolist()]


def test_component_roots_of_a_long_chain_in_reverse_order():
    """A path given from its far end (every hook lands on a root that is hooked next) still ends
    with one root; ids absent from the edges are not reported."""
    n = 5000
    a = np.arange(n - 1, 0, -1) * 2
    b = a - 2
    ids, roots = component_roots(a, b)
    assert ids.tolist() == list(range(0, 2 * n - 1, 2))
    assert set(roots.tolist()) == {0}


TEMPLATE = (
    "江西省南昌市今天召开全市城市管理工作会议，市长李强出席会议并讲话。会议指出，南昌市要学习借鉴杭州、"
    "上海等城市的先进经验，进一步提升城市精细化管理水平，推动城市管理向城市治理转变。会议要求，各县区、"
    "各部门要强化责任担当，加强协调配合，确保各项工作任务落到实处。会后，李强一行实地察看了南昌市部分"
    "街道的环境整治情况，要求相关部门加快推进老旧小区改造，切实解决群众急难愁盼问题。"
)


def test_a_sibling_with_other_names_and_places_is_not_a_copy():
    other = TEMPLATE.replace("江西省", "福建省").replace("南昌", "福州").replace("李强", "王伟").replace("杭州", "深圳")
    assert other != TEMPLATE
    with_typos = TEMPLATE.replace("管理水平", "管里水平").replace("协调配合", "协调陪合")
    docs = [sig(1, TEMPLATE), sig(2, with_typos), sig(3, other)]
    assert groups_as_sets(cluster_documents(docs, P)) == [{1, 2}]
    assert substitutions(docs[0], docs[2]) >= 2
    assert substitutions(docs[0], docs[1]) == 0


def test_a_page_split_in_two_is_not_a_compilation_of_its_halves():
    story = TREES_T + "\n" + FLOOD_T  # one long bulletin
    lines = story.split("\n")
    half1, half2 = "\n".join(lines[: len(lines) // 2]), "\n".join(lines[len(lines) // 2 :])
    docs = [sig(1, story), sig(2, typo(story)), sig(3, "发布于:某县\n" + story), sig(4, half1), sig(5, half2)]
    groups = cluster_documents(docs, P)
    assert groups_as_sets(groups) == [{1, 2, 3, 4, 5}]
    assert ROLE_COMPILATION not in groups[0].members.values()


NOTICE_TEMPLATE = (
    "青川市气象台{day}日{hour}时发布天气预报：今天白天到夜间，全市多云转阴，局部有小雨，"
    "偏北风二到三级，气温{low}到{high}摄氏度，相对湿度百分之{humid}。市气象台提醒，"
    "近期早晚温差较大，请市民适时增减衣物，注意防寒保暖，出行注意交通安全。"
)


def test_a_template_family_is_not_paired_all_with_all():
    from dedup.candidates import banded_pairs
    from dedup.cluster import BUCKET_ALL_PAIRS

    # 300 notices that differ only in their serial number: most bands hold all 300 in one bucket.
    family = [
        sig(i, NOTICE_TEMPLATE.format(day=3, hour=8, low=2, high=10, humid=60) + f"编号{i + 100}。")
        for i in range(1, 301)
    ]
    pairs = banded_pairs(family, P)
    assert len(family) > BUCKET_ALL_PAIRS
    assert len(pairs) < 300 * 299 / 2 / 4  # not the 44,850 of every pair
    # Siblings are still told apart from the pairs that remain, and none is a copy of another.
    assert cluster_documents(family, P) == []


def test_verdicts_are_reused_and_give_the_same_clusters():
    from dedup.cluster import Verdicts

    docs = [sig(1, story(TREES)), sig(2, story(TREES)[:400]), sig(3, story(BUS)), sig(4, story(FLOOD))]
    first = Verdicts()
    groups = cluster_documents(docs, P, verdicts=first)
    assert first.new and not first.known
    again = Verdicts(dict(first.new))
    assert [g.members for g in cluster_documents(docs, P, verdicts=again)] == [g.members for g in groups]
    assert again.new == {}  # nothing verified twice


def banded_pairs_by_datasketch(reps, params):
    """The reference: the same buckets filled in datasketch's MinHashLSH."""
    from datasketch import LeanMinHash, MinHashLSH

    from dedup.cluster import add_bucket_pairs

    def lean(values, seed, scheme):
        return LeanMinHash(seed=seed, hashvalues=values, scheme=scheme)

    lsh = MinHashLSH(num_perm=params.num_perm, params=(params.lsh_bands, params.lsh_rows))
    with lsh.insertion_session() as session:
        for r in reps:
            session.insert(r.doc_id, lean(r.signature, params.seed, params.scheme), check_duplication=False)
            for k, (_, w) in enumerate(r.windows):
                session.insert((r.doc_id, k), lean(w, params.seed, params.scheme), check_duplication=False)
    order = {r.doc_id: (r.content_hash, r.doc_id) for r in reps}
    pairs = set()
    for table in lsh.hashtables:
        for key in table.keys():  # noqa: SIM118 - a datasketch storage, not a dict
            bucket = table.get(key)
            docs = {x if isinstance(x, int) else x[0] for x in bucket}
            add_bucket_pairs(pairs, docs, {x for x in bucket if isinstance(x, int)}, order)
    return pairs


def test_banded_pairs_are_those_of_datasketchs_index():
    from dedup.candidates import banded_pairs

    texts = [story(TREES), story(TREES)[:500], story(BUS), story(FLOOD), story(BUS) + story(FLOOD) + story(TREES)]
    docs = [sig(i, t) for i, t in enumerate(texts, 1)]
    docs += [sig(100 + i, NOTICE_TEMPLATE.format(day=3, hour=8, low=2, high=10, humid=60) + f"编号{i + 100}。")
             for i in range(80)]  # fmt: skip
    assert any(d.windows for d in docs)
    pairs = banded_pairs(docs, P)
    assert pairs == banded_pairs_by_datasketch(docs, P)
    assert (1, 2) in pairs


OWN_SENTENCES = [
    "记者当天在现场看到，附近居民自发组织起来，帮助清理道路上的淤泥和杂物，志愿者们一直忙到深夜才陆续离开。",
    "一位在当地生活了三十多年的老人告诉记者，这样大的雨多年未见，好在各方面的准备工作做得比较充分。",
    "据了解，市里还专门开通了求助热线，工作人员二十四小时值守，及时回应群众的各类诉求和困难。",
    "不少网友在社交平台上留言，为奋战在一线的工作人员点赞，也提醒大家雨天出行一定要注意安全。",
    "专家分析认为，今年汛期降雨偏多，城市排水系统面临较大考验，相关部门需要进一步完善应急预案。",
]


def test_a_report_quoting_a_bulletin_sentence_by_sentence_is_not_its_copy(monkeypatch):
    import re

    from dedup import cluster
    from dedup.cluster import verify
    from dedup.normalize import normalize_text
    from dedup.shingle import tokenize

    sentences = [s for s in re.split(r"(?<=[。！？])", FLOOD_T) if s.strip()]
    quoting = "".join(s + (OWN_SENTENCES[i] if i < len(OWN_SENTENCES) else "") for i, s in enumerate(sentences[:6]))
    cut = "".join(sentences[2:])  # a copy that starts later: its difference is at one end
    texts = {1: FLOOD_T, 2: quoting, 3: cut}

    def words(doc_id):
        return tokenize(normalize_text(texts[doc_id], PATTERNS).text)

    bulletin = sig(1, FLOOD_T)
    assert verify(bulletin, sig(2, quoting), P, words) is None
    assert verify(bulletin, sig(3, cut), P, words) is not None
    monkeypatch.setattr(cluster, "MAX_OWN_PASSAGES", 99)  # without the rule the quoting report passed
    assert verify(bulletin, sig(2, quoting), P, words) is not None


# A bulletin that recurs every year with the same wording: only the session, in Chinese numerals,
# changes. (Composed text.)
BROADCAST = (
    "青川市第十五届人民代表大会第{n}次会议将于3月5日上午9时在市民会堂开幕，市人大常委会主任将作常委会工作报告。"
    "届时，青川广播电视台新闻综合频道、都市生活频道、公共频道，青川人民广播电台新闻广播、交通广播、文艺广播等频率"
    "将进行现场直播，青川新闻客户端、青川发布微信公众号、青川日报视频号等新媒体平台将同步转播，欢迎广大市民收听收看。"
)


def words_of(texts: dict[int, str]):
    from dedup.normalize import normalize_text
    from dedup.shingle import tokenize

    def words(doc_id: int) -> list[str]:
        return tokenize(normalize_text(texts[doc_id], PATTERNS).text)

    return words


def test_a_recurring_bulletin_with_another_session_in_chinese_numerals_is_not_a_copy(monkeypatch):
    from dedup import cluster
    from dedup.align import number_value

    assert [number_value(w) for w in ("第六十四", "三次", "二〇二五", "十月", "2023", "一些", "两国", "万")] == [
        "64", "3", "2025", "10", "2023", None, None, None
    ]  # fmt: skip
    texts = {
        1: BROADCAST.format(n="三"),
        2: "据青川日报消息，" + BROADCAST.format(n="三").replace("收听收看", "收听收砍"),  # a copy with a typo
        3: BROADCAST.format(n="四"),  # next year's
        4: BROADCAST.format(n="四") + "（编辑：何丽）",
    }
    docs = [sig(d, t) for d, t in texts.items()]
    words = words_of(texts)
    assert groups_as_sets(cluster_documents(docs, P, words)) == [{1, 2}, {3, 4}]
    # The signatures cannot tell them apart (no digit differs): without the check they merged.
    monkeypatch.setattr(cluster, "numerals_changed", lambda *args: False)
    assert groups_as_sets(cluster_documents(docs, P, words)) == [{1, 2, 3, 4}]


# A notice, and a later report that quotes its first paragraph between paragraphs of its own.
# (Composed text.)
QUOTED = (
    "市防汛抗旱指挥部决定，自7月10日12时起启动全市防汛Ⅳ级应急响应。各区县、各有关部门要立即进入应急状态，"
    "加强值班值守和堤防巡查，严格落实二十四小时领导带班制度，提前转移山洪地质灾害危险区域群众，"
    "全力保障人民群众生命财产安全。各级防汛责任人要在岗到位，发现险情第一时间报告并组织处置。"
)
NOTICE = QUOTED + (
    "据市气象台预报，10日至12日我市将出现一次强降雨天气过程，累计雨量可达100至150毫米，局地超过200毫米，"
    "并伴有短时大风和雷电。请广大市民密切关注天气变化，减少不必要的外出，远离河道和低洼地带。"
)
REPORT = (
    "连日来，青川市持续出现降雨天气，清溪河、白沙河部分河段水位明显上涨。记者10日上午在清溪河青龙段看到，"
    "河道管理站的工作人员正沿着堤岸逐段查看险情，对几处渗水点插上了警示旗，附近村民也自发加入了巡堤队伍。"
    "桃源村党支部书记告诉记者，村里提前备好了沙袋和救生衣，低洼处的十几户老人已经被接到村委会暂住。"
    "在城区，环卫工人冒雨清理雨水篦子上的落叶和杂物，几条主干道的交通秩序总体平稳，公交车辆正常运行。"
    "家住滨江小区的一位居民说，前两年小区地下车库进过水，今年物业早早在入口处垒起了挡水墙，大家心里踏实了不少。"
    "不少学校也调整了课外活动安排，提醒家长接送孩子时注意避开积水路段。当天上午，"
    + QUOTED
    + "记者从市应急管理局了解到，全市已预置抢险队伍四十余支，调集冲锋舟、发电机、抽水泵等物资一批，"
    "各乡镇的临时安置点也已完成消毒和床铺准备。市交通运输部门对山区道路实行动态巡查，发现塌方及时设置绕行标志。"
    "市民服务热线安排专人值守，群众反映的积水、倒树等问题将在第一时间转交相关部门处理。"
    "气象专家提醒，此轮降雨与前期降水叠加，山区发生山洪和地质灾害的风险较高，公众应尽量避免前往山区和河谷地带。"
    "截至记者发稿时，雨势仍未减弱，各路巡查人员还在堤防上轮班值守，城区几处易涝路段的排水泵站已全部开机运行。"
)


def test_a_report_quoting_a_paragraph_of_a_notice_is_not_its_copy(monkeypatch):
    from dedup import cluster
    from dedup.align import align, shared_any_order
    from dedup.cluster import verify

    texts = {1: NOTICE, 2: REPORT, 3: NOTICE[: len(NOTICE) * 3 // 4]}  # 3: a copy cut short
    words = words_of(texts)
    notice, report, cut = (sig(d, t) for d, t in texts.items())
    al = align(words(2), words(1))
    # The shared paragraph: more than half of the notice (under 0.8) and a fifth of the report.
    assert 0.5 < al.cover_small < cluster.INSIDE_SHARE and al.cover_big < cluster.QUOTED_SHARE
    assert verify(report, notice, P, words) is None
    assert verify(notice, cut, P, words) is not None
    assert groups_as_sets(cluster_documents([notice, report, cut], P, words)) == [{1, 3}]
    monkeypatch.setattr(cluster, "QUOTED_SHARE", 0.0)  # without the rule the report passed
    assert verify(report, notice, P, words) is not None
    # A copy that swapped the notice's two paragraphs shares all of it, in another order.
    swapped = words_of({1: NOTICE[len(QUOTED) :] + QUOTED})(1)
    assert align(words(1), swapped).shared < 0.8 * len(swapped) <= shared_any_order(words(1), swapped)


# Two announcements of one template: another meeting and another date in the lead, then the same
# paragraph of channels (~70 % of each text). The 4 of 3月4日 is also in "4K超高清频道". (Composed text.)
CHANNELS = (
    "届时，青川广播电视台新闻综合频道、都市生活频道、公共频道、4K超高清频道，青川人民广播电台新闻广播、交通广播、"
    "文艺广播等频率将进行现场直播，青川新闻客户端、青川发布微信公众号、青川日报视频号等新媒体平台将同步转播，欢迎广大市民收听收看。"
)
OPENING = "青川市政协十届三次会议将于3月4日下午3时在市民会堂开幕，市政协主席王建国将作市政协常委会工作报告。"
PLENARY = (
    "3月7日下午3时，青川市十五届人大三次会议将在市民会堂举行第二次全体会议，市人大常委会主任李卫东将作常委会工作报告。"
)


def test_announcements_of_one_template_that_share_their_channel_paragraph_are_not_copies(monkeypatch):
    from dedup import cluster
    from dedup.signature import jaccard

    texts = {
        1: OPENING + CHANNELS,
        2: "据青川日报消息，" + OPENING + CHANNELS.replace("收听收看", "收听收砍"),  # a copy with a typo
        3: PLENARY + CHANNELS,
        4: PLENARY + CHANNELS + "（编辑：何丽）",
    }
    docs = [sig(d, t) for d, t in texts.items()]
    # About one size, similar by the signatures, every number check passed.
    assert 0.5 <= jaccard(docs[0].signature, docs[2].signature) < cluster.ALIGN_BELOW_JACCARD
    assert number_conflicts(docs[0], docs[2]) == 0 and substitutions(docs[0], docs[2]) == 1
    words = words_of(texts)
    assert groups_as_sets(cluster_documents(docs, P, words)) == [{1, 2}, {3, 4}]
    # Taken as copies on their signatures, the two announcements merged.
    monkeypatch.setattr(cluster, "ALIGN_BELOW_JACCARD", 0.0)
    assert groups_as_sets(cluster_documents(docs, P, words)) == [{1, 2, 3, 4}]


def test_substitutions_read_anchors_stored_as_codes_or_as_json():
    import json

    import numpy as np

    from dedup.cluster import anchor_codes
    from dedup.store.files import pack_anchors

    def reference(x: list[tuple[int, int]], y: list[tuple[int, int]]) -> int:
        """Contexts both hold where they share no word, from sets."""
        cx, cy = {}, {}
        for c, w in x:
            cx.setdefault(c, set()).add(w)
        for c, w in y:
            cy.setdefault(c, set()).add(w)
        return sum(1 for c in cx.keys() & cy.keys() if not cx[c] & cy[c])

    rnd = random.Random(5)
    for _ in range(2_000):
        x = [(rnd.randrange(30), rnd.randrange(5)) for _ in range(rnd.randrange(25))]
        y = [(rnd.randrange(30), rnd.randrange(5)) for _ in range(rnd.randrange(25))] + x[: rnd.randrange(10)]
        a = DocSig(1, "", 1, np.zeros(1), anchors=anchor_codes(pack_anchors(x)))
        b = DocSig(2, "", 1, np.zeros(1), anchors=anchor_codes(json.dumps(y)))  # a database signed before
        assert substitutions(a, b) == substitutions(b, a) == reference(x, y)
    big = [(2**32 - 1, 2**32 - 2), (0, 7)]
    assert anchor_codes(pack_anchors(big)).tolist() == sorted([(2**32 - 1) << 32 | (2**32 - 2), 7])


# Two bulletins of one template a year apart: the lead is rewritten around other provinces and
# other sums, the rest of the text is kept word for word. (Composed text.)
RELIEF_REST = (
    "财政部、应急管理部有关负责人表示，资金将主要用于受灾群众转移安置、抢险救援和次生灾害隐患排查治理，"
    "帮助受灾地区尽快恢复正常生产生活秩序。有关部门要加强资金使用管理，确保资金及时拨付到位，专款专用，"
    "切实发挥资金使用效益，严禁截留、挤占和挪用。下一步，财政部、应急管理部将密切关注汛情灾情发展变化，"
    "会同有关方面指导地方做好防汛救灾各项工作，全力保障人民群众生命财产安全。"
)
RELIEF_2023 = (
    "记者从财政部、应急管理部联合召开的新闻通气会上获悉，针对近期河北、山西、内蒙古等地遭受暴雨洪涝灾害的情况，财政部、应急管理部紧急预拨中央自然灾害救灾资金"
    "3.2亿元，支持地方做好防汛抢险救灾工作。" + RELIEF_REST
)
RELIEF_2024 = (
    "记者从财政部、应急管理部联合召开的新闻通气会上获悉，为支持广东、福建两省应对台风强降雨过程，财政部、应急管理部今天下拨中央防汛抗旱补助资金"
    "8600万元，重点用于抢险救灾和水毁基础设施修复。" + RELIEF_REST
)


def test_a_bulletin_whose_lead_names_other_provinces_is_not_a_copy(monkeypatch):
    from dedup import cluster
    from dedup.align import align
    from dedup.cluster import verify
    from dedup.shingle import is_name

    texts = {
        1: RELIEF_2023,
        2: "来源：青川发布\n" + RELIEF_2023.replace("专款专用", "专款转用"),  # a copy with a typo
        3: RELIEF_2024,
        4: RELIEF_2023[: len(RELIEF_2023) * 3 // 4],  # a copy cut short
    }
    words = words_of(texts)
    docs = {d: sig(d, t) for d, t in texts.items()}
    al = align(words(1), words(3))
    # The lead is one passage replaced in place (not words swapped): the checks of numbers and
    # names swapped word for word see nothing in it; the rest of the text is shared.
    assert al.cover_small >= cluster.MIN_ALIGNED_SHARE
    assert not al.number_edits() and not al.name_edits(is_name) and len(al.passage_name_edits(is_name)) == 1
    assert verify(docs[1], docs[3], P, words) is None
    assert verify(docs[1], docs[2], P, words) is not None
    assert groups_as_sets(cluster_documents(list(docs.values()), P, words)) == [{1, 2, 4}]  # 3 alone
    monkeypatch.setattr(cluster, "MAX_PASSAGE_NAME_SWAPS", 99)  # without the rule the bulletins merged
    assert verify(docs[1], docs[3], P, words) is not None


def test_a_passage_mistyped_is_not_a_passage_with_other_names():
    from dedup.align import Edit, _mistyped

    def edit(a: str, b: str) -> Edit:
        return Edit(tuple(a.split()), tuple(b.split()))

    # jieba cuts a mistyped name into other words: the passage differs in its names, not its text.
    # (Composed text.)
    assert _mistyped(edit("记者 再 新 加 波 港口 看到 货轮", "记者 在 新加坡 港口 看到 货轮"))
    assert _mistyped(edit("沿着 长江 经济 代 一 路 向东 来到", "沿着 长江经济带 一路 向东 来到 了"))
    assert not _mistyped(edit("河北 山西 内蒙古 等 地 遭受 暴雨", "广东 福建 两省 应对 台风"))
