"""Publishing a local folder as a Hub repo revision: the one upload-and-tag path every artifact goes through."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)


def tag_commit(api, repo_id: str, tag: str, repo_type: str = "model") -> str | None:
    """The commit a tag points at, or None."""
    return next(
        (ref.target_commit for ref in api.list_repo_refs(repo_id, repo_type=repo_type).tags if ref.name == tag), None
    )


def ensure_tag(api, repo_id: str, tag: str, commit: str, repo_type: str = "model", message: str | None = None) -> str:
    """Create `tag` at `commit` if it is missing; an existing tag is never moved. Returns the tag's commit."""
    existing = tag_commit(api, repo_id, tag, repo_type)
    if existing is None:
        api.create_tag(repo_id, tag=tag, revision=commit, repo_type=repo_type, tag_message=message or tag)
        return commit
    if existing != commit:
        logger.warning("%s: tag %s stays on %s; the branch is now at %s", repo_id, tag, existing, commit)
    return existing


def publish_folder(
    api,
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    commit_message: str,
    commit_description: str | None = None,
    delete_patterns: str | list[str] | None = "*",
    tag: str | None = None,
    private: bool | None = None,
    space_sdk: str | None = None,
) -> str:
    """Mirror `folder` onto the main branch of `repo_id` (created if missing) and tag the result if the tag is new.

    Unchanged files are skipped by the client, so publishing the same content twice makes no commit. With the default
    `delete_patterns`, files that are no longer in the folder leave the repo. Returns the commit main points to.
    """
    api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, private=private, space_sdk=space_sdk)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type=repo_type,
        folder_path=str(folder),
        commit_message=commit_message,
        commit_description=commit_description,
        delete_patterns=delete_patterns,
    ).oid
    if tag:
        ensure_tag(api, repo_id, tag, commit, repo_type, message=commit_message)
    logger.info("Published %s (%s) at %s", repo_id, repo_type, commit)
    return commit


def publish_files(
    api,
    files: dict[str, Path],
    card,
    repo_id: str,
    *,
    commit_message: str,
    tag: str | None = None,
    repo_type: str = "model",
) -> str:
    """Publish exactly `files` (path in the repo -> local file) plus `card` as README.md, via `publish_folder`."""
    with tempfile.TemporaryDirectory(prefix="dialoghub-publish-") as staging:
        staging = Path(staging)
        for path_in_repo, path in files.items():
            (staging / path_in_repo).parent.mkdir(parents=True, exist_ok=True)
            (staging / path_in_repo).symlink_to(Path(path).resolve())
        card.save(staging / "README.md")
        return publish_folder(api, staging, repo_id, repo_type=repo_type, commit_message=commit_message, tag=tag)
