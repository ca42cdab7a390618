"""Hub repos as bare git repositories (dulwich), with large files in a content-addressed LFS store.

Layout under the root:
    {models,datasets,spaces}/ORG/NAME.git   bare git repos; LFS files are committed as pointer files, as on the Hub
    lfs/objects/ab/cd/<sha256>               LFS objects, shared by all repos
    tmp/                                     uploads in flight; renamed into place only once their sha256 checks out
    server.lock                              held (flock) by the one server that owns the root

A commit writes its blobs and trees first and then moves the branch with a compare-and-swap on the ref (dulwich's
lock-file protocol), so a killed server leaves every branch at its old or its new commit, never in between. The lock
files a kill leaves behind are stale by construction (one server owns a root), so start-up removes them.

LFS objects are shared, but each repo records the ones uploaded to it (`NAME.git/hub-lfs/<oid>.<size>`, empty
marker files). Only those become LFS entries of that repo: a pointer-shaped regular file stays regular content, and
no repo can reach another repo's objects by naming their oid.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from dulwich.attrs import compile_gitattributes_patterns, match_path, parse_git_attributes
from dulwich.errors import NotTreeError
from dulwich.filter_branch import CommitFilter, filter_refs
from dulwich.index import commit_tree
from dulwich.objects import Blob, Commit, Tag
from dulwich.repo import Repo

from dialoghub.hub.server.validation import REPO_TYPES, HubError, validate_commit_message

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1\n"
LFS_POINTER_MAX_SIZE = 1024
FILE_MODE = 0o100644
TREE_MODE = 0o040000
HEAD_BRANCH = "main"
# The shortest abbreviated commit sha a revision may be, as git's default abbreviation (`git log --oneline`).
MIN_SHORT_SHA = 7
AUTHOR = b"dialoghub <hub@dialoghub.local>"
INITIAL_GITATTRIBUTES = (
    "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gguf *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy *.npz "
    "*.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* *.tar.* *.tar *.tflite "
    "*.tgz *.wasm *.xz *.zip *.zst *tfevents* *.png *.jpg *.jpeg *.webp"
)
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
LFS_MARKERS = "hub-lfs"
SERVER_LOCK = "server.lock"
REF_PREFIXES = ("refs/heads/", "refs/tags/", "refs/pr/")
DISCUSSIONS_DIR = "discussions"
# A duplicate starts without the source's discussions, and without lock files a crashed writer left behind.
NOT_DUPLICATED = (DISCUSSIONS_DIR, "*.lock")


def gitattributes_text() -> str:
    return "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in INITIAL_GITATTRIBUTES.split())


def lfs_pointer(oid: str, size: int) -> bytes:
    return LFS_POINTER_PREFIX + f"oid sha256:{oid}\nsize {size}\n".encode()


def parse_lfs_pointer(data: bytes) -> tuple[str, int] | None:
    if len(data) > LFS_POINTER_MAX_SIZE or not data.startswith(LFS_POINTER_PREFIX):
        return None
    oid = re.search(rb"^oid sha256:([0-9a-f]{64})$", data, re.M)
    size = re.search(rb"^size (\d+)$", data, re.M)
    if not oid or not size:
        return None
    return oid.group(1).decode(), int(size.group(1))


class LfsRules:
    """Which paths a repo's own `.gitattributes` sends to LFS (`filter=lfs`), matched as git matches them."""

    def __init__(self, gitattributes: bytes):
        self.patterns = compile_gitattributes_patterns(parse_git_attributes(BytesIO(gitattributes)))

    def matches(self, path: str) -> bool:
        return match_path(self.patterns, path.encode()).get(b"filter") == b"lfs"


def should_use_lfs(rules: LfsRules, path: str, size: int, sample: bytes) -> bool:
    """The Hub's rule: the repo's .gitattributes, big files, and binary content."""
    return rules.matches(path) or size >= LFS_SIZE_THRESHOLD or b"\x00" in sample


