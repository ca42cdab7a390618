"""How close the published dialogues are to the real TweetSumm dialogs of the same source conversations.

The figures are `dialoghub.metrics.closeness`'s (scikit-learn, mauve-text, scipy), on the run's published (kept,
up to target) dialogues against the source's `dialogue_column` at the run's pinned revision, both rendered by
`prompts.render_dialogue` for the text metrics so that they read alike. The issue's targets stand beside them, and
each verdict is computed from the figure and its interval here, never written by hand.

The figures pool the published splits, for two reasons. Every split is the same generator writing from summaries of
one corpus, so closeness is the generator's property, not a split's. And a split is small: with the goal's 50
validation and 50 test dialogues (5 each in today's recipe) the 5-fold two-sample test has 100 trials, a Wilson
interval of about +-9 points around 70 %, and MAUVE's k-means (`num_buckets="auto"`: n / 10) gets 5 clusters; the
pooled 300 give about +-4 points and 30 clusters. The card gives each split's share of the pooled sets.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialoghub.metrics.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Estimate
from dialoghub.metrics.closeness import (
    DEFAULT_FOLDS,
    MAUVE_SETTINGS,
    classifier_two_sample_test,
    distinct_n_closeness,
    distribution_distances,
    embed_texts,
    mauve_closeness,
    opening_sharing,
)
from dialoghub.metrics.scorers import load_semantic_similarity
from dialoghub.models import prompts

logger = logging.getLogger(__name__)

# The classifier's k-fold cross-validation needs k dialogues of each set; below that there is no figure to give.
MIN_DIALOGUES = DEFAULT_FOLDS
EXAMPLES = 3
MET = "met"
MET_BY_POINT = "met by the point value only (its 95 % interval crosses the target)"
NOT_MET = "not met"


@dataclass(frozen=True)
class Target:
    """One of the issue's closeness targets: the figure (a key of `figure_estimates`) at most or at least `bound`."""

    figure: str
    label: str
    bound: float
    at_most: bool

    def meets(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound

    def verdict(self, estimate: Estimate) -> str:
        """`MET` when the whole interval meets the bound, `MET_BY_POINT` when only the value does, else `NOT_MET`."""
        if not self.meets(estimate.value):
            return NOT_MET
        return MET if self.meets(estimate.ci_high if self.at_most else estimate.ci_low) else MET_BY_POINT


# The card's names of `dialoghub.metrics.closeness.DIALOGUE_FEATURES`.
FEATURE_LABELS = {
    "turns": "turns per dialogue",
    "words_per_turn": "words per turn",
    "customer_turn_share": "customer share of the turns",
    "customer_word_share": "customer share of the words",
}

TARGETS = (
    Target("two_sample_accuracy", "two-sample classifier accuracy", 0.70, at_most=True),
    Target("distinct_2_ratio", "distinct-2, synthetic / real", 0.90, at_most=False),
    Target("opening_sharing", "dialogues sharing an opening turn", 0.05, at_most=True),
)


def real_dialogues_by_id(dataset, config, split: str) -> dict[str, list[dict]]:
    """The source split's dialogs by conversation id (as the rows name them: a string)."""
    source_split = dataset[config.source_split_of(split)]
    return {
        str(conversation_id): dialogue
        for conversation_id, dialogue in zip(
            source_split[config.id_column], source_split[config.dialogue_column], strict=True
        )
    }


def paired_sets(
    published: Mapping[str, Sequence[Mapping[str, Any]]], dataset, config
) -> tuple[list[list[dict]], list[list[dict]], dict[str, dict[str, int]]]:
    """(real dialogues, synthetic dialogues, per split sizes), pooled in split order then row order.

    The synthetic set is every published dialogue; the real set is the source dialog of each of their source
    conversations, once (the first time a row names it): a conversation written from two of its summaries has one
    real dialog, and counting it twice would make the real set repeat itself."""
    real, synthetic, sizes = [], [], {}
    seen = set()
    for split, rows in published.items():
        source = real_dialogues_by_id(dataset, config, split)
        split_real = 0
        for row in rows:
            synthetic.append(row["dialogue"])
            conversation_id = row["source_conversation_id"]
            if (split, conversation_id) in seen:
                continue
            if conversation_id not in source:
                raise ValueError(f"{split}: source conversation {conversation_id!r} is not in the source split")
            seen.add((split, conversation_id))
            real.append(source[conversation_id])
            split_real += 1
        sizes[split] = {"synthetic": len(rows), "real": split_real}
    return real, synthetic, sizes


def side_by_side(published: Mapping[str, Sequence[Mapping[str, Any]]], dataset, config, count: int = EXAMPLES):
    """The first `count` published dialogues of the first split that has any, each with the real dialog of its source
    conversation (written from one of the same summaries), rendered as the prompts render dialogues."""
    split, rows = next((split, rows) for split, rows in published.items() if rows)
    source = real_dialogues_by_id(dataset, config, split)
    return [
        {
            "split": split,
            "conversation_id": row["conversation_id"],
            "source_conversation_id": row["source_conversation_id"],
            "summary": row["summary"],
            "real": prompts.render_dialogue(source[row["source_conversation_id"]]),
            "synthetic": prompts.render_dialogue(row["dialogue"]),
        }
        for row in list(rows)[:count]
    ]


def _asdict(value) -> Any:
    return dataclasses.asdict(value)


def closeness_figures(
    real: Sequence[Sequence[Mapping[str, str]]],
    synthetic: Sequence[Sequence[Mapping[str, str]]],
    similarity=None,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> dict:
    """Every `dialoghub.metrics.closeness` figure of `synthetic` against `real`, as plain dicts; MAUVE only with a
    `SemanticSimilarity` to embed with (None otherwise)."""
    real_texts = [prompts.render_dialogue(dialogue, "real dialogue") for dialogue in real]
    synthetic_texts = [prompts.render_dialogue(dialogue, "synthetic dialogue") for dialogue in synthetic]
    two_sample = classifier_two_sample_test(real_texts, synthetic_texts, seed=seed)
    mauve = (
        mauve_closeness(embed_texts(real_texts, similarity), embed_texts(synthetic_texts, similarity), seed=seed)
        if similarity is not None
        else None
    )
    distinct = distinct_n_closeness(real, synthetic, n_resamples=n_resamples, seed=seed)
    distances = distribution_distances(real, synthetic, n_resamples=n_resamples, seed=seed)
    return {
        "two_sample": _asdict(two_sample),
        "mauve": _asdict(mauve) if mauve else None,
        "distinct": {order: _asdict(result) for order, result in distinct.items()},
        "opening_sharing": {"synthetic": _asdict(opening_sharing(synthetic)), "real": _asdict(opening_sharing(real))},
        "distributions": {feature: _asdict(distance) for feature, distance in distances.items()},
    }


def figure_estimates(figures: dict) -> dict[str, Estimate]:
    """The estimates the targets judge, by `Target.figure`."""
    return {
        "two_sample_accuracy": Estimate(**figures["two_sample"]["accuracy"]),
        "distinct_2_ratio": Estimate(**figures["distinct"][2]["ratio"]),
        "opening_sharing": Estimate(**figures["opening_sharing"]["synthetic"]["share"]),
    }


def verdicts(figures: dict) -> dict[str, dict]:
    """Each target (by `Target.figure`) with its verdict on `figures`."""
    estimates = figure_estimates(figures)
    return {
        target.figure: dataclasses.asdict(target) | {"verdict": target.verdict(estimates[target.figure])}
        for target in TARGETS
    }


def closeness_to_real(
    published: Mapping[str, Sequence[Mapping[str, Any]]], dataset, config, source_record: Mapping[str, Any]
) -> dict:
    """The card's closeness section: sizes, side-by-side examples and, with at least `MIN_DIALOGUES` dialogues on
    each side, the figures and each target's verdict. `published` maps each output split to its published rows;
    `dataset` is the source `DatasetDict` the run read its summaries from."""
    real, synthetic, sizes = paired_sets(published, dataset, config)
    found = {
        "real_source": dict(source_record) | {"dialogue_column": config.dialogue_column},
        "sizes": sizes,
        "n_real": len(real),
        "n_synthetic": len(synthetic),
        "min_dialogues": MIN_DIALOGUES,
        "seed": config.seed,
        "n_resamples": DEFAULT_RESAMPLES,
        "confidence": DEFAULT_CONFIDENCE,
        "two_sample_folds": DEFAULT_FOLDS,
        "mauve_settings": dict(MAUVE_SETTINGS),
        "examples": side_by_side(published, dataset, config) if synthetic else [],
        "embedding_model": None,
        "figures": None,
        "verdicts": {},
    }
    if min(len(real), len(synthetic)) < MIN_DIALOGUES:
        logger.warning(
            "closeness to real dialogues: %d real and %d synthetic dialogues, fewer than %d on a side; no figures",
            len(real),
            len(synthetic),
            MIN_DIALOGUES,
        )
        return found
    similarity = None
    if config.embedding_model:
        similarity, found["embedding_model"] = load_semantic_similarity(config.embedding_model)
    found["figures"] = closeness_figures(real, synthetic, similarity, seed=config.seed)
    found["verdicts"] = verdicts(found["figures"])
    return found


def format_closeness(found: dict) -> str:
    """The figures and verdicts as a few lines of text, for the script's output."""
    lines = [f"Closeness to real dialogues ({found['n_synthetic']} synthetic, {found['n_real']} real):"]
    figures = found["figures"]
    if figures is None:
        return lines[0] + f" fewer than {found['min_dialogues']} on a side, no figures"
    accuracy = figures["two_sample"]["accuracy"]
    lines.append(
        f"  two-sample accuracy {100 * accuracy['value']:.1f} % "
        f"[{100 * accuracy['ci_low']:.1f}, {100 * accuracy['ci_high']:.1f}]"
    )
    if figures["mauve"]:
        lines.append(f"  MAUVE {figures['mauve']['mauve']:.3f}")
    for order, result in figures["distinct"].items():
        lines.append(
            f"  distinct-{order} synthetic {result['synthetic']['value']:.3f}, real {result['real']['value']:.3f}, "
            f"ratio {result['ratio']['value']:.3f} [{result['ratio']['ci_low']:.3f}, {result['ratio']['ci_high']:.3f}]"
        )
    sharing = figures["opening_sharing"]["synthetic"]["share"]
    lines.append(f"  sharing an opening turn {100 * sharing['value']:.1f} %")
    lines += [
        f"  target: {target['label']} {'<=' if target['at_most'] else '>='} {100 * target['bound']:g} %: "
        f"{target['verdict']}"
        for target in found["verdicts"].values()
    ]
    return "\n".join(lines)
