"""Reward functions of the summarizer's reward tuning (`dialoghub.reward.training`), in trl's `reward_funcs` form:
`reward(prompts, completions, completion_ids, **columns) -> list[float]`, one reward per completion, where the
columns are the training rows' (`summaries`: the references, `dialogue`: the turns), repeated per generation.

Every score comes from the project's metric code, never re-implemented here:

- `rougeL`: ROUGE-L F-measure (rouge_score, `dialoghub.metrics.rouge`) against the dialog's references, in [0, 1];
- `semantic_similarity`: cosine similarity (`dialoghub.metrics.semantic`, the offline MiniLM) with the closest
  reference, in [-1, 1];
- `non_toxicity`: 1 - toxicity from the pluggable scorer (`dialoghub.metrics.toxicity`: `profanity-check` offline,
  or a text-classification model id), in [0, 1];
- `length`: 1 when the summary's word count is within the range of the references' word counts, falling linearly
  to 0 at twice (or zero times) the nearest bound;
- `no_leakage`: 1 unless the summary leaks the prompt (`prompt_leakage`): chat-template tokens, `Customer:`/`Agent:`
  lines, the instructions, or a long verbatim run of the dialogue, which is how a summarizer repeats a customer's
  abuse word for word.

The weights are trl's `reward_weights` (one per name in the recipe's `rewards`), summed before GRPO normalises them
within each group of generations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dialoghub.core.ngrams import shingles, words
from dialoghub.metrics.rouge import rouge_per_sample
from dialoghub.models import leakage, prompts

ROUGE_L = "rougeL"
SEMANTIC_SIMILARITY = "semantic_similarity"
NON_TOXICITY = "non_toxicity"
LENGTH = "length"
NO_LEAKAGE = "no_leakage"
REWARD_NAMES = (ROUGE_L, SEMANTIC_SIMILARITY, NON_TOXICITY, LENGTH, NO_LEAKAGE)

# A run of this many dialogue words, verbatim in a summary, is a pasted turn rather than a summary. Annotators quote
# shorter runs (requests, product names): 3 % of the train split's 2,629 references hold a 15-word run of their
# dialog, 27 % an 8-word one.
COPIED_RUN_WORDS = 15
# The instructions leak when a summary shares a word n-gram this long with them.
INSTRUCTION_RUN_WORDS = 5
_ROLE_LINE = leakage.label_pattern(leakage.SUMMARY_FOREIGN_LABELS)

Turns = Sequence[Mapping[str, str]]


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The text of one trl completion: a string, or a conversational completion's (assistant) message contents."""
    if isinstance(completion, str):
        return completion.strip()
    return "".join(str(message.get("content") or "") for message in completion).strip()


def prompt_leakage(summary: str, dialogue: Turns) -> str | None:
    """Why `summary` leaks its prompt, or None: a chat-template token, a `Role:` line, the system prompt or the
    instruction, or a run of `COPIED_RUN_WORDS` words copied verbatim from the dialogue."""
    if marker := leakage.chat_marker(summary):
        return f"chat-template token {marker!r}"
    if role := _ROLE_LINE.search(summary):
        return f"a {role.group(1)!r} line"
    if leakage.repeats_instructions(summary, prompts.SUMMARIZE, INSTRUCTION_RUN_WORDS):
        return "repeats the instructions"
    summary_words = words(summary)
    if len(summary_words) >= COPIED_RUN_WORDS:
        copied = shingles(summary_words, COPIED_RUN_WORDS)
        for turn in dialogue:
            turn_words = words(turn["text"])
            if len(turn_words) >= COPIED_RUN_WORDS and copied & shingles(turn_words, COPIED_RUN_WORDS):
                return f"copies {COPIED_RUN_WORDS}+ words of a {turn['role']} turn verbatim"
    return None


