"""Git, through GitPython (questions `runs new` asks) and as a process (patches, which are bytes)."""
from __future__ import annotations

import os
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from runs_manager.errors import RunsError


def _repo(path: str) -> Any:
    try:
        import git  # GitPython: imported here, not at the top, because only `new` needs it
    except ImportError as e:  # GitPython raises this when no git executable works
        raise RunsError(f"git is not usable ({' '.join(str(e).split()[:12])}...); install git") from None
    try:
        repo = git.Repo(path, search_parent_directories=True, expand_vars=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RunsError(
            f"{path} is not in a git repository; runs records each run's commit, so run it in your project's work tree"
        ) from None
    if repo.bare or repo.working_tree_dir is None:
        raise RunsError(f"{path} is not in a git work tree")
    return repo


def _run(repo: Any, *args: str) -> str:
    """The one place that runs git."""
    import git

    try:
        return str(repo.git.execute(["git", *args]))
    except git.GitCommandError as e:
        message = " ".join(str(e.stderr).replace("stderr:", "").split()).strip("'")
        raise RunsError(f"git {args[0]} failed: {message}") from None


def head_commit(path: str) -> str:
    with _repo(path) as repo:  # closed now, not by a finalizer at exit
        if not repo.head.is_valid():
            raise RunsError("the git repository has no commits yet; commit your code first so the run can record it")
        return _run(repo, "rev-parse", "--verify", "HEAD").strip()


def toplevel(path: str) -> str:
    with _repo(path) as repo:
        return str(repo.working_tree_dir)


class Dirty(List[str]):
    """Paths that differ from HEAD; ``untracked`` those of them git does not track."""

    def __init__(self) -> None:
        super().__init__()
        self.untracked: List[str] = []


def dirty_paths(path: str, except_under: str) -> Dirty:
    """Paths that differ from HEAD: modified, staged, or untracked and not ignored.

    Paths under ``except_under`` (the runs directory) never count.
    """
    with _repo(path) as repo:
        top = str(repo.working_tree_dir)
        output = _run(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=none")
    skip = os.path.realpath(except_under)
    dirty, fields = Dirty(), iter(output.split("\0"))
    for field in fields:
        if len(field) < 4:
            continue
        status, name = field[:2], field[3:]
        if "R" in status or "C" in status:
            next(fields, None)  # the path it was renamed or copied from
        full = os.path.join(top, name).rstrip(os.sep)
        # Resolved, and with the last component unresolved: the runs directory may be a
        # link, and a link in it (a code snapshot's, to data/) is in it wherever it leads.
        places = (os.path.realpath(full), os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full)))
        if not any(place == skip or place.startswith(skip + os.sep) for place in places):
            dirty.append(os.path.relpath(full))
            if status == "??":
                dirty.untracked.append(dirty[-1])
    return dirty


def locations(path: str) -> Tuple[str, str, str]:
    """(work tree, git directory, object directory) of the repository ``path`` is in."""
    try:
        out = call(path, ["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-dir", "--git-common-dir"])
    except RunsError:
        raise RunsError(f"{path} is not in a git work tree") from None
    top, git_dir, common = os.fsdecode(out).split("\n")[:3]
    return top, git_dir, os.path.join(common, "objects")


def call(top: str, args: Sequence[str], env: Optional[Mapping[str, str]] = None, input: Optional[bytes] = None, ok: Tuple[int, ...] = (0,)) -> bytes:
    """Run git in ``top`` for bytes (patches hold any bytes; GitPython would decode them)."""
    import subprocess

    try:
        done = subprocess.run(["git", *args], cwd=top, env=None if env is None else dict(env), input=input, capture_output=True)
    except OSError as e:
        raise RunsError(f"git is not usable ({e.strerror}); install git") from None
    if done.returncode not in ok:
        command = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        message = " ".join(done.stderr.decode("utf-8", "replace").split())
        status = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        raise RunsError(f"git {command} failed: {message or status}")
    return done.stdout
