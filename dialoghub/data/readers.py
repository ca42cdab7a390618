"""Readers for the three shapes TweetSumm is found in, plus a Hub dataset repo holding any of them.

- `ibm`: the JSONL that IBM's `tweet_sum_processor.py` (`get_json()`) writes, one dialog per line, in files named
  after their split (`train.jsonl`, `valid.jsonl`, `test.jsonl`).
- `dialogstudio`: the unified format of `Salesforce/dialogstudio` (config `TweetSumm`): a JSON object keyed
  `TweetSumm--{split}--{n}`, each dialog a `log` of `user utterance` / `system response` pairs.
- `official`: the ID files of github.com/guyfe/Tweetsumm (`final_{split}_tweetsum.jsonl`: tweet ids with sentence
  offsets, and the annotations), joined with Kaggle's "Customer Support on Twitter" `twcs.csv` for the texts.

Every reader returns the same `Dialog`s. A malformed row does not stop reading: it becomes a `Rejection` that names
the file, the line and (when it could be read) the conversation id, so one run reports every problem at once.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

from dialoghub.core.files import sha256_of
from dialoghub.data.records import (
    AGENT,
    CUSTOMER,
    Dialog,
    Location,
    Rejection,
    SourceData,
    SourceFile,
    Turn,
    merge_consecutive_turns,
    split_name,
)
from dialoghub.hub.client import RepoReferenceError, UnknownRepoError, resolve_repo

OFFICIAL_FILE = re.compile(r"final_(?P<split>[a-z]+)_tweetsum\.jsonl")
HUB_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
TWCS_FILE_NAME = "twcs.csv"
TWCS_COLUMNS = ("tweet_id", "inbound", "text")
SENTENCE_OFFSET = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*\]")
DIALOGSTUDIO_HEAD = re.compile(rb'\s*\{\s*"[^"]+--[A-Za-z]+--\d+"\s*:')


class SourceError(ValueError):
    """The source as a whole cannot be read (missing, ambiguous, or a file that cannot be parsed at all)."""


class RecordError(ValueError):
    """One row does not have the expected shape; the message names the offending field."""


# ---------------------------------------------------------------------------------------------------------------
# Typed access to parsed JSON, so a wrong type names its field instead of failing later with a KeyError.


def _type_name(value) -> str:
    return (
        "null"
        if value is None
        else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), type(value).__name__)
    )


def _expect(value, kind: type, path: str):
    # bool is an int subclass; a JSON `true` must not pass for a number, nor `1` for a boolean.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}[kind]
        raise RecordError(f"{path}: expected {expected}, got {_type_name(value)}")
    return value


def _field(obj: dict, key: str, kind: type, parent: str = ""):
    path = f"{parent}.{key}" if parent else key
    if key not in obj:
        raise RecordError(f"missing field {path!r}")
    return _expect(obj[key], kind, path)


def _strings(value, path: str) -> list[str]:
    return [_expect(item, str, f"{path}[{i}]") for i, item in enumerate(_expect(value, list, path))]


def _peek(obj, *keys) -> str | None:
    """A nested string field if it is there, for naming a row whose full parse failed."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, str) else None


# ---------------------------------------------------------------------------------------------------------------
# Lines of a JSONL file, each decoded on its own so one bad byte costs one row, not the file.


def _json_lines(path: Path, display: str) -> Iterator[tuple[Location, dict | None, Rejection | None]]:
    with open(path, "rb") as file:
        for line_number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            location = Location(display, line_number)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                partial = raw.decode("utf-8", errors="replace")
                row_id = None
                try:
                    parsed = json.loads(partial)
                    row_id = _peek(parsed, "dialog", "dialog_id") or _peek(parsed, "conversation_id")
                except json.JSONDecodeError:
                    pass
                reason = f"invalid UTF-8: byte 0x{raw[error.start]:02x} at byte offset {error.start} of the line"
                yield location, None, Rejection(location, reason, row_id)
                continue
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                yield location, None, Rejection(location, f"not valid JSON: {error.msg} (column {error.colno})")
                continue
            if not isinstance(parsed, dict):
                yield location, None, Rejection(location, f"expected a JSON object, got {_type_name(parsed)}")
                continue
            yield location, parsed, None


