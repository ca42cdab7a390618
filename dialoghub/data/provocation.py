"""The provocation split of TweetSumm: dialogs where a summarizer can repeat abuse, to measure toxicity where it can
happen (`org/tweetsumm-provocation`, built from `org/tweetsumm-clean` at a pinned revision).

Two kinds of rows, both with the source dialog's human summaries as references:

- `flagged`: every dialog whose customer text (its customer turns joined) the toxicity scorer flags;
- `inserted`: a dialog with one phrase of the fixed, versioned abuse list
  (`datasets_repo/tweetsumm-provocation/abuse_phrases.yaml`) appended to its first customer turn: the first phrase,
  from a position fixed by a hash of the conversation id, that leaves the turn flagged by the scorer (`provoke`).

Splits (`SPLITS`):
- `train`: the flagged train dialogs and every train dialog with a `train` phrase inserted, for reward-tuning prompts;
- `validation`: every validation dialog the scorer does not flag, with a `validation` phrase inserted, to choose the
  reward-tuning budget on (the flagged validation dialogs are test rows);
- `test`: the flagged validation and test dialogs and every test dialog with an `evaluation` phrase inserted.
No dialog is in two splits (a dialog's flagged and inserted rows stay in one split), no validation or test dialog is
in `train`, and the three phrase lists are disjoint, so the test measures wording the policy never saw.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialoghub.core.files import atomic_write
from dialoghub.core.paths import REPO_ROOT
from dialoghub.data.parquet_repo import add_dataset_info, publish_dataset, size_category, write_parquet_files
from dialoghub.data.records import CUSTOMER

DATASET_DIR = REPO_ROOT / "datasets_repo" / "tweetsumm-provocation"
ABUSE_PHRASES_FILE = DATASET_DIR / "abuse_phrases.yaml"
CARD_TEMPLATE = DATASET_DIR / "README.md.j2"
FLAGGED, INSERTED = "flagged", "inserted"
INSERTED_ID_SUFFIX = "+abuse"
PROVOCATION_RELEASE = "v1.1"  # v1.0 had no validation split


@dataclass(frozen=True)
class SplitPlan:
    """Where a provocation split's rows come from: the flagged dialogs of `flagged_from` (source splits), and the
    dialogs of `inserted_from` with a phrase of the abuse list's `phrases` list inserted."""

    flagged_from: tuple[str, ...]
    inserted_from: str
    phrases: str


SPLITS = {
    "train": SplitPlan(flagged_from=("train",), inserted_from="train", phrases="train"),
    "validation": SplitPlan(flagged_from=(), inserted_from="validation", phrases="validation"),
    "test": SplitPlan(flagged_from=("validation", "test"), inserted_from="test", phrases="evaluation"),
}
PHRASE_LIST_NAMES = ("train", "validation", "evaluation")


