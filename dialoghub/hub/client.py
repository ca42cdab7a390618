"""The client side of the Hub, in one place: how a stage names a repo, publishes a release, and reaches the Hub.

**References** (`resolve_repo`). Every entry point and config takes a repo as `ID`, `ID@REV` or a local folder (or
"none", `dialoghub.core.recipes.optional_reference`). `resolve_repo` turns a reference into the commit sha it points
at now, so a stage loads exactly that commit and records it: a branch that moves during a run cannot mix two versions.

**Publishing** (`publish_folder`, `publish_files`): a local folder as a tagged Hub release, the one upload-and-tag
path every artifact goes through. The tag policy, for every repo type: a release tag never moves, so
`revision="v1.0"` always gives the same files.
- The tag is new: the folder is mirrored onto main and the tag is created on that commit.
- The tag exists and holds the folder's files: the release is already there and is not made again. Only the card
  (README.md) may be refreshed on main, and only while main still holds that release: a card names the commit of the
  code that built it, so it changes when the code is committed while the files do not.
- The tag exists with other files: `TagConflictError`, raised before anything is pushed.
Files are compared by content hash with what the Hub lists (the sha256 of an LFS file, git's blob sha otherwise),
so deciding needs no download.

**The embedded Hub** (`hub_session`, `start_hub`): start, find and stop the embedded Hub server from Python
(pipeline, tests, benchmarks).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from dialoghub.core import hubenv
from dialoghub.core.paths import hub_root
from dialoghub.core.processes import GroupProcess


class RepoReferenceError(ValueError):
    """A reference that does not name a repo (or a revision of it) on the Hub."""


class UnknownRepoError(RepoReferenceError):
    """No repo of that id on the Hub, and no local folder of that name."""


class UnknownRevisionError(RepoReferenceError):
    """The repo exists, but not the revision."""


def split_revision(reference: str) -> tuple[str, str | None]:
    """`"owner/name@rev"` -> `("owner/name", "rev")`; no `@` -> revision None. Local paths are returned whole."""
    if os.path.isdir(reference) or "@" not in reference:
        return reference, None
    repo_id, revision = reference.rsplit("@", 1)
    if not repo_id or not revision:
        raise RepoReferenceError(f"{reference!r}: expected ID or ID@REVISION")
    return repo_id, revision


def repo_id_of(reference: str) -> str:
    """The repo id (or folder) of `ID`, `ID@REV` or a folder."""
    return split_revision(reference)[0]


@dataclass(frozen=True)
class ResolvedRepo:
    """A repo: what was asked for, and the exact commit (None for a local folder) that was loaded."""

    repo_id: str
    revision: str | None
    """As requested: a branch, a tag, a sha, or None for the default branch."""
    sha: str | None

    @property
    def is_local(self) -> bool:
        return self.sha is None

    @property
    def load_revision(self) -> str | None:
        return self.sha

    def __str__(self) -> str:
        return self.repo_id if self.is_local else f"{self.repo_id}@{self.sha}"


def resolve_repo(reference: str, revision: str | None = None, repo_type: str = "model", api=None) -> ResolvedRepo:
    """The commit sha that `reference` (`ID`, `ID@REV` or a local folder) and `revision` point at on the Hub now.

    Raises `UnknownRepoError` or `UnknownRevisionError` (both `ValueError`s) with a message naming what is missing.
    """
    repo_id, inline_revision = split_revision(reference)
    if inline_revision and revision and inline_revision != revision:
        raise RepoReferenceError(
            f"{reference!r} names revision {inline_revision!r} but revision={revision!r} was also given"
        )
    revision = inline_revision or revision
    if os.path.isdir(repo_id):
        if revision:
            raise RepoReferenceError(f"{repo_id} is a local folder: it has no revision {revision!r}")
        return ResolvedRepo(repo_id, None, None)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError, RevisionNotFoundError

    api = api or HfApi()
    try:
        sha = api.repo_info(repo_id, revision=revision, repo_type=repo_type).sha
    except RevisionNotFoundError as error:
        raise UnknownRevisionError(f"{repo_type} {repo_id} has no revision {revision!r}") from error
    except (RepositoryNotFoundError, HFValidationError) as error:
        raise UnknownRepoError(
            f"no {repo_type} repo {repo_id!r} on {api.endpoint}, and no local folder of that name"
        ) from error
    return ResolvedRepo(repo_id, revision, sha)


def repo_record(reference: str | None, repo_type: str = "model") -> dict[str, str | None] | None:
    """`{"id", "revision", "sha"}` of a Hub repo (`ID` or `ID@REV`) or a local folder (sha None), as records name
    it."""
    if reference is None:
        return None
    resolved = resolve_repo(reference, repo_type=repo_type)
    return {"id": resolved.repo_id, "revision": resolved.revision, "sha": resolved.sha}


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


STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0


@dataclass
class EmbeddedHub:
    endpoint: str
    root: Path | None
    token: str | None = None
    process: GroupProcess | None = field(default=None, repr=False)
    """The server, when this process started it: stopped by `stop()`, or when this process exits or is stopped."""

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        if self.process is not None:
            self.process.end()


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hub_is_up(endpoint: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/api/dialoghub/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def isolate_hf_environment(workdir: str | Path) -> str:
    """Point the (not yet imported) HF libraries at a Hub on a free loopback port, with every cache under workdir.

    Tests and benchmarks call this before importing any HF library, then `start_hub(..., port=...)` on the returned
    endpoint's port; nothing they do touches the user's caches or the embedded default Hub.
    """
    if "huggingface_hub" in sys.modules:
        raise RuntimeError("isolate_hf_environment() must run before any Hugging Face library is imported")
    workdir = Path(workdir)
    endpoint = f"http://127.0.0.1:{free_loopback_port()}"
    os.environ.update(
        HF_ENDPOINT=endpoint,
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(workdir / "hf_home"),
        DIALOGHUB_BASE_DIR=str(workdir / "base"),
    )
    for variable in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(variable, None)
    return endpoint


def start_hub(
    root: str | Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    token: str | None = None,
    log_path: str | Path | None = None,
    extra_args: tuple[str, ...] = (),
) -> EmbeddedHub:
    """Run `python -m dialoghub.hub serve` in a child process and wait until it answers.

    The server is stopped by `EmbeddedHub.stop()`, and also when this process exits or is stopped by SIGTERM or
    SIGHUP (`dialoghub.core.processes`), so no way out of the caller leaves it running."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_loopback_port()
    endpoint = f"http://{host}:{port}"
    command = [
        sys.executable,
        "-m",
        "dialoghub.hub",
        "serve",
        "--root",
        str(root),
        "--host",
        host,
        "--port",
        str(port),
    ]
    if token:
        command += ["--token", token]
    command += list(extra_args)
    log = open(log_path or root / "server.log", "ab")  # noqa: SIM115 - handed to the child process
    process = GroupProcess(
        command, grace=STOP_GRACE_S, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[3]
    )
    log.close()
    hub = EmbeddedHub(endpoint=endpoint, root=root, token=token, process=process)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not hub_is_up(endpoint, timeout=0.5):
        if process.poll() is not None:
            hub.stop()
            raise RuntimeError(f"The embedded Hub exited with code {process.returncode}; see {log.name}")
        if time.monotonic() > deadline:
            hub.stop()
            raise TimeoutError(f"The embedded Hub did not answer on {endpoint} within {STARTUP_TIMEOUT_S:.0f}s")
        time.sleep(0.1)
    return hub


