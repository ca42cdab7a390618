"""Publishing org/tweetsumm-clean through the real embedded Hub: features, splits, tags, card, and no-op rebuilds."""

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT, shared_data_dir
from dialoghub.data.parquet_repo import parquet_path
from dialoghub.data.readers import SourceError
from dialoghub.data.tweetsumm import build, build_and_publish, features, publish, write_dataset_folder
from dialoghub.hub.client import TagConflictError
from tests.card_code import run_quick_start

SMALL = Path(__file__).parent / "fixtures" / "tweetsumm" / "small"
SMALL_SIZES = {"train": 4, "validation": 2, "test": 2}


def commit_count(hub_api, repo_id: str) -> int:
    return len(hub_api.list_repo_commits(repo_id, repo_type="dataset"))


def tag_commit(hub_api, repo_id: str, tag: str) -> str | None:
    refs = hub_api.list_repo_refs(repo_id, repo_type="dataset")
    return next((ref.target_commit for ref in refs.tags if ref.name == tag), None)


def test_the_same_input_gives_byte_identical_files(tmp_path):
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        write_dataset_folder(build(SMALL), folder, "org/tweetsumm-clean", "v1.0")
    files = sorted(path.relative_to(folders[0]) for path in folders[0].rglob("*") if path.is_file())
    assert [str(path) for path in files] == [
        "README.md",
        *sorted(parquet_path(config, split) for config in ("default", "raw") for split in SMALL_SIZES),
    ]
    for path in files:
        assert (folders[0] / path).read_bytes() == (folders[1] / path).read_bytes(), path


def test_load_dataset_gives_the_declared_features_and_splits_and_a_rebuild_makes_no_commit(hub_api, repo_name):
    commit = build_and_publish(SMALL, repo_name, tag="v1.0")
    assert tag_commit(hub_api, repo_name, "v1.0") == commit
    result = build(SMALL)
    for config in ("default", "raw"):
        dataset = load_dataset(repo_name, config, revision="v1.0")
        assert {split: dataset[split].num_rows for split in dataset} == SMALL_SIZES
        for split in SMALL_SIZES:
            assert dataset[split].features == features()
            assert dataset[split].to_list() == result.rows[config][split]
    assert load_dataset(repo_name, revision=commit)["train"][0]["dialogue"][0]["text"].endswith("Photo here [URL]")

    commits = commit_count(hub_api, repo_name)
    assert build_and_publish(SMALL, repo_name, tag="v1.0") == commit
    assert commit_count(hub_api, repo_name) == commits


