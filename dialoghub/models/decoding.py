"""What decoding means on every backend: the settings (`GenerationSettings`), what one answer records
(`Completion`, with why it stopped), the loop detector's span rule, and the per-batch seeds. `generation` and the CPU
engines (`models.backends`) both decode by these, so a setting means the same whatever runs it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class GenerationSettings:
    """How to decode; serialized with every generated dataset row and result, so it is all plain JSON values."""

    max_new_tokens: int = field(default=256, metadata={"help": "Most tokens generated per answer."})
    do_sample: bool = field(default=False, metadata={"help": "Sample (true) or decode greedily (false)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass."})
    top_k: int = field(default=0, metadata={"help": "Top-k filtering when sampling (0: off)."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Penalty on tokens already generated (1: none)."})
    seed: int = field(
        default=0,
        metadata={"help": "Seeds the sampler before each batch (see `batch_seed`); greedy decoding ignores it."},
    )
    batch_size: int = field(default=8, metadata={"help": "Prompts generated together."})
    num_beams: int = field(default=1, metadata={"help": "Beam search width (1: no beam search)."})
    length_penalty: float = field(
        default=1.0,
        metadata={"help": "Beam search only: > 1 favours longer answers, < 1 shorter (the score's length exponent)."},
    )
    no_repeat_ngram_size: int = field(default=0, metadata={"help": "Never repeat an n-gram of this size (0: off)."})
    stop_loops: int = field(
        default=0,
        metadata={
            "help": "Stop a sequence once its newest tokens are one span repeated this many times (0: never). A "
            "small model that starts looping never recovers; this saves the compute it would spend up to "
            "max_new_tokens (transformers backend only)."
        },
    )

    def __post_init__(self) -> None:
        problems = []
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0 (use do_sample=False for greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            problems.append(f"top_k must be >= 0, got {self.top_k}")
        if self.stop_loops == 1 or self.stop_loops < 0:
            problems.append(f"stop_loops must be 0 (off) or >= 2 repetitions, got {self.stop_loops}")
        if self.repetition_penalty <= 0:
            problems.append(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.num_beams < 1:
            problems.append(f"num_beams must be >= 1, got {self.num_beams}")
        if self.num_beams > 1 and (self.do_sample or self.stop_loops):
            # The loop detector reads one row per prompt, beam search has num_beams rows per prompt.
            problems.append("beam search (num_beams > 1) goes with greedy decoding and stop_loops 0")
        if self.no_repeat_ngram_size < 0:
            problems.append(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")
        if problems:
            raise ValueError("invalid generation settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GenerationSettings:
        unknown = set(values) - {item.name for item in fields(cls)}
        if unknown:
            raise ValueError(f"unknown generation setting(s): {sorted(unknown)}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> GenerationSettings:
        return cls.from_dict(json.loads(text))

    def transformers_kwargs(self) -> dict[str, Any]:
        """`model.generate` arguments. Sampling knobs are passed only when sampling, so greedy stays greedy."""
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            kwargs |= {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k or None}
        if self.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = self.repetition_penalty
        if self.num_beams > 1:
            kwargs |= {"num_beams": self.num_beams, "length_penalty": self.length_penalty, "early_stopping": True}
        if self.no_repeat_ngram_size:
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        return kwargs


STOP_EOS = "eos"
STOP_LENGTH = "length"
STOP_LOOP = "loop"


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    new_tokens: int
    stop_reason: str
    """`eos`: the model ended its turn; `length`: `max_new_tokens` cut it; `loop`: `stop_loops` cut it."""

    @property
    def finished(self) -> bool:
        return self.stop_reason == STOP_EOS


# A loop is a span of 1 to MAX_LOOP_PERIOD tokens repeated back to back over at least MIN_LOOP_TOKENS tokens, so
# that "!!!" or "ha ha" in a reply never count.
MAX_LOOP_PERIOD = 80
MIN_LOOP_TOKENS = 16


def loop_stopping_criteria(prompt_length: int, repeats: int, ignored_ids: list[int]):
    """A per-sequence `StoppingCriteria` for loops; its `stopped_at` maps a row to its generated length then."""
    import torch
    from transformers import StoppingCriteria

    class LoopStop(StoppingCriteria):
        def __init__(self) -> None:
            self.stopped_at: dict[int, int] = {}
            self.ignored = torch.tensor(ignored_ids, dtype=torch.long)

        def __call__(self, input_ids, scores, **kwargs):
            generated = input_ids[:, prompt_length:]
            length = generated.shape[1]
            looping = torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
            for period in range(1, MAX_LOOP_PERIOD + 1):
                span = max(period * repeats, MIN_LOOP_TOKENS)
                if span > length:
                    break
                tail = generated[:, -span:]
                looping |= (tail[:, period:] == tail[:, :-period]).all(dim=1)
            # A row that has ended (end-of-sequence, then padding) is not looping.
            looping &= ~torch.isin(generated[:, -1], self.ignored.to(input_ids.device))
            for row in looping.nonzero().flatten().tolist():
                self.stopped_at.setdefault(row, length)
            return looping

    return LoopStop()


def batch_seed(seed: int, batch_number: int) -> int:
    """The torch seed of batch `batch_number` of a `generate` call seeded with `seed` (distinct for seeds < 2**20
    batches apart)."""
    return (seed << 20) + batch_number
