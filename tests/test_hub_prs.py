"""Pull requests and discussions through the unmodified huggingface_hub client, against the real embedded Hub."""

from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.community import DiscussionComment, DiscussionCommit, DiscussionStatusChange
from huggingface_hub.errors import HfHubHTTPError


def upload(hub_api, repo_name, path, content, **kwargs):
    return hub_api.upload_file(path_or_fileobj=content, path_in_repo=path, repo_id=repo_name, **kwargs)


def test_commit_with_create_pr_opens_refs_pr_and_leaves_main_alone(hub_api, repo_name):
    hub_api.create_repo(repo_name)
    main_before = upload(hub_api, repo_name, "a.txt", b"main").oid
    commit = upload(hub_api, repo_name, "results.json", b"{}", create_pr=True, commit_message="Add results")
    assert commit.pr_url.endswith(f"/{repo_name}/discussions/1") and commit.pr_revision == "refs/pr/1"
    assert hub_api.repo_info(repo_name).sha == main_before
    assert "results.json" not in hub_api.list_repo_files(repo_name)
    assert hub_api.list_repo_files(repo_name, revision="refs/pr/1") == [".gitattributes", "a.txt", "results.json"]
    assert Path(hf_hub_download(repo_name, "results.json", revision="refs/pr/1")).read_bytes() == b"{}"
    assert hub_api.repo_info(repo_name, revision="refs/pr/1").sha == commit.oid
    refs = hub_api.list_repo_refs(repo_name, include_pull_requests=True)
    assert [(pr.ref, pr.target_commit) for pr in refs.pull_requests] == [("refs/pr/1", commit.oid)]

    # A second upload to the PR's ref adds a commit to the same PR.
    second = upload(hub_api, repo_name, "more.json", b"[]", revision="refs/pr/1", commit_message="More")
    details = hub_api.get_discussion_details(repo_name, 1)
    assert details.is_pull_request and details.status == "open" and details.title == "Add results"
    assert details.target_branch == "refs/heads/main" and details.conflicting_files == []
    commits = [event for event in details.events if isinstance(event, DiscussionCommit)]
    assert [(event.oid, event.summary) for event in commits] == [(commit.oid, "Add results"), (second.oid, "More")]
    assert "results.json" in details.diff and "more.json" in details.diff and "a.txt" not in details.diff

    again = upload(hub_api, repo_name, "other.json", b"1", create_pr=True)
    assert again.pr_num == 2


def test_merge_fast_forwards_main_when_it_has_not_moved(hub_api, repo_name):
    hub_api.create_repo(repo_name)
    pr = upload(hub_api, repo_name, "eval/results.json", b'{"rouge": 1}', create_pr=True, commit_message="Eval")
    hub_api.merge_pull_request(repo_name, pr.pr_num, comment="thanks")
    assert hub_api.repo_info(repo_name).sha == pr.oid
    details = hub_api.get_discussion_details(repo_name, pr.pr_num)
    assert details.status == "merged" and details.merge_commit_oid == pr.oid
    assert [event.new_status for event in details.events if isinstance(event, DiscussionStatusChange)] == ["merged"]
    assert [event.content for event in details.events if isinstance(event, DiscussionComment)][-1] == "thanks"
    with pytest.raises(HfHubHTTPError) as merged_twice:
        hub_api.merge_pull_request(repo_name, pr.pr_num)
    assert merged_twice.value.response.status_code == 400


