"""`dedup scan --engine ray`: the same database as the local engine (same ids, clusters, originals,
roles), on a first scan and on the next night's, with reading, signing, the candidate search,
verification and attribution run as Ray tasks on a local Ray of 2 CPUs (started once for this module)."""

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup import attributing, candidates, pipeline
from dedup.candidates import find_batch_pairs
from dedup.cli import cli
from dedup.dbfile import ScanLock
from dedup.engine import LOCAL
from dedup.models import Params, ScanOptions
from dedup.pipeline import scan
from dedup.workers import TaskFailure
from tests.conftest import ROOT
from tests.test_cluster import NOTICE_TEMPLATE

ray = pytest.importorskip("ray")
from dedup.ray_engine import RayEngine  # noqa: E402

DEV_CRAWL = ROOT.parent / "shared" / "corpus" / "dev" / "crawl"
# Notices of one template, enough for band buckets over BUCKET_ALL_PAIRS rows (chained by content
# hash, which the Ray tasks read from the database).
NOTICES = 70


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray of 2 CPUs for the module; its address, for a CLI run in another process."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


# Stories in the style of a city's bulletins, their reposts (retitled, boilerplate around, a credit
# line, cut short), a compilation carrying two of them, and short pages of their own.
STORIES = {
    "water": (
        "江北区供水管网改造工程今日开工",
        "本报讯（记者 林晓雯）12日上午，江北区老旧供水管网改造工程在滨江路正式开工。工程全长约18.6公里，"
        "总投资2.3亿元，涉及沿线居民小区47个、居民1.2万余户。区住建局负责人介绍，改造将更换使用超过三十年的"
        "铸铁管道，新建智能水表和压力监测点，预计明年6月底前全部完工。施工期间将采取分段施工、夜间作业等方式，"
        "尽量减少对市民出行和生活用水的影响，停水信息将提前两天通过社区公告和政务新媒体发布。"
        "区供水公司同时开通了24小时服务热线，及时处理施工中出现的问题。",
    ),
    "library": (
        "市图书馆新馆国庆前开放 藏书将达三百万册",
        "记者从市文化和旅游局获悉，位于新城中央公园东侧的市图书馆新馆主体工程已经完工，正在进行内部装修和设备调试，"
        "计划于国庆节前对外开放。新馆建筑面积5.6万平方米，设阅览座位3200个，设计藏书量300万册，"
        "设有少儿阅读区、古籍修复中心、数字体验馆和24小时自助借阅区。开馆后将实行免费开放，"
        "读者凭身份证或社保卡即可办理借阅证。市文旅局表示，新馆还将与全市12个区县分馆实现通借通还。",
    ),
    "market": (
        "农贸市场升级改造完成 摊位实行统一管理",
        "经过四个月的升级改造，位于老城区解放路的东门农贸市场日前重新开业。改造后的市场面积扩大到8000平方米，"
        "设置蔬菜、肉类、水产、干货等经营区域，共有摊位260个。市场引入了食品安全快速检测室和电子追溯系统，"
        "每天对上市蔬菜进行农药残留抽检，检测结果在大屏幕上实时公示。市场监管部门表示，"
        "将加强日常巡查，严厉查处短斤缺两、以次充好等违法行为，保障市民菜篮子安全。",
    ),
}
AD = "【推广】下载本地头条客户端，第一时间获取身边新闻，扫码即可领取新人福利！"


def page(title: str, text: str, site: str, when: str, credit: str = "") -> str:
    body = "".join(f"<p>{para}</p>\n" for para in text.split("\n") if para)
    extra = f"<p>来源：{credit}</p>\n" if credit else ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="UTF-8"><title>{title}_{site}</title>\n'
        f'<meta property="article:published_time" content="{when}">\n'
        f'<meta property="og:title" content="{title}"></head><body><div class="article">\n'
        f"<h1>{title}</h1>\n{body}{extra}<p>{AD}</p>\n</div></body></html>\n"
    )


