"""Hub calls users hit: revisions holding '/', LFS copies, repo management endpoints and paginated listings.

Everything goes through the unmodified huggingface_hub client against the real embedded Hub server.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationCopy, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from dialoghub.hub.client import start_hub


@pytest.fixture
def paged_hub(tmp_path):
    """A separate server with two items per page (and a token), so listings span several pages."""
    server = start_hub(tmp_path / "root", token="s3cret", extra_args=("--page-size", "2"))
    yield server
    server.stop()


@pytest.mark.parametrize("revision", ["feature/x", "refs/heads/feature/x"])
def test_branch_with_a_slash_is_readable_everywhere(hub_api, repo_name, revision):
    hub_api.create_repo(repo_name)
    hub_api.create_branch(repo_name, branch="feature/x")
    commit = hub_api.upload_file(
        path_or_fileobj=b"on the branch", path_in_repo="dir/a.txt", repo_id=repo_name, revision="feature/x"
    )
    assert hub_api.list_repo_files(repo_name, revision=revision) == [".gitattributes", "dir/a.txt"]
    assert [entry.path for entry in hub_api.list_repo_tree(repo_name, "dir", revision=revision)] == ["dir/a.txt"]
    assert Path(hf_hub_download(repo_name, "dir/a.txt", revision=revision)).read_bytes() == b"on the branch"
    assert hub_api.file_exists(repo_name, "dir/a.txt", revision=revision)
    assert hub_api.repo_info(repo_name, revision=revision).sha == commit.oid
    assert hub_api.list_repo_commits(repo_name, revision=revision)[0].commit_id == commit.oid
    assert [info.path for info in hub_api.get_paths_info(repo_name, ["dir/a.txt"], revision=revision)] == ["dir/a.txt"]
    assert "dir/a.txt" not in hub_api.list_repo_files(repo_name)  # main is untouched


def test_unencoded_revisions_resolve_like_the_hub(hub, hub_api, repo_name):
    """A browser or curl sends `refs/pr/1` and `feature/x` unencoded; the longest ref prefix is the revision."""
    hub_api.create_repo(repo_name)
    hub_api.create_branch(repo_name, branch="feature/x")
    hub_api.upload_file(path_or_fileobj=b"x", path_in_repo="x/y.txt", repo_id=repo_name, revision="feature/x")
    tag_target = hub_api.upload_file(path_or_fileobj=b"t", path_in_repo="t.txt", repo_id=repo_name)
    hub_api.create_tag(repo_name, tag="v1")
    for revision, path, content in [
        ("feature/x", "x/y.txt", b"x"),
        ("refs/heads/feature/x", "x/y.txt", b"x"),
        ("refs/tags/v1", "t.txt", b"t"),
        (tag_target.oid, "t.txt", b"t"),
    ]:
        response = httpx.get(f"{hub.endpoint}/{repo_name}/resolve/{revision}/{path}")
        assert response.status_code == 200 and response.content == content, revision
    assert httpx.get(f"{hub.endpoint}/{repo_name}/resolve/feature/y.txt").status_code == 404


def test_copy_of_an_lfs_file_takes_its_size_from_the_source(hub_api, repo_name):
    hub_api.create_repo(repo_name)
    weights = os.urandom(50_000)
    hub_api.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=repo_name)
    hub_api.create_commit(
        repo_name,
        operations=[
            CommitOperationCopy(src_path_in_repo="model.safetensors", path_in_repo="backup/model.safetensors"),
            CommitOperationAdd(path_in_repo="note.txt", path_or_fileobj=b"copied"),
        ],
        commit_message="copy",
    )
    tree = {entry.path: entry for entry in hub_api.list_repo_tree(repo_name, recursive=True)}
    assert tree["backup/model.safetensors"].lfs.sha256 == tree["model.safetensors"].lfs.sha256
    assert tree["backup/model.safetensors"].size == len(weights)
    assert Path(hf_hub_download(repo_name, "backup/model.safetensors")).read_bytes() == weights


def test_visibility_settings_and_the_cli(own_token_hub, repo_name):
    server, owner, anonymous = own_token_hub
    owner.create_repo(repo_name)
    assert anonymous.repo_info(repo_name).private is False
    owner.update_repo_settings(repo_name, private=True)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.repo_info(repo_name)
    assert owner.repo_info(repo_name).private is True
    hf = Path(sys.executable).parent / "hf"
    environment = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_TOKEN": "s3cret", "HF_HUB_DISABLE_XET": "1"}
    cli = subprocess.run(
        [str(hf), "repos", "settings", repo_name, "--public"], capture_output=True, text=True, env=environment
    )
    assert cli.returncode == 0, cli.stderr
    assert anonymous.repo_info(repo_name).private is False


@pytest.fixture
def own_token_hub(tmp_path):
    server = start_hub(tmp_path / "root", token="s3cret")
    yield server, HfApi(endpoint=server.endpoint, token="s3cret"), HfApi(endpoint=server.endpoint, token=False)
    server.stop()


def test_move_and_duplicate_repo(hub_api, repo_name):
    hub_api.create_repo(repo_name, repo_type="dataset")
    weights = os.urandom(30_000)
    commit = hub_api.upload_file(
        path_or_fileobj=weights, path_in_repo="data.parquet", repo_id=repo_name, repo_type="dataset"
    )
    hub_api.create_tag(repo_name, tag="v1", repo_type="dataset")
    moved = f"{repo_name}-moved"
    hub_api.move_repo(repo_name, moved, repo_type="dataset")
    assert not hub_api.repo_exists(repo_name, repo_type="dataset")
    assert hub_api.repo_info(moved, repo_type="dataset").sha == commit.oid

    copy = hub_api.duplicate_repo(moved, f"{repo_name}-copy", repo_type="dataset", private=True)
    assert copy.repo_id == f"{repo_name}-copy"
    info = hub_api.repo_info(copy.repo_id, repo_type="dataset")
    assert info.private is True and info.sha == commit.oid
    assert [tag.name for tag in hub_api.list_repo_refs(copy.repo_id, repo_type="dataset").tags] == ["v1"]
    downloaded = hf_hub_download(copy.repo_id, "data.parquet", repo_type="dataset")
    assert Path(downloaded).read_bytes() == weights
    with pytest.raises(HfHubHTTPError) as taken:
        hub_api.move_repo(moved, copy.repo_id, repo_type="dataset")
    assert taken.value.response.status_code == 409
    assert hub_api.duplicate_repo(moved, copy.repo_id, repo_type="dataset", exist_ok=True).repo_id == copy.repo_id


def test_super_squash_history_keeps_the_files(hub_api, repo_name):
    hub_api.create_repo(repo_name)
    for number in range(3):
        hub_api.upload_file(path_or_fileobj=str(number).encode(), path_in_repo=f"{number}.txt", repo_id=repo_name)
    files = hub_api.list_repo_files(repo_name)
    hub_api.super_squash_history(repo_name, commit_message="one commit")
    commits = hub_api.list_repo_commits(repo_name)
    assert [commit.title for commit in commits] == ["one commit"]
    assert hub_api.list_repo_files(repo_name) == files
    hub_api.create_tag(repo_name, tag="v1")
    with pytest.raises(HfHubHTTPError) as on_a_tag:
        hub_api.super_squash_history(repo_name, branch="v1")
    assert on_a_tag.value.response.status_code == 400


def test_auth_check(own_token_hub, repo_name):
    _, owner, anonymous = own_token_hub
    owner.create_repo(repo_name, private=True)
    owner.auth_check(repo_name)
    owner.auth_check(repo_name, write=True)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.auth_check(repo_name)
    owner.create_repo(f"{repo_name}-public")
    anonymous.auth_check(f"{repo_name}-public")
    with pytest.raises(HfHubHTTPError):
        anonymous.auth_check(f"{repo_name}-public", write=True)


def test_list_and_permanently_delete_lfs_files(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    kept, dropped = os.urandom(20_000), os.urandom(20_000)
    hub_api.upload_file(path_or_fileobj=kept, path_in_repo="kept.bin", repo_id=repo_name)
    hub_api.upload_file(path_or_fileobj=dropped, path_in_repo="old/dropped.bin", repo_id=repo_name)
    lfs_files = {item.filename: item for item in hub_api.list_lfs_files(repo_name)}
    assert set(lfs_files) == {"kept.bin", "old/dropped.bin"}
    assert lfs_files["kept.bin"].size == len(kept)
    assert lfs_files["old/dropped.bin"].size == len(dropped)

    hub_api.permanently_delete_lfs_files(repo_name, [lfs_files["old/dropped.bin"]])
    assert [item.filename for item in hub_api.list_lfs_files(repo_name)] == ["kept.bin"]
    assert "old/dropped.bin" not in hub_api.list_repo_files(repo_name)
    for commit in hub_api.list_repo_commits(repo_name):
        assert "old/dropped.bin" not in hub_api.list_repo_files(repo_name, revision=commit.commit_id)
    oid = lfs_files["old/dropped.bin"].file_oid
    assert not (hub.root / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).exists()
    assert Path(hf_hub_download(repo_name, "kept.bin")).read_bytes() == kept


def test_listings_filter_sort_full_and_private(paged_hub):
    owner = HfApi(endpoint=paged_hub.endpoint, token="s3cret")
    anonymous = HfApi(endpoint=paged_hub.endpoint, token=False)
    cards = {
        "org/alpha": "---\nlibrary_name: peft\ntags:\n- support\n---\n",
        "org/beta": "---\ntags:\n- support\n- summarization\n---\n",
        "org/gamma": "---\ntags:\n- other\n---\n",
    }
    for repo_id, card in cards.items():
        owner.create_repo(repo_id)
        owner.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo_id)
    owner.create_repo("org/secret", private=True)
    owner.upload_file(path_or_fileobj=b"---\ntags:\n- support\n---\n", path_in_repo="README.md", repo_id="org/secret")

    assert [model.id for model in owner.list_models(filter="support")] == ["org/alpha", "org/beta", "org/secret"]
    assert [model.id for model in anonymous.list_models(filter="support")] == ["org/alpha", "org/beta"]
    assert [model.id for model in owner.list_models(filter=["support", "summarization"])] == ["org/beta"]
    assert [model.id for model in owner.list_models(filter="peft")] == ["org/alpha"]
    # Commit times have whole seconds: write beta again in a later second, so it is the last modified.
    time.sleep(1.05 - time.time() % 1)
    owner.upload_file(path_or_fileobj=b"later", path_in_repo="later.txt", repo_id="org/beta")
    by_date = list(owner.list_models(sort="last_modified"))
    assert by_date[0].id == "org/beta" and [model.id for model in owner.list_models()][0] == "org/alpha"
    assert [model.last_modified for model in by_date] == sorted((m.last_modified for m in by_date), reverse=True)
    by_creation = list(owner.list_models(sort="created_at"))
    assert [model.created_at for model in by_creation] == sorted((m.created_at for m in by_creation), reverse=True)
    compact = next(iter(owner.list_models(filter="peft")))
    full = next(iter(owner.list_models(filter="peft", full=True)))
    assert compact.siblings is None
    assert {sibling.rfilename for sibling in full.siblings} == {".gitattributes", "README.md"}
    with pytest.raises(HfHubHTTPError) as bad_sort:
        list(owner.list_models(sort="nonsense"))
    assert bad_sort.value.response.status_code == 400


def test_listings_follow_link_pagination(paged_hub):
    """Two items a page: every listing needs several requests, and the client follows the Link headers."""
    owner = HfApi(endpoint=paged_hub.endpoint, token="s3cret")
    for number in range(5):
        owner.create_repo(f"pages/repo-{number}", repo_type="dataset")
    first_page = httpx.get(f"{paged_hub.endpoint}/api/datasets", params={"author": "pages"})
    assert len(first_page.json()) == 2 and 'rel="next"' in first_page.headers["link"]
    assert [dataset.id for dataset in owner.list_datasets(author="pages")] == [f"pages/repo-{n}" for n in range(5)]
    assert len(list(owner.list_datasets(author="pages", limit=3))) == 3

    repo_id = "pages/repo-0"
    operations = [CommitOperationAdd(f"dir/{n}.txt", str(n).encode()) for n in range(5)]
    owner.create_commit(repo_id, operations=operations, commit_message="five files", repo_type="dataset")
    for number in range(4):
        owner.upload_file(path_or_fileobj=b"again", path_in_repo=f"{number}.md", repo_id=repo_id, repo_type="dataset")
    commits = owner.list_repo_commits(repo_id, repo_type="dataset")
    assert len(commits) == 6 and commits[-1].title == "initial commit"
    assert len({commit.commit_id for commit in commits}) == 6
    tree = [entry.path for entry in owner.list_repo_tree(repo_id, "dir", repo_type="dataset")]
    assert tree == [f"dir/{n}.txt" for n in range(5)]
    assert len(owner.list_repo_files(repo_id, repo_type="dataset")) == 10
