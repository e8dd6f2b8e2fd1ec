"""Each kind of evidence on its own, the external original and the skewed clock."""

import pytest

from dedup.attribute import DocInfo, load_sources, pick_original, profile_sites
from dedup.errors import ConfigError
from dedup.models import ROLE_COMPILATION, ROLE_COPY

SOURCES = load_sources()


def doc(i, site, when=None, credits=(), boilerplate=(), conf=1.0):
    return DocInfo(
        i, f"{site}/{i}.html", site, f"https://{site}/{i}", "", "标题", when, conf, list(credits), list(boilerplate)
    )


def known_publishers(profiles):
    """These tests weigh one kind of evidence at a time between sites the crawl knows: a site of one
    page is "unknown" to `profile_sites`, so the tests' one-page sites are taken for publishers."""
    for p in profiles.values():
        if p.role == "unknown":
            p.role = "publisher"
    return profiles


def attribute(docs, names=None, roles=None):
    by_site = {}
    for d in docs:
        by_site.setdefault(d.site, []).append(d)
    names = names or {}
    profiles = known_publishers(profile_sites(by_site, {s: [names.get(s, [])] for s in by_site}, SOURCES))
    for site, role in (roles or {}).items():
        profiles[site].role = role
    members = {d.doc_id: ROLE_COPY for d in docs}
    return pick_original(members, {d.doc_id: d for d in docs}, profiles)


def test_credit_lines_name_the_original_even_when_it_is_not_earliest():
    docs = [
        doc(1, "www.qcnews.cn", "2023-03-12T08:30:00+08:00"),
        doc(2, "www.sohu.com", "2023-03-12T07:00:00+08:00", ["青川日报"]),  # skewed clock
        doc(3, "www.163.com", "2023-03-12T11:00:00+08:00", ["青川日报"]),
        doc(4, "www.qingchuan-news.cn", "2023-03-12T06:00:00+08:00"),  # another publisher, earlier
    ]
    a = attribute(docs, names={"www.qcnews.cn": ["青川日报", "青川新闻网"]})
    assert a.original_id == 1
    assert any("2 other members credit 青川日报, which is this site" in r for r in a.reasons)
    assert a.parents[3] == 1


def test_publisher_beats_an_earlier_platform_copy():
    docs = [
        doc(1, "www.citynews.cn", "2023-07-03T09:12:00+08:00"),
        doc(2, "baijiahao.baidu.com", "2023-07-03T08:00:00+08:00"),
    ]
    a = attribute(docs)
    assert a.original_id == 1
    assert any("shows an earlier time" in r for r in a.reasons)


def test_earliest_time_decides_between_equals():
    docs = [
        doc(1, "www.a-daily.cn", "2023-07-03T10:00:00+08:00"),
        doc(2, "www.b-daily.cn", "2023-07-03T09:00:00+08:00"),
    ]
    a = attribute(docs)
    assert a.original_id == 2
    assert any("earliest publish time of the cluster, 2023-07-03 09:00" in r for r in a.reasons)


def test_a_date_without_time_does_not_claim_the_whole_day():
    docs = [
        doc(1, "www.a-daily.cn", "2023-07-03T00:00:00+08:00", conf=0.6),
        doc(2, "www.b-daily.cn", "2023-07-03T09:00:00+08:00"),
    ]
    assert attribute(docs).original_id == 2


def test_a_publisher_that_credits_another_source_is_a_copy():
    docs = [
        doc(1, "www.city.gov.cn", "2023-07-03T10:00:00+08:00", ["某某日报"]),
        doc(2, "www.bureau.gov.cn", "2023-07-03T11:00:00+08:00"),
    ]
    a = attribute(docs)
    assert a.original_id == 2


def test_external_original_when_all_members_credit_an_absent_source():
    docs = [
        doc(1, "www.sohu.com", "2023-07-03T10:00:00+08:00", ["远方日报"]),
        doc(2, "www.163.com", "2023-07-03T11:00:00+08:00", ["远方日报"]),
        doc(3, "www.farm-wenda.com", "2023-07-04T11:00:00+08:00", ["远方日报"], ["发布于:某县"]),
    ]
    a = attribute(docs)
    assert a.original_id is None and a.external_source == "远方日报"
    assert any("not in the crawl" in r for r in a.reasons)


