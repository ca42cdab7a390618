"""Publishing a local folder as a tagged Hub release: the one upload-and-tag path every artifact goes through.

The tag policy, for every repo type: a release tag never moves, so `revision="v1.0"` always gives the same files.

- The tag is new: the folder is mirrored onto main and the tag is created on that commit.
- The tag exists and holds the folder's files: the release is already there and is not made again. Only the card
  (README.md) may be refreshed on main, and only while main still holds that release: a card names the commit of the
  code that built it, so it changes when the code is committed while the files do not.
- The tag exists with other files: `TagConflictError`, raised before anything is pushed.

Files are compared by content hash with what the Hub lists (the sha256 of an LFS file, git's blob sha otherwise),
so deciding needs no download.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# The release every stage publishes and reads by default: recipes and pipeline name it as `ID@v1.0`
RELEASE_TAG = "v1.0"
CARD_FILE = "README.md"
# Kept by `upload_folder` whatever `delete_patterns` says
GITATTRIBUTES = ".gitattributes"


class TagConflictError(ValueError):
    """The release tag exists and points at other files than the ones being published."""


@dataclass
class Publication:
    repo_id: str
    commit: str
    """Where main points after publishing."""
    new_commit: bool
    tag: str | None = None
    tag_commit: str | None = None
    """Where the tag points: `commit`, or the earlier commit that already holds the same files."""
    tag_created: bool = False


def tag_commit(api, repo_id: str, tag: str, repo_type: str = "model") -> str | None:
    """The commit a tag points at, or None."""
    return next(
        (ref.target_commit for ref in api.list_repo_refs(repo_id, repo_type=repo_type).tags if ref.name == tag), None
    )


def released_commit(repo_id: str | None, tag: str | None, api=None, repo_type: str = "model") -> str | None:
    """The commit of `repo_id`@`tag` when that release exists, else None (a release is never replaced, so a stage
    that finds its release has nothing to do)."""
    from huggingface_hub import HfApi

    if not (repo_id and tag):
        return None
    api = api or HfApi()
    return tag_commit(api, repo_id, tag, repo_type) if api.repo_exists(repo_id, repo_type=repo_type) else None


def upload_files(folder: Path) -> dict[str, Path]:
    """The files `upload_folder` sends from `folder`, by path in the repo."""
    from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    files = {path.relative_to(folder).as_posix(): path for path in sorted(folder.glob("**/*")) if path.is_file()}
    return {name: files[name] for name in filter_repo_objects(files, ignore_patterns=DEFAULT_IGNORE_PATTERNS)}


def _same_content(entry, path: Path) -> bool:
    from huggingface_hub.utils.sha import git_hash, sha_fileobj

    if entry.lfs is not None:
        if entry.lfs.size != path.stat().st_size:
            return False
        with path.open("rb") as file:
            return sha_fileobj(file).hex() == entry.lfs.sha256
    return entry.size == path.stat().st_size and git_hash(path.read_bytes()) == entry.blob_id


def changed_files(
    api, repo_id: str, revision: str, files: dict[str, Path], *, repo_type: str, delete_patterns
) -> list[str]:
    """Paths where `revision` differs from what uploading `files` with `delete_patterns` would leave."""
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    remote = {
        entry.path: entry
        for entry in api.list_repo_tree(repo_id, revision=revision, recursive=True, repo_type=repo_type)
        if isinstance(entry, RepoFile)
    }
    deleted = (
        [
            path
            for path in filter_repo_objects(remote, allow_patterns=delete_patterns)
            if path not in files and path != GITATTRIBUTES
        ]
        if delete_patterns is not None
        else []
    )
    different = [name for name, path in files.items() if name not in remote or not _same_content(remote[name], path)]
    return sorted(deleted + different)


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
) -> Publication:
    """Mirror `folder` onto the main branch of `repo_id` (created if missing) as release `tag` (see the module doc).

    Unchanged files are skipped by the client, so publishing the same content twice makes no commit. With the default
    `delete_patterns`, files that are no longer in the folder leave the repo.
    """
    folder = Path(folder)
    api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, private=private, space_sdk=space_sdk)
    head = api.repo_info(repo_id, repo_type=repo_type).sha
    released = tag_commit(api, repo_id, tag, repo_type) if tag else None
    if released is not None:
        files = upload_files(folder)

        def changed_at(revision: str) -> list[str]:
            changed = changed_files(
                api, repo_id, revision, files, repo_type=repo_type, delete_patterns=delete_patterns
            )
            return [path for path in changed if path != CARD_FILE]

        if changed := changed_at(released):
            raise TagConflictError(
                f"{repo_id} already has a release {tag}: tag {tag!r} already points at commit {released}, whose "
                f"files differ from these ({', '.join(changed)}). Nothing was pushed. Publish under a new tag, or "
                "delete the old tag first if it really must move."
            )
        if head != released and changed_at(head):
            logger.info("%s: release %s is already at %s; main has moved on, left as is", repo_id, tag, released)
            return Publication(repo_id, head, False, tag, released, False)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type=repo_type,
        folder_path=str(folder),
        commit_message=commit_message,
        commit_description=commit_description,
        delete_patterns=delete_patterns,
    ).oid
    tag_created = tag is not None and released is None
    if tag_created:
        api.create_tag(repo_id, tag=tag, revision=commit, repo_type=repo_type, tag_message=commit_message)
        released = commit
    logger.info("Published %s (%s) at %s", repo_id, repo_type, commit)
    return Publication(repo_id, commit, commit != head, tag, released, tag_created)


def publish_files(
    api,
    files: dict[str, Path],
    card,
    repo_id: str,
    *,
    commit_message: str,
    tag: str | None = None,
    repo_type: str = "model",
) -> Publication:
    """Publish exactly `files` (path in the repo -> local file) plus `card` as README.md, via `publish_folder`."""
    with tempfile.TemporaryDirectory(prefix="dialoghub-publish-") as staging:
        staging = Path(staging)
        for path_in_repo, path in files.items():
            (staging / path_in_repo).parent.mkdir(parents=True, exist_ok=True)
            (staging / path_in_repo).symlink_to(Path(path).resolve())
        card.save(staging / CARD_FILE)
        return publish_folder(api, staging, repo_id, repo_type=repo_type, commit_message=commit_message, tag=tag)
