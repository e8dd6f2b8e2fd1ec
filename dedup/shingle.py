"""Tokens (jieba, precise mode, HMM off) -> word k-shingles, plus the numbers a text states.

HMM is off: it finds new words by guessing, which makes tokens depend on context, is ~3x slower,
and rjieba (the planned faster tokenizer) gives identical tokens with HMM off.
"""

from __future__ import annotations

import hashlib
import logging
import re

import jieba

jieba.setLogLevel(logging.WARNING)  # jieba prints its dictionary loading to stderr otherwise

WORD = re.compile(r"[\w\u3400-\u9fff]")
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def tokenize(text: str) -> list[str]:
    """Word tokens of normalized text; punctuation and whitespace dropped."""
    return [t for t in jieba.lcut(text, cut_all=False, HMM=False) if WORD.search(t)]


def shingles(tokens: list[str], k: int) -> set[str]:
    """Word k-shingles (a text shorter than k gives one shingle of all its tokens)."""
    if len(tokens) < k:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def content_hash(tokens: list[str]) -> str:
    """Hash of the token sequence: equal for copies that differ only in spacing or punctuation."""
    return hashlib.sha1("\x1f".join(tokens).encode("utf-8")).hexdigest()


def numbers(text: str) -> list[str]:
    """The numbers a text states, in order: the facts a template sibling changes."""
    return NUMBER.findall(text)
