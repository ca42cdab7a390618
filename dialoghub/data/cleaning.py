"""Text cleaning for TweetSumm: each rule a named function that returns the cleaned text and how many changes it made.

The rules run in the order of `rules_for()`. Tweets (dialogue turns and the sentences of extractive summaries) get
every rule that applies to their role; the annotators' abstractive summaries only get the formatting rules (HTML
entities, whitespace and the opt-in case/symbol rules), because an `@Tesco` an annotator wrote is part of the summary.

Case and emoji are kept by default; `CleaningOptions(lowercase=True, strip_special_characters=True)` reproduces the
normalisation an earlier project used. See the dataset card for why that is not the default.
"""

from __future__ import annotations

import dataclasses
import html
import html.entities
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from dialoghub.data.records import AGENT, CUSTOMER, Dialog, Turn, merge_consecutive_turns

URL_PLACEHOLDER = "[URL]"
SUMMARY = "summary"

# Named and numeric character references. `&amp`, `&lt`, `&gt` and `&quot` without the semicolon are the legacy forms
# HTML still decodes; TweetSumm's annotators copied `&amp` from tweets into some summaries.
HTML_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);|&(?:amp|lt|gt|quot)\b")
# Trailing punctuation stays outside the URL: "see https://t.co/abc." keeps its full stop.
URL = re.compile(r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]\"'”’]*(?:\s|$))")
# A mention glued to a word ("Hello@name", an e-mail address) is not a mention. When a removed mention is followed by
# punctuation, the space before it goes too ("Hello @123, hi" -> "Hello, hi"); otherwise the space after it does.
_MENTION_END = r"(?![\w@])"
USER_ID = re.compile(rf"\s*(?<![\w@])@\d+{_MENTION_END}(?=[,.!?;:])|(?<![\w@])@\d+{_MENTION_END}\s*")
HANDLE = re.compile(rf"\s*(?<![\w@])@\w+{_MENTION_END}(?=[,.!?;:])|(?<![\w@])@\w+{_MENTION_END}\s*")
# Agents sign tweets with their initials or first name: "^JK", "*TCC", "*DanKing", "/TF", "-MP", "–EK", "~AT",
# "~ Matt". A spaced dash before a name ("Thanks - Emma") is only taken for a sign-off after a courtesy word or at the
# end of the turn (before a thread counter "2/2", a ":)" or a link): elsewhere it is usually a dash ("Hi there Len -
# If you send us a DM").
_NAME = r"[A-Z][A-Za-z]{0,11}(?:\s[A-Z]\.)?"
_TURN_END = r"(?=\.?(?:\s*(?:\(?\d/\d\)?|:\)|\[URL\]))*\s*$)"
AGENT_SIGNOFF = re.compile(
    r"\s*(?<!\S)(?:"
    r"\^\s?[A-Za-z]{1,12}(?:\s[A-Z]\.)?"
    r"|\*[A-Z][A-Za-z]{1,15}"
    r"|/[A-Z]{1,3}"
    r"|[-–~][A-Z][A-Za-z]{0,11}"
    r"|~\s[A-Z][a-z]{1,11}"
    r")(?![\w'’*/-])"
    rf"|(?P<courtesy>\b(?:Thanks|Thank you|TY|Ty|Regards|regards|Cheers))[,!]?\s+[-–]\s?{_NAME}(?![\w'’])"
    rf"|\s+[-–]\s?{_NAME}{_TURN_END}"
)
WHITESPACE_RUN = re.compile(r"\s+")
# Emoji, pictographs and other symbols, format and private-use characters.
SPECIAL_CATEGORIES = frozenset({"So", "Sk", "Cf", "Co", "Cs", "Cn"})


def unescape_html_entities(text: str) -> tuple[str, int]:
    """`&amp;` -> `&`, `&gt;` -> `>`, `&#39;` -> `'`; counts the entities decoded."""
    count = 0

    def decode(match: re.Match) -> str:
        nonlocal count
        entity = match[0]
        # html.unescape alone would also decode known prefixes of unknown names ("&notanentity;" -> "¬anentity;").
        known = entity.startswith("&#") or entity[1:] in html.entities.html5 or f"{entity[1:]};" in html.entities.html5
        decoded = html.unescape(entity) if known else entity
        count += decoded != entity
        return decoded

    return HTML_ENTITY.sub(decode, text), count


def replace_urls(text: str) -> tuple[str, int]:
    """Every `http(s)://` or `www.` link becomes `[URL]`: t.co short links carry nothing a model can use."""
    return URL.subn(URL_PLACEHOLDER, text)


def remove_user_ids(text: str) -> tuple[str, int]:
    """Removes `@123456` mentions: Kaggle's twcs.csv replaced customers' handles with numeric ids."""
    return USER_ID.subn("", text)


def remove_handles(text: str) -> tuple[str, int]:
    """Removes every `@handle`; applied to customer turns, where it is how the customer addresses the company."""
    return HANDLE.subn("", text)