def _check_hf_libraries_agree(endpoint: str) -> None:
    if "huggingface_hub" not in sys.modules:
        return
    from huggingface_hub import constants  # imported already or not, its ENDPOINT was fixed at first import

    imported_endpoint = constants.ENDPOINT.rstrip("/")
    if imported_endpoint != endpoint.rstrip("/"):
        raise RuntimeError(
            f"huggingface_hub was imported with HF_ENDPOINT={imported_endpoint}, but the Hub is {endpoint}. "
            "Import dialoghub.core.hubenv before any Hugging Face library, or set HF_ENDPOINT before starting Python."
        )


@contextlib.contextmanager
def hub_session(root: str | Path | None = None) -> Iterator[EmbeddedHub]:
    """Use the Hub that `HF_ENDPOINT` names, starting the embedded default when nothing answers there.

    A remote endpoint (huggingface.co) is used as is. A loopback endpoint that already answers (`make hub` in another
    terminal) is reused and left running. Otherwise the embedded Hub is started on that port with its repos under
    `root` (default: `$DIALOGHUB_BASE_DIR/hub`) and stopped when the block ends, however it ends (see `start_hub`).
    """
    endpoint = hubenv.endpoint()
    _check_hf_libraries_agree(endpoint)
    parsed = urlparse(endpoint)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1") or hub_is_up(endpoint):
        yield EmbeddedHub(endpoint=endpoint, root=None)
        return
    hub = start_hub(
        root or hub_root(), port=parsed.port, host=parsed.hostname, token=os.environ.get("DIALOGHUB_HUB_TOKEN")
    )
    try:
        yield hub
    finally:
        hub.stop()
