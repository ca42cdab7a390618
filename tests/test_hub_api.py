"""The unmodified HF clients against the real embedded Hub server (no mocked HTTP anywhere)."""

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from datasets import Dataset, DatasetDict, load_dataset
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RevisionNotFoundError

from dialoghub.hub.server.storage import parse_lfs_pointer


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def git_fsck(repo_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "fsck", "--full", "--strict"], cwd=repo_dir, capture_output=True, text=True)


def test_create_repo_exist_ok(hub_api, repo_name):
    url = hub_api.create_repo(repo_name)
    assert url.repo_id == repo_name
    with pytest.raises(HfHubHTTPError) as error:
        hub_api.create_repo(repo_name)
    assert error.value.response.status_code == 409
    assert hub_api.create_repo(repo_name, exist_ok=True).repo_id == repo_name
    assert hub_api.list_repo_files(repo_name) == [".gitattributes"]


def test_upload_folder_regular_lfs_and_delete_patterns(hub_api, repo_name, tmp_path, caplog):
    hub_api.create_repo(repo_name, repo_type="dataset")
    weights = os.urandom(300_000)
    folder = write_files(
        tmp_path / "v1",
        {"README.md": b"# hello\n", "data/train.parquet": weights, "notes/old.txt": b"old", "notes/keep.md": b"k"},
    )
    first = hub_api.upload_folder(folder_path=folder, repo_id=repo_name, repo_type="dataset")
    tree = {entry.path: entry for entry in hub_api.list_repo_tree(repo_name, repo_type="dataset", recursive=True)}
    assert tree["data/train.parquet"].lfs is not None and tree["data/train.parquet"].size == len(weights)
    assert tree["README.md"].lfs is None and tree["README.md"].size == 8

    commits_before = len(hub_api.list_repo_commits(repo_name, repo_type="dataset"))
    # preupload reports the stored sha256 of LFS files (git's sha1 of regular ones), so the client itself sees that
    # nothing changed and sends no commit at all.
    with caplog.at_level(logging.DEBUG, logger="huggingface_hub"):
        again = hub_api.upload_folder(folder_path=folder, repo_id=repo_name, repo_type="dataset")
    assert "Skipping upload for 'data/train.parquet' as the file has not changed." in caplog.messages
    assert "Skipping upload for 'README.md' as the file has not changed." in caplog.messages
    assert again.oid == first.oid
    assert len(hub_api.list_repo_commits(repo_name, repo_type="dataset")) == commits_before

    (folder / "notes" / "old.txt").unlink()
    hub_api.upload_folder(folder_path=folder, repo_id=repo_name, repo_type="dataset", delete_patterns=["notes/*.txt"])
    files = hub_api.list_repo_files(repo_name, repo_type="dataset")
    assert "notes/old.txt" not in files and "notes/keep.md" in files
    downloaded = hf_hub_download(repo_name, "data/train.parquet", repo_type="dataset")
    assert Path(downloaded).read_bytes() == weights


def test_tags_refs_and_commits(hub_api, repo_name, tmp_path):
    hub_api.create_repo(repo_name)
    first = hub_api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo_name, commit_message="one")
    hub_api.create_tag(repo_name, tag="v1.0", tag_message="first release")
    second = hub_api.upload_file(path_or_fileobj=b"2", path_in_repo="a.txt", repo_id=repo_name, commit_message="two")
    hub_api.create_tag(repo_name, tag="light")  # lightweight tag, no message

    refs = hub_api.list_repo_refs(repo_name)
    assert [(branch.name, branch.target_commit) for branch in refs.branches] == [("main", second.oid)]
    assert {tag.name: tag.target_commit for tag in refs.tags} == {"v1.0": first.oid, "light": second.oid}
    with pytest.raises(HfHubHTTPError) as error:
        hub_api.create_tag(repo_name, tag="v1.0")
    assert error.value.response.status_code == 409

    commits = hub_api.list_repo_commits(repo_name)
    assert [commit.title for commit in commits] == ["two", "one", "initial commit"]
    assert commits[0].commit_id == second.oid

    hub_api.delete_tag(repo_name, tag="light")
    assert [tag.name for tag in hub_api.list_repo_refs(repo_name).tags] == ["v1.0"]
    with pytest.raises(RevisionNotFoundError):
        hub_api.model_info(repo_name, revision="light")


