"""Corpus-level BLEU and chrF from `sacrebleu` (default settings: BLEU 13a tokenisation with exp smoothing, chrF with
character order 6, beta 2 and no word n-grams), with a variable number of references per sample.

sacrebleu takes references as *streams*: stream j holds the j-th reference of every sample. A sample with fewer
references is padded with `None` in the remaining streams, which sacrebleu 2.x drops per sample
(`Metric._cache_references`, signature `nrefs:var`). Padding with "" would not: the empty string counts as a real
reference, and as the "closest" reference length of a short prediction it can switch BLEU's brevity penalty off.

Bootstrap resamples recompute the corpus score from summed per-sample sufficient statistics, the way sacrebleu's own
`--confidence` bootstrap does (`sacrebleu.significance._bootstrap_resample`); the test suite checks that this equals
sacrebleu's `corpus_score` on the resampled corpus.
"""

from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric

from dialoghub.metrics.inputs import check_predictions_and_references

CORPUS_METRICS = ("bleu", "chrf")


def new_corpus_metric(name: str) -> Metric:
    if name == "bleu":
        return BLEU()
    if name == "chrf":
        return CHRF()
    raise ValueError(f"unknown corpus metric {name!r}; expected one of {CORPUS_METRICS}")


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-sample reference lists (ragged) to sacrebleu's reference streams, padded with `None`."""
    n_streams = max(len(sample_references) for sample_references in references)
    return [
        [sample_references[stream] if stream < len(sample_references) else None for sample_references in references]
        for stream in range(n_streams)
    ]


class CorpusStatistics:
    """Per-sample sufficient statistics of corpus BLEU or chrF, to score the corpus or any resample of it cheaply."""

    def __init__(self, name: str, predictions: Sequence[str], references: Sequence[Sequence[str]]):
        check_predictions_and_references(predictions, references)
        self.metric = new_corpus_metric(name)
        self.per_sample = np.asarray(
            self.metric._extract_corpus_statistics(list(predictions), reference_streams(references))
        )

    def score(self, sample_indices: np.ndarray | None = None) -> float:
        """The corpus score (0-100) of the samples at `sample_indices` (repeats allowed), or of all samples."""
        selected = self.per_sample if sample_indices is None else self.per_sample[sample_indices]
        return float(self.metric._compute_score_from_stats(selected.sum(axis=0)).score)

    @property
    def signature(self) -> str:
        """sacrebleu's signature (version, tokenizer, smoothing, number of references) for the results record."""
        return str(self.metric.get_signature())