def remove_agent_signoffs(text: str) -> tuple[str, int]:
    """Removes agents' initials / first-name sign-offs (`^JK`, `*TCC`, `/TF`, `-MP`, `~ Matt`, `Thanks - Emma`)."""
    return AGENT_SIGNOFF.subn(lambda match: match["courtesy"] or "", text)


def normalize_whitespace(text: str) -> tuple[str, int]:
    """Runs of whitespace (newlines, tabs, no-break spaces, double spaces) become one space; ends are stripped."""
    count = sum(
        match[0] != " " or match.start() == 0 or match.end() == len(text) for match in WHITESPACE_RUN.finditer(text)
    )
    return WHITESPACE_RUN.sub(" ", text).strip(), count


def lowercase(text: str) -> tuple[str, int]:
    """Opt-in: lowercases the text (the `[URL]` placeholder excepted); counts the texts it changed."""
    lowered = text.lower().replace(URL_PLACEHOLDER.lower(), URL_PLACEHOLDER)
    return lowered, int(lowered != text)


def strip_special_characters(text: str) -> tuple[str, int]:
    """Opt-in: removes emoji and other symbol, format and private-use characters; counts the characters removed."""
    kept = "".join(char for char in text if unicodedata.category(char) not in SPECIAL_CATEGORIES)
    return kept, len(text) - len(kept)


def drop_empty_turns(turns: list[Turn]) -> tuple[list[Turn], int]:
    """Removes turns the rules above left empty (tweets made only of @mentions), joining the turns around them when
    they are by the same side; counts the turns removed."""
    kept = [turn for turn in turns if turn.text]
    return merge_consecutive_turns(kept), len(turns) - len(kept)


@dataclass(frozen=True)
class CleaningOptions:
    lowercase: bool = False
    strip_special_characters: bool = False


@dataclass(frozen=True)
class Rule:
    name: str
    function: Callable[[str], tuple[str, int]]
    targets: frozenset[str]
    """Which texts it cleans: `Customer` / `Agent` tweets, and/or the abstractive `summary` texts."""

    @property
    def description(self) -> str:
        return (self.function.__doc__ or "").strip()


ALL_TEXTS = frozenset({CUSTOMER, AGENT, SUMMARY})
TWEETS = frozenset({CUSTOMER, AGENT})


def rules_for(options: CleaningOptions) -> list[Rule]:
    rules = [
        Rule("unescape_html_entities", unescape_html_entities, ALL_TEXTS),
        Rule("replace_urls", replace_urls, TWEETS),
        Rule("remove_user_ids", remove_user_ids, TWEETS),
        Rule("remove_customer_handles", remove_handles, frozenset({CUSTOMER})),
        Rule("remove_agent_signoffs", remove_agent_signoffs, frozenset({AGENT})),
    ]
    if options.lowercase:
        rules.append(Rule("lowercase", lowercase, ALL_TEXTS))
    if options.strip_special_characters:
        rules.append(Rule("strip_special_characters", strip_special_characters, ALL_TEXTS))
    rules.append(Rule("normalize_whitespace", normalize_whitespace, ALL_TEXTS))
    return rules


class Cleaner:
    def __init__(self, options: CleaningOptions = CleaningOptions()):
        self.options = options
        self.rules = rules_for(options)

    def clean_text(self, text: str, target: str, counts: Counter) -> str:
        for rule in self.rules:
            if target in rule.targets:
                text, changes = rule.function(text)
                counts[rule.name] += changes
        return text

    def describe(self) -> list[dict]:
        """Name, targets and description of every step, in the order they run (for the dataset card)."""
        names = {CUSTOMER: "customer turns", AGENT: "agent turns", SUMMARY: "abstractive summaries"}
        steps = [
            {
                "name": rule.name,
                "targets": ", ".join(names[target] for target in (CUSTOMER, AGENT, SUMMARY) if target in rule.targets),
                "description": rule.description,
            }
            for rule in self.rules
        ]
        description = " ".join((drop_empty_turns.__doc__ or "").split())
        return steps + [{"name": drop_empty_turns.__name__, "targets": "dialogue", "description": description}]

    def clean_dialog(self, dialog: Dialog) -> tuple[Dialog, Counter]:
        """The cleaned dialog and the changes each step made to it (every step is listed, with 0 if it did nothing)."""
        counts = Counter({rule.name: 0 for rule in self.rules})

        def clean_turn(turn: Turn) -> Turn:
            return Turn(turn.role, self.clean_text(turn.text, turn.role, counts))

        dialogue, counts[drop_empty_turns.__name__] = drop_empty_turns([clean_turn(turn) for turn in dialog.dialogue])
        cleaned = dataclasses.replace(
            dialog,
            dialogue=dialogue,
            summaries=[self.clean_text(summary, SUMMARY, counts) for summary in dialog.summaries],
            extractive_summaries=[[clean_turn(turn) for turn in summary] for summary in dialog.extractive_summaries],
        )
        return cleaned, counts
