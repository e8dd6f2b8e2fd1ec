"""The encoding matrix: every fixture under tests/fixtures/encoding either decodes to the right text or is
refused with a one-line reason. A wrong codec that raises nothing is the one outcome never allowed."""

from __future__ import annotations

import codecs
import csv
import importlib.util
from pathlib import Path

import pytest

from dedup.decode import DecodeFailure, decode_bytes

FIXTURES = Path(__file__).parent / "fixtures" / "encoding"

# Codec names that decode the same family of files; the expected column names one member.
FAMILIES = [
    {"utf-8", "ascii"},
    {"utf-16-le"},
    {"utf-16-be"},
    {"gb18030", "gbk", "gb2312"},
    {"big5hkscs", "big5", "cp950"},
    {"shift_jis", "cp932"},
]


def family(codec: str) -> set[str]:
    name = codecs.lookup(codec).name
    return next((f for f in FAMILIES if name in f), {name})


def load_manifest() -> list[dict[str, str]]:
    with (FIXTURES / "EXPECTED.tsv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = load_manifest()


def outcome(row: dict[str, str]) -> tuple[str, str]:
    """(verdict, detail): verdict is right, refused (as expected), lost (refused a good file) or wrong."""
    data = (FIXTURES / row["file"]).read_bytes()
    try:
        d = decode_bytes(data)
    except DecodeFailure as exc:
        reason = str(exc)
        if not reason.strip() or "\n" in reason:
            return "wrong", f"refused without a one-line reason: {reason!r}"
        return ("refused" if row["expected"] == "skip" else "lost"), reason
    got = f"ok:{d.encoding} ({d.how})"
    if row["expected"] == "skip":
        return "wrong", f"{got}, expected a refusal"
    codec = row["expected"].removeprefix("ok:")
    if codecs.lookup(d.encoding).name not in family(codec):
        return "wrong", f"{got}, expected {row['expected']}"
    if row["marker"] not in d.text:
        return "wrong", f"{got} but {row['marker']!r} is not in the text"
    if "\ufffd" in d.text:
        return "wrong", f"{got} with U+FFFD in the text"
    return "right", got


def test_manifest_covers_the_matrix():
    files = {p.name for p in FIXTURES.iterdir() if p.is_file() and p.name not in {"EXPECTED.tsv", "make_fixtures.py"}}
    assert files == {r["file"] for r in ROWS}
    assert len(ROWS) >= 24
    for r in ROWS:
        assert r["expected"] == "skip" or r["expected"].startswith("ok:"), r
        assert r["expected"] == "skip" or r["marker"] not in ("", "-"), r


def test_fixtures_match_their_generator():
    """The committed bytes are what make_fixtures.py writes (it is not run here, only compared)."""
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, data, expected, marker, _note in module.build():
        assert (FIXTURES / name).read_bytes() == data, name
        row = next(r for r in ROWS if r["file"] == name)
        assert (row["expected"], row["marker"]) == (expected, marker)


@pytest.mark.parametrize("row", [r for r in ROWS if r["expected"] != "skip"], ids=lambda r: r["file"])
def test_decodes_to_the_right_text(row):
    d = decode_bytes((FIXTURES / row["file"]).read_bytes())
    assert codecs.lookup(d.encoding).name in family(row["expected"].removeprefix("ok:")), (d.encoding, d.how)
    assert row["marker"] in d.text
    assert "\ufffd" not in d.text


@pytest.mark.parametrize("row", [r for r in ROWS if r["expected"] == "skip"], ids=lambda r: r["file"])
def test_is_refused_with_a_reason(row):
    with pytest.raises(DecodeFailure) as info:
        decode_bytes((FIXTURES / row["file"]).read_bytes())
    reason = str(info.value)
    assert reason.strip() and "\n" not in reason


def test_no_silently_wrong_result():
    """The whole point: a file may be refused, never decoded into the wrong text without a word."""
    results = {r["file"]: outcome(r) for r in ROWS}
    wrong = {f: detail for f, (verdict, detail) in results.items() if verdict == "wrong"}
    assert wrong == {}
