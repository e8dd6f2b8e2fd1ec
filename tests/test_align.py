"""The aligner's matcher gives difflib's own matching blocks (CyDifflib is a compiled difflib)."""

import difflib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.align import SequenceMatcher, align

WORDS = ["上饶", "日报", "记者", "12月", "1日", "召开", "会议", "全市", "工作", "推进", "发展", "2023", "年", "的"]


def blocks(matcher, a, b):
    return [tuple(m) for m in matcher(None, a, b, autojunk=False).get_matching_blocks()]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=120), st.lists(st.sampled_from(WORDS), max_size=120))
def test_matching_blocks_are_difflibs(a, b):
    assert blocks(SequenceMatcher, a, b) == blocks(difflib.SequenceMatcher, a, b)


def test_a_truncated_copy_with_typos_aligns_like_difflib():
    rnd = random.Random(0)
    story = [rnd.choice(WORDS) + str(rnd.randint(0, 40)) for _ in range(600)]
    copy = [w if rnd.random() > 0.04 else "错字" for w in story[30:420]]
    assert blocks(SequenceMatcher, story, copy) == blocks(difflib.SequenceMatcher, story, copy)
    al = align(story, copy)
    assert al.shared > 0.8 * len(copy)
