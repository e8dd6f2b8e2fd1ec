"""The dependency rules of the house style, read from the imports."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "dedup"
# library -> the modules (paths relative to dedup/, '/'-separated) allowed to import it; a path ending
# in '/' allows every module of that sub-package.
ONLY_IN = {
    "click": {"cli.py"},
    "rich": {"cli.py", "report.py"},
    "sqlite_utils": {"store/"},
    "jieba": {"shingle.py"},
    "rjieba": {"shingle.py"},
    "warcio": {"containers.py"},
}
FORBIDDEN_IN_STAGES = ("dedup.store", "dedup.cli", "dedup.pipeline")
STAGES = ["decode", "extract", "normalize", "shingle", "signature", "cluster", "attribute", "dates", "discover"]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def dedup_imports(path: Path) -> set[str]:
    """The dedup modules a module imports, absolute or relative ('from dedup import store' is dedup.store)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to dedup/ (the stages are top-level modules of the package)
                base = "dedup." + base if base else "dedup"
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m == "dedup" or m.startswith("dedup.")}


def allowed(rel: str, places: set[str]) -> bool:
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in places)


def modules() -> dict[str, Path]:
    """Every module of the package, sub-packages included, by its path relative to dedup/."""
    return {p.relative_to(PKG).as_posix(): p for p in sorted(PKG.rglob("*.py"))}


def test_the_rules_see_the_store_package():
    found = modules()
    assert "store/__init__.py" in found and "store/base.py" in found, sorted(found)
    assert "sqlite_utils" in imports(found["store/base.py"])


def test_allowed_places_match_files_or_packages_only():
    assert allowed("store/base.py", {"store/"})
    assert allowed("cli.py", {"cli.py"})
    assert not allowed("cluster.py", {"store/"})
    assert not allowed("store.py", {"store/"})  # a stray module beside the package is not the package
    assert not allowed("extract/store/x.py", {"store/"})


def test_third_party_libraries_stay_in_their_module():
    for rel, path in modules().items():
        for lib in imports(path):
            if lib in ONLY_IN:
                assert allowed(rel, ONLY_IN[lib]), f"{rel} imports {lib}"


def test_stages_do_not_import_the_store_or_cli():
    for name in STAGES:
        src = (PKG / f"{name}.py").read_text(encoding="utf-8")
        assert "dedup.store" not in src and "dedup.cli" not in src and "dedup.pipeline" not in src, name
        for mod in dedup_imports(PKG / f"{name}.py"):
            assert not mod.startswith(FORBIDDEN_IN_STAGES), f"{name} imports {mod}"
