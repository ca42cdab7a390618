"""Percentile bootstrap over documents.

Every metric of one evaluation is resampled with the *same* index matrix, so the intervals of different metrics (and
of corpus-level metrics, recomputed per resample) describe the same resampled test sets.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate on the full test set and its percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


def bootstrap_indices(n_documents: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """`(n_resamples, n_documents)` document indices drawn with replacement, reproducible from `seed`."""
    if n_documents < 1:
        raise ValueError("bootstrap needs at least one document")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    return np.random.default_rng(seed).integers(0, n_documents, size=(n_resamples, n_documents))


def percentile_interval(
    resampled_values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1 - confidence) / 2
    low, high = np.quantile(np.asarray(resampled_values, dtype=float), [tail, 1 - tail])
    return float(low), float(high)


def mean_estimate(
    per_document: Sequence[float], indices: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> Estimate:
    """The mean of per-document scores, with its interval over the resampled documents in `indices`."""
    values = np.asarray(per_document, dtype=float)
    low, high = percentile_interval(values[indices].mean(axis=1), confidence)
    return Estimate(float(values.mean()), low, high)


def statistic_estimate(
    statistic: Callable[[np.ndarray], float],
    n_documents: int,
    indices: np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Estimate:
    """A statistic of a set of document indices (e.g. corpus BLEU), recomputed on every resample."""
    low, high = percentile_interval([statistic(resample) for resample in indices], confidence)
    return Estimate(float(statistic(np.arange(n_documents))), low, high)
