"""Metrics without models: ROUGE protocols, sacrebleu reference padding, bootstrap, lengths, profanity-check."""

import json
from itertools import combinations

import numpy as np
import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from dialoghub.metrics import (
    ROUGE_TYPES,
    CorpusStatistics,
    ProfanityCheckScorer,
    bootstrap_indices,
    human_ceiling,
    leave_one_out_scores,
    length_statistics,
    load_toxicity_scorer,
    mean_estimate,
    reference_streams,
    rouge_per_sample,
    score_summaries,
    split_sentences,
)

SUMMARIES = [
    "Customer is complaining about the slow wifi connection. Agent replied that the speed depends on the signal.",
    "Customer is complaining about the 1st class WIFI which is slower. Agent states that the signal is not fast.",
    "Customer is complaining about the slowness in the train WiFi. Agent states that the speed depends on the area.",
]
PREDICTIONS = [
    "Customer says the train wifi is slow. Agent says the speed depends on the mobile signal.",
    "The customer was charged twice. The agent refunds the second charge.",
    "the cat sat on the mat",
]
REFERENCES = [
    SUMMARIES,
    ["Customer is complaining about a double charge. Agent says a refund is on its way.", "Charged twice; refunded."],
    ["the cat is on the mat"],
]


def _corpus(n_documents: int) -> tuple[list[str], list[list[str]]]:
    """A small corpus with 1 to 3 references per document and varied overlap."""
    words = ["customer", "agent", "wifi", "slow", "train", "refund", "charge", "order", "late", "app", "login"]
    rng = np.random.default_rng(7)
    predictions, references = [], []
    for _ in range(n_documents):
        base = list(rng.choice(words, size=12))
        predictions.append(" ".join(base))
        references.append(
            [
                " ".join(base[: int(rng.integers(4, 12))] + list(rng.choice(words, size=5)))
                for _ in range(rng.integers(1, 4))
            ]
        )
    return predictions, references


def test_rouge_hand_checked_values():
    scores = rouge_per_sample(["the cat sat on the mat"], [["the cat is on the mat"]], "max")
    assert scores["rouge1"][0] == pytest.approx(5 / 6)  # the x2, cat, on, mat
    assert scores["rouge2"][0] == pytest.approx(3 / 5)  # "the cat", "on the", "the mat"
    assert scores["rougeL"][0] == pytest.approx(5 / 6)

    stemmed = rouge_per_sample(["running dogs"], [["the dog runs"]], "max")
    assert stemmed["rouge1"][0] == pytest.approx(2 * (1 * 2 / 3) / (1 + 2 / 3))  # P = 2/2, R = 2/3 after stemming

    swapped = rouge_per_sample(["The dog ran. The cat sat."], [["The cat sat. The dog ran."]], "max")
    assert swapped["rougeL"][0] == pytest.approx(0.5)
    assert swapped["rougeLsum"][0] == pytest.approx(1.0)


def test_identical_prediction_scores_one_under_both_protocols():
    for protocol in ("max", "jackknife"):
        scores = rouge_per_sample(SUMMARIES, [[summary] for summary in SUMMARIES], protocol)
        assert all(score == pytest.approx(1.0) for values in scores.values() for score in values)


def _rouge_score_multi(prediction: str, references: list[str]) -> dict[str, float]:
    scorer = RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = scorer.score_multi(
        ["\n".join(split_sentences(r)) for r in references], "\n".join(split_sentences(prediction))
    )
    return {rouge_type: scores[rouge_type].fmeasure for rouge_type in ROUGE_TYPES}


def test_max_protocol_is_rouge_score_multi():
    scores = rouge_per_sample(PREDICTIONS, REFERENCES, "max")
    for index, (prediction, references) in enumerate(zip(PREDICTIONS, REFERENCES, strict=True)):
        expected = _rouge_score_multi(prediction, references)
        assert {rouge_type: scores[rouge_type][index] for rouge_type in ROUGE_TYPES} == pytest.approx(expected)


def test_jackknife_is_the_mean_over_leave_one_out_reference_subsets():
    scores = rouge_per_sample(PREDICTIONS, REFERENCES, "jackknife")
    for index, (prediction, references) in enumerate(zip(PREDICTIONS, REFERENCES, strict=True)):
        subsets = [list(subset) for subset in combinations(references, len(references) - 1)]
        if len(references) == 1:
            subsets = [references]
        per_subset = [_rouge_score_multi(prediction, subset) for subset in subsets]
        for rouge_type in ROUGE_TYPES:
            expected = np.mean([subset_scores[rouge_type] for subset_scores in per_subset])
            assert scores[rouge_type][index] == pytest.approx(expected)