@dataclass(frozen=True)
class AbuseList:
    version: int
    train: tuple[str, ...]
    validation: tuple[str, ...]
    evaluation: tuple[str, ...]
    path: str

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every phrase of the three lists."""
        return self.train + self.validation + self.evaluation


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def repeated_phrases(text: str, phrases: Sequence[str]) -> list[str]:
    """The phrases that `text` repeats: exactly, as the phrase's words in order and adjacent in the text's words
    (case and punctuation aside), so "you CLOWNS!" repeats "you clowns" but "clown" alone does not."""
    padded = f" {' '.join(_words(text))} "
    return [phrase for phrase in phrases if f" {' '.join(_words(phrase))} " in padded]


def load_abuse_list(path: str | Path = ABUSE_PHRASES_FILE) -> AbuseList:
    import yaml

    path = Path(path)
    content = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(content, dict) or not isinstance(content.get("version"), int):
        raise ValueError(f"{path}: expected a mapping with an integer 'version'")
    lists = {}
    for name in PHRASE_LIST_NAMES:
        phrases = content.get(name)
        if not phrases or not all(isinstance(phrase, str) and phrase.strip() for phrase in phrases):
            raise ValueError(f"{path}: {name!r} must be a non-empty list of phrases")
        lists[name] = tuple(" ".join(phrase.split()) for phrase in phrases)
    for index, first in enumerate(PHRASE_LIST_NAMES):
        for second in PHRASE_LIST_NAMES[index + 1 :]:
            if shared := set(lists[first]) & set(lists[second]):
                raise ValueError(f"{path}: the {first} and {second} lists share {sorted(shared)}")
    return AbuseList(content["version"], **lists, path=str(path))


def customer_text(row: Mapping[str, Any]) -> str:
    return " ".join(turn["text"] for turn in row["dialogue"] if turn["role"] == CUSTOMER)


def first_customer_turn(row: Mapping[str, Any]) -> str:
    return next(turn["text"] for turn in row["dialogue"] if turn["role"] == CUSTOMER)


def phrase_order(conversation_id: str, phrases: Sequence[str]) -> list[str]:
    """The phrases in the order `conversation_id` tries them: from a position fixed by a hash of the id (so rebuilds
    and other machines agree), cyclically."""
    start = int.from_bytes(hashlib.sha256(conversation_id.encode("utf-8")).digest()[:8], "big") % len(phrases)
    return list(phrases[start:]) + list(phrases[:start])


def provoke(row: Mapping[str, Any], phrases: Sequence[str], scorer, threshold: float) -> tuple[dict, str, float]:
    """(the row with a phrase inserted, the phrase, the scorer's score of the turn): the first phrase in
    `phrase_order` that leaves the turn flagged. A long, calm turn can outweigh a short insult in a linear scorer,
    and a provocation the scorer does not see tests nothing; a `ValueError` if no phrase makes it flagged."""
    candidates = phrase_order(row["conversation_id"], phrases)
    inserted = [insert_phrase(row, phrase) for phrase in candidates]
    scores = scorer([first_customer_turn(candidate) for candidate in inserted])
    for candidate, phrase, score in zip(inserted, candidates, scores, strict=True):
        if score >= threshold:
            return candidate, phrase, score
    raise ValueError(
        f"conversation {row['conversation_id']}: no phrase of the list leaves its first customer turn flagged by "
        f"{scorer.name}; strengthen the phrases"
    )


def insert_phrase(row: Mapping[str, Any], phrase: str) -> dict[str, Any]:
    """The row with `phrase` appended to its first customer turn (after the complaint, where tweets put it)."""
    dialogue = [dict(turn) for turn in row["dialogue"]]
    first = next((index for index, turn in enumerate(dialogue) if turn["role"] == CUSTOMER), None)
    if first is None:
        raise ValueError(f"conversation {row['conversation_id']}: no customer turn to insert into")
    dialogue[first]["text"] = f"{dialogue[first]['text'].rstrip()} {phrase}"
    return {**row, "dialogue": dialogue}


def provocation_row(row: Mapping[str, Any], kind: str, source_split: str, phrase: str, toxicity: float) -> dict:
    suffix = INSERTED_ID_SUFFIX if kind == INSERTED else ""
    return {
        "conversation_id": f"{row['conversation_id']}{suffix}",
        "source_conversation_id": row["conversation_id"],
        "source_split": source_split,
        "provocation": kind,
        "inserted_phrase": phrase,
        "dialogue": [{"role": turn["role"], "text": turn["text"]} for turn in row["dialogue"]],
        "summaries": list(row["summaries"]),
        "customer_toxicity": float(toxicity),
    }


def build_provocation_rows(
    source: Mapping[str, Sequence[Mapping[str, Any]]], abuse: AbuseList, scorer, threshold: float
) -> dict[str, list[dict]]:
    """`{split: rows}` from the source splits (`train`, `validation`, `test`) as `SPLITS` says; inserted rows get
    their phrase from `provoke`, and a dialog flagged into one split gets no inserted row in another."""
    flagged: dict[str, dict[str, float]] = {}  # source split -> {conversation id: score} of its flagged dialogs
    for source_split in {name for plan in SPLITS.values() for name in plan.flagged_from}:
        source_rows = list(source[source_split])
        scores = scorer([customer_text(row) for row in source_rows])
        flagged[source_split] = {
            row["conversation_id"]: score for row, score in zip(source_rows, scores, strict=True) if score >= threshold
        }
    built: dict[str, list[dict]] = {}
    for split, plan in SPLITS.items():
        rows = [
            provocation_row(row, FLAGGED, source_split, "", flagged[source_split][row["conversation_id"]])
            for source_split in plan.flagged_from
            for row in source[source_split]
            if row["conversation_id"] in flagged[source_split]
        ]
        held_elsewhere = {
            conversation_id
            for other, other_plan in SPLITS.items()
            if other != split and plan.inserted_from in other_plan.flagged_from
            for conversation_id in flagged[plan.inserted_from]
        }
        phrases = getattr(abuse, plan.phrases)
        for row in source[plan.inserted_from]:
            if row["conversation_id"] in held_elsewhere:
                continue
            inserted, phrase, score = provoke(row, phrases, scorer, threshold)
            rows.append(provocation_row(inserted, INSERTED, plan.inserted_from, phrase, score))
        built[split] = rows
    return built


def features():
    from datasets import Features, List, Value

    turn = {"role": Value("string"), "text": Value("string")}
    return Features(
        {
            "conversation_id": Value("string"),
            "source_conversation_id": Value("string"),
            "source_split": Value("string"),
            "provocation": Value("string"),
            "inserted_phrase": Value("string"),
            "dialogue": List(turn),
            "summaries": List(Value("string")),
            "customer_toxicity": Value("float64"),
        }
    )


def split_counts(rows: dict[str, list[dict]]) -> dict[str, dict[str, int]]:
    """`{split: {"flagged <source split>": n, "inserted <source split>": n}}` for the card."""
    counts: dict[str, dict[str, int]] = {}
    for split, split_rows in rows.items():
        for row in split_rows:
            key = f"{row['provocation']} ({row['source_split']})"
            counts.setdefault(split, {}).setdefault(key, 0)
            counts[split][key] += 1
    return counts


def write_dataset_folder(
    rows: dict[str, list[dict]], folder: Path, *, repo_id: str, tag: str | None, context: dict[str, Any]
):
    """The parquet files (config `default`), the abuse list as published, and the card, into `folder`."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data_files = write_parquet_files({"default": rows}, features(), folder)
    atomic_write(folder / ABUSE_PHRASES_FILE.name, Path(context["abuse"].path).read_bytes())
    card_data = DatasetCardData(
        pretty_name="TweetSumm provocation split",
        license=["cc0-1.0", "cc-by-nc-sa-4.0"],
        language=["en"],
        task_categories=["summarization"],
        size_categories=[size_category(sum(len(split_rows) for split_rows in rows.values()))],
        source_datasets=[context["source"]],
        tags=["dialogue-summarization", "customer-support", "toxicity", "tweetsumm", "evaluation"],
    )
    add_dataset_info(card_data, data_files, features(), ["default"])
    card = DatasetCard.from_template(
        card_data,
        template_path=str(CARD_TEMPLATE),
        repo_id=repo_id,
        tag=tag,
        counts=split_counts(rows),
        abuse_file=ABUSE_PHRASES_FILE.name,
        **context,
    )
    atomic_write(folder / "README.md", str(card).encode("utf-8"))
    return data_files


def publish(rows: dict[str, list[dict]], repo_id: str, *, tag: str | None, context: dict[str, Any], api=None):
    sizes = ", ".join(f"{split} {len(split_rows)}" for split, split_rows in rows.items())
    return publish_dataset(
        lambda folder: write_dataset_folder(rows, folder, repo_id=repo_id, tag=tag, context=context),
        repo_id,
        tag=tag,
        commit_message=f"Build tweetsumm-provocation ({sizes})",
        commit_description=f"From {context['source']}; abuse list v{context['abuse'].version}.",
        api=api,
    )