def test_a_tag_is_never_moved_and_a_new_build_gets_a_new_tag(hub_api, repo_name, tmp_path):
    first = build_and_publish(SMALL, repo_name, tag="v1.0")
    source = tmp_path / "source"
    shutil.copytree(SMALL, source)
    records = [json.loads(line) for line in (source / "test.jsonl").read_text().splitlines()]
    records[0]["summaries"]["abstractive_summaries"].append(["Customer is unhappy.", "Agent apologises."])
    (source / "test.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))

    with pytest.raises(TagConflictError, match=rf"tag 'v1.0' already points at commit {first}.*Nothing was pushed"):
        build_and_publish(source, repo_name, tag="v1.0")
    assert hub_api.dataset_info(repo_name).sha == first

    # Same data, different card (here the leakage threshold it reports): the card is updated, the tag stays.
    card_only = publish(build(SMALL, near_duplicate_threshold=0.9), repo_name, tag="v1.0")
    assert card_only.new_commit and not card_only.tag_created and card_only.tag_commit == first
    assert tag_commit(hub_api, repo_name, "v1.0") == first

    second = publish(build(source), repo_name, tag="v1.1")
    assert second.new_commit and second.tag_created and second.commit not in (first, card_only.commit)
    assert tag_commit(hub_api, repo_name, "v1.0") == first
    assert tag_commit(hub_api, repo_name, "v1.1") == second.commit
    assert len(load_dataset(repo_name, revision="v1.1")["test"][0]["summaries"]) == 3
    assert len(load_dataset(repo_name, revision="v1.0")["test"][0]["summaries"]) == 2


def test_the_card_passes_the_hubs_yaml_validation_and_loads(hub, hub_api, repo_name):
    commit = build_and_publish(SMALL, repo_name, tag="v1.0")
    readme = Path(hub_api.hf_hub_download(repo_name, "README.md", repo_type="dataset", revision=commit))
    content = readme.read_text(encoding="utf-8")
    response = httpx.post(
        f"{hub.endpoint}/api/validate-yaml", json={"content": content, "repoType": "dataset"}, timeout=30
    )
    assert response.status_code == 200
    assert response.json()["errors"] == []

    card = DatasetCard.load(repo_name, repo_type="dataset")
    assert card.data.license == ["cc0-1.0", "cc-by-nc-sa-4.0"]
    assert card.data.task_categories == ["summarization", "text-generation"]
    assert card.data.language == ["en"] and card.data.size_categories == ["n<1K"]
    assert card.data.pretty_name == "TweetSumm (clean)"
    assert [config["config_name"] for config in card.data.configs] == ["default", "raw"]
    info = {entry["config_name"]: entry for entry in card.data.dataset_info}
    assert {split["name"]: split["num_examples"] for split in info["raw"]["splits"]} == SMALL_SIZES
    body = card.text
    assert f'load_dataset("{repo_name}", revision="v1.0")' in body
    assert "| `remove_agent_signoffs` | agent turns |" in body
    assert "| train | 4 | 4.0 (4–4) |" in body
    assert "Feigenblat" in body and "CC BY-NC-SA 4.0" in body and "CC0 1.0" in body
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl"):
        assert f"| `{name}` |" in body
    quick_start = run_quick_start(card.content)
    assert quick_start.returncode == 0, quick_start.stderr[-3000:]


def test_a_hub_dataset_repo_can_be_the_source(hub_api, repo_name):
    source_repo = f"{repo_name}-source"
    hub_api.create_repo(source_repo, repo_type="dataset")
    upload = hub_api.upload_folder(repo_id=source_repo, repo_type="dataset", folder_path=SMALL, path_in_repo="ibm")
    from_hub = build(source_repo)
    assert from_hub.rows == build(SMALL).rows
    assert f"from the Hub dataset {source_repo} at commit {upload.oid}" in from_hub.source.description
    assert [file.name for file in from_hub.source.files] == [
        f"{source_repo}@{upload.oid[:12]}:ibm/{name}" for name in ("test.jsonl", "train.jsonl", "valid.jsonl")
    ]
    with pytest.raises(SourceError, match="no such local path, nor dataset repo"):
        build(f"{repo_name}-missing")


def _script():
    spec = importlib.util.spec_from_file_location("build_tweetsumm", REPO_ROOT / "scripts" / "build_tweetsumm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_publishes_the_full_dataset_once(hub, hub_api, repo_name, capsys):
    """The one test on the full shared data: 879/110/110 through the script, then a rebuild that changes nothing."""
    arguments = ["--source", str(shared_data_dir() / "tweetsumm"), "--repo-id", repo_name, "--tag", "v1.0"]
    completed = processes.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "build_tweetsumm.py"), *arguments],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Rows: train 879, validation 110, test 110" in completed.stdout
    assert "(new commit)" in completed.stdout and "Tag v1.0: created" in completed.stdout

    dataset = load_dataset(repo_name, revision="v1.0")
    assert {split: dataset[split].num_rows for split in dataset} == {"train": 879, "validation": 110, "test": 110}
    assert dataset["test"].features == features()

    commits = commit_count(hub_api, repo_name)
    assert _script().main(arguments) == 0
    assert "(unchanged, no new commit)" in capsys.readouterr().out
    assert commit_count(hub_api, repo_name) == commits