def test_jackknife_relations_with_max():
    predictions, references = _corpus(30)
    jackknife = rouge_per_sample(predictions, references, "jackknife")
    best = rouge_per_sample(predictions, references, "max")
    single = [
        rouge_per_sample([p] * len(refs), [[r] for r in refs], "max")
        for p, refs in zip(predictions, references, strict=True)
    ]
    for rouge_type in ROUGE_TYPES:
        for index, refs in enumerate(references):
            worst_single = min(single[index][rouge_type])
            assert worst_single - 1e-12 <= jackknife[rouge_type][index] <= best[rouge_type][index] + 1e-12
            if len(refs) == 1:
                assert jackknife[rouge_type][index] == best[rouge_type][index]
    # Some sample must actually lose something when its best reference is left out.
    assert any(j < b - 1e-9 for j, b in zip(jackknife["rouge1"], best["rouge1"], strict=True))

    duplicated = rouge_per_sample(["the cat sat"], [["the cat is here", "the cat is here"]], "jackknife")
    assert duplicated == rouge_per_sample(["the cat sat"], [["the cat is here"]], "max")


def test_leave_one_out_of_two_summaries_is_their_symmetric_score():
    pair = SUMMARIES[:2]
    expected = rouge_per_sample([pair[0]], [[pair[1]]], "max")
    assert leave_one_out_scores(pair) == pytest.approx({name: values[0] for name, values in expected.items()})
    assert leave_one_out_scores([SUMMARIES[0]] * 3) == pytest.approx(dict.fromkeys(ROUGE_TYPES, 1.0))
    with pytest.raises(ValueError, match="at least 2 summaries"):
        leave_one_out_scores(SUMMARIES[:1])


def test_human_ceiling_skips_single_summary_rows_and_names_bad_rows():
    rows = [
        {"conversation_id": "a", "summaries": SUMMARIES},
        {"conversation_id": "b", "summaries": SUMMARIES[:2]},
        {"conversation_id": "c", "summaries": SUMMARIES[:1]},
    ]
    report = human_ceiling(rows, n_bootstrap=50)
    assert report.protocol == "leave-one-out"
    assert report.n_samples == 2
    assert report.statistics["single_summary_rows_skipped"] == 1
    assert report.per_sample["rougeL"][1] == pytest.approx(100 * leave_one_out_scores(SUMMARIES[:2])["rougeL"])
    with pytest.raises(ValueError, match="no row has 2 or more summaries"):
        human_ceiling(rows[2:])
    with pytest.raises(ValueError, match="bad-row"):
        human_ceiling([*rows, {"conversation_id": "bad-row", "summaries": "not a list"}])


def test_split_sentences_keeps_lines_and_needs_no_downloaded_data():
    assert split_sentences("Hello there. How are you?\n\nFine thanks") == [
        "Hello there.",
        "How are you?",
        "Fine thanks",
    ]
    assert split_sentences("") == []


def test_reference_streams_pad_ragged_references_with_none():
    assert reference_streams([["a", "b"], ["c"], ["d", "e", "f"]]) == [
        ["a", "c", "d"],
        ["b", None, "e"],
        [None, None, "f"],
    ]


def test_missing_references_are_dropped_not_scored_as_empty():
    predictions = ["the cat sat on the mat today", "hi"]
    references = [["the cat sat on the mat", "a cat sat on a mat today"], ["hi there you all"]]
    bleu = CorpusStatistics("bleu", predictions, references).score()
    dropped = [["the cat sat on the mat", "hi there you all"], ["a cat sat on a mat today", None]]
    empty = [["the cat sat on the mat", "hi there you all"], ["a cat sat on a mat today", ""]]
    assert bleu == pytest.approx(sacrebleu.corpus_bleu(predictions, dropped).score, abs=1e-9)
    # An empty reference of length 0 is the closest to "hi" and removes the brevity penalty.
    assert sacrebleu.corpus_bleu(predictions, empty).score > bleu + 10


def test_corpus_statistics_match_sacrebleu_public_api():
    predictions, references = _corpus(25)
    streams = reference_streams(references)
    bleu = CorpusStatistics("bleu", predictions, references)
    chrf = CorpusStatistics("chrf", predictions, references)
    assert bleu.score() == pytest.approx(sacrebleu.corpus_bleu(predictions, streams).score, abs=1e-9)
    assert chrf.score() == pytest.approx(sacrebleu.corpus_chrf(predictions, streams).score, abs=1e-9)
    assert "nrefs:var" in bleu.signature

    # A bootstrap resample rescored from statistics equals sacrebleu on the resampled corpus.
    resample = np.random.default_rng(3).integers(0, len(predictions), size=len(predictions))
    resampled_predictions = [predictions[i] for i in resample]
    resampled_streams = reference_streams([references[i] for i in resample])
    assert bleu.score(resample) == pytest.approx(
        sacrebleu.corpus_bleu(resampled_predictions, resampled_streams).score, abs=1e-9
    )
    assert chrf.score(resample) == pytest.approx(
        sacrebleu.corpus_chrf(resampled_predictions, resampled_streams).score, abs=1e-9
    )


