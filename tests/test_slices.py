"""The labelled development crawl scanned in ten slices, one scan each into the same database, gives
the clusters, originals and roles one scan of the whole crawl gives: the answer must not depend on
the order in which a crawl arrived. Skipped when ../shared is not beside the checkout (CI)."""

import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from dedup.models import Params
from dedup.pipeline import scan
from tests.conftest import ROOT

DEV_CRAWL = ROOT.parent / "shared" / "corpus" / "dev" / "crawl"
SLICES = 10
SHOWN = 4  # differing clusters printed per kind of difference

# members -> (original path, or "external: <source>", or None; ((path, role), ...) sorted)
Clusters = dict[frozenset[str], tuple[str | None, tuple[tuple[str, str], ...]]]


def clusters_by_path(db: Path) -> Clusters:
    """The active clusters named by their member paths (ids differ between databases); a document
    in no cluster is a cluster of one, its own original, with its status as role."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    members: dict[int, dict[str, str]] = {}
    for cid, path, role in conn.execute(
        "SELECT m.cluster_id, d.path, m.role FROM memberships m JOIN clusters c ON c.id = m.cluster_id "
        "JOIN documents d ON d.id = m.document_id WHERE c.active = 1"
    ):
        members.setdefault(cid, {})[path] = role
    out: Clusters = {}
    for cid, original, external in conn.execute(
        "SELECT c.id, d.path, c.external_source FROM clusters c LEFT JOIN documents d ON d.id = c.original_id "
        "WHERE c.active = 1"
    ):
        roles = members.get(cid, {})
        key = frozenset(roles)
        assert key not in out, f"two clusters with the same members in {db.name}: {sorted(key)}"
        out[key] = (original or (f"external: {external}" if external else None), tuple(sorted(roles.items())))
    clustered = set().union(*out)
    for path, status in conn.execute("SELECT path, status FROM documents WHERE status != 'gone'"):
        if path not in clustered:
            out[frozenset([path])] = (path, ((path, "unique" if status == "ok" else status),))
    conn.close()
    return out


def describe(cluster: tuple) -> str:
    original, roles = cluster
    return f"  original {original}\n" + "\n".join(f"    {role:12} {path}" for path, role in roles)


def differences(sliced: Clusters, whole: Clusters) -> str:
    """A few clusters found by one side only, and shared clusters whose original or roles differ."""
    lines = []
    only_sliced = [k for k in sliced if k not in whole]
    only_whole = [k for k in whole if k not in sliced]
    changed = [k for k in sliced if k in whole and sliced[k] != whole[k]]
    lines.append(
        f"{len(only_sliced)} clusters only in the sliced scan, {len(only_whole)} only in the whole scan, "
        f"{len(changed)} with the same members but another original or roles"
    )
    for name, keys, side in (("sliced only", only_sliced, sliced), ("whole only", only_whole, whole)):
        for k in sorted(keys, key=sorted)[:SHOWN]:
            lines.append(f"{name}:\n{describe(side[k])}")
    for k in sorted(changed, key=sorted)[:SHOWN]:
        lines.append(f"same members, sliced:\n{describe(sliced[k])}\n  whole:\n{describe(whole[k])}")
    return "\n".join(lines)


@pytest.mark.skipif(not DEV_CRAWL.is_dir(), reason="../shared/corpus/dev/crawl not beside the checkout")
def test_the_dev_crawl_scanned_in_ten_slices_equals_one_scan(tmp_path):
    """Ten nightly slices of the dev crawl (a seeded shuffle, files only added) end in the partition,
    originals and roles of one fresh scan: incremental clustering and learning must not depend on
    arrival order."""
    files = sorted(p for p in DEV_CRAWL.rglob("*") if p.is_file())
    random.Random(0).shuffle(files)
    n = len(files)
    parts = [files[k * n // SLICES : (k + 1) * n // SLICES] for k in range(SLICES)]

    growing = tmp_path / "crawl"
    sliced = tmp_path / "sliced.db"
    regrouped = []
    for part in parts:
        for f in part:
            dest = growing / f.relative_to(DEV_CRAWL)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        summary = scan(growing, sliced, Params(), jobs=2)
        regrouped.append(summary.documents_regrouped / summary.documents)
    # From the fourth slice on (a quarter of the crawl new or less) only what the new files connect
    # to is grouped again (incremental clustering): here about half, as each slice brings copies of
    # stories spread over every earlier slice.
    assert regrouped[:3] == [1.0, 1.0, 1.0] and max(regrouped[3:]) < 0.75, regrouped

    whole = tmp_path / "whole.db"
    scan(DEV_CRAWL, whole, Params(), jobs=2)

    got, want = clusters_by_path(sliced), clusters_by_path(whole)
    assert got == want, differences(got, want)
