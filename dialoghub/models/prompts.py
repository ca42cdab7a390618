"""The one place prompts are defined: training, generation, evaluation and the model cards' widgets all use it.

Two tasks over the tweetsumm-clean schema (`dialogue: [{role: Customer|Agent, text}]`, `summaries: [str]`):

- `summarize`: dialogue -> summary;
- `generate`: summary -> dialogue, written one turn per line as `Customer: ...` / `Agent: ...`, which
  `parse_dialogue` reads back.

A prompt is a list of chat messages (system + user); the target is one assistant message. Rendering to text goes
through the tokenizer's chat template, or `templates/chatml.jinja` for a tokenizer without one. Bump
`PROMPT_VERSION` whenever a change here would change what a model sees: adapters and results record it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# The dataset's roles are the prompt's roles (other modules use them as prompts.CUSTOMER / prompts.AGENT).
from dialoghub.data.records import AGENT, CUSTOMER, ROLES

PROMPT_VERSION = "1"

SUMMARIZE = "summarize"
GENERATE = "generate"
TASKS = (SUMMARIZE, GENERATE)

SYSTEM_PROMPTS = {
    SUMMARIZE: (
        "You summarize customer-support conversations held on Twitter. Write a short summary in one to three "
        "sentences: what the customer wanted, and what the agent did or suggested."
    ),
    GENERATE: (
        "You write customer-support conversations held on Twitter. Write the conversation that the summary "
        f"describes, one turn per line, each line starting with '{CUSTOMER}:' or '{AGENT}:'."
    ),
}
# How long an answer each task needs: the generation budget of the evaluation, the demo and the cards' widget.
ANSWER_MAX_NEW_TOKENS = {SUMMARIZE: 128, GENERATE: 512}

SUMMARIZE_INSTRUCTION = "Summarize this conversation."
GENERATE_INSTRUCTION = "Write the conversation that this summary describes."
INSTRUCTIONS = {SUMMARIZE: SUMMARIZE_INSTRUCTION, GENERATE: GENERATE_INSTRUCTION}

FALLBACK_CHAT_TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "chatml.jinja"
# The special tokens the fallback template writes; a tokenizer must know them for its output to stop at a turn's end.
FALLBACK_TEMPLATE_TOKENS = ("<|im_start|>", "<|im_end|>")

_TURN_LINE = re.compile(rf"^({'|'.join(ROLES)}):[ \t]?(.*)$")


class PromptFormatError(ValueError):
    """A dialogue, example or generated text that does not fit the prompt format."""


def _check_dialogue(dialogue: Sequence[Mapping[str, Any]], where: str) -> None:
    if not dialogue:
        raise PromptFormatError(f"{where}: the dialogue has no turns")
    for index, turn in enumerate(dialogue):
        if turn.get("role") not in ROLES:
            raise PromptFormatError(f"{where}, turn {index}: role {turn.get('role')!r} is not one of {ROLES}")
        if not isinstance(turn.get("text"), str) or not turn["text"].strip():
            raise PromptFormatError(f"{where}, turn {index}: the text is empty or not a string")


def render_dialogue(dialogue: Sequence[Mapping[str, Any]], where: str = "dialogue") -> str:
    """One line per turn, `Role: text`. Line breaks inside a turn become spaces, so every turn stays one line."""
    _check_dialogue(dialogue, where)
    return "\n".join(f"{turn['role']}: {' '.join(turn['text'].split())}" for turn in dialogue)


def parse_dialogue(text: str) -> list[dict[str, str]]:
    """The inverse of `render_dialogue`, for generated text.

    Blank lines are skipped; a line without a `Customer:`/`Agent:` prefix continues the previous turn (models do
    break long turns). Text before the first turn, or no turn at all, is a `PromptFormatError` naming the line.
    """
    turns: list[dict[str, str]] = []
    for line_number, line in enumerate(text.strip().splitlines(), start=1):
        if not line.strip():
            continue
        match = _TURN_LINE.match(line.strip())
        if match:
            turns.append({"role": match.group(1), "text": match.group(2).strip()})
        elif turns:
            turns[-1]["text"] = f"{turns[-1]['text']} {line.strip()}".strip()
        else:
            raise PromptFormatError(f"line {line_number} comes before any '{CUSTOMER}:'/'{AGENT}:' turn: {line!r}")
    if not turns:
        raise PromptFormatError(f"no '{CUSTOMER}:'/'{AGENT}:' turn in the text: {text[:80]!r}")
    empty = [index for index, turn in enumerate(turns) if not turn["text"]]
    if empty:
        raise PromptFormatError(f"turn(s) {empty} have no text")
    return turns


def summarize_messages(dialogue: Sequence[Mapping[str, Any]], where: str = "dialogue") -> list[dict[str, str]]:
    """The prompt asking for a summary of `dialogue`."""
    return [
        {"role": "system", "content": SYSTEM_PROMPTS[SUMMARIZE]},
        {"role": "user", "content": f"{SUMMARIZE_INSTRUCTION}\n\n{render_dialogue(dialogue, where)}"},
    ]


def fit_dialogue(
    dialogue: Sequence[Mapping[str, Any]], fits: Callable[[Sequence[Mapping[str, Any]]], bool]
) -> list[Mapping[str, Any]]:
    """`dialogue` with turns taken out of its middle until `fits(turns)` holds (the first and the last turns stay:
    a summary names the request and how it ended), then, down to two turns, with the longer one's words halved.

    Training uses it so that no example is dropped or loses its summary for length: the dialogue is cut, never
    the target.
    """
    turns = list(dialogue)
    while not fits(turns) and len(turns) > 2:
        del turns[len(turns) // 2]
    while not fits(turns):
        longest = max(range(len(turns)), key=lambda index: len(turns[index]["text"].split()))
        words = turns[longest]["text"].split()
        if len(words) < 2:
            raise PromptFormatError("the dialogue cannot be shortened to fit: even two one-word turns are too long")
        turns[longest] = {**turns[longest], "text": " ".join(words[: len(words) // 2])}
    return turns


def generate_messages(summary: str, where: str = "summary") -> list[dict[str, str]]:
    """The prompt asking for the dialogue that `summary` describes."""
    if not isinstance(summary, str) or not summary.strip():
        raise PromptFormatError(f"{where}: the summary is empty or not a string")
    return [
        {"role": "system", "content": SYSTEM_PROMPTS[GENERATE]},
        {"role": "user", "content": f"{GENERATE_INSTRUCTION}\n\nSummary: {' '.join(summary.split())}"},
    ]


def generate_messages_few_shot(summary: str, examples: Sequence[tuple[str, Sequence[Mapping[str, str]]]]):
    """The generate prompt for `summary`, with each (summary, dialogue) example as an earlier user/assistant turn.

    Built only from `generate_messages` and `render_dialogue`, so the examples read exactly like the task and the
    answer the model is asked for.
    """
    system, *request = generate_messages(summary)
    shots = []
    for index, (example_summary, dialogue) in enumerate(examples):
        shots += [
            generate_messages(example_summary, f"few-shot example {index}")[1],
            {"role": "assistant", "content": render_dialogue(dialogue, f"few-shot example {index}")},
        ]
    return [system, *shots, *request]


def _where(example: Mapping[str, Any]) -> str:
    return f"conversation {example.get('conversation_id', '?')}"


def _summary(example: Mapping[str, Any], summary_index: int) -> str:
    summaries = example.get("summaries") or []
    if not 0 <= summary_index < len(summaries):
        raise PromptFormatError(f"{_where(example)}: no summary #{summary_index} (it has {len(summaries)})")
    return summaries[summary_index]


def check_task(task: str) -> str:
    if task not in TASKS:
        raise PromptFormatError(f"unknown task {task!r}; expected one of {TASKS}")
    return task


def prompt_messages(task: str, example: Mapping[str, Any], summary_index: int = 0) -> list[dict[str, str]]:
    """The prompt for one dataset row (for `generate`, built from its summary number `summary_index`)."""
    if check_task(task) == SUMMARIZE:
        return summarize_messages(example["dialogue"], _where(example))
    return generate_messages(_summary(example, summary_index), f"{_where(example)}, summary #{summary_index}")


def target_text(task: str, example: Mapping[str, Any], summary_index: int = 0) -> str:
    """What the model should answer for one row: a summary, or the rendered dialogue."""
    if check_task(task) == SUMMARIZE:
        return " ".join(_summary(example, summary_index).split())
    return render_dialogue(example["dialogue"], _where(example))


def prompt_completion(task: str, example: Mapping[str, Any], summary_index: int = 0) -> dict[str, list[dict]]:
    """One SFT example in trl's conversational prompt-completion format."""
    return {
        "prompt": prompt_messages(task, example, summary_index),
        "completion": [{"role": "assistant", "content": target_text(task, example, summary_index)}],
    }