def test_site_roles():
    by_site = {
        "www.farm.com": [
            doc(1, "www.farm.com", boilerplate=["发布于:某县"]),
            doc(2, "www.farm.com", boilerplate=["本文来源于网络,如有侵权请联系删除"]),
            doc(7, "www.farm.com"),
        ],
        "www.bureau.gov.cn": [doc(3, "www.bureau.gov.cn")],
        "mp.weixin.qq.com": [doc(4, "mp.weixin.qq.com")],
        "www.daily.cn": [doc(i, "www.daily.cn", credits=["某日报"]) for i in (5, 6, 8)],
        "www.lonely.cn": [doc(9, "www.lonely.cn")],
        "www.relay.cn": [
            doc(10 + i, "www.relay.cn", credits=[c]) for i, c in enumerate(["新华社", "某晚报", "某电视台"])
        ],
        # Furniture every publisher carries is not repost boilerplate.
        "www.paper.cn": [
            doc(20 + i, "www.paper.cn", boilerplate=["某报社 版权所有", "当前位置:首页"]) for i in range(3)
        ],
    }
    p = profile_sites(by_site, {}, SOURCES)
    assert p["www.farm.com"].role == "farm"
    assert p["www.bureau.gov.cn"].role == "publisher"
    assert p["mp.weixin.qq.com"].role == "platform" and "微信公众号" in p["mp.weixin.qq.com"].names
    assert p["www.daily.cn"].role == "publisher" and "某日报" in p["www.daily.cn"].names
    assert p["www.lonely.cn"].role == "unknown" and "too few to tell" in p["www.lonely.cn"].role_reason
    assert p["www.relay.cn"].role == "platform" and "3 different sources" in p["www.relay.cn"].role_reason
    assert p["www.paper.cn"].role == "publisher"


def test_a_name_several_sites_credit_is_a_shared_source_not_one_sites_name():
    # A government site reposts the city paper twice, crediting it both times; so does the
    # paper's own news site, whose pages end their titles with 上饶新闻网.
    by_site = {
        "www.county.gov.cn": [doc(i, "www.county.gov.cn", credits=["上饶日报"]) for i in (1, 2)],
        "www.srxww.cn": [doc(i, "www.srxww.cn", credits=["上饶日报"]) for i in (3, 4)],
        "www.other.gov.cn": [
            doc(5, "www.other.gov.cn", credits=["某日报"]),
            doc(6, "www.other.gov.cn", credits=["某日报"]),
        ],
    }
    names = {"www.srxww.cn": [["上饶新闻网"], ["上饶新闻网"]]}
    p = profile_sites(by_site, names, SOURCES)
    assert "上饶日报" not in p["www.county.gov.cn"].names
    assert "上饶日报" in p["www.srxww.cn"].names
    assert "某日报" in p["www.other.gov.cn"].names  # credited by no other site: its own


def test_copies_on_unknown_sites_crediting_an_agency_have_an_external_original():
    # Two one-page sites, one credits 新华社 in a closing line: nobody in the crawl is credited.
    docs = [
        doc(1, "www.portal-a.cn", "2023-07-03T10:00:00+08:00", ["新华社"]),
        doc(2, "www.portal-b.cn", "2023-07-03T09:00:00+08:00"),
    ]
    by_site = {d.site: [d] for d in docs}
    a = pick_original({1: ROLE_COPY, 2: ROLE_COPY}, {d.doc_id: d for d in docs}, profile_sites(by_site, {}, SOURCES))
    assert a.original_id is None and a.external_source == "新华社"
    assert a.reasons[0] == "1 copy credits 新华社, which is not in the crawl"


def test_copies_that_name_no_source_on_unknown_sites_crown_no_one():
    docs = [doc(1, "www.portal-a.cn", "2023-07-03T10:00:00+08:00"), doc(2, "www.portal-b.cn")]
    by_site = {d.site: [d] for d in docs}
    a = pick_original({1: ROLE_COPY, 2: ROLE_COPY}, {d.doc_id: d for d in docs}, profile_sites(by_site, {}, SOURCES))
    assert a.original_id is None and a.external_source is None
    assert "probably outside the crawl" in a.reasons[0]


