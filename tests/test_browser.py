"""The report in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
driven by Selenium opens the report of the sample crawl from disk (file://, no network), filters
the index, opens a cluster, finds the original marked and the diff, and saves docs/report.png; a
hostile crawl's report runs none of its pages' scripts. Skipped, with the reason, where no browser
is installed (.ci/run installs one)."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import BUS, ROOT, SAMPLE, TREES
from tests.test_html_report import HOSTILE_TITLE, exported, run, write_hostile_crawl

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "docs" / "report.png"
# Root in a container needs --no-sandbox; the rest keep a headless run quiet and off the network.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,2200", "--lang=zh-CN",
]  # fmt: skip


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            return f"{path} is missing (apt-get install -y {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given: Selenium Manager (which would download one) is never asked.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def errors(driver) -> list[str]:
    """The console's errors since the last call (a blocked script or style would be one)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_report_in_a_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    crawl, db, out = tmp_path / "crawl", tmp_path / "d.db", tmp_path / "report"
    shutil.copytree(SAMPLE, crawl, ignore=shutil.ignore_patterns("*.md"))
    assert run("scan", crawl, "--db", db, "--jobs", "1", "--quiet").exit_code == 0
    assert run("report", "--html", out, "--db", db).exit_code == 0
    rows = exported(db)

    browser.get((out / "index.html").as_uri())
    assert browser.find_element(By.ID, "total").text == "共 3 个聚类"
    body = browser.find_element(By.ID, "clusters-body")
    assert len(body.find_elements(By.TAG_NAME, "tr")) == 3
    assert browser.find_element(By.ID, "shown").text == "显示 3 / 3 个聚类"
    # Sorted by size, largest first; a click on the header turns it round.
    sizes = lambda: [int(tr.find_elements(By.TAG_NAME, "td")[1].text) for tr in body.find_elements(By.TAG_NAME, "tr")]  # noqa: E731
    assert sizes() == [5, 4, 4]
    browser.find_element(By.CSS_SELECTOR, 'th[data-sort="size"]').click()
    assert sizes() == [4, 4, 5]
    # Filters: by site (one cluster has a page on the Q&A farm), by size, by date.
    Select(browser.find_element(By.ID, "f-site")).select_by_value("www.lvyewenda.com")
    assert [tr.find_element(By.TAG_NAME, "a").text for tr in body.find_elements(By.TAG_NAME, "tr")] == [
        f"#{rows[BUS]['cluster']}"
    ]
    assert browser.find_element(By.ID, "shown").text == "显示 1 / 3 个聚类"
    browser.find_element(By.ID, "f-reset").click()
    browser.find_element(By.ID, "f-min").send_keys("5")
    assert len(body.find_elements(By.TAG_NAME, "tr")) == 1
    browser.find_element(By.ID, "f-reset").click()
    browser.execute_script(
        "const e = document.getElementById('f-to'); e.value = '2023-03-09'; e.dispatchEvent(new Event('change'));"
    )
    assert len(body.find_elements(By.TAG_NAME, "tr")) == 1  # only the flood drill started by 9 March
    browser.find_element(By.ID, "f-reset").click()

    # Open the tree-planting story from the index.
    cid = rows[TREES]["cluster"]
    browser.find_element(By.CSS_SELECTOR, f'#clusters-body a[href="c/{cid}.html"]').click()
    assert browser.current_url.endswith(f"/c/{cid}.html")
    verdict = browser.find_element(By.ID, "verdict")
    assert verdict.text.startswith("原始来源: 青川新闻网 www.qcnews.cn (可信度高 0.99) — 因为 ")
    original = browser.find_element(By.CSS_SELECTOR, "#members tr.original")
    assert "★ 原始来源" in original.text and TREES in original.text
    # The first copy's diff is open: a changed title, a paragraph cut at the end, marked words.
    diff = browser.find_element(By.CSS_SELECTOR, "details.diff[open]")
    assert "标题改动" in diff.find_element(By.TAG_NAME, "summary").text
    assert diff.find_elements(By.CSS_SELECTOR, ".titles del") and diff.find_elements(By.CSS_SELECTOR, ".titles ins")
    assert diff.find_element(By.CSS_SELECTOR, "tr.d-cut td.l").is_displayed()
    # Another copy's diff opens on a click.
    closed = browser.find_elements(By.CSS_SELECTOR, "details.diff:not([open])")[0]
    closed.find_element(By.TAG_NAME, "summary").click()
    assert closed.get_attribute("open") is not None and closed.find_element(By.CSS_SELECTOR, "table.sbs").is_displayed()
    closed.find_element(By.TAG_NAME, "summary").click()
    assert browser.find_elements(By.CSS_SELECTOR, "svg circle.dot.original")
    assert errors(browser) == []  # no script or style refused by the pages' Content-Security-Policy
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(SCREENSHOT))


def test_a_hostile_report_runs_no_page_script(browser, tmp_path):
    from selenium.webdriver.common.by import By

    crawl, db, out = tmp_path / "crawl", tmp_path / "d.db", tmp_path / "report"
    write_hostile_crawl(crawl)
    assert run("scan", crawl, "--db", db, "--jobs", "1", "--quiet").exit_code == 0
    assert run("report", "--html", out, "--db", db).exit_code == 0
    (cid,) = {r["cluster"] for r in exported(db).values()}
    for page in (out / "index.html", out / f"c/{cid}.html"):
        browser.get(page.as_uri())
        # An alert would be open now and fail every command; markup would have made elements.
        assert browser.execute_script("return document.querySelectorAll('img, b, iframe').length") == 0
        hrefs = browser.execute_script("return [...document.links].map(a => a.protocol)")
        assert set(hrefs) <= {"file:", "http:", "https:"}
        assert HOSTILE_TITLE in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_element(By.TAG_NAME, "h1").text == HOSTILE_TITLE
    assert errors(browser) == []