def test_repo_info_at_main_tag_and_sha_and_listings(hub_api, repo_name):
    org = repo_name.split("/")[0]
    for repo_type in ("model", "dataset"):
        hub_api.create_repo(repo_name, repo_type=repo_type)
        card = b"---\nlicense: mit\ntags:\n- demo\n---\n# card\n"
        first = hub_api.upload_file(
            path_or_fileobj=card, path_in_repo="README.md", repo_id=repo_name, repo_type=repo_type
        )
        hub_api.create_tag(repo_name, tag="v1", repo_type=repo_type)
        second = hub_api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name, repo_type=repo_type
        )
        info = hub_api.repo_info(repo_name, repo_type=repo_type)
        assert info.sha == second.oid and {s.rfilename for s in info.siblings} == {
            ".gitattributes",
            "README.md",
            "x.txt",
        }
        assert info.card_data["license"] == "mit" and "demo" in info.tags
        at_tag = hub_api.repo_info(repo_name, repo_type=repo_type, revision="v1")
        assert at_tag.sha == first.oid and "x.txt" not in {s.rfilename for s in at_tag.siblings}
        assert hub_api.repo_info(repo_name, repo_type=repo_type, revision=first.oid).sha == first.oid
    assert repo_name in [model.id for model in hub_api.list_models(author=org)]
    assert repo_name in [dataset.id for dataset in hub_api.list_datasets(author=org, search=repo_name.split("/")[1])]
    assert all(model.id.startswith(f"{org}/") for model in hub_api.list_models(author=org))


def test_hf_hub_download_and_snapshot_download_at_a_tag(hub_api, repo_name, tmp_path):
    hub_api.create_repo(repo_name)
    blob = os.urandom(50_000)
    hub_api.upload_folder(folder_path=write_files(tmp_path / "v1", {"a.txt": b"v1", "w.bin": blob}), repo_id=repo_name)
    hub_api.create_tag(repo_name, tag="v1")
    hub_api.upload_folder(
        folder_path=write_files(tmp_path / "v2", {"a.txt": b"v2", "b.txt": b"new"}), repo_id=repo_name
    )

    assert Path(hf_hub_download(repo_name, "a.txt", revision="v1")).read_bytes() == b"v1"
    assert Path(hf_hub_download(repo_name, "a.txt")).read_bytes() == b"v2"
    snapshot = Path(snapshot_download(repo_name, revision="v1", local_dir=tmp_path / "snap"))
    assert sorted(path.name for path in snapshot.iterdir() if path.is_file()) == [".gitattributes", "a.txt", "w.bin"]
    assert (snapshot / "w.bin").read_bytes() == blob
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_name, "missing.txt")


def test_range_requests(hub, hub_api, repo_name):
    import httpx

    hub_api.create_repo(repo_name)
    hub_api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="digits.txt", repo_id=repo_name)
    response = httpx.get(f"{hub.endpoint}/{repo_name}/resolve/main/digits.txt", headers={"Range": "bytes=2-5"})
    assert response.status_code == 206 and response.content == b"2345"
    assert response.headers["content-range"] == "bytes 2-5/10"
    head = httpx.head(f"{hub.endpoint}/{repo_name}/resolve/main/digits.txt")
    assert head.headers["content-length"] == "10" and head.headers["x-repo-commit"]


def test_push_to_hub_and_load_dataset_by_revision(hub_api, repo_name):
    DatasetDict(
        train=Dataset.from_dict({"text": ["a", "b", "c"]}), test=Dataset.from_dict({"text": ["t"]})
    ).push_to_hub(repo_name)
    hub_api.create_tag(repo_name, tag="v1", repo_type="dataset")
    DatasetDict(
        train=Dataset.from_dict({"text": ["a", "b", "c", "d", "e"]}), test=Dataset.from_dict({"text": ["t", "u"]})
    ).push_to_hub(repo_name)

    latest = load_dataset(repo_name)
    tagged = load_dataset(repo_name, revision="v1")
    assert (latest["train"].num_rows, latest["test"].num_rows) == (5, 2)
    assert (tagged["train"].num_rows, tagged["test"].num_rows) == (3, 1)
    assert tagged["train"]["text"] == ["a", "b", "c"]