def test_a_big5_gateway_or_mobile_host_is_never_crowned_over_its_sites_page():
    docs = [
        doc(1, "big5.www.bureau.gov.cn", "2023-07-03T09:00:00+08:00"),
        doc(2, "www.bureau.gov.cn", "2023-07-03T09:00:00+08:00"),
        doc(3, "m.bureau.gov.cn", "2023-07-03T09:00:00+08:00"),
    ]
    a = attribute(docs)
    assert a.original_id == 2
    assert {e.doc_id for e in a.evidence if e.kind == "mirror"} == {1, 3}


def test_a_tie_is_said_to_be_one():
    docs = [
        doc(1, "www.a-daily.cn", "2023-07-03T09:00:00+08:00"),
        doc(2, "www.b-daily.cn", "2023-07-03T09:00:00+08:00"),
    ]
    a = attribute(docs)
    assert a.confidence == 0.5
    assert any(r.startswith("a tie with www.b-daily.cn (both score") for r in a.reasons)


def test_compilations_are_never_the_original():
    docs = [
        doc(1, "www.a-daily.cn", "2023-07-03T10:00:00+08:00"),
        doc(2, "www.b-daily.cn", "2023-07-01T09:00:00+08:00"),
    ]
    by_site = {d.site: [d] for d in docs}
    profiles = known_publishers(profile_sites(by_site, {}, SOURCES))
    a = pick_original({1: ROLE_COPY, 2: ROLE_COMPILATION}, {d.doc_id: d for d in docs}, profiles)
    assert a.original_id == 1 and a.roles[2] == ROLE_COMPILATION


