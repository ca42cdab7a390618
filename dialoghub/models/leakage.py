"""The one set of prompt-leakage rules: what in a generated text shows the prompt rather than an answer to it. The
summarizer's no-leakage reward and the synthetic dialogues' leakage filter both check with these, each with its own
task's instructions and the labels that are foreign to its output."""

from __future__ import annotations

import re
from collections.abc import Sequence

from dialoghub.core.ngrams import shingles, words
from dialoghub.models import prompts

# The chat template's special tokens, and the fragments a model writes when it half-remembers them
CHAT_MARKERS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "im_start|>", "<|im_end")
# Labels no summary has: the chat roles and the dialogue's own speakers
SUMMARY_FOREIGN_LABELS = (*prompts.ROLES, "system", "user", "assistant")
# Labels no dialogue has: the chat roles, and the summary the prompt holds
DIALOGUE_FOREIGN_LABELS = ("system", "user", "assistant", "summary")


def label_pattern(labels: Sequence[str]) -> re.Pattern:
    """A line that starts with one of `labels` and a colon (markdown emphasis and headings aside), any case."""
    return re.compile(rf"^[ \t*#]*({'|'.join(map(re.escape, labels))})[ \t*]*:", re.IGNORECASE | re.MULTILINE)


def chat_marker(text: str) -> str | None:
    """The first chat-template token (or fragment of one) in `text`, any case, or None."""
    lowered = text.lower()
    return next((marker for marker in CHAT_MARKERS if marker in lowered), None)


def repeats_instructions(text: str, task: str, run_words: int) -> bool:
    """Whether `text` repeats the task's system prompt or instruction: a short one (fewer than `run_words` words)
    whole, a long one by any run of `run_words` words."""
    text_words = words(text)
    runs = shingles(text_words, run_words)
    padded = f" {' '.join(text_words)} "
    for instruction in map(words, (prompts.SYSTEM_PROMPTS[task], prompts.INSTRUCTIONS[task])):
        if len(instruction) < run_words:
            if f" {' '.join(instruction)} " in padded:
                return True
        elif len(text_words) >= run_words and runs & shingles(instruction, run_words):
            return True
    return False
