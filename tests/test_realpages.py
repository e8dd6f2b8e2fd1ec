"""End to end on crawls shaped like the real web: a city paper's site and its reposts (the seed
example's case), farm copies with junk inside the text, template siblings. Texts composed here."""

from pathlib import Path

from dedup.models import Params
from dedup.pipeline import scan
from dedup.store import Store

MARKET = (
    "近日，记者从市商务局获悉，今年前三季度全市社会消费品零售总额达到六百八十二亿元，同比增长百分之七点三，"
    "增速居全省第二位。其中，城镇消费品零售额五百四十一亿元，乡村消费品零售额一百四十一亿元。"
    "市商务局有关负责人介绍，今年以来，我市先后举办汽车消费节、家电以旧换新等促消费活动四十余场，"
    "发放消费券一点二亿元，带动消费超过三十亿元。下一步，全市将继续加大促消费力度，"
    "培育夜间经济和首店经济，推动商贸流通企业提质升级，确保全年消费市场平稳增长。"
)
BRIDGE = (
    "信江大桥维修加固工程日前全面完工并恢复通车。该工程于今年三月开工，对桥面铺装、伸缩缝和护栏进行了全面更换，"
    "对主梁裂缝进行了封闭和粘贴钢板加固。市城管局相关负责人表示，工程完工后，大桥通行能力和安全性能大幅提升，"
    "将有效缓解城区东西向交通压力，为市民出行提供更加安全便捷的通道。"
)
SCHOOL = (
    "市第五中学新校区日前正式投入使用，新校区占地一百二十亩，建有教学楼、实验楼、图书馆和体育馆等设施，"
    "可容纳学生三千人。新校区的启用有效缓解了城北片区学位紧张的问题，区教育局表示，"
    "今年秋季将新增学位一千五百个，满足片区适龄儿童就近入学需求。"
)


def page(title: str, site_name: str, when: str, credit: str, body: str) -> str:
    paras = "".join(f"<p>{p}。</p>" for p in body.split("。") if p)
    return (
        f"<html><head><meta charset='utf-8'><title>{title}_{site_name}</title></head><body>"
        f"<h1>{title}</h1><div class='info'>{when} 来源：{credit}</div>"
        f"<div class='article'>{paras}</div><div class='footer'>{site_name} 版权所有</div></body></html>"
    )


def write(root: Path, rel: str, text: str, encoding: str = "utf-8") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)


def exported(db: Path) -> dict[str, dict]:
    store = Store(db, readonly=True)
    try:
        return {r["path"]: r for r in store.export_rows()}
    finally:
        store.close()


def test_the_city_papers_own_page_is_the_original_of_its_story(tmp_path):
    # The paper's site publishes with 来源：上饶日报; a county government site and a platform repost
    # crediting the paper (the government site twice, with date-only times); a farm page a year
    # later compiles the three stories under a source line of its own.
    crawl = tmp_path / "crawl"
    paper = "www.srxww.cn"
    write(
        crawl,
        f"{paper}/2023/1012/1.html",
        page("前三季度我市消费市场稳中向好", "上饶新闻网", "2023-10-12 08:05", "上饶日报", MARKET),
    )
    write(
        crawl,
        f"{paper}/2023/1012/2.html",
        page("信江大桥恢复通车", "上饶新闻网", "2023-10-12 08:20", "上饶日报", BRIDGE),
    )
    write(
        crawl,
        f"{paper}/2023/1013/3.html",
        page("市五中新校区投入使用", "上饶新闻网", "2023-10-13 07:50", "上饶日报", SCHOOL),
    )
    gov = "www.county.gov.cn"
    write(
        crawl,
        f"{gov}/2023/1013/art_1.html",
        page("前三季度我市消费市场稳中向好", "某县人民政府", "2023-10-13", "上饶日报", MARKET),
    )
    write(
        crawl, f"{gov}/2023/1013/art_2.html", page("信江大桥恢复通车", "某县人民政府", "2023-10-13", "上饶日报", BRIDGE)
    )
    write(
        crawl, "www.sohu.com/2023/1012/1.html", page("消费市场稳中向好", "搜狐", "2023-10-12 09:30", "上饶日报", MARKET)
    )
    compilation = "。".join((MARKET, BRIDGE, SCHOOL)).replace("。。", "。")
    write(
        crawl,
        "www.xxwenda.com/2024/0617/1.txt",
        f"上饶三则\n发布于:某县\n\n{compilation}\n本文来源于网络，如有侵权请联系删除\n",
    )
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    rows = exported(db)
    market = rows[f"{paper}/2023/1012/1.html"]
    assert market["original"] is True and market["role"] == "original"
    for copy in (f"{gov}/2023/1013/art_1.html", "www.sohu.com/2023/1012/1.html"):
        assert rows[copy]["cluster"] == market["cluster"] and rows[copy]["original"] is False
    assert rows[f"{paper}/2023/1012/2.html"]["original"] is True
    assert rows["www.xxwenda.com/2024/0617/1.txt"]["role"] == "compilation"
    store = Store(db, readonly=True)
    sites = {r[0]: (r[1], r[2]) for r in store.db.execute("SELECT site, names, role FROM sites")}
    store.close()
    assert "上饶日报" not in sites[gov][0]  # a name several sites credit is a source they share


