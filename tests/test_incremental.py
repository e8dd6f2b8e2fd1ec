"""A crawl that arrives night by night gives the answer a single scan of it gives, and a rescan
verifies only the pairs it has not verified before."""

import shutil
from pathlib import Path

from dedup.models import Params
from dedup.pipeline import scan
from dedup.store import Store
from tests.conftest import SAMPLE


def canonical(db: Path) -> dict[str, tuple]:
    """path -> (the cluster named by its smallest member, original, role, all its clusters so
    named): cluster numbers are row ids, given in the order documents arrived."""
    store = Store(db, readonly=True)
    rows = list(store.export_rows())
    store.close()
    name: dict[int, str] = {}
    for r in sorted(rows, key=lambda r: r["path"]):
        for c in [r["cluster"], *r["contains"]]:
            if c is not None:
                name.setdefault(c, r["path"])
    out = {}
    for r in rows:
        stories = sorted(name[c] for c in [r["cluster"], *r["contains"]] if c is not None)
        if r["role"] == "compilation":  # which of its stories is `cluster` follows the ids: a set
            out[r["path"]] = (None, r["original"], r["role"], stories)
        else:
            out[r["path"]] = (name.get(r["cluster"]), r["original"], r["role"], stories)
    return out


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLE.rglob("*") if p.is_file() and p.suffix != ".md")


def test_a_crawl_scanned_in_slices_equals_one_scan(tmp_path):
    whole = tmp_path / "whole.db"
    crawl = tmp_path / "crawl"
    shutil.copytree(SAMPLE, crawl, ignore=shutil.ignore_patterns("*.md"))
    scan(crawl, whole, Params(), jobs=1)

    # The same files arriving in three nights, newest pages first.
    growing = tmp_path / "growing"
    sliced = tmp_path / "sliced.db"
    files = sorted(sample_files(), key=lambda p: p.name, reverse=True)
    for night in range(3):
        for f in files[night::3]:
            dest = growing / f.relative_to(SAMPLE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        scan(growing, sliced, Params(), jobs=1)
    assert canonical(sliced) == canonical(whole)


def test_a_rescan_verifies_only_the_new_pairs(crawl, tmp_path):
    db = tmp_path / "d.db"
    repost = crawl / "www.163.com/2023/0312/HVQ3K9QF05149C8E.html"
    kept = repost.read_bytes()
    repost.unlink()
    first = scan(crawl, db, Params(), jobs=1)
    assert first.pairs_verified > 0 and first.pairs_known == 0
    repost.write_bytes(kept)
    again = scan(crawl, db, Params(), jobs=1)
    assert again.pairs_known == first.pairs_verified
    assert 0 < again.pairs_verified < first.pairs_verified
    fresh = tmp_path / "fresh.db"
    scan(crawl, fresh, Params(), jobs=1)
    assert canonical(db) == canonical(fresh)
