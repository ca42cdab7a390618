"""The one publish-and-tag path (dialoghub.hub.client) and the one reading of `ID@REV`
(dialoghub.hub.client), against
the real embedded Hub."""

import pytest

from dialoghub.core.recipes import NONE, optional_reference
from dialoghub.hub.client import (
    RepoReferenceError,
    TagConflictError,
    publish_folder,
    repo_id_of,
    split_revision,
    tag_commit,
)


def write(folder, files: dict[str, str]):
    folder.mkdir(exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def commits(hub_api, repo_id: str) -> int:
    return len(hub_api.list_repo_commits(repo_id))


def test_a_release_tag_never_moves(hub_api, repo_name, tmp_path):
    folder = tmp_path / "release"
    release = {"weights.bin": "one", "config.json": "{}", "README.md": "card, built by commit a"}
    first = publish_folder(hub_api, write(folder, release), repo_name, commit_message="v1", tag="v1")
    assert first.new_commit and first.tag_created and first.tag_commit == first.commit
    assert tag_commit(hub_api, repo_name, "v1") == first.commit

    # The same files again: the release is there already, nothing is committed.
    count = commits(hub_api, repo_name)
    again = publish_folder(hub_api, folder, repo_name, commit_message="v1 again", tag="v1")
    assert (again.commit, again.new_commit, again.tag_created, again.tag_commit) == (first.commit, False, False,
                                                                                     first.commit)  # fmt: skip
    assert commits(hub_api, repo_name) == count

    # Only the card differs: it is refreshed on main, the tag stays where the files were released.
    card_only = publish_folder(
        hub_api, write(folder, release | {"README.md": "card, built by commit b"}), repo_name, commit_message="card",
        tag="v1",
    )  # fmt: skip
    assert card_only.new_commit and not card_only.tag_created and card_only.tag_commit == first.commit
    assert tag_commit(hub_api, repo_name, "v1") == first.commit

    # Other files under the same tag, changed, added or removed: refused before anything is pushed.
    head = hub_api.model_info(repo_name).sha
    for other in (release | {"weights.bin": "two"}, release | {"extra.txt": "x"}, {"weights.bin": "one"}):
        with pytest.raises(TagConflictError, match=rf"already has a release v1: tag 'v1' already points at commit "
                                                   rf"{first.commit}.*Nothing was pushed"):  # fmt: skip
            publish_folder(hub_api, write(folder, other), repo_name, commit_message="not v1", tag="v1")
        assert hub_api.model_info(repo_name).sha == head

    second = publish_folder(hub_api, folder, repo_name, commit_message="v2", tag="v2")
    assert second.tag_created and tag_commit(hub_api, repo_name, "v2") == second.commit
    assert set(hub_api.list_repo_files(repo_name, revision="v2")) == {".gitattributes", "weights.bin"}
    assert set(hub_api.list_repo_files(repo_name, revision="v1")) == {".gitattributes", *release}

    # Rebuilding the old release after a newer one: v1 exists with those files, and main is not rolled back.
    old = publish_folder(hub_api, write(folder, release), repo_name, commit_message="v1 rebuilt", tag="v1")
    assert (old.commit, old.new_commit, old.tag_commit) == (second.commit, False, first.commit)
    assert hub_api.model_info(repo_name).sha == second.commit


def test_publishing_without_a_tag_mirrors_the_folder(hub_api, repo_name, tmp_path):
    folder = write(tmp_path / "space", {"app.py": "print(1)", "README.md": "---\nsdk: gradio\n---\n"})
    first = publish_folder(hub_api, folder, repo_name, repo_type="space", space_sdk="gradio", commit_message="one")
    assert (first.tag, first.tag_commit, first.tag_created) == (None, None, False)
    write(folder, {"README.md": "---\nsdk: gradio\n---\n"})
    second = publish_folder(hub_api, folder, repo_name, repo_type="space", space_sdk="gradio", commit_message="two")
    assert second.new_commit
    assert "app.py" not in hub_api.list_repo_files(repo_name, repo_type="space")


def test_references_are_read_one_way(tmp_path):
    folder = tmp_path / "a@b"
    folder.mkdir()
    assert split_revision(str(folder)) == (str(folder), None)
    assert repo_id_of("org/data@main") == "org/data"
    for bad in ("org/model@", "@v1"):
        with pytest.raises(RepoReferenceError, match="expected ID or ID@REVISION"):
            split_revision(bad)
    for absent in (None, "", NONE, "None", " NONE "):
        assert optional_reference(absent) is None
    assert optional_reference("org/model@v1") == "org/model@v1"
