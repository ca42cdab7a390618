"""Word n-grams, the one definition every overlap rule uses: near-duplicate and leakage checks, copy and
repetition filters, distinct-n."""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens, punctuation dropped: what every overlap rule compares."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Every run of `n` consecutive tokens, in order, repeats included (none when there are fewer than `n`)."""
    return [tuple(tokens[start : start + n]) for start in range(len(tokens) - n + 1)]


def shingles(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """The distinct n-grams; a text shorter than `n` is its own one shingle, so that two short texts still compare."""
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return set(ngrams(tokens, n))


def distinct_n(token_lists: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams over all n-grams of the token lists together, none spanning two lists (Li et al., 2016);
    0 when there is no n-gram."""
    found = [ngram for tokens in token_lists for ngram in ngrams(tokens, n)]
    return len(set(found)) / len(found) if found else 0.0
