import numpy as np

from dedup.shingle import content_hash, numbers, shingles, tokenize
from dedup.signature import containment, from_bytes, jaccard, make_signature, to_bytes

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
    assert content_hash(tokenize(A)) == content_hash(tokenize(A.replace("，", ",")))


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
