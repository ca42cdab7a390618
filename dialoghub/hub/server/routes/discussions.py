"""Discussions and pull requests: list, open, read (with the diff), comment, rename, close/reopen and merge."""

import html
from typing import Annotated, Literal

from dulwich.repo import Repo
from fastapi import APIRouter, Depends, Request
from pydantic import StringConstraints
from starlette.concurrency import run_in_threadpool

from dialoghub.hub.server.dependencies import (
    LOCAL_USER,
    WRITE_ACCESS,
    ApiRepo,
    Body,
    ReadableApiRepo,
    RepoRef,
    Storage,
    iso_time,
    json_body,
)
from dialoghub.hub.server.discussions import CLOSED_STATUSES, OPEN_STATUSES, PAGE_SIZE, Discussions
from dialoghub.hub.server.validation import HubError

router = APIRouter()
DISCUSSION = "/api/{type_prefix}/{namespace}/{name}/discussions"
STATUS_FILTERS = {"all": OPEN_STATUSES + CLOSED_STATUSES, "open": OPEN_STATUSES, "closed": CLOSED_STATUSES}
TYPE_FILTERS = {"all": (True, False), "pull_request": (True,), "discussion": (False,)}


def get_discussions(storage: Storage) -> Discussions:
    return Discussions(storage)


DiscussionStore = Annotated[Discussions, Depends(get_discussions)]


def event_json(event: dict) -> dict:
    created_at = iso_time(int(event["time"]))
    data = event["data"]
    if event["type"] == "comment":
        latest = {"raw": data["raw"], "html": html.escape(data["raw"]), "updatedAt": created_at}
        data = {**data, "latest": {**latest, "author": event["author"]}, "numEdits": 0, "editors": [], "history": []}
        data.pop("raw")
    return {"id": event["id"], "type": event["type"], "createdAt": created_at, "author": event["author"], "data": data}


def summary_json(ref: RepoRef, discussion: dict) -> dict:
    return {
        "num": discussion["num"],
        "title": discussion["title"],
        "status": discussion["status"],
        "isPullRequest": discussion["isPullRequest"],
        "createdAt": iso_time(int(discussion["time"])),
        "author": discussion["author"],
        "repo": {"name": ref.id, "type": ref.type},
        "numComments": sum(event["type"] == "comment" for event in discussion["events"]),
        "pinned": False,
        "topReactions": [],
    }


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class NewDiscussionBody(Body):
    title: Text
    description: Text
    pullRequest: bool = False


class CommentBody(Body):
    comment: Text


class TitleBody(Body):
    title: Text


class StatusBody(Body):
    status: Literal["open", "closed"]
    comment: Text | None = None


class MergeBody(Body):
    comment: Text | None = None


@router.get(DISCUSSION)
def list_discussions(
    ref: ApiRepo,
    repo: ReadableApiRepo,
    discussions: DiscussionStore,
    p: int = 0,
    type: str = "all",
    status: str = "all",
    author: str | None = None,
):
    if type not in TYPE_FILTERS or status not in STATUS_FILTERS or p < 0:
        raise HubError(400, None, f"Invalid filter: type={type!r}, status={status!r}, p={p}")
    everything = discussions.all(repo)
    matching = [
        discussion
        for discussion in everything
        if discussion["isPullRequest"] in TYPE_FILTERS[type]
        and discussion["status"] in STATUS_FILTERS[status]
        and (author is None or discussion["author"]["name"] == author)
    ]
    start = p * PAGE_SIZE
    return {
        "discussions": [summary_json(ref, discussion) for discussion in matching[start : start + PAGE_SIZE]],
        "count": len(matching),
        "start": start,
        "numClosedDiscussions": sum(discussion["status"] in CLOSED_STATUSES for discussion in everything),
    }


@router.post(DISCUSSION, dependencies=WRITE_ACCESS)
async def create_discussion(
    request: Request,
    ref: ApiRepo,
    discussions: DiscussionStore,
    body: Annotated[NewDiscussionBody, Depends(json_body(NewDiscussionBody))],
):
    num = await run_in_threadpool(
        discussions.create, ref.type, ref.id, body.title, body.description, body.pullRequest, LOCAL_USER
    )
    return {"num": num, "url": f"{ref.url(request)}/discussions/{num}"}


def details_json(discussions: Discussions, ref: RepoRef, repo: Repo, num: int, diff: bool) -> dict:
    discussion = discussions.get(repo, num)
    opening, *later = discussion["events"]
    events = [opening, *sorted(later + discussions.commit_events(repo, discussion), key=lambda event: event["time"])]
    details = {**summary_json(ref, discussion), "events": [event_json(event) for event in events], "locked": False}
    if discussion["isPullRequest"]:
        details["changes"] = {
            "base": f"refs/heads/{discussion['target']}",
            "mergeCommitId": discussion["mergeCommitId"],
        }
        details["filesWithConflicts"] = discussions.conflicts(repo, discussion)
        if diff:
            details["diff"] = discussions.diff(repo, discussion)
    return details


@router.get(DISCUSSION + "/{num}")
def discussion_details(
    ref: ApiRepo, repo: ReadableApiRepo, discussions: DiscussionStore, num: int, diff: bool = False
):
    return details_json(discussions, ref, repo, num, diff)


@router.post(DISCUSSION + "/{num}/comment", dependencies=WRITE_ACCESS)
async def comment(
    ref: ApiRepo, discussions: DiscussionStore, num: int, body: Annotated[CommentBody, Depends(json_body(CommentBody))]
):
    event = discussions.comment_event(LOCAL_USER, body.comment)
    await run_in_threadpool(discussions.add_events, ref.type, ref.id, num, event)
    return {"newMessage": event_json(event)}


@router.post(DISCUSSION + "/{num}/title", dependencies=WRITE_ACCESS)
async def rename(
    ref: ApiRepo,
    repo: ReadableApiRepo,
    discussions: DiscussionStore,
    num: int,
    body: Annotated[TitleBody, Depends(json_body(TitleBody))],
):
    change = {"from": discussions.get(repo, num)["title"], "to": body.title}
    event = discussions.event("title-change", LOCAL_USER, change)
    await run_in_threadpool(discussions.add_events, ref.type, ref.id, num, event, title=body.title)
    return {"newTitle": event_json(event)}


@router.post(DISCUSSION + "/{num}/status", dependencies=WRITE_ACCESS)
async def change_status(
    ref: ApiRepo, discussions: DiscussionStore, num: int, body: Annotated[StatusBody, Depends(json_body(StatusBody))]
):
    event = await run_in_threadpool(
        discussions.change_status, ref.type, ref.id, num, body.status, LOCAL_USER, body.comment
    )
    return {"newStatus": event_json(event)}


@router.post(DISCUSSION + "/{num}/merge", dependencies=WRITE_ACCESS)
async def merge(
    ref: ApiRepo, discussions: DiscussionStore, num: int, body: Annotated[MergeBody, Depends(json_body(MergeBody))]
):
    merge_commit = await run_in_threadpool(discussions.merge, ref.type, ref.id, num, LOCAL_USER, body.comment)
    return {"mergeCommitId": merge_commit}