@dataclass(frozen=True)
class Entry:
    """A file or folder at some revision, as the tree and paths-info endpoints describe it."""

    path: str
    type: str  # "file" | "directory"
    oid: str  # git blob or tree sha
    size: int
    lfs_oid: str | None = None
    pointer_size: int | None = None

    def to_json(self) -> dict:
        data = {"type": self.type, "oid": self.oid, "size": self.size, "path": self.path}
        if self.lfs_oid is not None:
            data["lfs"] = {"oid": self.lfs_oid, "size": self.size, "pointerSize": self.pointer_size}
        return data


@dataclass(frozen=True)
class CommitOperation:
    kind: str  # "file" | "lfsFile" | "deletedFile" | "deletedFolder"
    path: str
    content: bytes | None = None
    lfs_oid: str | None = None
    size: int | None = None


def _marker_name(oid: str, size: int) -> str:
    return f"{oid}.{size}"


def revision_refs(revision: str) -> tuple[str, ...]:
    """The refs a revision may name, in the Hub's order: a full ref as is (`refs/pr/1`), else a branch, then a tag."""
    if revision.startswith(REF_PREFIXES):
        return (revision,)
    return (f"refs/heads/{revision}", f"refs/tags/{revision}")


def branch_ref(revision: str) -> str:
    """The ref a commit to `revision` moves: a pull request's `refs/pr/N`, or the branch."""
    if revision.startswith(("refs/heads/", "refs/pr/")):
        return revision
    return f"refs/heads/{revision}"


def new_commit(tree_id: bytes, parents: list[bytes], summary: str, description: str) -> Commit:
    validate_commit_message(summary, description)
    commit = Commit()
    commit.tree = tree_id
    commit.parents = parents
    commit.author = commit.committer = AUTHOR
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = (summary.strip() + ("\n\n" + description.strip() if description.strip() else "") + "\n").encode()
    return commit


def _is_commit(repo: Repo, sha: bytes) -> bool:
    return repo.object_store.get_raw(sha)[0] == Commit.type_num


def _peeled(repo: Repo, sha: bytes) -> str:
    """The commit a ref points at, through annotated tags."""
    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    return obj.id.decode()


class LfsStore:
    def __init__(self, root: Path):
        self.objects = root / "lfs" / "objects"
        self.tmp = root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, oid: str) -> Path:
        return self.objects / oid[:2] / oid[2:4] / oid

    def has(self, oid: str, size: int | None = None) -> bool:
        path = self.path(oid)
        return path.is_file() and (size is None or path.stat().st_size == size)

    def temporary_file(self):
        return tempfile.NamedTemporaryFile(dir=self.tmp, prefix="lfs-", delete=False)

    def commit_upload(self, temporary_path: Path, oid: str) -> None:
        """Move a fully written, verified upload into place (atomic rename; a duplicate upload just wins again)."""
        target = self.path(oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary_path, target)


