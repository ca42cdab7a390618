"""Semantic similarity: cosine similarity of sentence-transformers embeddings, max over a sample's references.

The default model is the MiniLM embedding model our Hub serves; any sentence-transformers model id (resolved through
`HF_ENDPOINT`) or local model folder works.
"""

from collections.abc import Sequence
from functools import cached_property

import numpy as np

from dialoghub.metrics.inputs import check_predictions_and_references

DEFAULT_EMBEDDING_MODEL = "dialoghub/all-MiniLM-L6-v2"


class SemanticSimilarity:
    """Loads the embedding model on first use and keeps it for later calls."""

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, revision: str | None = None, batch_size: int = 32):
        self.model_name = model
        self.revision = revision
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        """The model and, if pinned, its revision: what a results record needs to reproduce the scores."""
        return self.model_name if self.revision is None else f"{self.model_name}@{self.revision}"

    @cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(self.model_name, revision=self.revision, device="cpu")

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )

    def per_reference(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[list[float]]:
        """For each sample, the cosine similarity of its prediction with each of its references."""
        check_predictions_and_references(predictions, references)
        flat_references = [reference for sample_references in references for reference in sample_references]
        embeddings = self._embed(list(predictions) + flat_references)
        prediction_embeddings, reference_embeddings = embeddings[: len(predictions)], embeddings[len(predictions) :]
        similarities, start = [], 0
        for prediction_embedding, sample_references in zip(prediction_embeddings, references, strict=True):
            stop = start + len(sample_references)
            similarities.append((reference_embeddings[start:stop] @ prediction_embedding).astype(float).tolist())
            start = stop
        return similarities

    def __call__(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """Per-sample cosine similarity in [-1, 1] with the closest reference."""
        return [max(scores) for scores in self.per_reference(predictions, references)]

    def leave_one_out(self, summaries_per_sample: Sequence[Sequence[str]]) -> list[float]:
        """The human ceiling of each sample: each of its k >= 2 summaries against the closest of the k-1 others,
        averaged. All summaries are embedded in one batch."""
        for index, summaries in enumerate(summaries_per_sample):
            if len(summaries) < 2:
                raise ValueError(f"sample {index}: leave-one-out needs at least 2 summaries, got {len(summaries)}")
        embeddings = self._embed([summary for summaries in summaries_per_sample for summary in summaries])
        ceilings, start = [], 0
        for summaries in summaries_per_sample:
            sample_embeddings = embeddings[start : start + len(summaries)]
            start += len(summaries)
            similarities = sample_embeddings @ sample_embeddings.T
            np.fill_diagonal(similarities, -np.inf)
            ceilings.append(float(similarities.max(axis=1).mean()))
        return ceilings
