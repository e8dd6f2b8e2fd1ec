"""to_simplified leaves alone the texts OpenCC's t2s cannot change (dedup.traditional), and only those."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup import normalize
from dedup.traditional import ChangeTest, changing_characters, dictionary_files, dictionary_keys

T2S = normalize.t2s_config()
CONVERT = normalize._t2s().convert
MAY_CHANGE = normalize._t2s_may_change()
KEYS = [k for p in dictionary_files(T2S) for k in dictionary_keys(p)]
# Keys whose conversion changes them, and the plain text around them in a Simplified story.
CHANGING = [k for k in KEYS if CONVERT(k) != k]
PLAIN = list("上饶市科技局今天发布消息一目然反土会议在北京举行记者了解到，。：“”（）1２ａA　 \n")


def test_the_installed_tables_are_read():
    assert MAY_CHANGE is not None, "OpenCC's t2s dictionaries could not be read: every text is converted"
    names = {p.name for p in dictionary_files(T2S)}
    assert {"TSPhrases.ocd2", "TSCharacters.ocd2"} <= names
    assert len(KEYS) > 1_000 and CHANGING


def test_every_key_that_converts_is_caught():
    assert all(MAY_CHANGE(k) for k in CHANGING)


def test_a_phrase_changes_a_character_that_stays_alone():
    # 瞭 stays 瞭 alone (瞭望) but not in 一目瞭然: the phrase table puts it among the characters.
    assert CONVERT("瞭") == "瞭" and CONVERT("一目瞭然") == "一目了然"
    assert MAY_CHANGE("他说一目瞭然")
    assert normalize.to_simplified("市民对新规一目瞭然。") == "市民对新规一目了然。"


def test_simplified_text_is_returned_as_it_is():
    text = "上饶市科技局今天发布消息：全市高新技术企业达到１２０家。"
    assert not MAY_CHANGE(text)
    assert normalize.to_simplified(text) is text
    assert normalize.to_simplified("國務院召開常務會議") == "国务院召开常务会议"


def test_characters_above_the_basic_plane():
    astral = sorted(MAY_CHANGE.astral)
    plain_astral = "\U00020000"  # a CJK Extension B character no key changes
    assert plain_astral not in MAY_CHANGE.astral and CONVERT(plain_astral) == plain_astral
    assert not MAY_CHANGE("新闻" + plain_astral + "报道")
    if astral:
        text = "新闻" + astral[0] + "报道"
        assert MAY_CHANGE(text) and CONVERT(text) != text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PLAIN), st.sampled_from(CHANGING)), max_size=40))
def test_a_text_said_unchangeable_converts_to_itself(parts):
    text = "".join(parts)
    if not MAY_CHANGE(text):
        assert CONVERT(text) == text
    else:
        assert any(CONVERT(p) != p for p in parts)


def test_unreadable_tables_mean_every_text_is_converted(tmp_path):
    (tmp_path / "broken.ocd2").write_bytes(b"not a dictionary")
    config = tmp_path / "t2s.json"
    config.write_text(json.dumps({"conversion_chain": [{"dict": {"type": "ocd2", "file": "broken.ocd2"}}]}))
    assert changing_characters(config, CONVERT) is None
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"conversion_chain": [{"dict": {"type": "ocd2", "file": "gone.ocd2"}}]}))
    assert changing_characters(missing, CONVERT) is None


def test_change_test_on_given_characters():
    test = ChangeTest(frozenset("國會\U0002a6a5"))
    assert test("中華人民共和國") and test("開會") and test("x\U0002a6a5")
    assert not test("中华人民共和国") and not test("\U00020000") and not test("")

    class Text(str):
        pass

    assert test(Text("报道\U0002a6a5")) and not test(Text("报道\U00020000"))


@pytest.mark.parametrize("text", ["", "abc", "中文", "é"])
def test_short_texts(text):
    assert normalize.to_simplified(text) == CONVERT(text)