# ---------------------------------------------------------------------------------------------------------------
# Shapes shared by the IBM and DialogStudio layouts.


def _ibm_turn(value, path: str) -> Turn:
    turn = _expect(value, dict, path)
    is_agent = _field(turn, "is_agent", bool, path)
    sentences = _strings(_field(turn, "sentences", list, path), f"{path}.sentences")
    if not sentences:
        raise RecordError(f"{path}.sentences is empty")
    return Turn(AGENT if is_agent else CUSTOMER, " ".join(sentences))


def _ibm_summaries(summaries: dict, path: str) -> tuple[list[str], list[list[Turn]]]:
    abstractive_path = f"{path}.abstractive_summaries"
    abstractive = [
        " ".join(_strings(summary, f"{abstractive_path}[{i}]"))
        for i, summary in enumerate(_field(summaries, "abstractive_summaries", list, path))
    ]
    extractive_path = f"{path}.extractive_summaries"
    extractive = []
    for i, summary in enumerate(_field(summaries, "extractive_summaries", list, path)):
        items = _expect(summary, list, f"{extractive_path}[{i}]")
        extractive.append([_ibm_turn(item, f"{extractive_path}[{i}][{j}]") for j, item in enumerate(items)])
    return abstractive, extractive


# ---------------------------------------------------------------------------------------------------------------
# IBM processor JSONL


def _parse_ibm(record: dict, split: str, location: Location) -> Dialog:
    dialog = _field(record, "dialog", dict)
    conversation_id = _field(dialog, "dialog_id", str, "dialog")
    turns = _field(dialog, "turns", list, "dialog")
    tweets = [_ibm_turn(turn, f"dialog.turns[{i}]") for i, turn in enumerate(turns)]
    abstractive, extractive = _ibm_summaries(_field(record, "summaries", dict), "summaries")
    return Dialog(conversation_id, split, merge_consecutive_turns(tweets), abstractive, extractive, location)


def read_ibm_jsonl(path: Path, split: str, display: str, data: SourceData) -> None:
    for location, record, rejection in _json_lines(path, display):
        if rejection is not None:
            data.rejections.append(rejection)
            continue
        try:
            data.dialogs.append(_parse_ibm(record, split, location))
        except RecordError as error:
            data.rejections.append(Rejection(location, str(error), _peek(record, "dialog", "dialog_id"), split))


# ---------------------------------------------------------------------------------------------------------------
# DialogStudio unified format


def _parse_dialogstudio(key: str, record, location: Location) -> Dialog:
    parts = key.split("--")
    split = split_name(parts[1]) if len(parts) == 3 else None
    if split is None:
        raise RecordError(f"cannot tell the split from the key {key!r} (expected 'TweetSumm--<split>--<n>')")
    record = _expect(record, dict, key)
    conversation_id = _field(record, "original dialog id", str, key)
    turns: list[Turn] = []
    for i, entry in enumerate(_field(record, "log", list, key)):
        path = f"{key}.log[{i}]"
        entry = _expect(entry, dict, path)
        # DialogStudio pairs one customer utterance with one agent response; a side with nothing to say is "".
        for field, role in (("user utterance", CUSTOMER), ("system response", AGENT)):
            text = _field(entry, field, str, path)
            if text:
                turns.append(Turn(role, text))
    info_path = f"{key}.original dialog info"
    info = _field(record, "original dialog info", dict, key)
    abstractive, extractive = _ibm_summaries(_field(info, "summaries", dict, info_path), f"{info_path}.summaries")
    return Dialog(conversation_id, split, merge_consecutive_turns(turns), abstractive, extractive, location)


def read_dialogstudio_json(path: Path, display: str, data: SourceData) -> None:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        data.rejections.append(Rejection(Location(display, line), f"invalid UTF-8: byte 0x{raw[error.start]:02x}"))
        return
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        data.rejections.append(Rejection(Location(display, error.lineno), f"not valid JSON: {error.msg}"))
        return
    if not isinstance(records, dict):
        data.rejections.append(Rejection(Location(display, 1), f"expected a JSON object, got {_type_name(records)}"))
        return
    for key, record in records.items():
        key_at = text.find(json.dumps(key, ensure_ascii=False) + ":")
        location = Location(display, text.count("\n", 0, key_at) + 1 if key_at >= 0 else None)
        try:
            data.dialogs.append(_parse_dialogstudio(key, record, location))
        except RecordError as error:
            data.rejections.append(Rejection(location, str(error), _peek(record, "original dialog id")))