def test_peft_adapter_from_hub_at_a_tag_has_identical_weights(hub_api, repo_name, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    base_dir = tmp_path / "base"
    LlamaForCausalLM(config).save_pretrained(base_dir)

    def trained_adapter(seed: int, folder: Path) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        model = get_peft_model(LlamaForCausalLM.from_pretrained(base_dir), LoraConfig(r=2, target_modules=["q_proj"]))
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_" in name:
                    parameter.normal_()
        model.save_pretrained(folder)
        return {name: value.clone() for name, value in model.state_dict().items() if "lora_" in name}

    hub_api.create_repo(repo_name)
    first = trained_adapter(1, tmp_path / "adapter-v1")
    hub_api.upload_folder(folder_path=tmp_path / "adapter-v1", repo_id=repo_name)
    hub_api.create_tag(repo_name, tag="v1")
    trained_adapter(2, tmp_path / "adapter-v2")
    hub_api.upload_folder(folder_path=tmp_path / "adapter-v2", repo_id=repo_name)

    loaded = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir), repo_name, revision="v1")
    loaded_lora = {name: value for name, value in loaded.state_dict().items() if "lora_" in name}
    assert loaded_lora.keys() == first.keys()
    for name, value in first.items():
        assert torch.equal(loaded_lora[name], value), name


def test_git_clone_shows_the_same_tree(hub, hub_api, repo_name, tmp_path):
    hub_api.create_repo(repo_name)
    blob = os.urandom(20_000)
    files = {"README.md": b"# r\n", "src/x.py": b"print(1)\n", "model.safetensors": blob}
    hub_api.upload_folder(folder_path=write_files(tmp_path / "up", files), repo_id=repo_name)

    clone = tmp_path / "clone"
    bare = hub.root / "models" / f"{repo_name}.git"
    # The pointers as stored, whether or not git-lfs is installed (and configured system-wide) on this machine
    environment = {**os.environ, "GIT_LFS_SKIP_SMUDGE": "1"}
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True, env=environment)
    cloned = sorted(
        str(path.relative_to(clone))
        for path in clone.rglob("*")
        if path.is_file() and ".git/" not in str(path.relative_to(clone)) + "/"
    )
    assert cloned == sorted(hub_api.list_repo_files(repo_name))
    assert (clone / "src" / "x.py").read_bytes() == files["src/x.py"]
    pointer = parse_lfs_pointer((clone / "model.safetensors").read_bytes())
    tree = {entry.path: entry for entry in hub_api.list_repo_tree(repo_name)}
    assert pointer == (tree["model.safetensors"].lfs.sha256, len(blob))
    assert git_fsck(bare).returncode == 0


def test_hf_command_line_upload_and_download(hub, repo_name, tmp_path):
    hf = Path(sys.executable).parent / "hf"
    source = write_files(tmp_path / "src", {"hello.txt": b"hi there", "w.safetensors": os.urandom(4096)})
    environment = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1"}
    upload = subprocess.run(
        [str(hf), "upload", repo_name, str(source), ".", "--commit-message", "from the cli"],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert upload.returncode == 0, upload.stderr
    download = subprocess.run(
        [str(hf), "download", repo_name, "--local-dir", str(tmp_path / "dl")],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert download.returncode == 0, download.stderr
    assert (tmp_path / "dl" / "hello.txt").read_bytes() == b"hi there"
    assert (tmp_path / "dl" / "w.safetensors").read_bytes() == (source / "w.safetensors").read_bytes()


def test_concurrent_commits_lose_nothing_and_stale_parent_gets_412(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    errors = []

    def commit_many(worker: int):
        try:
            for index in range(3):
                hub_api.upload_file(
                    path_or_fileobj=f"{worker}-{index}".encode(),
                    path_in_repo=f"w{worker}/f{index}.txt",
                    repo_id=repo_name,
                )
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=commit_many, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    files = set(hub_api.list_repo_files(repo_name))
    assert {f"w{worker}/f{index}.txt" for worker in range(8) for index in range(3)} <= files
    commits = hub_api.list_repo_commits(repo_name)
    assert len(commits) == 1 + 8 * 3

    stale_parent = commits[1].commit_id
    from huggingface_hub import CommitOperationAdd

    with pytest.raises(HfHubHTTPError) as error:
        hub_api.create_commit(
            repo_name, [CommitOperationAdd("late.txt", b"late")], commit_message="late", parent_commit=stale_parent
        )
    assert error.value.response.status_code == 412
    assert git_fsck(hub.root / "models" / f"{repo_name}.git").returncode == 0
