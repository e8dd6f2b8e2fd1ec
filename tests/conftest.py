import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample_crawl"
EXAMPLE = ROOT.parent / "shared" / "examples" / "000_0fbe15a23176a1ad.txt"

# The sample crawl's stories (see data/sample_crawl/EXPECTED.md).
TREES = "www.qcnews.cn/2023/0312/1000234567.html"
BUS = "www.qcnews.cn/2023/0310/1000233918.html"
FLOOD = "www.qingchuan.gov.cn/2023/0309/art_1021_58731.html"
COMPILATION = "www.huaxiawenda.com/2024/0617/hx20240617104208.txt"
EXPECTED_CLUSTERS = {
    TREES: {
        TREES,
        "www.sohu.com/2023/0312/656912345_121118820.html",
        "www.163.com/2023/0312/HVQ3K9QF05149C8E.html",
        "feeds/crawl-20230315.jsonl#0",
    },
    BUS: {
        BUS,
        "www.163.com/2023/0310/HVKQ8E2M0514D8K2.html",
        "www.lvyewenda.com/2023/0314/q8812034.txt",
    },
    FLOOD: {
        FLOOD,
        "www.sohu.com/2023/0310/657034118_120986420.html",
        "mp.weixin.qq.com/2023/0313/3xKp9vQmT2bWnR7cLd4EfA.json",
    },
}
UNIQUE = {
    "www.qcnews.cn/2023/0313/1000234801.html",
    "feeds/crawl-20230315.jsonl#1",
    "feeds/crawl-20230315.jsonl#2",
}


@pytest.fixture
def crawl(tmp_path: Path) -> Path:
    """A fresh copy of the bundled sample crawl (minus its notes) in tmp_path."""
    dest = tmp_path / "crawl"
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns("*.md"))
    return dest
