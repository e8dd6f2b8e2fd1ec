import gzip
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dedup.shingle import line_numbers, numbers, pack_words, shingles, tokenize, tokenize_lines, unpack_words
from dedup.signature import SAMPLE_MOD, containment, from_bytes, jaccard, make_signature, to_bytes
from tests.conftest import SAMPLE

A = (
    "国务院总理李强27日在京会见世界知识产权组织总干事邓鸿森。李强表示，希望以此为契机，推动双方合作再上新台阶。"
    "中国是知识产权国际体系的积极建设者、重要贡献者和坚定维护者，愿与世界知识产权组织加强合作。"
    "邓鸿森表示，过去50年，中国在知识产权方面取得历史性成就和进步，中国制定的知识产权战略堪称典范。"
)


def test_tokens_drop_punctuation_and_keep_numbers():
    toks = tokenize("李强27日在京会见，总干事。")
    assert "，" not in toks and "。" not in toks and "27" in toks
    assert numbers("前8个月服务贸易同比增长12.5%和9.1%，共3项指标创下新高。\n阅读 38779") == ["8", "12.5", "9.1", "3"]


def test_shingles_and_hash():
    toks = tokenize(A)
    sh = shingles(toks, 3)
    assert len(sh) <= len(toks) - 2 and all(len(s.split(" ")) == 3 for s in sh)
    assert shingles(["a"], 3) == {"a"} and shingles([], 3) == set()


def test_a_texts_words_are_hashed_and_packed_joined_once():
    """tokenize_document's words come joined as stored (U+001F, UTF-8): the content hash is of
    them, equal for copies that differ only in punctuation, and packing them gives the tokens back."""
    from dedup.ingest import tokenize_document
    from dedup.models import Document
    from dedup.normalize import load_patterns

    a = Document(path="a.txt", file_path="a.txt", kind="txt", text=A)
    b = Document(path="b.txt", file_path="b.txt", kind="txt", text=A.replace("，", ","))
    words = tokenize_document(a, load_patterns(None))
    assert words.tokens == tokenize(A) and words.joined == "\x1f".join(words.tokens).encode("utf-8")
    assert tokenize_document(b, load_patterns(None)).tokens == words.tokens
    assert a.content_hash == b.content_hash and len(a.content_hash) == 40
    assert unpack_words(pack_words(words.joined)) == words.tokens


