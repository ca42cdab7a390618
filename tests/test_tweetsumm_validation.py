"""Malformed input gives an error naming file, line and conversation id, and nothing reaches the Hub."""

import copy
import csv
import json
import shutil
from pathlib import Path

import pytest

from dialoghub.data.records import AGENT, CUSTOMER, Dialog, Location, Turn
from dialoghub.data.tweetsumm import build, build_and_publish
from dialoghub.data.validation import DatasetValidationError, find_near_duplicates, validate

SMALL = Path(__file__).parent / "fixtures" / "tweetsumm" / "small"


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_records(path: Path, records: list) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def edit_line(path: Path, line: int, edit) -> str:
    """Apply `edit` to the record on 1-based `line`; returns that record's conversation id."""
    records = read_records(path)
    conversation_id = records[line - 1]["dialog"]["dialog_id"]
    edit(records[line - 1])
    write_records(path, records)
    return conversation_id


def bad_json_line(source: Path) -> list[str]:
    path = source / "train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1][:60] + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    return [f"{path}:2: not valid JSON"]


def missing_field(source: Path) -> list[str]:
    path = source / "train.jsonl"
    conversation_id = edit_line(path, 3, lambda record: record["dialog"].pop("turns"))
    return [f"{path}:3: conversation_id={conversation_id} missing field 'dialog.turns'"]


def empty_dialog(source: Path) -> list[str]:
    path = source / "valid.jsonl"
    conversation_id = edit_line(path, 1, lambda record: record["dialog"].update(turns=[]))
    return [f"{path}:1: conversation_id={conversation_id} the dialog has 0 turn(s), at least 2 are needed"]


def one_role_only(source: Path) -> list[str]:
    path = source / "test.jsonl"

    def customer_only(record):
        for turn in record["dialog"]["turns"]:
            turn["is_agent"] = False

    conversation_id = edit_line(path, 2, customer_only)
    # Consecutive tweets by one side make one turn, so a one-sided dialog is also a one-turn dialog.
    return [
        f"{path}:2: conversation_id={conversation_id} the dialog has 1 turn(s), at least 2 are needed; "
        "the dialog has one role only: no Agent turn"
    ]


def wrong_types(source: Path) -> list[str]:
    path = source / "train.jsonl"
    first = edit_line(path, 1, lambda record: record["dialog"]["turns"][2].update(is_agent="yes"))
    second = edit_line(path, 4, lambda record: record["summaries"].update(abstractive_summaries="a summary"))
    return [
        f"{path}:1: conversation_id={first} dialog.turns[2].is_agent: expected a boolean, got string",
        f"{path}:4: conversation_id={second} summaries.abstractive_summaries: expected an array, got string",
    ]


def unknown_tweet_id(source: Path) -> list[str]:
    """The official layout: an ID file whose second tweet is missing from twcs.csv."""
    for path in source.iterdir():
        path.unlink()
    ids = source / "final_train_tweetsum.jsonl"
    record = {
        "conversation_id": "abc123",
        "tweet_ids_sentence_offset": [
            {"tweet_id": 11, "sentence_offsets": ["[0, 12]"]},
            {"tweet_id": 12, "sentence_offsets": ["[0, 9]"]},
        ],
        "annotations": [{"extractive": None, "abstractive": ["Customer asks.", "Agent answers."]}],
    }
    write_records(ids, [record])
    with open(source / "twcs.csv", "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id", ""])
        writer.writerow([11, "115712", "True", "", "@Acme Where?", "12", ""])
    return [f"{ids}:1: conversation_id=abc123 tweet_ids_sentence_offset[1]: tweet_id 12 is not in {source}/twcs.csv"]


def invalid_utf8(source: Path) -> list[str]:
    path = source / "train.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    conversation_id = json.loads(lines[3])["dialog"]["dialog_id"]
    lines[3] = lines[3].replace(b"Hi,", b"Hi \xff,", 1)
    path.write_bytes(b"".join(lines))
    return [f"{path}:4: conversation_id={conversation_id} invalid UTF-8: byte 0xff"]