class HubStorage:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.lfs = LfsStore(self.root)
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._root_lock = self._lock_root()
        self._recover()

    def _lock_root(self):
        """Own the root for this process's lifetime; the kernel releases the lock however the process ends."""
        handle = open(self.root / SERVER_LOCK, "a+b")  # noqa: SIM115 - held until the process exits
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RuntimeError(f"Another Hub server is serving {self.root}; one root has one server") from None
        return handle

    def _recover(self) -> None:
        """Undo what a killed server left: uploads in flight, half-made or half-deleted repos, stale git locks."""
        for leftover in self.lfs.tmp.iterdir():
            leftover.unlink(missing_ok=True)
        for type_dir in REPO_TYPES.values():
            for org_dir in (self.root / type_dir).glob("*"):
                for staging in org_dir.glob(".*.git.*-*"):  # `.NAME.git.creating-…` and `.NAME.git.deleting-…`
                    shutil.rmtree(staging, ignore_errors=True)
                for repo_dir in org_dir.glob("*.git"):
                    # Nobody else writes under a root this process owns, so every git lock file is stale.
                    for lock in repo_dir.rglob("*.lock"):
                        lock.unlink(missing_ok=True)
                    if (repo_dir / "HEAD").is_file() and not (repo_dir / LFS_MARKERS).is_dir():
                        self._adopt_lfs_objects(repo_dir)

    def _adopt_lfs_objects(self, repo_dir: Path) -> None:
        """A repo written before per-repo LFS records: record the stored objects its history points to."""
        staging = repo_dir / f"{LFS_MARKERS}.adopting"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        repo = Repo(str(repo_dir))
        try:
            heads = [sha for sha in repo.get_refs().values() if sha in repo.object_store]
            seen = set()
            for walk_entry in repo.get_walker(include=[_peeled(repo, sha).encode() for sha in heads]) if heads else []:
                for item in repo.object_store.iter_tree_contents(walk_entry.commit.tree):
                    if item.sha in seen:
                        continue
                    seen.add(item.sha)
                    pointer = parse_lfs_pointer(repo[item.sha].as_raw_string())
                    if pointer and self.lfs.has(*pointer):
                        (staging / _marker_name(*pointer)).touch()
        finally:
            repo.close()
        os.rename(staging, repo_dir / LFS_MARKERS)

    # ----- LFS records -----------------------------------------------------------------------------------------------
    def has_lfs_object(self, repo: Repo, oid: str, size: int) -> bool:
        """Whether this LFS object was uploaded to this repo (and is still stored)."""
        return (Path(repo.path) / LFS_MARKERS / _marker_name(oid, size)).is_file() and self.lfs.has(oid, size)

    def record_lfs_upload(self, repo_type: str, repo_id: str, oid: str, size: int) -> None:
        markers = self.repo_path(repo_type, repo_id) / LFS_MARKERS
        if not markers.is_dir():
            raise HubError(404, "RepoNotFound", f"Repository {repo_type}s/{repo_id} not found")
        (markers / _marker_name(oid, size)).touch()

    def lfs_rules(self, repo: Repo, commit_sha: str) -> LfsRules:
        found = self._lookup(repo, commit_sha, ".gitattributes")
        is_file = found is not None and (found[0] & 0o170000) != TREE_MODE
        return LfsRules(repo[found[1]].as_raw_string() if is_file else b"")

    # ----- repos -----------------------------------------------------------------------------------------------------
    def repo_path(self, repo_type: str, repo_id: str) -> Path:
        return self.root / REPO_TYPES[repo_type] / f"{repo_id}.git"

    def lock(self, repo_type: str, repo_id: str) -> threading.Lock:
        """One lock per repo name, case-insensitively: `org/Name` and `org/name` are one name (see `case_variant`)."""
        key = (repo_type, repo_id.lower())
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def case_variant(self, repo_type: str, repo_id: str) -> str | None:
        """The existing repo whose id differs from `repo_id` in case only (or is it), if any: the Hub treats repo
        names case-insensitively, so `org/MixedCase` and `org/mixedcase` cannot both exist."""
        namespace, name = repo_id.lower().split("/")
        type_dir = self.root / REPO_TYPES[repo_type]
        if not type_dir.is_dir():
            return None
        for org_dir in type_dir.iterdir():
            if org_dir.name.lower() != namespace or not org_dir.is_dir():
                continue
            for repo_dir in org_dir.glob("*.git"):
                if repo_dir.name[: -len(".git")].lower() == name and (repo_dir / "HEAD").is_file():
                    return f"{org_dir.name}/{repo_dir.name[: -len('.git')]}"
        return None

    def open(self, repo_type: str, repo_id: str) -> Repo:
        path = self.repo_path(repo_type, repo_id)
        if not (path / "HEAD").is_file():
            raise HubError(404, "RepoNotFound", f"Repository {repo_type}s/{repo_id} not found")
        return Repo(str(path))

    def exists(self, repo_type: str, repo_id: str) -> bool:
        return (self.repo_path(repo_type, repo_id) / "HEAD").is_file()

    def create(self, repo_type: str, repo_id: str, private: bool) -> None:
        path = self.repo_path(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            if (path / "HEAD").is_file():
                raise HubError(409, None, f"You already created this {repo_type} repo: {repo_id}")
            if existing := self.case_variant(repo_type, repo_id):
                raise HubError(409, None, f"A {repo_type} repo named {existing} exists: names are case-insensitive")
            # Build in a sibling temp dir and rename, so a crash never leaves a half-initialised repo behind.
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.creating-"))
            try:
                repo = Repo.init_bare(str(staging))
                (staging / LFS_MARKERS).mkdir()
                repo.refs.set_symbolic_ref(b"HEAD", f"refs/heads/{HEAD_BRANCH}".encode())
                config = repo.get_config()
                config.set((b"hub",), b"private", b"true" if private else b"false")
                config.write_to_path()
                self._write_commit(
                    repo,
                    None,
                    [CommitOperation("file", ".gitattributes", gitattributes_text().encode())],
                    "initial commit",
                    "",
                )
                repo.close()
                os.rename(staging, path)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

    def delete(self, repo_type: str, repo_id: str) -> None:
        path = self.repo_path(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            self.open(repo_type, repo_id).close()
            trash = path.with_name(f".{path.name}.deleting-{time.time_ns()}")
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def is_private(self, repo: Repo) -> bool:
        try:
            return repo.get_config().get((b"hub",), b"private") == b"true"
        except KeyError:
            return False

    def list_repos(self, repo_type: str) -> Iterator[str]:
        type_dir = self.root / REPO_TYPES[repo_type]
        if not type_dir.is_dir():
            return
        for org_dir in sorted(type_dir.iterdir()):
            if org_dir.is_dir():
                for repo_dir in sorted(org_dir.glob("*.git")):
                    if (repo_dir / "HEAD").is_file():
                        yield f"{org_dir.name}/{repo_dir.name[: -len('.git')]}"

    # ----- revisions -------------------------------------------------------------------------------------------------
    def resolve(self, repo: Repo, revision: str) -> str:
        """A branch, a tag, a full ref (`refs/pr/1`, `refs/heads/x`) or a full commit sha -> the commit sha."""
        for ref in revision_refs(revision):
            if ref.encode() in repo.refs:
                return _peeled(repo, repo.refs[ref.encode()])
        is_full_sha = re.fullmatch(r"[0-9a-f]{40}", revision) and revision.encode() in repo.object_store
        if is_full_sha and isinstance(repo[revision.encode()], Commit):
            return revision
        if re.fullmatch(f"[0-9a-f]{{{MIN_SHORT_SHA},39}}", revision):
            commits = {sha for sha in repo.object_store.iter_prefix(revision.encode()) if _is_commit(repo, sha)}
            if len(commits) == 1:
                return commits.pop().decode()
            if len(commits) > 1:
                raise HubError(400, None, f"Ambiguous short sha {revision}: it starts {len(commits)} commits")
        raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    def split_revision(self, repo: Repo, tail: str) -> tuple[str, str]:
        """`{revision}/{path}` of a URL that did not percent-encode a revision holding '/' (`refs/pr/1/config.json`).

        The longest leading segments that name a ref are the revision; otherwise the first segment is (a sha or a
        miss), as on the Hub.
        """
        parts = tail.split("/")
        for cut in range(len(parts), 1, -1):
            candidate = "/".join(parts[:cut])
            if any(ref.encode() in repo.refs for ref in revision_refs(candidate)):
                return candidate, "/".join(parts[cut:])
        return parts[0], "/".join(parts[1:])

    def refs(self, repo: Repo) -> dict[str, list[dict]]:
        result: dict[str, list[dict]] = {"branches": [], "tags": [], "pullRequests": []}
        for ref, sha in sorted(repo.get_refs().items()):
            name = ref.decode()
            for prefix, key in zip(REF_PREFIXES, result, strict=True):
                if name.startswith(prefix):
                    target = _peeled(repo, sha)
                    result[key].append({"name": name[len(prefix) :], "ref": name, "targetCommit": target})
        return result

    def commit_info(self, repo: Repo, sha: str) -> Commit:
        return repo[sha.encode()]

    def log(self, repo: Repo, sha: str) -> Iterator[Commit]:
        for walk_entry in repo.get_walker(include=[sha.encode()]):
            yield walk_entry.commit

    # ----- trees -----------------------------------------------------------------------------------------------------
    def _entry(self, repo: Repo, path: str, mode: int, sha: bytes) -> Entry:
        if mode == TREE_MODE or (mode & 0o170000) == TREE_MODE:
            return Entry(path, "directory", sha.decode(), 0)
        data = repo[sha].as_raw_string()
        pointer = parse_lfs_pointer(data)
        if pointer and data == lfs_pointer(*pointer) and self.has_lfs_object(repo, *pointer):
            return Entry(path, "file", sha.decode(), pointer[1], lfs_oid=pointer[0], pointer_size=len(data))
        return Entry(path, "file", sha.decode(), len(data))

    def _lookup(self, repo: Repo, commit_sha: str, path: str) -> tuple[int, bytes] | None:
        tree_id = repo[commit_sha.encode()].tree
        if not path:
            return TREE_MODE, tree_id
        try:
            return repo.object_store[tree_id].lookup_path(repo.object_store.__getitem__, path.encode())
        except (KeyError, NotTreeError):
            return None

    def list_tree(self, repo: Repo, commit_sha: str, path: str = "", recursive: bool = False) -> list[Entry]:
        found = self._lookup(repo, commit_sha, path)
        if found is None or (found[0] & 0o170000) != TREE_MODE:
            raise HubError(404, "EntryNotFound", f"{path!r} is not a folder at {commit_sha}")
        prefix = f"{path}/" if path else ""
        entries = []
        pending = [(prefix, found[1])]
        while pending:
            folder, tree_sha = pending.pop()
            for item in repo[tree_sha].iteritems():
                child = f"{folder}{item.path.decode()}"
                entries.append(self._entry(repo, child, item.mode, item.sha))
                if recursive and (item.mode & 0o170000) == TREE_MODE:
                    pending.append((f"{child}/", item.sha))
        return sorted(entries, key=lambda entry: (entry.type != "directory", entry.path))

    def all_files(self, repo: Repo, commit_sha: str) -> dict[str, bytes]:
        """path -> blob sha of every file at a commit."""
        tree_id = repo[commit_sha.encode()].tree
        return {entry.path.decode(): entry.sha for entry in repo.object_store.iter_tree_contents(tree_id)}

    def entry(self, repo: Repo, commit_sha: str, path: str) -> Entry | None:
        found = self._lookup(repo, commit_sha, path)
        return None if found is None else self._entry(repo, path, *found)

    def read_blob(self, repo: Repo, blob_sha: str) -> bytes:
        return repo[blob_sha.encode()].as_raw_string()

    # ----- writes ----------------------------------------------------------------------------------------------------
    def commit(
        self,
        repo_type: str,
        repo_id: str,
        branch: str,
        operations: list[CommitOperation],
        summary: str,
        description: str = "",
        parent_commit: str | None = None,
    ) -> tuple[str, bool]:
        """Apply operations on top of `branch`; returns (commit sha, whether a new commit was made).

        Commits to one repo are serialized, and the ref moves by compare-and-swap: a concurrent writer from another
        process can never be overwritten silently. An expected `parent_commit` that is not the head gets a 412.
        """
        with self.lock(repo_type, repo_id):
            repo = self.open(repo_type, repo_id)
            try:
                ref = branch_ref(branch).encode()
                head = repo.refs[ref].decode() if ref in repo.refs else None
                if head is None:
                    raise HubError(404, "RevisionNotFound", f"Invalid rev id: {branch}")
                if parent_commit and parent_commit != head:
                    raise HubError(
                        412, None, f"A commit has happened since {parent_commit}. Please refresh and retry."
                    )
                return self._write_commit(repo, head, operations, summary, description, ref=ref)
            finally:
                repo.close()

    def _write_commit(
        self,
        repo: Repo,
        head: str | None,
        operations: list[CommitOperation],
        summary: str,
        description: str,
        ref: bytes = f"refs/heads/{HEAD_BRANCH}".encode(),
    ) -> tuple[str, bool]:
        files = self.all_files(repo, head) if head else {}
        for operation in operations:
            if operation.kind == "deletedFile":
                if files.pop(operation.path, None) is None:
                    raise HubError(404, "EntryNotFound", f"Cannot delete {operation.path}: no such file")
            elif operation.kind == "deletedFolder":
                prefix = operation.path.rstrip("/") + "/"
                for path in [path for path in files if path.startswith(prefix)]:
                    del files[path]
            else:
                if operation.kind == "lfsFile":
                    size = operation.size
                    if size is None:  # a copy names only the oid
                        size = self._recorded_lfs_size(repo, operation.lfs_oid, operation.path)
                    if not self.has_lfs_object(repo, operation.lfs_oid, size):
                        raise HubError(
                            400, None, f"LFS object {operation.lfs_oid} for {operation.path} was not uploaded"
                        )
                    data = lfs_pointer(operation.lfs_oid, size)
                else:
                    data = operation.content
                blob = Blob.from_string(data)
                repo.object_store.add_object(blob)
                if any(path.startswith(operation.path + "/") for path in files):
                    raise HubError(400, None, f"Cannot create file {operation.path}: a folder of that name exists")
                parents = [operation.path[:index] for index, char in enumerate(operation.path) if char == "/"]
                if clash := next((parent for parent in parents if parent in files), None):
                    raise HubError(400, None, f"Cannot create file {operation.path}: {clash} is a file")
                files[operation.path] = blob.id
        tree_id = commit_tree(repo.object_store, [(path.encode(), sha, FILE_MODE) for path, sha in files.items()])
        if head and repo[head.encode()].tree == tree_id:
            return head, False  # Nothing changed: no empty commit, as on the Hub.
        commit = new_commit(tree_id, [head.encode()] if head else [], summary, description)
        repo.object_store.add_object(commit)
        old = head.encode() if head else None
        swapped = repo.refs.set_if_equals(ref, old, commit.id) if old else repo.refs.add_if_new(ref, commit.id)
        if not swapped:
            raise HubError(412, None, "The branch moved during the commit. Please refresh and retry.")
        return commit.id.decode(), True

    def _recorded_lfs_size(self, repo: Repo, oid: str, path: str) -> int:
        """The size of an LFS object uploaded to this repo, from its record: a copy's `lfsFile` names only the oid."""
        for marker in (Path(repo.path) / LFS_MARKERS).glob(f"{oid}.*"):
            return int(marker.name.rsplit(".", 1)[1])
        raise HubError(400, None, f"Cannot copy to {path}: LFS object {oid} is not a file of this repo")

    def create_tag(self, repo_type: str, repo_id: str, tag: str, revision: str, message: str | None) -> str:
        with self.lock(repo_type, repo_id):
            repo = self.open(repo_type, repo_id)
            try:
                target = self.resolve(repo, revision)
                ref = f"refs/tags/{tag}".encode()
                if ref in repo.refs:
                    raise HubError(409, None, f"Tag {tag} already exists")
                sha = target.encode()
                if message:
                    validate_commit_message("", message)
                    tag_object = Tag()
                    tag_object.object = (Commit, sha)
                    tag_object.name = tag.encode()
                    tag_object.tagger = AUTHOR
                    tag_object.tag_time = int(time.time())
                    tag_object.tag_timezone = 0
                    tag_object.message = message.encode() + b"\n"
                    repo.object_store.add_object(tag_object)
                    sha = tag_object.id
                if not repo.refs.add_if_new(ref, sha):
                    raise HubError(409, None, f"Tag {tag} already exists")
                return target
            finally:
                repo.close()

    def delete_ref(self, repo_type: str, repo_id: str, ref: str, kind: str) -> None:
        with self.lock(repo_type, repo_id):
            repo = self.open(repo_type, repo_id)
            try:
                if ref.encode() not in repo.refs:
                    raise HubError(404, "RevisionNotFound", f"{kind} {ref.rsplit('/', 1)[-1]} not found")
                repo.refs.remove_if_equals(ref.encode(), None)
            finally:
                repo.close()

    def create_branch(self, repo_type: str, repo_id: str, branch: str, starting_point: str | None) -> None:
        with self.lock(repo_type, repo_id):
            repo = self.open(repo_type, repo_id)
            try:
                target = self.resolve(repo, starting_point or HEAD_BRANCH)
                if not repo.refs.add_if_new(f"refs/heads/{branch}".encode(), target.encode()):
                    raise HubError(409, None, f"Branch {branch} already exists")
            finally:
                repo.close()

    # ----- repo administration ---------------------------------------------------------------------------------------
    def set_private(self, repo_type: str, repo_id: str, private: bool) -> None:
        with self.lock(repo_type, repo_id):
            repo = self.open(repo_type, repo_id)
            try:
                config = repo.get_config()
                config.set((b"hub",), b"private", b"true" if private else b"false")
                config.write_to_path()
            finally:
                repo.close()

    def created_at(self, repo: Repo, head: str) -> int:
        """When the repo was created: the time of its first commit."""
        return min(commit.commit_time for commit in self.log(repo, head) if not commit.parents)

    @contextmanager
    def _locked_pair(self, repo_type: str, first: str, second: str) -> Iterator[None]:
        """Both repos' locks, always taken in the same order so two moves can't deadlock."""
        first, second = sorted((first.lower(), second.lower()))
        if first == second:  # a rename that changes only the case: one name, one lock
            with self.lock(repo_type, first):
                yield
            return
        with self.lock(repo_type, first), self.lock(repo_type, second):
            yield

    def move(self, repo_type: str, from_id: str, to_id: str) -> None:
        source, target = self.repo_path(repo_type, from_id), self.repo_path(repo_type, to_id)
        with self._locked_pair(repo_type, from_id, to_id):
            self.open(repo_type, from_id).close()
            existing = self.case_variant(repo_type, to_id)
            if existing is not None and existing != from_id:
                raise HubError(409, None, f"You already have a {repo_type} repo named {existing}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)

    def duplicate(self, repo_type: str, from_id: str, to_id: str, private: bool | None) -> None:
        """A copy of the git history (branches and tags; not pull requests or discussions) under a new id.

        LFS objects live in the shared store, so the copy references them without copying a byte.
        """
        target = self.repo_path(repo_type, to_id)
        with self._locked_pair(repo_type, from_id, to_id):
            source = self.open(repo_type, from_id)
            source.close()
            if existing := self.case_variant(repo_type, to_id):
                raise HubError(409, None, f"You already created this {repo_type} repo: {existing}")
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.duplicating-"))
            try:
                ignore = shutil.ignore_patterns(*NOT_DUPLICATED)
                shutil.copytree(source.path, staging, dirs_exist_ok=True, ignore=ignore)
                copy = Repo(str(staging))
                for ref in copy.get_refs():
                    if ref.startswith(b"refs/") and not ref.startswith((b"refs/heads/", b"refs/tags/")):
                        copy.refs.remove_if_equals(ref, None)
                config = copy.get_config()
                keep_private = self.is_private(source) if private is None else private
                config.set((b"hub",), b"private", b"true" if keep_private else b"false")
                config.write_to_path()
                copy.close()
                os.rename(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

    def super_squash(self, repo_type: str, repo_id: str, branch: str, message: str) -> str:
        """Replace a branch's history by one root commit holding its current tree; returns the new commit."""
        with self.lock(repo_type, repo_id):
            repo = self.open(repo_type, repo_id)
            try:
                ref = f"refs/heads/{branch}".encode()
                if ref not in repo.refs:
                    if any(name.encode() in repo.refs for name in revision_refs(branch)):
                        raise HubError(400, None, f"Invalid reference for a branch: {branch}")
                    raise HubError(404, "RevisionNotFound", f"Invalid rev id: {branch}")
                head = repo.refs[ref]
                commit = new_commit(repo[head].tree, [], message, "")
                repo.object_store.add_object(commit)
                if not repo.refs.set_if_equals(ref, head, commit.id):
                    raise HubError(412, None, "The branch moved during the squash. Please refresh and retry.")
                return commit.id.decode()
            finally:
                repo.close()

    def lfs_files(self, repo: Repo) -> list[dict]:
        """Every LFS object of the repo that a commit references, with a path and the time it was first committed."""
        found: dict[str, dict] = {}
        ref_of = {sha: ref.decode() for ref, sha in reversed(repo.get_refs().items()) if ref != b"HEAD"}
        heads = [_peeled(repo, sha).encode() for ref, sha in repo.get_refs().items() if ref != b"HEAD"]
        for walk_entry in repo.get_walker(include=heads, order="date", reverse=True):
            commit = walk_entry.commit
            for entry in repo.object_store.iter_tree_contents(commit.tree):
                pointer = parse_lfs_pointer(repo[entry.sha].as_raw_string())
                if pointer and pointer[0] not in found and self.has_lfs_object(repo, *pointer):
                    found[pointer[0]] = {
                        "fileOid": pointer[0],
                        "oid": pointer[0],
                        "filename": entry.path.decode(),
                        "size": pointer[1],
                        "pushedAt": commit.commit_time,
                        "ref": ref_of.get(commit.id),
                    }
        return sorted(found.values(), key=lambda item: (item["pushedAt"], item["filename"]))

    def permanently_delete_lfs_files(
        self, repo_type: str, repo_id: str, oids: set[str], rewrite_history: bool
    ) -> None:
        """Drop LFS objects from a repo: its pointers to them are cut from every commit (if `rewrite_history`), and
        the object leaves the shared store once no repo holds a record of it."""
        with self.lock(repo_type, repo_id):
            repo = self.open(repo_type, repo_id)
            try:
                if rewrite_history:
                    refs = [ref for ref in repo.get_refs() if ref.decode().startswith(REF_PREFIXES)]
                    without = CommitFilter(
                        repo.object_store, index_filter=lambda tree, _index: self._tree_without(repo, tree, oids)
                    )
                    filter_refs(repo.refs, repo.object_store, refs, without, keep_original=False)
                for oid in oids:
                    for marker in (Path(repo.path) / LFS_MARKERS).glob(f"{oid}.*"):
                        marker.unlink()
            finally:
                repo.close()
        for oid in oids:
            if not any(self.root.glob(f"*/*/*.git/{LFS_MARKERS}/{oid}.*")):  # no other repo holds it
                self.lfs.path(oid).unlink(missing_ok=True)

    def _tree_without(self, repo: Repo, tree_id: bytes, oids: set[str]) -> bytes:
        kept = []
        for entry in repo.object_store.iter_tree_contents(tree_id):
            pointer = parse_lfs_pointer(repo[entry.sha].as_raw_string())
            if not (pointer and pointer[0] in oids):
                kept.append((entry.path, entry.sha, entry.mode))
        return commit_tree(repo.object_store, kept)
