"""The part every engine shares: prompts in as token ids, `generation.Completion`s out, with the end of turn, the
loop detector, the seeds and the decoding done the same way for every engine (see `engines`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialoghub.models import generation
from dialoghub.models.backends import loops


class Engine:
    """What `Generator` calls: `complete(texts, settings)`; subclasses implement `generate_ids`."""

    name = "engine"
    precision = "float32"

    def __init__(self, tokenizer, eos_ids: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.eos_ids = list(eos_ids)

    def generate_ids(self, prompts: list[list[int]], settings, seeds: list[int]) -> list[list[int]]:
        raise NotImplementedError

    def complete(self, texts: Sequence[str], settings, seed: int) -> list[Any]:
        """One `generation.Completion` per rendered prompt text, sampled from `seed`."""
        unsupported = [name for name, value in (("num_beams", settings.num_beams > 1),
                       ("no_repeat_ngram_size", settings.no_repeat_ngram_size)) if value]  # fmt: skip
        if unsupported:
            raise ValueError(f"the {self.name} backend does not apply {', '.join(unsupported)}")
        prompt_ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        seeds = [generation.batch_seed(seed, index) for index in range(len(prompt_ids))]
        rows = self.generate_ids(prompt_ids, settings, seeds)
        ends = [next((at for at, token in enumerate(row) if token in self.eos_ids), None) for row in rows]
        answers = [row[:end] if end is not None else row for row, end in zip(rows, ends, strict=True)]
        loop_ends = (
            loops.first_loop_lengths(answers, settings.stop_loops, [*self.eos_ids, self.tokenizer.pad_token_id])
            if settings.stop_loops
            else [None] * len(rows)
        )
        completions = []
        for prompt, answer, end, loop_end in zip(prompt_ids, answers, ends, loop_ends, strict=True):
            if loop_end is not None:
                kept, new_tokens, reason = answer[:loop_end], loop_end, generation.STOP_LOOP
            elif end is not None:
                kept, new_tokens, reason = answer, end + 1, generation.STOP_EOS
            else:
                kept, new_tokens, reason = answer, len(answer), generation.STOP_LENGTH
            completions.append(
                generation.Completion(
                    text=self.tokenizer.decode(kept, skip_special_tokens=True),
                    prompt_tokens=len(prompt),
                    new_tokens=new_tokens,
                    stop_reason=reason,
                )
            )
        return completions
