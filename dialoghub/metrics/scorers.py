"""The one way a stage loads its scoring models by reference: `profanity-check`, or a Hub classifier or embedding
model `ID[@REV]` (or a folder) pinned to the commit the reference points at now, with the record naming it."""

from __future__ import annotations

from typing import Any

from dialoghub.hub.client import repo_record
from dialoghub.metrics.semantic import SemanticSimilarity
from dialoghub.metrics.toxicity import PROFANITY_CHECK, ToxicityScorer, load_toxicity_scorer


def load_toxicity(reference: str) -> tuple[ToxicityScorer, dict[str, Any]]:
    """The toxicity scorer `reference` names, and its record."""
    if reference == PROFANITY_CHECK:
        return load_toxicity_scorer(PROFANITY_CHECK), {"id": PROFANITY_CHECK}
    record = repo_record(reference)
    return load_toxicity_scorer(record["id"], revision=record["sha"]), record


def load_semantic_similarity(reference: str) -> tuple[SemanticSimilarity, dict[str, Any]]:
    """The sentence-embedding similarity of the embedding model `reference` names, and its record."""
    record = repo_record(reference)
    return SemanticSimilarity(record["id"], revision=record["sha"]), record