def test_merge_after_main_moved_makes_a_merge_commit_and_conflicts_are_refused(hub_api, repo_name):
    hub_api.create_repo(repo_name)
    upload(hub_api, repo_name, "shared.txt", b"base\n")
    clean = upload(hub_api, repo_name, "pr.txt", b"from the pr", create_pr=True)
    clashing = upload(hub_api, repo_name, "shared.txt", b"pr version\n", create_pr=True)
    main_head = upload(hub_api, repo_name, "shared.txt", b"main version\n").oid

    assert hub_api.get_discussion_details(repo_name, clashing.pr_num).conflicting_files == ["shared.txt"]
    with pytest.raises(HfHubHTTPError) as conflict:
        hub_api.merge_pull_request(repo_name, clashing.pr_num)
    assert conflict.value.response.status_code == 409
    assert hub_api.get_discussion_details(repo_name, clashing.pr_num).status == "open"

    hub_api.merge_pull_request(repo_name, clean.pr_num)
    merge = hub_api.list_repo_commits(repo_name)[0]
    details = hub_api.get_discussion_details(repo_name, clean.pr_num)
    assert details.status == "merged" and details.merge_commit_oid == merge.commit_id
    parents = hub_api.list_repo_commits(repo_name, revision=merge.commit_id)
    assert {commit.commit_id for commit in parents} >= {main_head, clean.oid}
    files = hub_api.list_repo_files(repo_name)
    assert "pr.txt" in files
    assert Path(hf_hub_download(repo_name, "shared.txt")).read_bytes() == b"main version\n"


def test_discussions_comment_status_and_listing(hub_api, repo_name):
    hub_api.create_repo(repo_name, repo_type="dataset")
    discussion = hub_api.create_discussion(repo_name, "Typo in the card", description="line 3", repo_type="dataset")
    draft = hub_api.create_pull_request(repo_name, "Empty for now", repo_type="dataset")
    assert (discussion.num, discussion.is_pull_request, discussion.status) == (1, False, "open")
    assert (draft.num, draft.is_pull_request, draft.status) == (2, True, "draft")

    comment = hub_api.comment_discussion(repo_name, 1, "Fixed in #2", repo_type="dataset")
    assert isinstance(comment, DiscussionComment) and comment.content == "Fixed in #2"
    status = hub_api.change_discussion_status(repo_name, 1, "closed", comment="done", repo_type="dataset")
    assert status.new_status == "closed"
    renamed = hub_api.rename_discussion(repo_name, 2, "Card fix", repo_type="dataset")
    assert (renamed.old_title, renamed.new_title) == ("Empty for now", "Card fix")
    hub_api.create_commit(
        repo_name,
        operations=[CommitOperationAdd("README.md", b"# fixed\n")],
        commit_message="fix",
        revision="refs/pr/2",
        repo_type="dataset",
    )

    details = hub_api.get_discussion_details(repo_name, 1, repo_type="dataset")
    assert [event.content for event in details.events if isinstance(event, DiscussionComment)] == [
        "line 3",
        "Fixed in #2",
        "done",
    ]
    listed = hub_api.get_repo_discussions(repo_name, repo_type="dataset")
    assert [(item.num, item.title, item.status) for item in listed] == [
        (2, "Card fix", "draft"),
        (1, "Typo in the card", "closed"),
    ]
    assert [
        d.num for d in hub_api.get_repo_discussions(repo_name, discussion_type="pull_request", repo_type="dataset")
    ] == [2]
    assert [
        d.num for d in hub_api.get_repo_discussions(repo_name, discussion_status="closed", repo_type="dataset")
    ] == [1]

    hub_api.merge_pull_request(repo_name, 2, repo_type="dataset")
    assert hub_api.list_repo_files(repo_name, repo_type="dataset") == [".gitattributes", "README.md"]
    with pytest.raises(HfHubHTTPError) as reopen_merged:
        hub_api.change_discussion_status(repo_name, 2, "open", repo_type="dataset")
    assert reopen_merged.value.response.status_code == 400
    with pytest.raises(HfHubHTTPError) as missing:
        hub_api.get_discussion_details(repo_name, 99, repo_type="dataset")
    assert missing.value.response.status_code == 404


def test_failed_pull_request_commit_leaves_no_pull_request(hub_api, repo_name):
    hub_api.create_repo(repo_name)
    hub_api.create_branch(repo_name, branch="dev")
    with pytest.raises(HfHubHTTPError):
        hub_api.create_commit(
            repo_name,
            operations=[CommitOperationAdd("a.txt", b"x")],
            commit_message="x",
            create_pr=True,
            parent_commit="0" * 40,
        )
    assert list(hub_api.get_repo_discussions(repo_name)) == []
    assert hub_api.list_repo_refs(repo_name, include_pull_requests=True).pull_requests == []
