"""The reward-tuning budget, chosen on validation: a `TrainerCallback` that scores the policy's greedy summaries of
held-out dialogs before the first step and every `every` optimizer steps, and stops the run where the curve flattens.

- Toxicity on the provocation dataset's `validation` split (validation dialogs with a phrase of the validation abuse
  list inserted, `dialoghub/data/provocation.py`): mean ×100 and flagged share, the test columns' scorer.
- Relevance on tweetsumm-clean's `validation` split: ROUGE-L against every human summary, jackknifed, as on the
  leaderboard.

Neither split is ever a training prompt or a test row, so choosing the step count here leaves the test figures
honest. Summaries are greedy with the leaderboard's length and loop stop, through the one `Generator`, on the policy
being trained (its SFT adapter, not trl's frozen reference copy).

The run stops ("flattened") once `patience` evaluations in a row have lowered toxicity by less than
`min_improvement` points below the best before them, or ("relevance") once `patience` evaluations in a row have
ROUGE-L more than `max_relevance_drop` points below its value before training (one such point is within the noise of
48 dialogs: a paired difference of about one standard error); otherwise at the recipe's last step. A run does not
publish a last point whose relevance fell: it leaves its best admissible point's policy, the lowest validation
toxicity among the points whose ROUGE-L is within `max_relevance_drop` of the start (as `load_best_model_at_end`
does for one metric). Any other run leaves its last step's policy.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

import torch
from transformers import TrainerCallback

from dialoghub.metrics.rouge import rouge_per_sample
from dialoghub.metrics.toxicity import summarize_toxicity
from dialoghub.models import prompts
from dialoghub.models.generation import ROUND_TRIP_GENERATION, Generator

logger = logging.getLogger(__name__)

FLATTENED, RELEVANCE, BUDGET = "flattened", "relevance", "budget"
GREEDY_SUMMARIES = dataclasses.replace(ROUND_TRIP_GENERATION, batch_size=16)


@dataclass(frozen=True)
class ValidationPoint:
    step: int
    toxicity: float  # mean toxicity ×100 on the provocation validation prompts
    flagged: float  # % of those summaries the scorer flags
    rouge_l: float  # jackknifed ROUGE-L ×100 on the plain validation prompts
    words: float  # mean summary length in words, both sets
    seconds: float  # the evaluation's wall time

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def summarize_conversations(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, str]]]:
    return [prompts.summarize_messages(row["dialogue"], f"conversation {row['conversation_id']}") for row in rows]


def stop_reason(
    points: Sequence[ValidationPoint], patience: int, min_improvement: float, max_relevance_drop: float
) -> str | None:
    """Why the curve says stop after its last point (`FLATTENED`, `RELEVANCE`), or None to go on."""
    if len(points) < 2:
        return None
    in_a_row = max(patience, 1)
    if len(points) > in_a_row and all(
        not admissible(point, points, max_relevance_drop) for point in points[-in_a_row:]
    ):
        return RELEVANCE
    if patience > 0 and len(points) > patience:
        best_before = min(point.toxicity for point in points[:-patience])
        if all(point.toxicity > best_before - min_improvement for point in points[-patience:]):
            return FLATTENED
    return None


def admissible(point: ValidationPoint, points: Sequence[ValidationPoint], max_relevance_drop: float) -> bool:
    """Whether `point`'s ROUGE-L is within `max_relevance_drop` of the first point's (before training)."""
    return point.rouge_l >= points[0].rouge_l - max_relevance_drop


def best_admissible(points: Sequence[ValidationPoint], max_relevance_drop: float) -> ValidationPoint:
    """The admissible point of lowest toxicity (the first point itself, before training, always is admissible); the
    earliest of equals."""
    return min(
        (point for point in points if admissible(point, points, max_relevance_drop)), key=lambda point: point.toxicity
    )


class ValidationCurve(TrainerCallback):
    """Scores the policy on held-out prompts as it trains (`points`), and stops the run where the curve flattens
    (`stopped`: why the run ended, one of `FLATTENED`, `RELEVANCE`, `BUDGET`). A run whose last point's relevance fell
    ends with the trainable weights of its best admissible point put back, so the adapter saved after `train()` is
    `chosen_step`'s."""

    def __init__(
        self,
        *,
        tokenizer,
        base,
        provocation_rows: Sequence[dict[str, Any]],
        plain_rows: Sequence[dict[str, Any]],
        toxicity_scorer,
        every: int,
        patience: int = 2,
        min_improvement: float = 0.5,
        max_relevance_drop: float = 1.0,
    ) -> None:
        if every < 1:
            raise ValueError(f"validation_every must be >= 1, got {every}")
        if not provocation_rows or not plain_rows:
            raise ValueError("the validation curve needs provocation and plain validation prompts")
        self.tokenizer, self.base = tokenizer, base
        self.provocation_rows, self.plain_rows = list(provocation_rows), list(plain_rows)
        self.toxicity_scorer = toxicity_scorer
        self.every, self.patience = every, patience
        self.min_improvement, self.max_relevance_drop = min_improvement, max_relevance_drop
        self.points: list[ValidationPoint] = []
        self.stopped: str | None = None
        self.chosen_step: int | None = None
        self._chosen_weights: dict[str, torch.Tensor] = {}

    def evaluate(self, model, step: int) -> ValidationPoint:
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        generator = Generator(model=model, tokenizer=self.tokenizer, base=self.base)
        conversations = summarize_conversations(self.provocation_rows + self.plain_rows)
        try:
            # The generator seeds the global RNG per batch; forked, so training samples as it would without the curve
            with torch.random.fork_rng(devices=[]):
                completions = generator.generate(conversations, GREEDY_SUMMARIES, progress=False)
            texts = [completion.text for completion in completions]
        finally:
            model.train(was_training)
        abusive, plain = texts[: len(self.provocation_rows)], texts[len(self.provocation_rows) :]
        toxicity = summarize_toxicity(self.toxicity_scorer(abusive))
        references = [[" ".join(summary.split()) for summary in row["summaries"]] for row in self.plain_rows]
        rouge_l = rouge_per_sample(plain, references, protocol="jackknife")["rougeL"]
        point = ValidationPoint(
            step=step,
            toxicity=100 * toxicity["toxicity_mean"],
            flagged=100 * toxicity["toxic_fraction"],
            rouge_l=100 * fmean(rouge_l),
            words=fmean(len(text.split()) for text in abusive + plain),
            seconds=time.perf_counter() - started,
        )
        logger.info("validation at step %d: %s", step, point)
        return point

    def _record(self, model, state, control) -> None:
        point = self.evaluate(model, state.global_step)
        self.points.append(point)
        if best_admissible(self.points, self.max_relevance_drop) is point:
            self.chosen_step = point.step
            self._chosen_weights = {
                name: weight.detach().clone() for name, weight in model.named_parameters() if weight.requires_grad
            }
        reason = stop_reason(self.points, self.patience, self.min_improvement, self.max_relevance_drop)
        if reason is not None:
            self.stopped = reason
            control.should_training_stop = True

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not self.points:
            self._record(model, state, control)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._record(model, state, control)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.points[-1].step != state.global_step:
            self._record(model, state, control)
        if self.stopped is None:
            self.stopped = BUDGET
        if admissible(self.points[-1], self.points, self.max_relevance_drop):
            # A run that ended with relevance intact keeps its last policy, the one trained longest against toxicity
            self.chosen_step = state.global_step
        elif self.chosen_step != state.global_step:
            logger.info("the validation curve chose step %d: its trainable weights are put back", self.chosen_step)
            with torch.no_grad():
                for name, weight in model.named_parameters():
                    if name in self._chosen_weights:
                        weight.copy_(self._chosen_weights[name])

    def record(self) -> dict[str, Any]:
        """The curve and why the run ended, for the training summary and the card."""
        return {
            "every": self.every,
            "provocation_prompts": len(self.provocation_rows),
            "plain_prompts": len(self.plain_rows),
            "patience": self.patience,
            "min_improvement": self.min_improvement,
            "max_relevance_drop": self.max_relevance_drop,
            "stopped": self.stopped,
            "chosen_step": self.chosen_step,
            "points": [point.to_dict() for point in self.points],
        }
