"""What the Hub refuses, and how: integrity of the git tree, names git or the Hub reserve, card YAML, and the
repo's own `.gitattributes`; every refusal a 4xx."""

import base64
import json

import httpx
import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from dialoghub.hub.client import start_hub


def ndjson(*lines: dict) -> bytes:
    return "\n".join(json.dumps(line) for line in lines).encode()


def add_line(path: str, content: bytes) -> dict:
    encoded = base64.b64encode(content).decode()
    return {"key": "file", "value": {"path": path, "content": encoded, "encoding": "base64"}}


HEADER_LINE = {"key": "header", "value": {"summary": "rules"}}


def status_of(error: pytest.ExceptionInfo) -> int:
    return error.value.response.status_code


def test_git_tree_integrity(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    hub_api.upload_file(path_or_fileobj=b"a file", path_in_repo="a", repo_id=repo_name)
    head = hub_api.list_repo_commits(repo_name)[0].commit_id
    for path in (".gitattributes/x", "sub/.GITATTRIBUTES/x", ".gitmodules", "x/.git./y", "git~1/y"):
        with pytest.raises(HfHubHTTPError) as error:
            hub_api.upload_file(path_or_fileobj=b"x", path_in_repo=path, repo_id=repo_name)
        assert status_of(error) == 400, path
    with pytest.raises(HfHubHTTPError) as error:  # a file under an existing file
        hub_api.upload_file(path_or_fileobj=b"b", path_in_repo="a/b.txt", repo_id=repo_name)
    assert status_of(error) == 400
    commit = f"{hub.endpoint}/api/models/{repo_name}/commit/main"
    same_commit = httpx.post(commit, content=ndjson(HEADER_LINE, add_line("n", b"1"), add_line("n/m.txt", b"2")))
    assert same_commit.status_code == 400
    assert hub_api.list_repo_commits(repo_name)[0].commit_id == head
    assert hub_api.list_repo_files(repo_name) == [".gitattributes", "a"]
    # Deleting the file first makes room for the folder, in one commit.
    replaced = httpx.post(
        commit,
        content=ndjson(HEADER_LINE, {"key": "deletedFile", "value": {"path": "a"}}, add_line("a/b.txt", b"b")),
    )
    assert replaced.status_code == 200
    assert hub_api.list_repo_files(repo_name) == [".gitattributes", "a/b.txt"]


def test_names_git_or_the_hub_reserve_are_refused(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    for branch in ("HEAD", "-x", "refs/heads/main", "a..b", "x.lock", "a/"):
        with pytest.raises(HfHubHTTPError) as error:
            hub_api.create_branch(repo_name, branch=branch)
        assert status_of(error) == 400, branch
    with pytest.raises(HfHubHTTPError) as error:
        hub_api.create_tag(repo_name, tag="HEAD")
    assert status_of(error) == 400
    for namespace in ("models", "datasets", "spaces", "api"):
        with pytest.raises(HfHubHTTPError) as error:
            hub_api.create_repo(f"{namespace}/zz")
        assert status_of(error) == 400, namespace
    commit = f"{hub.endpoint}/api/models/{repo_name}/commit/main"
    for path in (" ", "a/ /b.txt", "evil\u202etxt.exe", "zero\u200bwidth.txt", "\u2066isolate.txt"):
        assert httpx.post(commit, content=ndjson(HEADER_LINE, add_line(path, b"x"))).status_code == 400, path
    hub_api.create_branch(repo_name, branch="feature-1")  # an ordinary name still works
    assert {branch.name for branch in hub_api.list_repo_refs(repo_name).branches} == {"main", "feature-1"}


def test_the_auth_scheme_is_case_insensitive(tmp_path):
    server = start_hub(tmp_path / "root", token="s3cret", log_path=tmp_path / "server.log")
    try:
        for index, scheme in enumerate(("bearer", "BEARER", "Bearer")):
            response = httpx.post(
                f"{server.endpoint}/api/repos/create",
                json={"organization": "auth", "name": f"scheme-{index}"},  # repo names are case-insensitive
                headers={"authorization": f"{scheme} s3cret"},
            )
            assert response.status_code == 200, scheme
        wrong = httpx.post(
            f"{server.endpoint}/api/repos/create", json={"name": "x"}, headers={"authorization": "bearer nope"}
        )
        assert wrong.status_code == 401
    finally:
        server.stop()


def test_preupload_follows_the_repos_own_gitattributes(hub_api, repo_name):
    hub_api.create_repo(repo_name)
    rules = b"*.txt filter=lfs diff=lfs merge=lfs -text\nlogs/** filter=lfs diff=lfs merge=lfs -text\n"
    hub_api.upload_file(path_or_fileobj=rules, path_in_repo=".gitattributes", repo_id=repo_name)
    hub_api.create_commit(
        repo_name,
        [
            CommitOperationAdd("notes.txt", b"plain text, but *.txt is LFS here"),
            CommitOperationAdd("logs/run/1.log", b"a log line"),
            CommitOperationAdd("weights.bin", b"small text; *.bin is no longer listed"),
            CommitOperationAdd("README.md", b"# regular\n"),
        ],
        commit_message="follow .gitattributes",
    )
    tree = {entry.path: entry for entry in hub_api.list_repo_tree(repo_name, recursive=True) if entry.path}
    assert tree["notes.txt"].lfs is not None
    assert tree["logs/run/1.log"].lfs is not None
    assert tree["weights.bin"].lfs is None
    assert tree["README.md"].lfs is None


ALIAS_BOMB = (
    "---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\n---\n"
)


def test_yaml_alias_chains_in_cards_are_refused(hub, hub_api, repo_name):
    hub_api.create_repo(repo_name)
    checked = httpx.post(f"{hub.endpoint}/api/validate-yaml", json={"content": ALIAS_BOMB, "repoType": "model"})
    assert checked.status_code == 400 and "aliases" in checked.json()["errors"][0]["message"]
    response = httpx.post(
        f"{hub.endpoint}/api/models/{repo_name}/commit/main",
        content=ndjson(HEADER_LINE, add_line("README.md", ALIAS_BOMB.encode())),
    )
    assert response.status_code == 400 and "aliases" in response.json()["error"]
    nested = "---\ntags: " + "[" * 5000 + "]" * 5000 + "\n---\n"
    checked = httpx.post(f"{hub.endpoint}/api/validate-yaml", json={"content": nested, "repoType": "model"})
    assert checked.status_code == 400
    assert "README.md" not in hub_api.list_repo_files(repo_name)