def length_score(summary: str, references: Sequence[str]) -> float:
    """1 inside the references' word-count range; linearly down to 0 at zero words or twice the longest."""
    count, lengths = len(summary.split()), [len(reference.split()) for reference in references]
    shortest, longest = min(lengths), max(lengths)
    if shortest <= count <= longest:
        return 1.0
    if count < shortest:
        return count / shortest
    return max(0.0, 1.0 - (count - longest) / longest)


class RewardFunction:
    """A named reward over completions; `__name__` is what trl logs it as (`rewards/<name>/mean`)."""

    def __init__(self, name: str, score: Callable[[list[str], dict[str, list]], list[float]]) -> None:
        self.__name__ = name
        self.score = score
        self.calls: list[list[str]] = []
        """The completion texts of every call, kept only while `record` is set (tests and benchmarks read them)."""
        self.record = False

    def __call__(self, prompts=None, completions=None, completion_ids=None, **columns) -> list[float]:
        texts = [completion_text(completion) for completion in completions]
        if self.record:
            self.calls.append(texts)
        return [float(value) for value in self.score(texts, columns)]

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__})"


def _references(columns: Mapping[str, list]) -> list[list[str]]:
    if "summaries" not in columns:
        raise ValueError("the training rows need a 'summaries' column (the references) for this reward")
    return [[" ".join(summary.split()) for summary in summaries] for summaries in columns["summaries"]]


def rouge_l_reward() -> RewardFunction:
    # "max": the closest reference, as a writer matching any one human summary is relevant
    return RewardFunction(
        ROUGE_L, lambda texts, columns: rouge_per_sample(texts, _references(columns), protocol="max")[ROUGE_L]
    )


def semantic_similarity_reward(similarity) -> RewardFunction:
    """`similarity`: an `dialoghub.metrics.SemanticSimilarity` (the model is loaded once, on first use)."""
    return RewardFunction(SEMANTIC_SIMILARITY, lambda texts, columns: similarity(texts, _references(columns)))


def non_toxicity_reward(scorer) -> RewardFunction:
    """`scorer`: any `dialoghub.metrics.ToxicityScorer` (`name`, `__call__(texts) -> probabilities`)."""
    return RewardFunction(NON_TOXICITY, lambda texts, columns: [1.0 - score for score in scorer(texts)])


def length_reward() -> RewardFunction:
    return RewardFunction(
        LENGTH,
        lambda texts, columns: [
            length_score(text, references) for text, references in zip(texts, _references(columns), strict=True)
        ],
    )


def no_leakage_reward() -> RewardFunction:
    def score(texts: list[str], columns: Mapping[str, list]) -> list[float]:
        if "dialogue" not in columns:
            raise ValueError("the training rows need a 'dialogue' column for the no_leakage reward")
        return [
            float(prompt_leakage(text, turns) is None) for text, turns in zip(texts, columns["dialogue"], strict=True)
        ]

    return RewardFunction(NO_LEAKAGE, score)


def build_rewards(names: Sequence[str], *, toxicity_scorer=None, semantic_similarity=None) -> list[RewardFunction]:
    """The reward functions named in `names` (each of `REWARD_NAMES` at most once), in that order."""
    unknown = [name for name in names if name not in REWARD_NAMES]
    if unknown or not names:
        raise ValueError(f"unknown or no reward(s) {unknown}; expected some of {REWARD_NAMES}")
    if len(set(names)) != len(names):
        raise ValueError(f"a reward is named twice in {list(names)}")
    built = []
    for name in names:
        if name == ROUGE_L:
            built.append(rouge_l_reward())
        elif name == SEMANTIC_SIMILARITY:
            if semantic_similarity is None:
                raise ValueError("the semantic_similarity reward needs an embedding model")
            built.append(semantic_similarity_reward(semantic_similarity))
        elif name == NON_TOXICITY:
            if toxicity_scorer is None:
                raise ValueError("the non_toxicity reward needs a toxicity scorer")
            built.append(non_toxicity_reward(toxicity_scorer))
        elif name == LENGTH:
            built.append(length_reward())
        else:
            built.append(no_leakage_reward())
    return built
