"""ROUGE-1/2/L/Lsum F-measures from google's `rouge_score`, with several references per sample.

Scoring is rouge_score's own: its default tokenizer (lower-cases, turns every character outside `[a-z0-9]` into a
space, so emoji and non-Latin text do not count) and its Porter stemmer (`use_stemmer=True`).

ROUGE-Lsum is computed over sentences, which rouge_score expects separated by newlines. Its `split_summaries=True`
needs nltk's `punkt_tab` data, which is not installed here and which a download would make environment-dependent, so
texts are split by `split_sentences` first: existing newlines are kept, and each line is cut by nltk's Punkt algorithm
with its *default, untrained* parameters. That needs no data file and gives the same split everywhere; its one known
weakness is that it knows no abbreviations ("the U.S. office" becomes two sentences). Predictions and references go
through the same splitter, and the other ROUGE types are unaffected (a newline is whitespace to the tokenizer).

Multi-reference protocols (a sample has k >= 1 references; `rouge_score.score_multi` keeps the reference with the
best F-measure, and only F-measures are reported here, so "max" below is exactly `score_multi`):
- `max`: the best F-measure over the k references.
- `jackknife`: for each of the k subsets of k-1 references, the best F-measure over that subset; the mean of those k
  values. With k = 1 it is the plain single-reference score. This is the protocol that makes a system comparable to
  the human leave-one-out row (`leave_one_out_scores`), where each reference is scored against the k-1 others.

Single-reference protocol (`first_reference_rouge_per_sample`): the prediction against the dialog's first reference
only, scored exactly as Hugging Face `evaluate`'s "rouge" metric scores it by default (rouge_score, no stemmer, no
sentence splitting), the protocol of the public single-reference TweetSumm model cards.
"""

from collections.abc import Sequence
from functools import cache

from nltk.tokenize.punkt import PunktSentenceTokenizer
from rouge_score.rouge_scorer import RougeScorer

from dialoghub.metrics.inputs import check_predictions_and_references

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
PROTOCOLS = ("jackknife", "max")


@cache
def _sentence_splitter() -> PunktSentenceTokenizer:
    return PunktSentenceTokenizer()


@cache
def _rouge_scorer(use_stemmer: bool = True) -> RougeScorer:
    return RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`: its non-blank lines, each split by untrained Punkt."""
    return [sentence for line in text.splitlines() if line.strip() for sentence in _sentence_splitter().tokenize(line)]


def _with_sentence_lines(text: str) -> str:
    return "\n".join(split_sentences(text))


def combine_over_references(scores: Sequence[float], protocol: str) -> float:
    """One sample's score from its per-reference scores under `protocol` ("max" or "jackknife")."""
    if not scores:
        raise ValueError("no per-reference scores to combine")
    if protocol == "max":
        return max(scores)
    if protocol == "jackknife":
        if len(scores) == 1:
            return scores[0]
        return sum(max(scores[:left_out] + scores[left_out + 1 :]) for left_out in range(len(scores))) / len(scores)
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def _fmeasures_per_reference(prediction: str, references: Sequence[str]) -> dict[str, list[float]]:
    scorer = _rouge_scorer()
    prediction = _with_sentence_lines(prediction)
    scores = [scorer.score(_with_sentence_lines(reference), prediction) for reference in references]
    return {rouge_type: [score[rouge_type].fmeasure for score in scores] for rouge_type in ROUGE_TYPES}


def rouge_per_sample(
    predictions: Sequence[str], references: Sequence[Sequence[str]], protocol: str = "jackknife"
) -> dict[str, list[float]]:
    """Per-sample ROUGE F-measures in [0, 1], keyed by rouge type, under `protocol`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    check_predictions_and_references(predictions, references)
    per_sample = {rouge_type: [] for rouge_type in ROUGE_TYPES}
    for prediction, sample_references in zip(predictions, references, strict=True):
        for rouge_type, scores in _fmeasures_per_reference(prediction, sample_references).items():
            per_sample[rouge_type].append(combine_over_references(scores, protocol))
    return per_sample


def leave_one_out_scores(summaries: Sequence[str]) -> dict[str, float]:
    """One sample's human ceiling: each of its k >= 2 summaries scored (max protocol) against the k-1 others, averaged.

    This is the counterpart of the jackknife protocol: there a system output faces the same k-1 reference subsets.
    """
    if len(summaries) < 2:
        raise ValueError(f"leave-one-out needs at least 2 summaries, got {len(summaries)}")
    held_out_scores = [
        _fmeasures_per_reference(held_out, [other for index, other in enumerate(summaries) if index != held_out_index])
        for held_out_index, held_out in enumerate(summaries)
    ]
    return {
        rouge_type: sum(max(scores[rouge_type]) for scores in held_out_scores) / len(summaries)
        for rouge_type in ROUGE_TYPES
    }


def first_reference_rouge_per_sample(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, list[float]]:
    """Per-sample F-measures in [0, 1] against each sample's first reference, as `evaluate.load("rouge")` computes
    them with its defaults (`use_stemmer=False`; its mean over samples is what `use_aggregator=False` averages to)."""
    check_predictions_and_references(predictions, references)
    scorer = _rouge_scorer(use_stemmer=False)
    scores = [
        scorer.score(sample_references[0], prediction)
        for prediction, sample_references in zip(predictions, references, strict=True)
    ]
    return {rouge_type: [score[rouge_type].fmeasure for score in scores] for rouge_type in ROUGE_TYPES}
