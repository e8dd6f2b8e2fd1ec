"""The dependency rules of the house style, read from the imports."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "dedup"
ONLY_IN = {
    "click": {"cli.py"},
    "rich": {"cli.py", "report.py"},
    "sqlite_utils": {"store.py"},
    "jieba": {"shingle.py"},
    "rjieba": {"shingle.py"},
    "warcio": {"containers.py"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_third_party_libraries_stay_in_their_module():
    for path in PKG.glob("*.py"):
        for lib in imports(path):
            if lib in ONLY_IN:
                assert path.name in ONLY_IN[lib], f"{path.name} imports {lib}"


def test_stages_do_not_import_the_store_or_cli():
    stages = ["decode", "extract", "normalize", "shingle", "signature", "cluster", "attribute", "dates", "discover"]
    for name in stages:
        src = (PKG / f"{name}.py").read_text(encoding="utf-8")
        assert "dedup.store" not in src and "dedup.cli" not in src and "dedup.pipeline" not in src, name