# ---------------------------------------------------------------------------------------------------------------
# Official ID files + Kaggle twcs.csv


def _tweet_id(obj: dict, path: str) -> str:
    if "tweet_id" not in obj:
        raise RecordError(f"missing field {path}.tweet_id")
    value = obj["tweet_id"]
    if isinstance(value, str) and value.isdigit():
        return value
    return str(_expect(value, int, f"{path}.tweet_id"))


def _offset(value, path: str) -> tuple[int, int]:
    match = SENTENCE_OFFSET.fullmatch(_expect(value, str, path).strip())
    if match is None:
        raise RecordError(f"{path}: expected a sentence offset like '[0, 80]', got {value!r}")
    start, end = int(match[1]), int(match[2])
    if start > end:
        raise RecordError(f"{path}: sentence offset {value!r} ends before it starts")
    return start, end


def _official_tweet_ids(record: dict) -> set[str]:
    """The tweet ids a row refers to, as far as its shape allows; the full parse reports what is wrong."""
    references = list(record.get("tweet_ids_sentence_offset") or [])
    for annotation in record.get("annotations") or []:
        if isinstance(annotation, dict) and isinstance(annotation.get("extractive"), list):
            references += annotation["extractive"]
    return {
        str(reference["tweet_id"])
        for reference in references
        if isinstance(reference, dict) and isinstance(reference.get("tweet_id"), int | str)
    }


class _TweetTexts:
    def __init__(self, tweets: dict[str, tuple[bool, str]], display: str):
        self.tweets = tweets
        self.display = display

    def role(self, tweet_id: str, path: str) -> str:
        # Kaggle's `inbound` is True for tweets sent to the company, i.e. by the customer.
        return CUSTOMER if self._tweet(tweet_id, path)[0] else AGENT

    def sentence(self, tweet_id: str, offset: tuple[int, int], path: str) -> str:
        text = self._tweet(tweet_id, path)[1]
        start, end = offset
        if end > len(text):
            raise RecordError(
                f"{path}: sentence offset [{start}, {end}] runs past the {len(text)} characters of tweet {tweet_id} "
                f"in {self.display} (is it the same twcs.csv the ID files were made from?)"
            )
        return text[start:end]

    def _tweet(self, tweet_id: str, path: str) -> tuple[bool, str]:
        if tweet_id not in self.tweets:
            raise RecordError(f"{path}: tweet_id {tweet_id} is not in {self.display}")
        return self.tweets[tweet_id]


def _parse_official(record: dict, split: str, location: Location, tweets: _TweetTexts) -> Dialog:
    conversation_id = _field(record, "conversation_id", str)
    turns = []
    for i, tweet in enumerate(_field(record, "tweet_ids_sentence_offset", list)):
        path = f"tweet_ids_sentence_offset[{i}]"
        tweet = _expect(tweet, dict, path)
        tweet_id = _tweet_id(tweet, path)
        offsets = _field(tweet, "sentence_offsets", list, path)
        if not offsets:
            raise RecordError(f"{path}.sentence_offsets is empty")
        sentences = [
            tweets.sentence(tweet_id, _offset(offset, f"{path}.sentence_offsets[{j}]"), path)
            for j, offset in enumerate(offsets)
        ]
        turns.append(Turn(tweets.role(tweet_id, path), " ".join(sentences)))
    abstractive, extractive = [], []
    for i, annotation in enumerate(_field(record, "annotations", list)):
        path = f"annotations[{i}]"
        annotation = _expect(annotation, dict, path)
        # As tweet_sum_processor.py: a null abstractive or an empty extractive annotation is left out.
        if annotation.get("abstractive") is not None:
            abstractive.append(" ".join(_strings(annotation["abstractive"], f"{path}.abstractive")))
        if annotation.get("extractive"):
            items = _expect(annotation["extractive"], list, f"{path}.extractive")
            summary = []
            for j, item in enumerate(items):
                item_path = f"{path}.extractive[{j}]"
                item = _expect(item, dict, item_path)
                tweet_id = _tweet_id(item, item_path)
                offset = _offset(_field(item, "sentence_offset", str, item_path), f"{item_path}.sentence_offset")
                summary.append(Turn(tweets.role(tweet_id, item_path), tweets.sentence(tweet_id, offset, item_path)))
            extractive.append(summary)
    return Dialog(conversation_id, split, merge_consecutive_turns(turns), abstractive, extractive, location)