NEWS = (
    "新华社北京7月3日电 记者从国家能源局获悉，截至6月底，全国可再生能源发电装机容量达到13.22亿千瓦，"
    "同比增长18.2%，约占我国总装机的48.8%。其中，水电装机4.18亿千瓦，风电装机3.89亿千瓦，"
    "光伏发电装机4.7亿千瓦，生物质发电装机0.43亿千瓦。上半年，全国可再生能源发电量达1.34万亿千瓦时，"
    "约占全部发电量的31.4%。国家能源局有关负责人表示，下一步将加快推进大型风电光伏基地建设，"
    "持续提升可再生能源消纳能力，推动能源绿色低碳转型。"
)


def test_farm_copies_with_junk_join_and_siblings_with_other_figures_do_not(tmp_path):
    crawl = tmp_path / "crawl"
    write(crawl, "www.portal-a.cn/1.txt", f"可再生能源装机突破13亿千瓦\n\n{NEWS}\n")
    # A Traditional farm: pinyin notes on a few characters, '??' line prefixes, a font tag in a number.
    trad = (
        NEWS.replace("国家能源局", "國(guó)家能源局", 1)
        .replace("装机", "裝(zhuāng)機", 1)
        .replace("13.22", "1<font color=red>3.2</font>2")
        .replace("。其中", "。\n??其中")
    )
    write(crawl, "www.farm-b.com/1.txt", f"??{trad}\n国产精品,在线观看,澳门赌场,网站入口,欧美一区\n")
    # Another month's release from the same template: other figures in the same sentences.
    sibling = (
        NEWS.replace("6月底", "9月底")
        .replace("13.22", "13.82")
        .replace("18.2%", "20.1%")
        .replace("48.8%", "49.9%")
        .replace("4.7亿", "5.1亿")
        .replace("1.34万亿", "2.08万亿")
        .replace("7月3日", "10月9日")
    )
    write(crawl, "www.portal-c.cn/1.txt", f"可再生能源装机再创新高\n\n{sibling}\n")
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=1)
    rows = exported(db)
    a, b, c = rows["www.portal-a.cn/1.txt"], rows["www.farm-b.com/1.txt"], rows["www.portal-c.cn/1.txt"]
    assert a["cluster"] is not None and a["cluster"] == b["cluster"]
    assert c["cluster"] is None
    # Two one-page sites, an agency dateline: the original is 新华社's, outside the crawl.
    assert not a["original"] and not b["original"]


def test_copies_cut_at_different_points_join(tmp_path):
    crawl = tmp_path / "crawl"
    long = MARKET + BRIDGE.replace("信江大桥", "城东大桥")
    write(crawl, "www.site-a.cn/1.txt", f"标题甲\n\n{long[:260]}\n")  # cut early
    write(crawl, "www.site-b.cn/1.txt", f"标题乙\n\n{long[90:]}\n")  # lead dropped, full end
    scan(crawl, tmp_path / "d.db", Params(), jobs=1)
    rows = exported(tmp_path / "d.db")
    assert rows["www.site-a.cn/1.txt"]["cluster"] == rows["www.site-b.cn/1.txt"]["cluster"] is not None