def test_signature_round_trip_and_estimates():
    sa = make_signature(shingles(tokenize(A), 3), 128, 1, "affine32")
    blob = to_bytes(sa)
    assert len(blob) == 512
    assert np.array_equal(from_bytes(blob, "affine32"), sa)
    sb = make_signature(shingles(tokenize(A[: len(A) // 2]), 3), 128, 1, "affine32")
    assert jaccard(sa, sa) == 1.0
    assert 0.2 < jaccard(sa, sb) < 0.9
    assert containment(0.5, 100, 50) == 1.0
    assert containment(0.0, 100, 50) == 0.0


def test_fast_tokenizer_gives_jiebas_tokens():
    from dedup.shingle import tokenize_jieba
    from tests.conftest import SAMPLE

    for path in SAMPLE.rglob("*.html"):
        text = path.read_bytes().decode("utf-8", errors="ignore")
        assert tokenize(text) == tokenize_jieba(text), path


LINE_PIECES = ["青川市", "发布", "暴雨预警", "2023年", "8月", "6日", "12.5", "毫米", "abc", "CPI", "，", "。", "、"]
LINE_PIECES += [" ", "\u3000", "\r", "\t", "-", "_", "#", "+", "%", "（", "）", "\u2028", "\x1f"]


@given(st.lists(st.lists(st.sampled_from(LINE_PIECES), max_size=12).map("".join), max_size=8))
def test_lines_cut_together_give_the_tokens_of_each_line(lines):
    """A sign worker tokenizes a text's new lines in one call (ingest._lines_of): each line's
    tokens are those it has alone, and a text's tokens those of its lines one after another."""
    assert tokenize_lines(lines) == [tokenize(line) for line in lines]
    assert [t for line in lines for t in tokenize(line)] == tokenize("\n".join(lines))
    assert [n for line in lines for n in line_numbers(line)] == numbers("\n".join(lines))


@pytest.mark.parametrize("scheme", ["affine32", "affine64", "legacy"])
def test_signatures_equal_datasketchs_for_the_text_and_its_windows(scheme):
    """make_signatures permutes each distinct shingle once for the text and all its windows; the values
    must be those datasketch's MinHash gives each shingle set (repeats, overlaps, the last window)."""
    from datasketch import MinHash

    from dedup.shingle import shingle_list, window_spans
    from dedup.signature import _template, make_signatures

    ordered = shingle_list(tokenize(A * 3 + A[:40]), 3)  # repeats: the same shingles thrice
    spans = window_spans(len(ordered), 40, 15)
    assert len(spans) > 3 and spans[-1][1] == len(ordered)
    hashes = {s: zlib.crc32(s.encode("utf-8")) for s in ordered}

    def reference(items) -> np.ndarray:
        t = _template(128, 1, scheme)
        m = MinHash(num_perm=128, seed=1, scheme=scheme, permutations=t.permutations, hashfunc=hashes.__getitem__)
        m.update_batch(items)
        return m.hashvalues

    signed = make_signatures(ordered, spans, 128, 1, scheme)
    assert np.array_equal(signed.whole, reference(set(ordered)))
    assert len(signed.parts) == len(spans)
    for (a, b), part in zip(spans, signed.parts, strict=True):
        assert np.array_equal(part, reference(set(ordered[a:b]))), (a, b)
    values = np.array(sorted(set(hashes.values())), dtype=np.uint32)
    assert np.array_equal(signed.samples, values[values % SAMPLE_MOD == 0])


def test_anchors_are_the_numbers_and_names_in_context():
    from dedup.shingle import anchors, is_name

    toks = tokenize("李强在北京会见邓鸿森，双方签署3项协议。")
    found = anchors(toks)
    picked = [t for t in toks[1:-1] if t.isdigit() or is_name(t)]
    assert "3" in picked and "北京" in picked
    assert len(found) == len(picked)
    assert all(isinstance(c, int) and isinstance(w, int) for c, w in found)


def test_names_read_from_the_dictionary_file_are_those_jieba_posseg_tags_as_names():
    import jieba
    import jieba.posseg

    from dedup.shingle import ANCHOR_TAGS, dictionary_text, names_in

    with jieba.dt.get_dict_file() as f:
        assert dictionary_text() == f.read().decode("utf-8")  # the file jieba itself reads
    tagged = jieba.posseg.dt.word_tag_tab  # a later line of the file wins, as in jieba
    names = names_in(dictionary_text())
    assert names == {w for w, tag in tagged.items() if tag in ANCHOR_TAGS and len(w) >= 2}
    assert len(names) > 50_000 and "北京" in names


def test_the_shipped_name_table_is_the_dictionarys_and_another_dictionary_is_read_itself(tmp_path, monkeypatch):
    from dedup import shingle

    size = shingle.dictionary_path().stat().st_size
    from_dictionary = shingle.names_in(shingle.dictionary_text())
    # If this fails, jieba's dictionary changed: remake the table with
    # python -c "from dedup.shingle import write_name_table; write_name_table()"
    assert shingle.read_name_table(shingle.NAME_TABLE, size) == from_dictionary
    # A table made for a dictionary of another size, a damaged one and a missing one are not used.
    assert shingle.read_name_table(shingle.NAME_TABLE, size + 1) is None
    damaged = tmp_path / "names.txt.gz"
    damaged.write_bytes(shingle.NAME_TABLE.read_bytes()[:1000])
    assert shingle.read_name_table(damaged, size) is None
    assert shingle.read_name_table(tmp_path / "none.txt.gz", size) is None
    stale = tmp_path / "stale.txt.gz"
    with gzip.open(stale, "wt", encoding="utf-8") as f:
        f.write(shingle._table_header(size + 1) + "北京\n上海")
    monkeypatch.setattr(shingle, "NAME_TABLE", stale)
    shingle._names.cache_clear()
    try:
        assert shingle._names() == from_dictionary
    finally:
        shingle._names.cache_clear()


@pytest.mark.parametrize("scheme", ["affine32", "affine64", "legacy"])
def test_permutations_kept_by_a_database_are_datasketchs(scheme, monkeypatch):
    from datasketch import MinHash

    from dedup import signature

    kept = signature.load_permutations(64, 7, scheme)
    monkeypatch.setattr(signature, "_made", {})  # a new process: made from what the database kept
    assert signature.load_permutations(64, 7, scheme, kept) == kept
    restored, m = signature._template(64, 7, scheme), MinHash(num_perm=64, seed=7, scheme=scheme)
    assert np.array_equal(restored.permutations, m.permutations) and restored.permutations.dtype == m.permutations.dtype
    assert np.array_equal(restored.hashvalues, m.hashvalues) and restored.hashvalues.dtype == m.hashvalues.dtype
    monkeypatch.setattr(signature, "_made", {})
    signature.load_permutations(64, 8, scheme, kept[:-2])  # does not fit: made again
    assert np.array_equal(signature._template(64, 8, scheme).permutations, MinHash(64, 8, scheme=scheme).permutations)
    # What a database kept wins over what this process made: its signatures were made with them.
    signature.load_permutations(64, 8, scheme, kept)
    assert np.array_equal(signature._template(64, 8, scheme).permutations, m.permutations)


def test_a_rescan_signs_new_pages_without_importing_datasketch(tmp_path):
    import shutil
    import subprocess
    import sys

    crawl = tmp_path / "crawl"
    shutil.copytree(SAMPLE, crawl)
    db = tmp_path / "d.db"
    code = (
        "import sys; from dedup.pipeline import scan; s = scan(sys.argv[1], sys.argv[2], jobs=1); "
        "print(s.documents_new, 'datasketch' in sys.modules)"
    )
    run = lambda: subprocess.run([sys.executable, "-c", code, str(crawl), str(db)], capture_output=True, text=True)  # noqa: E731
    first = run()
    assert first.returncode == 0 and first.stdout.split()[1] == "True", first.stderr
    page = next(p for p in sorted(crawl.rglob("*.html")))
    shutil.copy(page, page.with_name("again-" + page.name))
    second = run()
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["1", "False"]  # signed with the permutations the database kept