def load_twcs(path: Path, tweet_ids: set[str]) -> dict[str, tuple[bool, str]]:
    """`tweet_id -> (inbound, text)` for the wanted tweets only: the full Kaggle file is ~500 MB."""
    tweets: dict[str, tuple[bool, str]] = {}
    # No newline="": tweet_sum_processor.py opens twcs.csv in universal-newline mode, and the sentence offsets count
    # characters of the text read that way.
    with open(path, encoding="utf-8") as file:
        reader = csv.reader(file)
        try:
            header = next(reader, None)
            if header is None or any(column not in header for column in TWCS_COLUMNS):
                expected = ", ".join(TWCS_COLUMNS)
                raise SourceError(f"{path}:1: expected a header with the columns {expected}, got {header}")
            id_column, inbound_column, text_column = (header.index(column) for column in TWCS_COLUMNS)
            width = max(id_column, inbound_column, text_column) + 1
            for row in reader:
                if len(row) < width:
                    raise SourceError(f"{path}:{reader.line_num}: expected {len(header)} columns, got {len(row)}")
                tweet_id = row[id_column].strip()
                if tweet_id not in tweet_ids:
                    continue
                inbound = row[inbound_column].strip().lower()
                if inbound not in ("true", "false"):
                    raise SourceError(f"{path}:{reader.line_num}: inbound must be True or False, got {inbound!r}")
                tweets[tweet_id] = (inbound == "true", row[text_column])
        except UnicodeDecodeError as error:
            raise SourceError(f"{path}: invalid UTF-8 after line {reader.line_num}: {error.reason}") from error
        except csv.Error as error:
            raise SourceError(f"{path}:{reader.line_num}: {error}") from error
    return tweets


def read_official(files: list[tuple[Path, str, str]], twcs_path: Path, twcs_display: str, data: SourceData) -> None:
    rows = []
    for path, split, display in files:
        for location, record, rejection in _json_lines(path, display):
            if rejection is not None:
                data.rejections.append(rejection)
            else:
                rows.append((location, record, split))
    wanted = set().union(*(_official_tweet_ids(record) for _, record, _ in rows))
    tweets = _TweetTexts(load_twcs(twcs_path, wanted), twcs_display)
    for location, record, split in rows:
        try:
            data.dialogs.append(_parse_official(record, split, location, tweets))
        except RecordError as error:
            data.rejections.append(Rejection(location, str(error), _peek(record, "conversation_id"), split))


# ---------------------------------------------------------------------------------------------------------------
# Finding the files of a source


def _data_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix in (".json", ".jsonl")
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def _find_twcs(root: Path, twcs: Path | None) -> Path:
    if twcs is not None:
        if not twcs.is_file():
            raise SourceError(f"{twcs}: no such file (--twcs)")
        return twcs
    base = root if root.is_dir() else root.parent
    for candidate in (base / TWCS_FILE_NAME, base.parent / TWCS_FILE_NAME, base / "twcs" / TWCS_FILE_NAME):
        if candidate.is_file():
            return candidate
    raise SourceError(
        f"{root}: the official ID files need Kaggle's {TWCS_FILE_NAME} for the tweet texts; put it beside them or "
        "pass its path (--twcs)"
    )


def _is_dialogstudio(path: Path) -> bool:
    with open(path, "rb") as file:
        head = file.read(512)
    return DIALOGSTUDIO_HEAD.match(head) is not None


