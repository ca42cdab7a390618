"""Discussions and pull requests, as the Hub has them.

A pull request is the ref `refs/pr/N` of the repo, started from a commit of `main`; commits land on it like on a
branch, and merging moves `main` (a fast-forward when `main` has not moved since, else a merge commit). Each
discussion is one JSON file, `discussions/N.json` inside the bare repo, replaced atomically under the repo's lock:
its title, status and the events people made (comments, status and title changes). A pull request's commit events
are read from git, so they can't disagree with the ref.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dulwich.graph import find_merge_base
from dulwich.merge import Merger, three_way_merge
from dulwich.patch import write_tree_diff
from dulwich.repo import Repo

from dialoghub.hub.server.storage import DISCUSSIONS_DIR, HEAD_BRANCH, CommitOperation, HubStorage, new_commit
from dialoghub.hub.server.validation import HubError

OPEN_STATUSES = ("open", "draft")
CLOSED_STATUSES = ("closed", "merged")
PAGE_SIZE = 50  # discussions per page of a listing, as on the Hub


def pr_ref(num: int) -> bytes:
    return f"refs/pr/{num}".encode()


class FileLevelMerger(Merger):
    """The Hub merges file by file: a file both sides changed, differently, is a conflict (no line merging, which
    would also mangle LFS pointers)."""

    def merge_blobs(self, base_blob, ours_blob, theirs_blob, path=None) -> tuple[bytes, bool]:
        return ours_blob.as_raw_string(), True


@dataclass(frozen=True)
class PullRequestState:
    """Where a pull request stands against its target branch."""

    head: bytes
    target_head: bytes
    merge_base: bytes | None


class Discussions:
    def __init__(self, storage: HubStorage):
        self.storage = storage

    # ----- reading ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _folder(repo: Repo) -> Path:
        return Path(repo.path) / DISCUSSIONS_DIR

    def all(self, repo: Repo) -> list[dict]:
        folder = self._folder(repo)
        if not folder.is_dir():
            return []
        stored = (json.loads(path.read_text()) for path in folder.glob("*.json"))
        return sorted(stored, key=lambda discussion: discussion["num"], reverse=True)

    def get(self, repo: Repo, num: int) -> dict:
        path = self._folder(repo) / f"{num}.json"
        if not path.is_file():
            raise HubError(404, None, f"Discussion #{num} not found")
        return json.loads(path.read_text())

    def commit_events(self, repo: Repo, discussion: dict) -> list[dict]:
        """The commits of a pull request since the commit it started from, oldest first."""
        if not discussion["isPullRequest"] or pr_ref(discussion["num"]) not in repo.refs:
            return []
        walker = repo.get_walker(
            include=[repo.refs[pr_ref(discussion["num"])]], exclude=[discussion["baseCommit"].encode()]
        )
        events = []
        for walk_entry in reversed(list(walker)):
            commit = walk_entry.commit
            events.append(
                {
                    "id": commit.id.decode()[:24],
                    "type": "commit",
                    "time": commit.commit_time,
                    "author": {"name": commit.author.decode().split(" <")[0]},
                    "data": {"subject": commit.message.decode().split("\n", 1)[0], "oid": commit.id.decode()},
                }
            )
        return events

    def state(self, repo: Repo, discussion: dict) -> PullRequestState:
        head = repo.refs[pr_ref(discussion["num"])]
        target_head = repo.refs[f"refs/heads/{discussion['target']}".encode()]
        bases = find_merge_base(repo, [target_head, head])
        return PullRequestState(head, target_head, bases[0] if bases else None)

    def conflicts(self, repo: Repo, discussion: dict) -> list[str]:
        """The files both the pull request and its target changed in ways that don't merge."""
        if discussion["status"] not in OPEN_STATUSES:
            return []
        state = self.state(repo, discussion)
        if state.merge_base in (state.head, state.target_head):
            return []
        _, conflicted = self._merge(repo, state)
        return sorted(path.decode() for path in conflicted)

    def diff(self, repo: Repo, discussion: dict) -> str:
        """The pull request's changes against the commit where it meets its target, as `git diff` shows them."""
        state = self.state(repo, discussion)
        base_tree = repo[state.merge_base].tree if state.merge_base else None
        patch = io.BytesIO()
        write_tree_diff(patch, repo.object_store, base_tree, repo[state.head].tree)
        return patch.getvalue().decode("utf-8", "replace")

    @staticmethod
    def _merge(repo: Repo, state: PullRequestState):
        base = repo[state.merge_base] if state.merge_base else None
        merger = FileLevelMerger(repo.object_store)
        return three_way_merge(repo.object_store, base, repo[state.target_head], repo[state.head], merger=merger)

    # ----- writing ---------------------------------------------------------------------------------------------------
    @contextmanager
    def _locked(self, repo_type: str, repo_id: str) -> Iterator[Repo]:
        with self.storage.lock(repo_type, repo_id):
            repo = self.storage.open(repo_type, repo_id)
            try:
                yield repo
            finally:
                repo.close()

    def _save(self, repo: Repo, discussion: dict) -> None:
        folder = self._folder(repo)
        folder.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as temporary:
            json.dump(discussion, temporary)
            temporary.flush()
            os.fsync(temporary.fileno())
        os.replace(temporary.name, folder / f"{discussion['num']}.json")

    def _next_num(self, repo: Repo) -> int:
        # PR refs count too: a crash after making `refs/pr/N` but before saving #N must not hand N out twice.
        taken = [discussion["num"] for discussion in self.all(repo)]
        taken += [int(ref.rsplit(b"/", 1)[1]) for ref in repo.get_refs() if ref.startswith(b"refs/pr/")]
        return max(taken, default=0) + 1

    @staticmethod
    def event(kind: str, author: str, data: dict) -> dict:
        return {
            "id": secrets.token_hex(12),
            "type": kind,
            "time": time.time(),
            "author": {"name": author},
            "data": data,
        }

    @classmethod
    def comment_event(cls, author: str, text: str) -> dict:
        return cls.event("comment", author, {"edited": False, "hidden": False, "raw": text})

    @staticmethod
    def _new(num: int, title: str, author: str, is_pull_request: bool, status: str) -> dict:
        return {
            "num": num,
            "title": title,
            "status": status,
            "isPullRequest": is_pull_request,
            "time": time.time(),
            "author": {"name": author},
            "events": [],
            "target": HEAD_BRANCH,
            "baseCommit": None,
            "mergeCommitId": None,
        }

    def create(self, repo_type: str, repo_id: str, title: str, description: str, pull_request: bool, author: str):
        """A new discussion, or an empty pull request from the head of `main` (a draft, as on the Hub)."""
        with self._locked(repo_type, repo_id) as repo:
            num = self._next_num(repo)
            discussion = self._new(num, title, author, pull_request, "draft" if pull_request else "open")
            discussion["events"].append(self.comment_event(author, description))
            if pull_request:
                base = repo.refs[f"refs/heads/{HEAD_BRANCH}".encode()]
                discussion["baseCommit"] = base.decode()
                if not repo.refs.add_if_new(pr_ref(num), base):
                    raise HubError(409, None, f"refs/pr/{num} already exists")
            self._save(repo, discussion)
            return num

    def commit_as_pull_request(
        self,
        repo_type: str,
        repo_id: str,
        base_revision: str,
        operations: list[CommitOperation],
        summary: str,
        description: str,
        parent_commit: str | None,
        author: str,
    ) -> tuple[int, str]:
        """`create_commit(create_pr=True)`: the commit lands on a new `refs/pr/N` started from `parent_commit` or
        the head of `base_revision`, never on the branch itself. Returns (N, the commit sha)."""
        with self._locked(repo_type, repo_id) as repo:
            base = self.storage.resolve(repo, parent_commit or base_revision)
            num = self._next_num(repo)
            if not repo.refs.add_if_new(pr_ref(num), base.encode()):
                raise HubError(409, None, f"refs/pr/{num} already exists")
            try:
                sha, _ = self.storage._write_commit(repo, base, operations, summary, description, ref=pr_ref(num))
            except BaseException:
                repo.refs.remove_if_equals(pr_ref(num), base.encode())
                raise
            discussion = self._new(num, summary.strip(), author, True, "open")
            discussion["baseCommit"] = base
            discussion["events"].append(self.comment_event(author, description.strip() or summary.strip()))
            self._save(repo, discussion)
            return num, sha

    def add_events(self, repo_type: str, repo_id: str, num: int, *events: dict, **changes) -> dict:
        with self._locked(repo_type, repo_id) as repo:
            discussion = self.get(repo, num)
            discussion["events"].extend(events)
            discussion.update(changes)
            self._save(repo, discussion)
            return discussion

    def change_status(self, repo_type: str, repo_id: str, num: int, status: str, author: str, comment: str | None):
        with self._locked(repo_type, repo_id) as repo:
            discussion = self.get(repo, num)
            if discussion["status"] == "merged":
                raise HubError(400, None, f"Pull request #{num} is merged: its status can't change")
            event = self.event("status-change", author, {"status": status})
            discussion["events"] += ([self.comment_event(author, comment)] if comment else []) + [event]
            discussion["status"] = status
            self._save(repo, discussion)
            return event

    def merge(self, repo_type: str, repo_id: str, num: int, author: str, comment: str | None) -> str:
        """Merge a pull request into its target branch; returns the commit the target now points at."""
        with self._locked(repo_type, repo_id) as repo:
            discussion = self.get(repo, num)
            if not discussion["isPullRequest"]:
                raise HubError(400, None, f"#{num} is a discussion, not a pull request")
            if discussion["status"] not in OPEN_STATUSES:
                raise HubError(400, None, f"Pull request #{num} is {discussion['status']}: only open ones merge")
            state = self.state(repo, discussion)
            target = f"refs/heads/{discussion['target']}".encode()
            if state.merge_base == state.head:  # everything in it is on the target already
                merged = state.target_head
            elif state.merge_base == state.target_head:
                merged = state.head
            else:
                tree, conflicted = self._merge(repo, state)
                if conflicted:
                    files = ", ".join(sorted(path.decode() for path in conflicted))
                    raise HubError(409, None, f"Pull request #{num} has merge conflicts in: {files}")
                repo.object_store.add_object(tree)
                commit = new_commit(tree.id, [state.target_head, state.head], f"{discussion['title']} (#{num})", "")
                repo.object_store.add_object(commit)
                merged = commit.id
            if merged != state.target_head and not repo.refs.set_if_equals(target, state.target_head, merged):
                raise HubError(412, None, f"{discussion['target']} moved during the merge. Please retry.")
            discussion["events"] += ([self.comment_event(author, comment)] if comment else []) + [
                self.event("status-change", author, {"status": "merged"})
            ]
            discussion.update(status="merged", mergeCommitId=merged.decode())
            self._save(repo, discussion)
            return merged.decode()
