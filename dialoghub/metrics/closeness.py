"""How close synthetic dialogues are to real ones, each figure from a library and, but for MAUVE, with a 95 % interval:

- `classifier_two_sample_test`: a real-vs-synthetic classifier (scikit-learn TF-IDF word 1-2 grams + logistic
  regression), stratified k-fold cross-validated accuracy on balanced classes; 50 % means indistinguishable;
- `mauve_closeness`: MAUVE (`mauve-text`) from given embeddings, e.g. `embed_texts` with the project's MiniLM (a
  point value: see `MauveResult`);
- `distinct_n_closeness`: distinct-n of each set (unique n-grams / all n-grams) and the synthetic/real ratio;
- `opening_sharing`: the share of a set's dialogues whose first turn another dialogue of the set also opens with;
- `distribution_distances`: Wasserstein distance and two-sample KS statistic (scipy) between the sets' turn counts,
  words per turn and customer share of turns and of words.

A dialogue is the dataset's (and `dialoghub.models.prompts.parse_dialogue`'s) list of `{"role", "text"}` turns;
the text metrics take texts, which callers render with `prompts.render_dialogue` so both sets read alike.
Intervals over dialogues resample with the leaderboard's `bootstrap_indices` (the synthetic set with `seed`, the
real set with `seed + 1`: two independent samples).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, ks_2samp, wasserstein_distance
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline

from dialoghub.core.ngrams import distinct_n as ngrams_distinct_n
from dialoghub.core.ngrams import ngrams, words
from dialoghub.data.records import CUSTOMER, ROLES
from dialoghub.metrics.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    Estimate,
    bootstrap_indices,
    percentile_interval,
)
from dialoghub.metrics.semantic import SemanticSimilarity

Dialogue = Sequence[Mapping[str, str]]

REAL_LABEL, SYNTHETIC_LABEL = 0, 1
DEFAULT_FOLDS = 5
DISTINCT_ORDERS = (1, 2)
# mauve-text's own defaults for the k-means quantization, passed explicitly so that a release changing them does not
# change our figures; `num_buckets="auto"` is min(n_real, n_synthetic) / 10 clusters (at least 2).
MAUVE_SETTINGS = {
    "num_buckets": "auto",
    "pca_max_data": -1,
    "kmeans_explained_var": 0.9,
    "kmeans_num_redo": 5,
    "kmeans_max_iter": 500,
    "divergence_curve_discretization_size": 25,
    "mauve_scaling_factor": 5,
}


def _wilson(successes: int, trials: int, confidence: float) -> Estimate:
    interval = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(successes / trials, float(interval.low), float(interval.high))


def _check_texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of texts, not one string")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name}[{index}] is empty or not a string")
    return texts


def _check_dialogues(dialogues: Sequence[Dialogue], name: str) -> list[Dialogue]:
    dialogues = list(dialogues)
    if not dialogues:
        raise ValueError(f"{name} has no dialogue")
    for index, dialogue in enumerate(dialogues):
        if isinstance(dialogue, (str, Mapping)) or not dialogue:
            raise ValueError(f"{name}[{index}] is not a non-empty list of turns")
        for turn_index, turn in enumerate(dialogue):
            if not isinstance(turn, Mapping) or turn.get("role") not in ROLES:
                raise ValueError(f"{name}[{index}], turn {turn_index}: not a {{'role': one of {ROLES}, 'text'}} turn")
            if not isinstance(turn.get("text"), str) or not turn["text"].strip():
                raise ValueError(f"{name}[{index}], turn {turn_index}: the text is empty or not a string")
    return dialogues


def _two_sample_indices(n_real: int, n_synthetic: int, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return bootstrap_indices(n_real, n_resamples, seed + 1), bootstrap_indices(n_synthetic, n_resamples, seed)


# --- classifier two-sample test ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoSampleTest:
    """Out-of-fold accuracy of a real-vs-synthetic classifier, with its Wilson interval over the predictions (each
    one a trial; the predictions of one fold share a model, so the interval is, if anything, a little narrow)."""

    accuracy: Estimate
    n_correct: int
    n_per_class: int
    n_splits: int
    seed: int


def two_sample_classifier(seed: int = 0) -> Pipeline:
    """The classifier: TF-IDF of word 1-2 grams (fitted inside each fold) + logistic regression."""
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000, random_state=seed)
    )


def balanced_two_sample(
    real_texts: Sequence[str], synthetic_texts: Sequence[str], seed: int = 0
) -> tuple[list[str], np.ndarray]:
    """The texts and labels (real 0, synthetic 1) with the larger set subsampled, with `seed`, to the smaller one's
    size, so that chance accuracy is 50 %."""
    real = _check_texts(real_texts, "real_texts")
    synthetic = _check_texts(synthetic_texts, "synthetic_texts")
    size = min(len(real), len(synthetic))
    rng = np.random.default_rng(seed)

    def subsample(texts: list[str]) -> list[str]:
        if len(texts) == size:
            return texts
        return [texts[index] for index in sorted(rng.choice(len(texts), size=size, replace=False))]

    real, synthetic = subsample(real), subsample(synthetic)
    labels = np.array([REAL_LABEL] * size + [SYNTHETIC_LABEL] * size)
    return real + synthetic, labels


def classifier_two_sample_test(
    real_texts: Sequence[str],
    synthetic_texts: Sequence[str],
    n_splits: int = DEFAULT_FOLDS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> TwoSampleTest:
    """Can a simple classifier tell synthetic dialogues from real ones? Stratified `n_splits`-fold cross-validated
    accuracy (scikit-learn's `cross_val_predict`, shuffled with `seed`) on balanced classes: 50 % means it cannot,
    100 % that every dialogue gives itself away."""
    texts, labels = balanced_two_sample(real_texts, synthetic_texts, seed)
    n_per_class = len(texts) // 2
    if n_splits < 2 or n_per_class < n_splits:
        raise ValueError(f"{n_splits}-fold cross-validation needs n_splits >= 2 texts per class; got {n_per_class}")
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    predicted = cross_val_predict(two_sample_classifier(seed), texts, labels, cv=folds)
    n_correct = int((predicted == labels).sum())
    return TwoSampleTest(_wilson(n_correct, len(labels), confidence), n_correct, n_per_class, n_splits, seed)


# --- MAUVE ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MauveResult:
    """MAUVE of the synthetic set (mauve's q) against the real one (p), a point value without an interval: a
    bootstrap would resample embeddings with replacement, and k-means gives the duplicates clusters of their own, so
    resampled MAUVE falls below the full sets' (on two draws of one Gaussian, 60 points each: 0.98, with every one of
    5 resamples in [0.66, 0.94])."""

    mauve: float
    frontier_integral: float
    num_buckets: int
    n_real: int
    n_synthetic: int
    seed: int


def embed_texts(texts: Sequence[str], similarity: SemanticSimilarity) -> np.ndarray:
    """`(len(texts), dim)` unit-length embeddings from the model `similarity` loads (the project's MiniLM through
    `dialoghub.metrics.scorers.load_semantic_similarity`), the features `mauve_closeness` takes. The model reads at
    most `similarity.model.max_seq_length` word pieces of each text (256 for MiniLM)."""
    texts = _check_texts(texts, "texts")
    return np.asarray(
        similarity.model.encode(
            texts, batch_size=similarity.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
    )


def _features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=float)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"{name} must be a (n >= 2, dim) array, got shape {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError(f"{name} has non-finite values")
    return features


def mauve_closeness(real_features: np.ndarray, synthetic_features: np.ndarray, seed: int = 0) -> MauveResult:
    """MAUVE between real and synthetic embeddings (1: the same distribution; near 0: disjoint):
    `mauve.compute_mauve` on the given features with `MAUVE_SETTINGS` and `seed`."""
    real = _features(real_features, "real_features")
    synthetic = _features(synthetic_features, "synthetic_features")
    if real.shape[1] != synthetic.shape[1]:
        raise ValueError(f"the feature sizes differ: real {real.shape[1]}, synthetic {synthetic.shape[1]}")
    # mauve imports torch and transformers when it is imported: only load it when MAUVE is asked for.
    import mauve

    result = mauve.compute_mauve(p_features=real, q_features=synthetic, seed=seed, verbose=False, **MAUVE_SETTINGS)
    return MauveResult(
        float(result.mauve), float(result.frontier_integral), int(result.num_buckets), len(real), len(synthetic), seed
    )


# --- distinct-n -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistinctN:
    """Distinct-n of each set and the ratio synthetic / real, each with its interval."""

    order: int
    real: Estimate
    synthetic: Estimate
    ratio: Estimate


def dialogue_ngrams(dialogue: Dialogue, order: int) -> list[tuple[str, ...]]:
    """The word n-grams (`dialoghub.core.ngrams`) of each turn's text; none spans two turns."""
    return [ngram for turn in dialogue for ngram in ngrams(words(turn["text"]), order)]


def distinct_shares(dialogues: Sequence[Dialogue], order: int) -> tuple[np.ndarray, np.ndarray]:
    """Per dialogue, (its share of the set's distinct n-grams, its number of n-grams): each distinct n-gram is split
    evenly over its occurrences, so the shares sum to the number of distinct n-grams and distinct-n of any set of
    dialogues, weighted as a resample weighs them, is sum(shares) / sum(counts).

    Recounting the distinct n-grams of each resample instead would count a dialogue drawn twice as repeating itself:
    on 100 toy dialogues of distinct-2 0.99 its interval was [0.57, 0.69], this one's [0.990, 0.995]."""
    per_dialogue = [dialogue_ngrams(dialogue, order) for dialogue in dialogues]
    occurrences = Counter(ngram for found in per_dialogue for ngram in found)
    shares = np.array([sum(1 / occurrences[ngram] for ngram in found) for found in per_dialogue], dtype=float)
    counts = np.array([len(found) for found in per_dialogue], dtype=float)
    return shares, counts


def distinct_n(dialogues: Sequence[Dialogue], order: int) -> float:
    """Unique n-grams / all n-grams over the set's turns (`dialoghub.core.ngrams.distinct_n` of the turns' words, as
    the leaderboard's synthetic-dialogue task counts its own tokens); 0 when there is no n-gram."""
    return ngrams_distinct_n([words(turn["text"]) for dialogue in dialogues for turn in dialogue], order)


def _resampled_ratio(numerators: np.ndarray, denominators: np.ndarray, indices: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerators[indices].sum(axis=1) / denominators[indices].sum(axis=1)


def _finite_interval(resampled: np.ndarray, confidence: float) -> tuple[float, float]:
    # a resample of only n-gram-less dialogues has no distinct-n: it takes no part in the interval
    return percentile_interval(resampled[np.isfinite(resampled)], confidence)


def distinct_n_closeness(
    real_dialogues: Sequence[Dialogue],
    synthetic_dialogues: Sequence[Dialogue],
    orders: Sequence[int] = DISTINCT_ORDERS,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[int, DistinctN]:
    """Distinct-n of both sets, for each order, with intervals over resampled dialogues (see `distinct_shares`)."""
    real = _check_dialogues(real_dialogues, "real_dialogues")
    synthetic = _check_dialogues(synthetic_dialogues, "synthetic_dialogues")
    real_indices, synthetic_indices = _two_sample_indices(len(real), len(synthetic), n_resamples, seed)
    results = {}
    for order in orders:
        if order < 1:
            raise ValueError(f"n-gram orders must be >= 1, got {order}")
        real_shares, real_counts = distinct_shares(real, order)
        synthetic_shares, synthetic_counts = distinct_shares(synthetic, order)
        if not real_counts.sum() or not synthetic_counts.sum():
            raise ValueError(f"a set has no {order}-gram: distinct-{order} is undefined")
        real_resampled = _resampled_ratio(real_shares, real_counts, real_indices)
        synthetic_resampled = _resampled_ratio(synthetic_shares, synthetic_counts, synthetic_indices)
        real_value, synthetic_value = distinct_n(real, order), distinct_n(synthetic, order)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio_resampled = synthetic_resampled / real_resampled
        results[order] = DistinctN(
            order,
            Estimate(real_value, *_finite_interval(real_resampled, confidence)),
            Estimate(synthetic_value, *_finite_interval(synthetic_resampled, confidence)),
            Estimate(synthetic_value / real_value, *_finite_interval(ratio_resampled, confidence)),
        )
    return results


# --- opening turns ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpeningSharing:
    """The share of dialogues whose opening turn is also another dialogue's, with its Wilson interval (each dialogue
    a trial: a bootstrap would draw dialogues twice and make each copy share its own opening), and the most frequent
    shared openings with their counts."""

    share: Estimate
    n_sharing: int
    n_dialogues: int
    most_common: list[tuple[str, int]]


def normalized_opening(dialogue: Dialogue) -> str:
    """The first turn's text, lower-cased, with its whitespace runs made single spaces."""
    return " ".join(dialogue[0]["text"].lower().split())


def opening_sharing(
    dialogues: Sequence[Dialogue], top: int = 5, confidence: float = DEFAULT_CONFIDENCE
) -> OpeningSharing:
    """How many dialogues of the set open exactly (after `normalized_opening`) like another one of the set."""
    dialogues = _check_dialogues(dialogues, "dialogues")
    openings = Counter(normalized_opening(dialogue) for dialogue in dialogues)
    n_sharing = sum(count for count in openings.values() if count > 1)
    shared = [(opening, count) for opening, count in openings.most_common(top) if count > 1]
    return OpeningSharing(_wilson(n_sharing, len(dialogues), confidence), n_sharing, len(dialogues), shared)


# --- distributions of turns, lengths and roles ------------------------------------------------------------------


@dataclass(frozen=True)
class DistributionDistance:
    """How one feature's distribution in the synthetic set differs from the real one's: the Wasserstein (earth
    mover's) distance in the feature's unit with its interval, and the two-sample Kolmogorov-Smirnov statistic.

    A distance is never negative, so for two alike sets the interval lies above the point value: it gives the
    distance's spread; whether the sets differ at all is the KS test's p-value."""

    feature: str
    wasserstein: Estimate
    ks_statistic: float
    ks_pvalue: float
    real_mean: float
    synthetic_mean: float


def _turn_words(dialogue: Dialogue) -> list[int]:
    return [len(turn["text"].split()) for turn in dialogue]


def _customer_word_share(dialogue: Dialogue) -> list[float]:
    turn_words = _turn_words(dialogue)
    customer = sum(count for turn, count in zip(dialogue, turn_words, strict=True) if turn["role"] == CUSTOMER)
    return [customer / sum(turn_words)]


# Each feature gives a dialogue's values (one per dialogue, or one per turn): resampling dialogues keeps a
# dialogue's turns together.
DIALOGUE_FEATURES: dict[str, Callable[[Dialogue], list[float]]] = {
    "turns": lambda dialogue: [len(dialogue)],
    "words_per_turn": _turn_words,
    "customer_turn_share": lambda dialogue: [sum(turn["role"] == CUSTOMER for turn in dialogue) / len(dialogue)],
    "customer_word_share": _customer_word_share,
}


def feature_values(dialogues: Sequence[Dialogue], feature: str) -> list[list[float]]:
    """The values of `feature` (one of `DIALOGUE_FEATURES`) of each dialogue; words are whitespace-separated."""
    if feature not in DIALOGUE_FEATURES:
        raise ValueError(f"unknown feature {feature!r}; expected one of {list(DIALOGUE_FEATURES)}")
    return [[float(value) for value in DIALOGUE_FEATURES[feature](dialogue)] for dialogue in dialogues]


def distribution_distances(
    real_dialogues: Sequence[Dialogue],
    synthetic_dialogues: Sequence[Dialogue],
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, DistributionDistance]:
    """`scipy.stats.wasserstein_distance` and `scipy.stats.ks_2samp` between the sets, for each of
    `DIALOGUE_FEATURES`; the Wasserstein interval recomputes it on resampled dialogues of both sets."""
    real = _check_dialogues(real_dialogues, "real_dialogues")
    synthetic = _check_dialogues(synthetic_dialogues, "synthetic_dialogues")
    real_indices, synthetic_indices = _two_sample_indices(len(real), len(synthetic), n_resamples, seed)
    results = {}
    for feature in DIALOGUE_FEATURES:
        real_values, synthetic_values = feature_values(real, feature), feature_values(synthetic, feature)
        real_all, synthetic_all = np.concatenate(real_values), np.concatenate(synthetic_values)
        resampled = [
            wasserstein_distance(
                np.concatenate([real_values[index] for index in real_rows]),
                np.concatenate([synthetic_values[index] for index in synthetic_rows]),
            )
            for real_rows, synthetic_rows in zip(real_indices, synthetic_indices, strict=True)
        ]
        distance = float(wasserstein_distance(real_all, synthetic_all))
        ks = ks_2samp(real_all, synthetic_all)
        results[feature] = DistributionDistance(
            feature,
            Estimate(distance, *percentile_interval(resampled, confidence)),
            float(ks.statistic),
            float(ks.pvalue),
            float(real_all.mean()),
            float(synthetic_all.mean()),
        )
    return results