def duplicate_id(source: Path) -> list[str]:
    train, test = source / "train.jsonl", source / "test.jsonl"
    train_records = read_records(train)
    repeated = train_records[2]["dialog"]["dialog_id"]
    train_records.append(copy.deepcopy(train_records[2]))
    write_records(train, train_records)
    leaked = train_records[0]["dialog"]["dialog_id"]
    edit_line(test, 1, lambda record: record["dialog"].update(dialog_id=leaked))
    return [
        # Across splits the test copy is kept, and the train row is the one reported.
        f"{train}:1: conversation_id={leaked} duplicate conversation_id (also in the test split, at {test}:1)",
        f"{train}:5: conversation_id={repeated} duplicate conversation_id (seen before, at {train}:3)",
    ]


def empty_after_cleaning(source: Path) -> list[str]:
    path = source / "valid.jsonl"

    def blank_second_summary(record):
        record["summaries"]["abstractive_summaries"][1] = ["&nbsp;", " "]

    conversation_id = edit_line(path, 2, blank_second_summary)
    return [f"{path}:2: conversation_id={conversation_id} empty text after cleaning in summaries[1]"]


MALFORMED = [
    bad_json_line,
    missing_field,
    empty_dialog,
    one_role_only,
    wrong_types,
    unknown_tweet_id,
    invalid_utf8,
    duplicate_id,
    empty_after_cleaning,
]


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "source"
    shutil.copytree(SMALL, folder)
    return folder


@pytest.mark.parametrize("corrupt", MALFORMED, ids=[corrupt.__name__ for corrupt in MALFORMED])
def test_malformed_input_names_file_line_and_id_and_pushes_nothing(corrupt, source, hub_api, repo_name):
    expected = corrupt(source)
    with pytest.raises(DatasetValidationError) as raised:
        build_and_publish(source, repo_name, tag="v1.0")
    message = str(raised.value)
    for line in expected:
        assert line in message
    assert "nothing was pushed" in message and "--drop-invalid" in message
    assert not hub_api.repo_exists(repo_name, repo_type="dataset")


def test_drop_invalid_publishes_the_valid_rows_and_writes_a_rejects_report(source, tmp_path, hub_api, repo_name):
    bad_json_line(source)
    one_role_only(source)
    report = tmp_path / "rejects.jsonl"
    commit = build_and_publish(source, repo_name, drop_invalid=True, rejects_report=report)
    rejects = read_records(report)
    assert [(reject["file"], reject["line"]) for reject in rejects] == [
        (str(source / "test.jsonl"), 2),
        (str(source / "train.jsonl"), 2),
    ]
    assert rejects[0]["conversation_id"] and rejects[0]["split"] == "test"
    assert rejects[1]["conversation_id"] is None and rejects[1]["reason"].startswith("not valid JSON")
    card = hub_api.hf_hub_download(repo_name, "README.md", repo_type="dataset", revision=commit)
    text = Path(card).read_text(encoding="utf-8")
    assert "2 source row(s) were left out" in text and rejects[0]["conversation_id"] in text
    assert build(source, drop_invalid=True).split_sizes == {"train": 3, "validation": 2, "test": 1}


def _dialog(conversation_id: str, split: str, customer: str, agent_ending: str = "") -> Dialog:
    agent = "Please DM us your order number and we will check it for you." + agent_ending
    return Dialog(
        conversation_id,
        split,
        [Turn(CUSTOMER, customer), Turn(AGENT, agent)],
        ["Customer asks. Agent answers."],
        [],
        Location(f"{split}.jsonl", 1),
    )


def test_near_duplicate_dialogs_across_splits_are_reported_not_within_a_split():
    parcel = "my parcel was marked as delivered yesterday but it never arrived at my flat in town"
    dialogs = [
        _dialog("a", "train", parcel),
        _dialog("b", "test", parcel, " Thanks"),
        _dialog("c", "train", parcel, " Cheers"),
        _dialog("d", "validation", "the app crashes whenever I open the payments tab on my phone"),
    ]
    pairs = find_near_duplicates(dialogs)
    assert [(pair.conversation_id, pair.split, pair.other_conversation_id, pair.other_split) for pair in pairs] == [
        ("b", "test", "a", "train"),
        ("b", "test", "c", "train"),
    ]
    assert all(0.8 <= pair.jaccard < 1 for pair in pairs)
    rejections, rejected = validate(dialogs)
    assert rejections == [] and rejected == set()
