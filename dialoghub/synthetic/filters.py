"""Parsing a generated text into a dialogue, and the quality filters a synthetic dialogue must pass.

Every filter has a reason code (`FILTERS`, in the order they run). The row-level checks (`check_dialogue`) need only
the text; toxicity and round-trip consistency need a model and run in `dialoghub.synthetic.run` on the rows that
passed the rest; exact and near-duplicate removal (`DuplicateIndex`) runs last, against the rows already kept.

Thresholds were set against the human TweetSumm dialogues (`tests/test_synthetic_filters.py` checks that the
row-level filters pass nearly all of them), so they reject what people do not write, not what the data does not
usually contain.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from dialoghub.core.ngrams import ngrams, shingles, words
from dialoghub.data.validation import NEAR_DUPLICATE_JACCARD, SHINGLE_WORDS
from dialoghub.metrics.rouge import split_sentences
from dialoghub.models import leakage, prompts
from dialoghub.models.generation import STOP_LENGTH, STOP_LOOP

# Bump when a change here would accept or reject other rows: runs record it, and resume only with the same one.
FILTERS_VERSION = "1"

ROLE_PARSE = "role_parse"
ROLES_ALTERNATE = "roles_alternate"
BOTH_ROLES = "both_roles"
TRUNCATED = "truncated"
TURN_COUNT = "turn_count"
TURN_LENGTH = "turn_length"
DIALOGUE_LENGTH = "dialogue_length"
PROMPT_LEAKAGE = "prompt_leakage"
REPETITION = "repetition"
TOXICITY = "toxicity"
ROUND_TRIP = "round_trip"
EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"

# The rules of the role format alone, which the leaderboard's format validity checks too
FORMAT_REASONS = (ROLE_PARSE, ROLES_ALTERNATE, BOTH_ROLES)
# What a dialogue's text must pass, before toxicity, round trip and duplicates are looked at.
TEXT_FILTERS = (
    ROLE_PARSE,
    ROLES_ALTERNATE,
    BOTH_ROLES,
    TRUNCATED,
    TURN_COUNT,
    TURN_LENGTH,
    DIALOGUE_LENGTH,
    PROMPT_LEAKAGE,
    REPETITION,
)

FILTERS = {
    ROLE_PARSE: (
        "the text starts with a `Customer:` or `Agent:` turn, and every turn is non-empty; the dialogue ends at the "
        "first line that is not a turn, and what follows is dropped (with allow_continuation_lines, such a line "
        "continues the turn before instead, and must not start with another speaker's label)"
    ),
    ROLES_ALTERNATE: "no two consecutive turns by the same role",
    BOTH_ROLES: "both Customer and Agent speak",
    TRUNCATED: "the dialogue ended before `max_new_tokens` (a model end of turn, or a non-turn line after it)",
    TURN_COUNT: "number of turns within [min_turns, max_turns]",
    TURN_LENGTH: "every turn has [min_turn_words, max_turn_words] words",
    DIALOGUE_LENGTH: "the dialogue has [min_dialogue_words, max_dialogue_words] words",
    PROMPT_LEAKAGE: (
        "no chat-template token or foreign `System:`/`User:`/`Assistant:`/`Summary:` label, no sentence of the "
        "instructions, no whole summary sentence, no summary-style narration (`the customer is complaining ...`), "
        "and no copy of a few-shot example"
    ),
    REPETITION: (
        "no generation cut by the loop detector, no word span repeated back to back more than "
        "max_consecutive_repeats times, no repeated turn, repeated word 3-grams at most max_repeated_trigram_fraction"
    ),
    TOXICITY: "the most toxic turn scores below toxicity_threshold",
    ROUND_TRIP: (
        "a summarizer's summary of the dialogue has ROUGE-L F1 >= round_trip_min_rouge_l against the input summary"
    ),
    EXACT_DUPLICATE: "not the same dialogue (case and punctuation aside) as a row already kept",
    NEAR_DUPLICATE: f"word {SHINGLE_WORDS}-gram Jaccard below near_duplicate_jaccard against every row already kept",
}

QUOTES = {'"': '"', "“": "”", "'": "'"}
FOREIGN_LABEL = leakage.label_pattern(leakage.DIALOGUE_FOREIGN_LABELS)
# A line that starts like a turn of another speaker ("Client: ...", "Mei: ...", "The Company: ..."); the parser would
# fold it into the turn before, giving that speaker words they did not say.
TURN_START = re.compile(rf"^(?:{'|'.join(prompts.ROLES)}):")
OTHER_SPEAKER = re.compile(r"^[ \t*]*((?:[A-Z][\w'.-]*)(?: [A-Za-z][\w'.-]*){0,2})[ \t*]*:(?:[ \t]|$)", re.MULTILINE)
NARRATION = re.compile(
    r"\b(?:the )?(?:customer|agent)(?: is| was)? (?:complaining|asking|asks|asked|says|said|requesting|requests|"
    r"requested|informs|informed|updates|updated|replies|replied|suggests|suggested|states|stated|wants|wanted)\b",
    re.IGNORECASE,
)
INSTRUCTION_NGRAM = 6
MIN_COPIED_SENTENCE_WORDS = 6
EXAMPLE_COPY_FRACTION = 0.5
MIN_REPEATED_TURN_WORDS = 4


def dialogue_text(dialogue: Sequence[Mapping[str, str]]) -> str:
    return " ".join(turn["text"] for turn in dialogue)


@dataclass(frozen=True)
class FilterConfig:
    min_turns: int = field(default=2, metadata={"help": "Fewest turns of a kept dialogue."})
    max_turns: int = field(default=20, metadata={"help": "Most turns of a kept dialogue."})
    min_turn_words: int = field(default=1, metadata={"help": "Fewest words of a turn."})
    max_turn_words: int = field(default=200, metadata={"help": "Most words of a turn."})
    min_dialogue_words: int = field(default=15, metadata={"help": "Fewest words of a dialogue."})
    max_dialogue_words: int = field(default=600, metadata={"help": "Most words of a dialogue."})
    max_repeated_trigram_fraction: float = field(
        default=0.4, metadata={"help": "Most word 3-grams that may be repeats."}
    )
    max_consecutive_repeats: int = field(default=4, metadata={"help": "Most back-to-back repeats of a word span."})
    near_duplicate_jaccard: float = field(
        default=NEAR_DUPLICATE_JACCARD, metadata={"help": "Word n-gram Jaccard from which a row is a near duplicate."}
    )
    toxicity_threshold: float = field(default=0.5, metadata={"help": "Toxicity score from which a row is rejected."})
    round_trip_min_rouge_l: float = field(
        default=0.15, metadata={"help": "Least ROUGE-L of the round-trip summary against the input summary."}
    )
    allow_continuation_lines: bool = field(
        default=False, metadata={"help": "A line that is no turn continues the turn before."}
    )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Parsed:
    """A generated text read as a dialogue. `dialogue` is empty when the text does not parse."""

    dialogue: list[dict[str, str]]
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    quotes_stripped: int = 0
    dialogue_text: str = ""
    """The part of the generated text that was parsed as the dialogue."""
    trailing_text: str = ""
    """What the model wrote after the dialogue, dropped."""

    @property
    def format_error(self) -> str:
        """Why the text is not a well-formed dialogue (every role-format reason), or ""."""
        return "; ".join(
            detail for reason, detail in zip(self.reasons, self.details, strict=True) if reason in FORMAT_REASONS
        )


def strip_quotes(text: str) -> tuple[str, bool]:
    """`"I can't log in"` -> `I can't log in`: models often quote each turn; the quotes are not part of it."""
    text = text.strip()
    if len(text) >= 2 and QUOTES.get(text[0]) == text[-1] and text[0] not in text[1:-1]:
        return text[1:-1].strip(), True
    return text, False


def split_trailing_text(text: str, config: FilterConfig = FilterConfig()) -> tuple[str, str]:
    """`(dialogue, trailing text)`: the dialogue ends at the first non-blank line after a turn that is not a turn.

    The prompt asks for one turn per line, and a small model often goes on after the dialogue (a note, narration, a
    new topic) instead of ending its answer; that text is not part of the dialogue. With
    `config.allow_continuation_lines`, such lines continue the turn before them instead (for models that wrap).
    Text before the first turn is left in place, for the parser to reject.
    """
    if config.allow_continuation_lines:
        return text, ""
    lines = text.strip().splitlines()
    seen_turn = False
    for index, line in enumerate(lines):
        if TURN_START.match(line.strip()):
            seen_turn = True
        elif line.strip() and seen_turn:
            return "\n".join(lines[:index]).strip(), "\n".join(lines[index:]).strip()
    return text, ""


def parse_generated(text: str, config: FilterConfig = FilterConfig()) -> Parsed:
    """`prompts.parse_dialogue` on the dialogue part of `text`, then the role rules. Turn texts lose enclosing
    quotes and inner line breaks."""
    dialogue_part, trailing = split_trailing_text(text, config)
    try:
        turns = prompts.parse_dialogue(dialogue_part)
    except prompts.PromptFormatError as error:
        return Parsed([], [ROLE_PARSE], [f"{ROLE_PARSE}: {error}"])
    speakers = [match.group(1) for match in OTHER_SPEAKER.finditer(dialogue_part)]
    if other := next(
        (name for name in speakers if name not in prompts.ROLES and not FOREIGN_LABEL.match(f"{name}:")), None
    ):
        return Parsed(
            [], [ROLE_PARSE], [f"{ROLE_PARSE}: a line starts with the speaker {other!r}, not Customer/Agent"]
        )
    parsed = Parsed([], dialogue_text=dialogue_part, trailing_text=trailing)
    for turn in turns:
        cleaned, stripped = strip_quotes(" ".join(turn["text"].split()))
        parsed.quotes_stripped += stripped
        if not cleaned:
            return Parsed([], [ROLE_PARSE], [f"{ROLE_PARSE}: a {turn['role']} turn is empty once unquoted"])
        parsed.dialogue.append({"role": turn["role"], "text": cleaned})
    repeats = [
        i for i in range(1, len(parsed.dialogue)) if parsed.dialogue[i]["role"] == parsed.dialogue[i - 1]["role"]
    ]
    if repeats:
        parsed.reasons.append(ROLES_ALTERNATE)
        parsed.details.append(f"{ROLES_ALTERNATE}: turns {repeats} have the role of the turn before")
    missing = [role for role in prompts.ROLES if role not in {turn["role"] for turn in parsed.dialogue}]
    if missing:
        parsed.reasons.append(BOTH_ROLES)
        parsed.details.append(f"{BOTH_ROLES}: no {' or '.join(missing)} turn")
    return parsed


def _leakage(
    text: str, dialogue: list[dict[str, str]], summary: str, examples: Sequence[Sequence[Mapping[str, str]]]
) -> str | None:
    if marker := leakage.chat_marker(text):
        return f"chat-template token {marker!r}"
    if label := FOREIGN_LABEL.search(text):
        return f"foreign label {label.group(0).strip()!r}"
    if leakage.repeats_instructions(dialogue_text(dialogue), prompts.GENERATE, INSTRUCTION_NGRAM):
        return "repeats the instructions"
    spoken = words(dialogue_text(dialogue))
    spoken_text = " ".join(spoken)

    for sentence in split_sentences(summary):
        sentence_words = words(sentence)
        if len(sentence_words) >= MIN_COPIED_SENTENCE_WORDS and f" {' '.join(sentence_words)} " in f" {spoken_text} ":
            return f"copies the summary sentence {sentence!r}"
    if narration := NARRATION.search(dialogue_text(dialogue)):
        return f"narrates like a summary: {narration.group(0)!r}"
    spoken_shingles = shingles(spoken, SHINGLE_WORDS)
    for index, example in enumerate(examples):
        example_shingles = shingles(words(dialogue_text(example)), SHINGLE_WORDS)
        shared = len(spoken_shingles & example_shingles) / max(len(spoken_shingles), 1)
        if shared >= EXAMPLE_COPY_FRACTION:
            return f"{shared:.0%} of its word {SHINGLE_WORDS}-grams come from few-shot example {index}"
    return None


def _repetition(dialogue: list[dict[str, str]], config: FilterConfig) -> str | None:
    spoken = words(dialogue_text(dialogue))
    unit = r"\b(\w+(?:\W+\w+){0,3}?)"
    back_to_back = re.compile(unit + rf"(?:\W+\1\b){{{config.max_consecutive_repeats},}}", re.IGNORECASE)
    if match := back_to_back.search(dialogue_text(dialogue)):
        return f"{match.group(1)!r} repeated back to back more than {config.max_consecutive_repeats} times"
    seen = set()
    for turn in dialogue:
        key = " ".join(words(turn["text"]))
        if len(key.split()) >= MIN_REPEATED_TURN_WORDS and key in seen:
            return f"the turn {turn['text'][:60]!r} is said twice"
        seen.add(key)
    trigrams = ngrams(spoken, 3)
    if trigrams:
        repeated = 1 - len(set(trigrams)) / len(trigrams)
        if repeated > config.max_repeated_trigram_fraction:
            return f"{repeated:.0%} of its word 3-grams are repeats (max {config.max_repeated_trigram_fraction:.0%})"
    return None


def check_dialogue(
    text: str,
    summary: str,
    config: FilterConfig,
    *,
    stop_reason: str | None = None,
    examples: Sequence[Sequence[Mapping[str, str]]] = (),
) -> Parsed:
    """Parse `text` and run every text-only filter on it; `reasons` lists each failed filter (all of them)."""
    parsed = parse_generated(text, config)
    # A cut that fell in the text after the dialogue did not cut the dialogue.
    if stop_reason == STOP_LENGTH and not parsed.trailing_text:
        parsed.reasons.append(TRUNCATED)
        parsed.details.append(f"{TRUNCATED}: stopped by max_new_tokens")
    if ROLE_PARSE in parsed.reasons:
        return parsed
    dialogue = parsed.dialogue

    def fail(reason: str, detail: str) -> None:
        parsed.reasons.append(reason)
        parsed.details.append(f"{reason}: {detail}")

    if not config.min_turns <= len(dialogue) <= config.max_turns:
        fail(TURN_COUNT, f"{len(dialogue)} turns, not in [{config.min_turns}, {config.max_turns}]")
    turn_words = [len(turn["text"].split()) for turn in dialogue]
    outside = [i for i, count in enumerate(turn_words) if not config.min_turn_words <= count <= config.max_turn_words]
    if outside:
        fail(TURN_LENGTH, f"turns {outside} have {[turn_words[i] for i in outside]} words")
    total = sum(turn_words)
    if not config.min_dialogue_words <= total <= config.max_dialogue_words:
        fail(DIALOGUE_LENGTH, f"{total} words, not in [{config.min_dialogue_words}, {config.max_dialogue_words}]")
    if leak := _leakage(parsed.dialogue_text, dialogue, summary, examples):
        fail(PROMPT_LEAKAGE, leak)
    if stop_reason == STOP_LOOP:
        fail(REPETITION, "the loop detector stopped the generation")
    elif repeated := _repetition(dialogue, config):
        fail(REPETITION, repeated)
    return parsed


class DuplicateIndex:
    """The dialogues kept so far, to reject a new one that repeats one of them exactly or nearly."""

    def __init__(self, jaccard_threshold: float = NEAR_DUPLICATE_JACCARD) -> None:
        self.jaccard_threshold = jaccard_threshold
        self._exact: dict[str, str] = {}
        self._shingles: dict[str, set[tuple[str, ...]]] = {}
        self._postings: dict[tuple[str, ...], list[str]] = defaultdict(list)

    @staticmethod
    def _key(dialogue: Sequence[Mapping[str, str]]) -> str:
        return "\n".join(f"{turn['role']}: {' '.join(words(turn['text']))}" for turn in dialogue)

    def find(self, dialogue: Sequence[Mapping[str, str]]) -> tuple[str, str, float] | None:
        """`(reason, id of the kept row, jaccard)` if `dialogue` duplicates a kept row, else None."""
        if (other := self._exact.get(self._key(dialogue))) is not None:
            return EXACT_DUPLICATE, other, 1.0
        found = shingles(words(dialogue_text(dialogue)), SHINGLE_WORDS)
        candidates = {other for shingle in found for other in self._postings.get(shingle, ())}
        best = None
        for other in sorted(candidates):
            other_shingles = self._shingles[other]
            jaccard = len(found & other_shingles) / len(found | other_shingles)
            if jaccard >= self.jaccard_threshold and (best is None or jaccard > best[2]):
                best = (NEAR_DUPLICATE, other, jaccard)
        return best

    def add(self, row_id: str, dialogue: Sequence[Mapping[str, str]]) -> None:
        self._exact.setdefault(self._key(dialogue), row_id)
        found = shingles(words(dialogue_text(dialogue)), SHINGLE_WORDS)
        self._shingles[row_id] = found
        for shingle in found:
            self._postings[shingle].append(row_id)