def sft_rows(task: str, example: Mapping[str, Any], all_summaries: bool) -> list[dict[str, Any]]:
    """The prompt-completion rows of one dataset row: one per reference summary, or only the first one."""
    count = len(example.get("summaries") or []) if all_summaries else 1
    return [
        {"conversation_id": example.get("conversation_id"), "summary_index": index}
        | prompt_completion(task, example, index)
        for index in range(count)
    ]


def to_sft_dataset(dataset, task: str, all_summaries: bool = False):
    """A `datasets.Dataset` in the tweetsumm-clean schema -> conversation_id, summary_index, prompt, completion."""
    check_task(task)

    def expand(batch: dict[str, list]) -> dict[str, list]:
        rows = [
            row
            for index in range(len(batch["dialogue"]))
            for row in sft_rows(task, {key: values[index] for key, values in batch.items()}, all_summaries)
        ]
        return {
            key: [row[key] for row in rows] for key in ("conversation_id", "summary_index", "prompt", "completion")
        }

    return dataset.map(expand, batched=True, remove_columns=dataset.column_names, desc=f"{task} prompts")


def fallback_chat_template() -> str:
    return FALLBACK_CHAT_TEMPLATE_PATH.read_text(encoding="utf-8")


def ensure_chat_template(tokenizer) -> None:
    """Give a tokenizer without a chat template ours (ChatML with `{% generation %}` markers)."""
    if tokenizer.chat_template:
        return
    vocabulary = tokenizer.get_vocab()
    missing = [token for token in FALLBACK_TEMPLATE_TOKENS if token not in vocabulary]
    if missing:
        raise PromptFormatError(
            f"The tokenizer has no chat template, and the fallback {FALLBACK_CHAT_TEMPLATE_PATH.name} needs the "
            f"special tokens {missing}, which it lacks: add them (and resize the model's embeddings) first."
        )
    tokenizer.chat_template = fallback_chat_template()


def _apply(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
        chat_template=tokenizer.chat_template or fallback_chat_template(),
    )


def render_prompt(tokenizer, messages: list[dict]) -> str:
    """The prompt as the model sees it, up to and including the assistant turn's header."""
    return _apply(tokenizer, messages, add_generation_prompt=True)


def render_completion(tokenizer, prompt: list[dict], completion: list[dict]) -> str:
    """The text the model is trained to produce after `render_prompt(prompt)`: the answer and its end of turn."""
    head = render_prompt(tokenizer, prompt)
    full = _apply(tokenizer, prompt + completion, add_generation_prompt=False)
    if not full.startswith(head):
        raise PromptFormatError(
            "The chat template renders the prompt differently with and without the answer, so the completion is "
            f"not a suffix of the prompt: {head[-60:]!r} vs {full[len(head) - 60 : len(head)]!r}"
        )
    return full[len(head) :]
