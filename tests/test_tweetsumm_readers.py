"""The three TweetSumm layouts give the same dialogs, and sources are recognised (or refused) clearly."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from dialoghub.core.paths import shared_data_dir
from dialoghub.data.readers import SourceError, read_source
from dialoghub.data.tweetsumm import build

FIXTURES = Path(__file__).parent / "fixtures" / "tweetsumm"
OFFICIAL_IDS = FIXTURES / "final_train_tweetsum.jsonl"
SHARED = shared_data_dir()
TWCS_HEADER = [
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
]


def parse_offset(offset: str) -> tuple[int, int]:
    start, end = offset.strip("[]").split(",")
    return int(start), int(end)


def write_twcs(path: Path, official_records: list[dict], ibm_records: dict[str, dict]) -> None:
    """A twcs.csv whose tweets give back the IBM sentences at the official offsets (gaps filled with spaces)."""
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(TWCS_HEADER)
        for record in official_records:
            turns = ibm_records[record["conversation_id"]]["dialog"]["turns"]
            for tweet, turn in zip(record["tweet_ids_sentence_offset"], turns, strict=True):
                offsets = [parse_offset(offset) for offset in tweet["sentence_offsets"]]
                characters = [" "] * max(end for _, end in offsets)
                for (start, end), sentence in zip(offsets, turn["sentences"], strict=True):
                    characters[start:end] = sentence
                agent = turn["is_agent"]
                writer.writerow(
                    [
                        tweet["tweet_id"],
                        "AcmeSupport" if agent else "115712",
                        "False" if agent else "True",
                        "Tue Oct 31 22:10:47 +0000 2017",
                        "".join(characters),
                        "",
                        "",
                    ]
                )


@pytest.fixture
def official_source(tmp_path):
    """The 5 official ID lines of the DialogStudio sample, with a twcs.csv rebuilt from the shared IBM data."""
    official = [json.loads(line) for line in OFFICIAL_IDS.read_text().splitlines()]
    wanted = {record["conversation_id"] for record in official}
    ibm = {}
    with open(SHARED / "tweetsumm" / "train.jsonl", encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            if record["dialog"]["dialog_id"] in wanted:
                ibm[record["dialog"]["dialog_id"]] = record
    folder = tmp_path / "official"
    folder.mkdir()
    shutil.copy(OFFICIAL_IDS, folder)
    write_twcs(folder / "twcs.csv", official, ibm)
    ibm_folder = tmp_path / "ibm"
    ibm_folder.mkdir()
    (ibm_folder / "train.jsonl").write_text(
        "".join(json.dumps(ibm[record["conversation_id"]]) + "\n" for record in official), encoding="utf-8"
    )
    return folder, ibm_folder


def comparable(dialogs):
    return {
        dialog.conversation_id: (dialog.split, dialog.dialogue, dialog.summaries, dialog.extractive_summaries)
        for dialog in dialogs
    }


def test_the_dialogstudio_dialogs_come_out_identical_from_all_three_readers(official_source):
    official_folder, ibm_folder = official_source
    sources = {
        "dialogstudio": SHARED / "dialogstudio",
        "official": official_folder,
        "ibm": ibm_folder,
    }
    read = {name: read_source(path) for name, path in sources.items()}
    assert {name: data.format for name, data in read.items()} == {name: name for name in sources}
    assert all(not data.rejections for data in read.values())
    dialogstudio = comparable(read["dialogstudio"].dialogs)
    assert len(dialogstudio) == 5
    assert comparable(read["official"].dialogs) == dialogstudio
    assert comparable(read["ibm"].dialogs) == dialogstudio
    # The official reader leaves out null abstractive annotations and empty extractive ones, as IBM's processor.
    assert len(dialogstudio["1e1d8fd4f95c984fb78687c9e946dc97"][2]) == 2
    assert len(dialogstudio["b5773077fa55c381260390472deff4c2"][3]) == 2
    # And the published rows, cleaned and raw, are the same whichever layout they were built from.
    rows = {name: build(path).rows for name, path in sources.items()}
    assert rows["official"] == rows["dialogstudio"] == rows["ibm"]


def test_the_official_reader_finds_twcs_beside_the_id_files_or_asks_for_it(official_source, tmp_path):
    official_folder, _ = official_source
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(official_folder / "twcs.csv", elsewhere / "twcs.csv")
    with pytest.raises(SourceError, match=r"need Kaggle's twcs.csv .*--twcs"):
        read_source(official_folder)
    data = read_source(official_folder, twcs=elsewhere / "twcs.csv")
    assert len(data.dialogs) == 5
    assert [file.name for file in data.files] == ["final_train_tweetsum.jsonl", "twcs.csv"]


def test_a_folder_with_two_layouts_is_refused():
    with pytest.raises(SourceError, match="more than one TweetSumm layout"):
        read_source(SHARED)


def test_a_source_that_is_neither_a_path_nor_a_repo_id_is_refused(tmp_path):
    with pytest.raises(SourceError, match="no such file or folder, and not a Hub dataset repo id"):
        read_source(tmp_path / "missing" / "train.jsonl")
    (tmp_path / "notes.json").write_text('{"a": 1}')
    with pytest.raises(SourceError, match="found no TweetSumm files"):
        read_source(tmp_path)