def night_one(root: Path) -> None:
    """The originals, two reposts each, a compilation, the notice family and a JSON Lines feed."""
    for n, (key, (title, text)) in enumerate(STORIES.items()):
        day = 10 + n
        files = {
            f"www.jiangbei.gov.cn/2024/03{day}/{key}.html": page(
                title, text, "江北区政府网", f"2024-03-{day}T09:00:00+08:00"
            ),
            f"www.sohu.com/2024/03{day}/{key}_1.html": page(
                "【关注】" + title, text, "搜狐网", f"2024-03-{day}T13:20:00+08:00", "江北区政府网"
            ),
            f"www.163.com/2024/03{day}/{key}.html": page(
                title, text[: len(text) * 2 // 3], "网易", f"2024-03-{day}T16:45:00+08:00", "江北发布"
            ),
        }
        for rel, html in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(html, encoding="utf-8")
    # A weekly digest: an introduction, then the three stories under their titles.
    digest = [
        "本周江北区民生工程进展顺利，多个项目开工或完工，下面为您汇总本周区内的主要新闻，欢迎转发分享给身边的朋友。"
    ]
    for title, text in STORIES.values():
        digest += [title, text]
    comp = root / "www.zixunhui.com/2024/0320/daily.html"
    comp.parent.mkdir(parents=True, exist_ok=True)
    comp.write_text(page("本周江北要闻汇总", "\n".join(digest), "资讯汇", "2024-03-20T08:00:00+08:00"), "utf-8")
    notices = root / "www.jbqx.cn/notice"
    notices.mkdir(parents=True)
    for i in range(NOTICES):
        text = NOTICE_TEMPLATE.format(day=3, hour=8, low=2, high=10, humid=60) + f"编号{i + 100}。"
        (notices / f"{i}.txt").write_text(f"天气预报第{i}期\n\n{text}\n", encoding="utf-8")
    feed = root / "feeds/crawl-20240321.jsonl"
    feed.parent.mkdir(parents=True)
    rows = [
        {"url": "https://new.qq.com/a/1", "title": STORIES["market"][0], "content": STORIES["market"][1],
         "published_at": "2024-03-21 10:00"},
        {"url": "https://new.qq.com/a/2", "title": "短讯", "content": "今天天气晴。",
         "published_at": "2024-03-21 11:00"},
    ]  # fmt: skip
    feed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def night_two(root: Path) -> None:
    """Next night: more reposts of the stories, a new story and its copy, more notices."""
    title, text = STORIES["library"]
    more = root / "mp.weixin.qq.com/2024/0322/library.html"
    more.parent.mkdir(parents=True, exist_ok=True)
    more.write_text(page(title, text + "\n编辑：赵敏 审核：钱江", "江北文旅", "2024-03-22T07:30:00+08:00"), "utf-8")
    new = (
        "全区启动春季消防安全大检查，重点检查人员密集场所、高层建筑和老旧小区的消防通道、消防设施运行情况，"
        "对发现的隐患建立台账、限期整改，检查将持续到五月底。区消防救援大队同时在各街道开展消防宣传进社区活动，"
        "向居民讲解家庭火灾预防和初起火灾扑救知识，提醒市民不要在楼道内停放电动自行车或为其充电。"
    )
    for site, when in (
        ("www.jiangbei.gov.cn", "2024-03-22T09:00:00+08:00"),
        ("www.sohu.com", "2024-03-22T15:00:00+08:00"),
    ):
        path = root / f"{site}/2024/0322/fire.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page("春季消防安全大检查启动", new, site, when), encoding="utf-8")
    for i in range(NOTICES, NOTICES + 5):
        text = NOTICE_TEMPLATE.format(day=3, hour=8, low=2, high=10, humid=60) + f"编号{i + 100}。"
        (root / f"www.jbqx.cn/notice/{i}.txt").write_text(f"天气预报第{i}期\n\n{text}\n", encoding="utf-8")


def exported(db: Path) -> str:
    r = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture
def counted(monkeypatch):
    """Counts what the Ray engine ran, and checks every batch's pairs against the local search."""
    calls = {"run_tasks": 0, "find_pairs": 0, "pairs": 0, "group": 0, "tasks": set()}
    run, find, group_on_ray = RayEngine.run_tasks, RayEngine.find_pairs, RayEngine.group

    def run_tasks(self, fn, items, jobs, *args, **kwargs):
        if not kwargs.get("in_process"):
            calls["run_tasks"] += 1
            calls["tasks"].add(getattr(fn, "__name__", None))
        return run(self, fn, items, jobs, *args, **kwargs)

    def find_pairs(self, search):
        got = find(self, search)
        assert got == find_batch_pairs(search)
        calls["find_pairs"] += 1
        calls["pairs"] += len(got)
        return got

    def group(self, sizes, copies, edges, params, store):
        got = group_on_ray(self, sizes, copies, edges, params, store)
        # The same groups, members, roles, edges and similarities, in the same order, as the local engine's.
        assert got == LOCAL.group(sizes, copies, edges, params, store)
        calls["group"] += 1
        return got

    monkeypatch.setattr(RayEngine, "run_tasks", run_tasks)
    monkeypatch.setattr(RayEngine, "find_pairs", find_pairs)
    monkeypatch.setattr(RayEngine, "group", group)
    # Every verification through the engine, however few the pairs.
    monkeypatch.setattr(pipeline, "VERIFY_IN_WORKERS", 0)
    # Every attribution through the engine too, a cluster a task.
    monkeypatch.setattr(attributing, "ATTRIBUTE_IN_WORKERS", 0)
    monkeypatch.setattr(attributing, "ATTRIBUTE_CHUNK", 1)
    return calls


def test_a_scan_with_nothing_new_never_starts_ray(tmp_path):
    """A nightly run with nothing new (here on a database the local engine wrote: the engines share
    it) starts no Ray: no file to read, document to sign or text to match. (First in the module:
    its Ray is not started yet.)"""
    assert not ray.is_initialized()
    crawl = tmp_path / "crawl"
    night_one(crawl)
    db = tmp_path / "d.db"
    scan(crawl, db, Params(), jobs=2)
    before = exported(db)
    again = scan(crawl, db, Params(), options=ScanOptions(engine="ray"))
    assert again.files_unchanged == again.files_seen > 0 and again.files_read == again.pairs_verified == 0
    assert not ray.is_initialized()
    assert exported(db) == before


def test_a_composed_crawl_and_its_next_night_on_ray_equal_the_local_engine(tmp_path, ray_address, counted, monkeypatch):
    # Index batches of 16 texts: a run writes several segments, and the Ray tasks, which get the
    # documents' live segments once a run, must see the rows of the run's earlier batches.
    monkeypatch.setattr(candidates, "INDEX_BATCH", 16)
    crawl = tmp_path / "crawl"
    night_one(crawl)
    local, on_ray = tmp_path / "local.db", tmp_path / "ray.db"
    first_local = scan(crawl, local, Params(), jobs=2)
    first_ray = scan(crawl, on_ray, Params(), options=ScanOptions(jobs=2, engine="ray"))
    assert counted["run_tasks"] >= 3 and counted["find_pairs"] == 6 and counted["pairs"] > NOTICES
    assert counted["group"] == 1  # connected components found and grouped on Ray too
    assert "attribute_task" in counted["tasks"]  # and the clusters' originals picked there
    assert first_ray.clusters == first_local.clusters == 3
    assert first_ray.pairs_verified == first_local.pairs_verified > 0
    assert exported(on_ray) == exported(local)

    night_two(crawl)
    calls_before = counted["find_pairs"]
    second_local = scan(crawl, local, Params(), jobs=2)
    second_ray = scan(crawl, on_ray, Params(), options=ScanOptions(jobs=2, engine="ray"))
    assert second_ray.files_new == second_local.files_new == 8
    # Only the new texts' pairs, found in the first night's index (a segment added beside it).
    assert second_ray.pairs_verified == second_local.pairs_verified
    assert 0 < second_ray.pairs_verified < first_ray.pairs_verified
    for db in (local, on_ray):
        assert sorted(p.name for p in Path(f"{db}.index").iterdir()) == sorted(
            f"seg-{n}.{part}.npy" for n in range(1, 8) for part in ("keys", "vals")
        )
    assert counted["find_pairs"] == calls_before + 1
    assert second_ray.documents_regrouped == second_local.documents_regrouped
    assert second_ray.clusters == second_local.clusters == 4
    out = exported(on_ray)
    assert out == exported(local)
    rows = [json.loads(line) for line in out.splitlines()]
    fire = [r for r in rows if r["path"].endswith("fire.html")]
    assert len(fire) == 2 and fire[0]["cluster"] == fire[1]["cluster"] is not None
    assert any(r["role"] == "compilation" for r in rows)


def test_the_ray_tasks_fail_one_item_at_a_time_in_order(ray_address):
    """A task that raises, kills its worker or runs past the timeout is a TaskFailure in its place;
    the others' results come in input order; the initializer runs in the workers."""

    def init(tag):
        os.environ["DEDUP_TEST_TAG"] = tag

    def work(x):
        if x == 2:
            raise ValueError("bad item")
        if x == 4:
            os._exit(3)
        if x == 6:
            time.sleep(60)
        return (x * x, os.environ.get("DEDUP_TEST_TAG"))

    engine = RayEngine(jobs=2)
    t0 = time.monotonic()
    out = list(engine.run_tasks(work, list(range(8)), 2, init, ("ready",), timeout=5))
    assert time.monotonic() - t0 < 40
    assert [o for i, o in enumerate(out) if i not in (2, 4, 6)] == [(x * x, "ready") for x in (0, 1, 3, 5, 7)]
    assert out[2] == TaskFailure("ValueError: bad item")
    assert isinstance(out[4], TaskFailure) and out[4].reason.startswith("worker process died")
    assert out[6] == TaskFailure("timed out after 5 s (worker killed)")


def test_an_initializer_that_always_fails_stops_the_stage(ray_address):
    def init():
        raise OSError("no such boilerplate file")

    engine = RayEngine(jobs=2)
    with pytest.raises(RuntimeError, match="failed to set up the stage 3 times in a row; last: initializer failed: "):
        list(engine.run_tasks(abs, list(range(10)), 2, init, ()))


def dedup_process(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dedup", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def test_cron_contract_with_the_ray_engine(tmp_path, ray_address):
    """Through the real command joining the module's Ray: quiet success prints nothing and exits
    0; a second scan of a locked database exits 75 at once with one line, before reaching Ray."""
    crawl = tmp_path / "crawl"
    night_one(crawl)
    db = tmp_path / "d.db"
    r = dedup_process("scan", crawl, "--db", db, "--engine", "ray", "--address", ray_address, "--quiet")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    with ScanLock(db).acquire(0):
        t0 = time.monotonic()
        r = dedup_process("scan", crawl, "--db", db, "--engine", "ray", "--address", ray_address, "--quiet")
        assert time.monotonic() - t0 < 10
    assert r.returncode == 75 and r.stdout == ""
    assert r.stderr.startswith(f"Error: another dedup scan is running on {db} ") and r.stderr.count("\n") == 1
    runs = CliRunner().invoke(cli, ["runs", "--db", str(db), "--nl"])
    assert [json.loads(x)["status"] for x in runs.output.splitlines()] == ["done"]


def test_an_unreachable_cluster_is_one_line_and_exit_1(tmp_path):
    """--address where no Ray listens: one line at once, exit 1, no database made."""
    crawl = tmp_path / "crawl"
    night_one(crawl)
    db = tmp_path / "d.db"
    r = dedup_process("scan", crawl, "--db", db, "--engine", "ray", "--address", "127.0.0.1:1", "-q", timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("Error: cannot reach the Ray cluster at 127.0.0.1:1: ") and r.stderr.count("\n") == 1
    assert not db.exists()


@pytest.mark.skipif(not DEV_CRAWL.is_dir(), reason="../shared/corpus/dev/crawl not beside the checkout (CI)")
def test_the_dev_corpus_on_ray_equals_the_local_engine(tmp_path, ray_address, counted):
    local, on_ray = tmp_path / "local.db", tmp_path / "ray.db"
    scan(DEV_CRAWL, local, Params(), jobs=2)
    scan(DEV_CRAWL, on_ray, Params(), options=ScanOptions(jobs=2, engine="ray"))
    assert counted["find_pairs"] >= 1 and counted["run_tasks"] >= 3
    assert exported(on_ray) == exported(local)