def test_sources_file_errors(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text('[[source]]\nname = "x"\nrole = "owner"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="needs a name and a role"):
        load_sources(bad)
    extra = tmp_path / "e.toml"
    extra.write_text('[[source]]\nname = "青川日报"\ndomains = ["qcnews.cn"]\nrole = "publisher"\n', encoding="utf-8")
    assert any(s.name == "青川日报" for s in load_sources(extra))


def test_a_canonical_link_names_the_original():
    a_ = doc(1, "www.a-daily.cn", "2023-07-03T10:00:00+08:00")
    b_ = doc(2, "www.b-daily.cn", "2023-07-03T09:00:00+08:00")
    b_.canonical_url = "http://www.a-daily.cn/1"  # b syndicates a's article and says so
    a_.url = "https://www.a-daily.cn/1"
    a = attribute([a_, b_])
    assert a.original_id == 1
    assert any(e.kind == "canonical" and e.doc_id == 1 for e in a.evidence)
    assert any(e.kind == "points_away" and e.doc_id == 2 for e in a.evidence)


def test_the_fuller_text_beats_a_truncated_copy_of_the_same_standing():
    docs = [
        doc(1, "www.a-daily.cn", "2023-07-03T10:00:00+08:00"),
        doc(2, "www.b-daily.cn", "2023-07-03T10:00:00+08:00"),
    ]
    by_site = {d.site: [d] for d in docs}
    profiles = known_publishers(profile_sites(by_site, {}, SOURCES))
    # doc 1 lies inside doc 2 (1 is a truncated copy of 2)
    a = pick_original({1: ROLE_COPY, 2: ROLE_COPY}, {d.doc_id: d for d in docs}, profiles, overlaps={(2, 1): 0.97})
    assert a.original_id == 2
    assert {e.kind for e in a.evidence if e.doc_id == 2} >= {"fullest"}


def test_a_copy_carrying_another_platforms_boilerplate_was_copied_from_it():
    from dedup.attribute import platform_names

    statement = "声明:该文观点仅代表作者本人,搜狐号系信息发布平台,搜狐仅提供信息存储空间服务。"
    docs = [
        doc(1, "www.citynews.cn", "2023-07-01T08:00:00+08:00"),
        doc(2, "www.sohu.com", "2023-07-01T12:00:00+08:00", boilerplate=[statement]),
        doc(3, "www.some-wenda.com", "2023-07-02T12:00:00+08:00", boilerplate=[statement, "发布于:某县"]),
    ]
    by_site = {d.site: [d] for d in docs}
    profiles = known_publishers(profile_sites(by_site, {}, SOURCES))
    members = {d.doc_id: ROLE_COPY for d in docs}
    a = pick_original(members, {d.doc_id: d for d in docs}, profiles, platform_names=platform_names(SOURCES))
    assert a.original_id == 1
    assert a.parents[3] == 2  # a repost of the Sohu repost
    assert any(e.kind == "foreign_boilerplate" and e.doc_id == 3 for e in a.evidence)
    assert not any(e.kind == "foreign_boilerplate" and e.doc_id == 2 for e in a.evidence)
    assert 0 < a.confidence <= 1


def test_external_original_with_its_address():
    docs = [
        doc(1, "www.sohu.com", "2023-07-03T10:00:00+08:00", ["远方日报"]),
        doc(2, "www.163.com", "2023-07-03T11:00:00+08:00", ["远方日报"]),
    ]
    docs[0].canonical_url = "http://www.faraway-daily.cn/2023/0703/1.html"
    a = attribute(docs)
    assert a.original_id is None
    assert a.external_source == "远方日报 (http://www.faraway-daily.cn/2023/0703/1.html)"


def test_a_site_that_mostly_credits_an_agency_does_not_take_its_name():
    docs = [doc(i, "www.portal.cn", credits=["新华社"]) for i in range(4)]
    p = profile_sites({"www.portal.cn": docs}, {}, SOURCES)
    assert "新华社" not in p["www.portal.cn"].names


def test_a_yuan_biaoti_line_names_the_original():
    a_ = doc(1, "www.a-daily.cn", "2023-07-03T10:00:00+08:00")
    a_.title = "全市春季植树活动启动"
    b_ = doc(2, "www.b-daily.cn", "2023-07-03T09:00:00+08:00")
    b_.title = "植树节到了！快来看看"
    b_.original_title = "全市春季植树活动启动"
    a = attribute([a_, b_])
    assert a.original_id == 1
    assert any(e.kind == "titled" and e.doc_id == 1 for e in a.evidence)


def test_times_in_other_zones_compare_in_utc():
    # 09:30 in UTC is 17:30 in Shanghai: later than 10:00 +08:00 although it reads earlier.
    docs = [
        doc(1, "www.a-daily.cn", "2023-07-03T09:30:00+00:00"),
        doc(2, "www.b-daily.cn", "2023-07-03T10:00:00+08:00"),
    ]
    assert attribute(docs).original_id == 2


def test_a_crawl_time_bounds_a_page_without_a_publish_time():
    early = doc(1, "www.a-daily.cn")
    early.fetched_at = "2023-07-02T12:00:00+00:00"  # fetched before the other was published
    docs = [early, doc(2, "www.b-daily.cn", "2023-07-03T10:00:00+08:00")]
    a = attribute(docs)
    assert a.original_id == 1


def test_a_fetched_copy_before_a_credited_original_is_reported_not_crowned():
    orig = doc(1, "www.qcnews.cn", "2023-03-12T08:30:00+08:00")
    early = doc(2, "www.sohu.com", None, ["青川日报"])
    early.fetched_at = "2023-03-11T00:00:00+00:00"
    a = attribute([orig, early], names={"www.qcnews.cn": ["青川日报"]})
    assert a.original_id == 1
    assert any("www.sohu.com shows an earlier time 2023-03-11 00:00" in r for r in a.reasons)


def test_a_titles_key_keeps_what_isalnum_keeps_on_every_code_point():
    """attribute._title_key drops with one regular expression what str.isalnum() rejects: the same
    on every code point (and on a title of mixed scripts, case folded first)."""
    import sys

    from dedup.attribute import _title_key

    every = "".join(map(chr, range(sys.maxunicode + 1)))
    assert _title_key(every) == "".join(c for c in every.lower() if c.isalnum())
    assert _title_key("【快讯】上饶 DAILY_News：2023年第３期！") == "快讯上饶dailynews2023年第３期"


def test_a_sites_tied_names_and_credits_keep_the_order_of_its_pages():
    """A site's names (and credits) that tie keep the order they were met in, not a set's order,
    which changes with the process's hash seed: the same crawl gives the same sites table."""
    from dedup.attribute import SiteTally, profile_tallies

    names = ["上饶日报", "上饶新闻网", "信江日报", "赣东北报", "上饶发布", "饶城晚报"]
    t = SiteTally()
    for _ in range(3):
        t.add(credits=list(reversed(names)), boilerplate=[], site_names=names)
    assert list(t.names) == names and list(t.credited) == list(reversed(names))
    again = SiteTally.from_json(t.to_json())
    assert list(again.names) == names and list(again.credited) == list(reversed(names))
    assert profile_tallies({"www.srxww.com": again}, [])["www.srxww.com"].names[: len(names)] == names
