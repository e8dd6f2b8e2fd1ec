"""Clustering on real story texts: copies join, template siblings and compilations do not merge."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.candidates import cluster_documents, document_sig
from dedup.cluster import DocSig, UnionFind, number_conflicts, substitutions
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
