"""Summary metrics wrapping `rouge_score`, `sacrebleu`, `sentence-transformers`, `alt-profanity-check` and
`transformers` (never re-implemented), plus bootstrap intervals. `score_summaries` and `human_ceiling` produce a whole
report; the folders beside this file are the same metrics as local `evaluate` modules (`evaluate_module_path`).

Heavy libraries (torch, transformers, sentence-transformers) are imported only when a model is actually used.
"""

from pathlib import Path

from dialoghub.core.paths import REPO_ROOT
from dialoghub.metrics.bleu_chrf import CORPUS_METRICS, CorpusStatistics, reference_streams
from dialoghub.metrics.bootstrap import Estimate, bootstrap_indices, mean_estimate, statistic_estimate
from dialoghub.metrics.lengths import length_statistics
from dialoghub.metrics.perplexity import PerplexityResult, perplexity
from dialoghub.metrics.report import LEAVE_ONE_OUT, MetricsReport, human_ceiling, score_summaries
from dialoghub.metrics.rouge import PROTOCOLS, ROUGE_TYPES, leave_one_out_scores, rouge_per_sample, split_sentences
from dialoghub.metrics.semantic import DEFAULT_EMBEDDING_MODEL, SemanticSimilarity
from dialoghub.metrics.toxicity import (
    PROFANITY_CHECK,
    ProfanityCheckScorer,
    TextClassifierScorer,
    ToxicityScorer,
    load_toxicity_scorer,
    summarize_toxicity,
)

EVALUATE_MODULES = ("dialoghub_rouge", "dialoghub_sacrebleu", "dialoghub_semantic_similarity", "dialoghub_toxicity")


def evaluate_module_path(name: str) -> Path:
    """The folder to pass to `evaluate.load` for one of `EVALUATE_MODULES`."""
    if name not in EVALUATE_MODULES:
        raise ValueError(f"unknown evaluate module {name!r}; expected one of {EVALUATE_MODULES}")
    return REPO_ROOT / "evaluation" / "metrics" / name


__all__ = [
    "CORPUS_METRICS",
    "DEFAULT_EMBEDDING_MODEL",
    "EVALUATE_MODULES",
    "LEAVE_ONE_OUT",
    "PROFANITY_CHECK",
    "PROTOCOLS",
    "ROUGE_TYPES",
    "CorpusStatistics",
    "Estimate",
    "MetricsReport",
    "PerplexityResult",
    "ProfanityCheckScorer",
    "SemanticSimilarity",
    "TextClassifierScorer",
    "ToxicityScorer",
    "bootstrap_indices",
    "evaluate_module_path",
    "human_ceiling",
    "leave_one_out_scores",
    "length_statistics",
    "load_toxicity_scorer",
    "mean_estimate",
    "perplexity",
    "reference_streams",
    "rouge_per_sample",
    "score_summaries",
    "split_sentences",
    "statistic_estimate",
    "summarize_toxicity",
]