def test_bootstrap_is_seeded_and_brackets_the_point_estimate():
    predictions, references = _corpus(40)
    first = score_summaries(predictions, references, n_bootstrap=300, seed=11)
    again = score_summaries(predictions, references, n_bootstrap=300, seed=11)
    other_seed = score_summaries(predictions, references, n_bootstrap=300, seed=12)
    assert first.metrics == again.metrics
    assert first.metrics["rougeL"] != other_seed.metrics["rougeL"]
    assert first.metrics["rougeL"].value == other_seed.metrics["rougeL"].value
    assert set(first.metrics) == {*ROUGE_TYPES, *(f"ref1_{name}" for name in ROUGE_TYPES), "bleu", "chrf"}
    for name, estimate in first.metrics.items():
        assert estimate.ci_low < estimate.value < estimate.ci_high, name


def test_mean_estimate_of_constant_values_has_no_width():
    estimate = mean_estimate([0.5] * 10, bootstrap_indices(10, 100, seed=0))
    assert (estimate.value, estimate.ci_low, estimate.ci_high) == pytest.approx((0.5, 0.5, 0.5))


def test_score_summaries_report_units_and_json():
    report = score_summaries(PREDICTIONS, REFERENCES, protocol="max", toxicity=ProfanityCheckScorer(), n_bootstrap=20)
    rouge = rouge_per_sample(PREDICTIONS, REFERENCES, "max")
    assert report.per_sample["rouge2"] == pytest.approx([100 * value for value in rouge["rouge2"]])
    assert report.metrics["rouge2"].value == pytest.approx(100 * np.mean(rouge["rouge2"]))
    assert len(report.per_sample["toxicity"]) == len(PREDICTIONS)
    assert report.statistics["toxicity_scorer"] == "profanity-check"
    assert json.loads(json.dumps(report.to_dict()))["metrics"]["bleu"]["value"] == report.metrics["bleu"].value


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        (["a", "b"], [["a"]], "2 predictions but 1 reference lists"),
        (["a", "b"], [["a"], []], "sample 1: references must be a non-empty list"),
        (["a"], ["a"], "sample 0: references must be a non-empty list"),
        ([], [], "no predictions"),
    ],
)
def test_bad_inputs_name_the_sample(predictions, references, message):
    with pytest.raises(ValueError, match=message):
        rouge_per_sample(predictions, references)
    with pytest.raises(ValueError, match=message):
        CorpusStatistics("bleu", predictions, references)


def test_unknown_protocol_is_rejected():
    with pytest.raises(ValueError, match="unknown protocol 'mean'"):
        rouge_per_sample(["a"], [["a"]], "mean")


def test_length_statistics():
    stats = length_statistics(["one two three", "four"], [["a b", "c d e f"], ["g h"]])
    assert stats["prediction_words"] == 2.0  # (3 + 1) / 2
    assert stats["reference_words"] == 2.5  # mean of per-sample means (3, 2)
    assert stats["words_ratio"] == pytest.approx(0.8)
    assert stats["prediction_chars"] == (13 + 4) / 2


def test_profanity_scorer_ranks_toxic_above_benign():
    scorer = load_toxicity_scorer()
    benign, toxic = scorer(["Thanks for the quick help with my order!", "You are a fucking idiot, shut up."])
    assert 0 <= benign < 0.5 < toxic <= 1
    assert scorer([]) == []


def test_first_reference_rouge_is_evaluates_default_single_reference_score():
    from dialoghub.metrics.rouge import first_reference_rouge_per_sample

    scores = first_reference_rouge_per_sample(
        ["the cat sat", "cats running"], [["the cat sat on the mat", "the cat sat"], ["cat run", "cats running"]]
    )
    # Only the first reference counts (the second would give 1.0), and there is no stemming ("cats" != "cat").
    assert scores["rouge1"] == pytest.approx([2 * 1.0 * 0.5 / 1.5, 0.0])
    assert scores["rougeL"] == pytest.approx([2 * 1.0 * 0.5 / 1.5, 0.0])
    assert scores["rouge2"] == pytest.approx([2 * 1.0 * 0.4 / 1.4, 0.0])