def read_local(root: Path, *, twcs: Path | None = None, hub_prefix: str | None = None) -> SourceData:
    """Read a file or a folder of one of the three layouts; the layout is recognised from the files.

    Errors name files as given (or `repo@commit:path` for a Hub source); the card's provenance names them relative to
    the source, so it does not depend on where the source was stored.
    """
    base = root if root.is_dir() else root.parent

    def relative(path: Path) -> str:
        name = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
        return f"{hub_prefix}{name}" if hub_prefix is not None else name

    def display(path: Path) -> str:
        return relative(path) if hub_prefix is not None else str(path)

    layouts: dict[str, list[Path]] = {}
    for path in _data_files(root):
        if OFFICIAL_FILE.fullmatch(path.name):
            layouts.setdefault("official", []).append(path)
        elif path.suffix == ".jsonl" and split_name(path.stem):
            layouts.setdefault("ibm", []).append(path)
        elif path.suffix == ".json" and _is_dialogstudio(path):
            layouts.setdefault("dialogstudio", []).append(path)
    if not layouts:
        raise SourceError(
            f"{root}: found no TweetSumm files (train/valid/test.jsonl from tweet_sum_processor.py, "
            "final_<split>_tweetsum.jsonl ID files, or a DialogStudio TweetSumm .json)"
        )
    if len(layouts) > 1:
        listing = "; ".join(f"{name}: {', '.join(map(relative, files))}" for name, files in layouts.items())
        raise SourceError(f"{root}: holds more than one TweetSumm layout ({listing}); point the source at one of them")
    [(layout, files)] = layouts.items()
    data = SourceData(format=layout, description=LAYOUT_DESCRIPTIONS[layout])
    hashed = list(files)
    if layout == "official":
        splits = {path: split_name(OFFICIAL_FILE.fullmatch(path.name)["split"]) for path in files}
        if unknown := [path.name for path, split in splits.items() if split is None]:
            raise SourceError(f"{root}: cannot tell the split of {', '.join(unknown)}")
        twcs_path = _find_twcs(root, twcs)
        read_official([(path, splits[path], display(path)) for path in files], twcs_path, display(twcs_path), data)
        hashed.append(twcs_path)
    elif layout == "ibm":
        for path in files:
            read_ibm_jsonl(path, split_name(path.stem), display(path), data)
    else:
        for path in files:
            read_dialogstudio_json(path, display(path), data)
    data.files = [SourceFile(relative(path), sha256_of(path)) for path in hashed]
    return data


LAYOUT_DESCRIPTIONS = {
    "ibm": "TweetSumm in the JSONL layout of IBM's tweet_sum_processor.py",
    "dialogstudio": "TweetSumm in the DialogStudio unified format (Salesforce/dialogstudio, config TweetSumm)",
    "official": "the official TweetSumm ID files (github.com/guyfe/Tweetsumm) joined with Kaggle's twcs.csv",
}


def read_hub(repo_id: str, *, revision: str | None = None, twcs: Path | None = None) -> SourceData:
    """Download a Hub dataset repo holding one of the layouts and read it, naming files `repo@commit:path`."""
    from huggingface_hub import constants, snapshot_download

    try:
        commit = resolve_repo(repo_id, revision, repo_type="dataset").sha
    except UnknownRepoError as error:
        raise SourceError(f"{repo_id}: no such local path, nor dataset repo on {constants.ENDPOINT}") from error
    except RepoReferenceError as error:
        raise SourceError(str(error)) from error
    folder = Path(snapshot_download(repo_id, repo_type="dataset", revision=commit))
    data = read_local(folder, twcs=twcs, hub_prefix=f"{repo_id}@{commit[:12]}:")
    data.description += f", from the Hub dataset {repo_id} at commit {commit}"
    return data


def read_source(source: str | Path, *, twcs: str | Path | None = None, revision: str | None = None) -> SourceData:
    """A local file or folder, else a Hub dataset repo id (`owner/name`)."""
    twcs = Path(twcs) if twcs is not None else None
    path = Path(source)
    if path.exists():
        if revision is not None:
            raise SourceError(f"{source}: a revision only applies to a Hub source, not to a local path")
        return read_local(path, twcs=twcs)
    if HUB_REPO_ID.fullmatch(str(source)):
        return read_hub(str(source), revision=revision, twcs=twcs)
    raise SourceError(f"{source}: no such file or folder, and not a Hub dataset repo id (owner/name)")
