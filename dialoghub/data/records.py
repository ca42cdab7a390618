"""The in-memory shape every TweetSumm reader produces, and the record of a row that had to be rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

CUSTOMER = "Customer"
AGENT = "Agent"
ROLES = (CUSTOMER, AGENT)

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": "train",
    "valid": "validation",
    "validation": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}


@dataclass(frozen=True)
class Location:
    """Where a row came from: a file (or `repo@revision:path` for a Hub source) and a 1-based line."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


@dataclass
class Dialog:
    """One TweetSumm dialog as its source has it.

    `dialogue` holds speaker turns: consecutive tweets by the same side are joined with a space, which is also how
    DialogStudio stores them, so every reader can give the same dialog.
    """

    conversation_id: str
    split: str
    dialogue: list[Turn]
    summaries: list[str]
    extractive_summaries: list[list[Turn]]
    location: Location


@dataclass(frozen=True)
class Rejection:
    """A row that is malformed or breaks a dataset rule; `conversation_id` is None when it could not be read."""

    location: Location
    reason: str
    conversation_id: str | None = None
    split: str | None = None

    def __str__(self) -> str:
        row = f" conversation_id={self.conversation_id}" if self.conversation_id is not None else ""
        return f"{self.location}:{row} {self.reason}"

    def to_dict(self) -> dict:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "conversation_id": self.conversation_id,
            "split": self.split,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SourceFile:
    """An input file, hashed for the card's provenance section."""

    name: str
    sha256: str


@dataclass
class SourceData:
    """What a reader returns: the dialogs it could read, the rows it could not, and the files it read."""

    format: str
    description: str
    dialogs: list[Dialog] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    files: list[SourceFile] = field(default_factory=list)


def merge_consecutive_turns(turns: list[Turn]) -> list[Turn]:
    """Join consecutive turns by the same role with a space, as DialogStudio does."""
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(turn.role, f"{merged[-1].text} {turn.text}")
        else:
            merged.append(turn)
    return merged


def split_name(name: str) -> str | None:
    return SPLIT_ALIASES.get(name.lower())
