"""Dataset rules checked after cleaning, duplicate ids, and the cross-split near-duplicate (leakage) report."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dialoghub.core.files import atomic_write
from dialoghub.core.ngrams import shingles
from dialoghub.data.records import ROLES, SPLITS, Dialog, Rejection

MIN_TURNS = 2
SHINGLE_WORDS = 5
NEAR_DUPLICATE_JACCARD = 0.8
# Word 5-grams found in more dialogs than this are agents' stock phrases; leaving them out of the candidate index
# keeps it small and cannot hide a near-duplicate pair, which shares most of its rarer 5-grams as well.
MAX_SHINGLE_POSTINGS = 50
# When an id is in two splits, the copy in the evaluation split is kept: test and validation stay comparable with
# published results, and train loses the leaked dialog.
KEEP_ORDER = {"test": 0, "validation": 1, "train": 2}
MAX_LISTED_ERRORS = 50


class DatasetValidationError(ValueError):
    """Rows that are malformed or break the dataset rules; nothing has been written or pushed."""

    def __init__(self, rejections: list[Rejection]):
        self.rejections = rejections
        lines = [f"  {rejection}" for rejection in rejections[:MAX_LISTED_ERRORS]]
        if len(rejections) > MAX_LISTED_ERRORS:
            lines.append(f"  ... and {len(rejections) - MAX_LISTED_ERRORS} more")
        super().__init__(
            f"{len(rejections)} invalid row(s); nothing was pushed:\n"
            + "\n".join(lines)
            + "\nFix the source, or pass --drop-invalid to leave these rows out and write a rejects report."
        )


def dialog_problems(dialog: Dialog) -> list[str]:
    """What makes one (cleaned) dialog unusable, as readable reasons; empty when it is fine."""
    problems = []
    if len(dialog.dialogue) < MIN_TURNS:
        problems.append(f"the dialog has {len(dialog.dialogue)} turn(s), at least {MIN_TURNS} are needed")
    roles = {turn.role for turn in dialog.dialogue}
    if dialog.dialogue and (missing := [role for role in ROLES if role not in roles]):
        problems.append(f"the dialog has one role only: no {' or '.join(missing)} turn")
    if not dialog.summaries:
        problems.append("the dialog has no abstractive summary")
    empty = [f"dialogue[{i}] ({turn.role})" for i, turn in enumerate(dialog.dialogue) if not turn.text]
    empty += [f"summaries[{i}]" for i, summary in enumerate(dialog.summaries) if not summary]
    empty += [
        f"extractive_summaries[{i}][{j}]"
        for i, summary in enumerate(dialog.extractive_summaries)
        for j, turn in enumerate(summary)
        if not turn.text
    ]
    if empty:
        problems.append(f"empty text after cleaning in {', '.join(empty)}")
    return problems


def validate(dialogs: list[Dialog]) -> tuple[list[Rejection], set[int]]:
    """Rejections for broken dialogs and duplicate ids, and the indexes (into `dialogs`) of the rows to drop."""
    rejections, rejected = [], set()

    def reject(index: int, reason: str) -> None:
        dialog = dialogs[index]
        rejections.append(Rejection(dialog.location, reason, dialog.conversation_id, dialog.split))
        rejected.add(index)

    for index, dialog in enumerate(dialogs):
        if dialog.split not in SPLITS:
            reject(index, f"unknown split {dialog.split!r}")
        if problems := dialog_problems(dialog):
            reject(index, "; ".join(problems))

    occurrences: dict[str, list[int]] = defaultdict(list)
    for index, dialog in enumerate(dialogs):
        occurrences[dialog.conversation_id].append(index)
    for indexes in occurrences.values():
        if len(indexes) < 2:
            continue
        kept, *duplicates = sorted(indexes, key=lambda index: (KEEP_ORDER.get(dialogs[index].split, 3), index))
        first = dialogs[kept]
        for index in duplicates:
            where = f"also in the {first.split} split" if dialogs[index].split != first.split else "seen before"
            reject(index, f"duplicate conversation_id ({where}, at {first.location})")
    rejections.sort(key=lambda rejection: (rejection.location.file, rejection.location.line or 0))
    return rejections, rejected


@dataclass(frozen=True)
class NearDuplicate:
    conversation_id: str
    split: str
    other_conversation_id: str
    other_split: str
    jaccard: float


def _shingles(dialog: Dialog) -> set[tuple[str, ...]]:
    return shingles(" ".join(turn.text for turn in dialog.dialogue).lower().split(), SHINGLE_WORDS)


def find_near_duplicates(dialogs: list[Dialog], threshold: float = NEAR_DUPLICATE_JACCARD) -> list[NearDuplicate]:
    """Pairs of dialogs in different splits whose word 5-gram sets have a Jaccard similarity >= `threshold`."""
    shingles = [_shingles(dialog) for dialog in dialogs]
    postings: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for index, dialog_shingles in enumerate(shingles):
        for shingle in dialog_shingles:
            postings[shingle].append(index)
    candidates = {
        (a, b)
        for indexes in postings.values()
        if len(indexes) <= MAX_SHINGLE_POSTINGS
        for i, a in enumerate(indexes)
        for b in indexes[i + 1 :]
        if dialogs[a].split != dialogs[b].split
    }
    found = []
    for a, b in candidates:
        jaccard = len(shingles[a] & shingles[b]) / len(shingles[a] | shingles[b])
        if jaccard >= threshold:
            first, second = sorted((dialogs[a], dialogs[b]), key=lambda d: (KEEP_ORDER[d.split], d.conversation_id))
            found.append(
                NearDuplicate(
                    first.conversation_id, first.split, second.conversation_id, second.split, round(jaccard, 4)
                )
            )
    return sorted(found, key=lambda pair: (KEEP_ORDER[pair.split], pair.conversation_id, pair.other_conversation_id))


def write_rejects_report(rejections: list[Rejection], path: Path) -> None:
    """One JSON object per rejected row: file, line, conversation_id, split, reason."""
    lines = "".join(json.dumps(rejection.to_dict(), ensure_ascii=False) + "\n" for rejection in rejections)
    atomic_write(path, lines.encode("utf-8"))
