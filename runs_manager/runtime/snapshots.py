"""Code snapshots: a run that starts later runs exactly the code it recorded.

A snapshot is the recorded commit's tree plus the run's patch, checked out read-only under
``<runs-dir>/code/<commit12>[-<patch sha12>]/`` and shared by every run of that commit and
patch. What git ignores is data, checkpoints and environments, not code: each top-most
ignored path of the work tree (``data/``, ``.venv/``), the runs directory, and the simple
names the top ``.gitignore`` lists that do not exist yet (``outputs/``) are symbolic links
to the work tree's, so relative paths reach the same files as without a snapshot.

Made with a temporary index and object directory (the user's index and work tree are
never written): ``git read-tree`` of the commit, ``git apply --cached`` of the patch,
``git checkout-index --all`` into a directory of its own, which is renamed into place only
once whole. ``checkout-index`` writes only the files, where ``git worktree add`` (as fast
here) would also register the snapshot in the repository and make it a work tree git
commands could change. A maker that dies leaves a ``.making-*`` directory, which the next
`runs new` on its host removes.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import tempfile
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Tuple

from runs_manager import faults, fsutil, git, processes
from runs_manager.errors import RunsError

if TYPE_CHECKING:
    from runs_manager.runtime.patches import Patch
    from runs_manager.settings import Settings

_MAKING = ".making-"
KEY = re.compile(r"[0-9a-f]{12}(?:-[0-9a-f]{12})?")
SOURCE_ENV = "RUNS_SOURCE_DIR"  # the work tree's top, for the program


class Code(NamedTuple):
    """Where a new run's program starts: in place, or in a snapshot."""

    directory: str  # the directory `runs new` was called from, or its counterpart in the snapshot
    root: Optional[str] = None  # the snapshot, <runs-dir>/code/<key>: the entry's code_dir

    def fields(self) -> Dict[str, str]:
        return {"code_dir": self.root} if self.root else {}

    def require(self) -> None:
        """Under the lock: the snapshot is still there (a delete of its last run may just
        have removed it)."""
        if self.root and not os.path.isdir(self.root):
            raise RunsError(f"the snapshot {self.root} was removed while this run was being made; try again")


def for_new(settings: Settings, launcher: str, queues: bool, directory: str, commit: str, patch: Optional[Patch]) -> Code:
    """Where a run `runs new` makes starts: with ``auto``, the runs that may start later
    (a queue's, a scheduler's) start in a snapshot."""
    if os.path.isdir(settings.code_root):
        _remove_abandoned(settings.code_root)  # a runs new that died making one
    if settings.snapshot == "always" or (settings.snapshot == "auto" and (launcher != "tmux" or queues)):
        return make(settings, directory, commit, patch)
    return Code(directory)


def key(commit: str, patch_sha256: Optional[str]) -> str:
    return commit[:12] + (f"-{patch_sha256[:12]}" if patch_sha256 else "")


def owned_root(settings: Settings, code_dir: object) -> Optional[str]:
    """``code_dir`` (from an entry, so perhaps hand-edited) if it is a snapshot of this runs
    directory; None for anything else, which is never touched."""
    if not isinstance(code_dir, str) or not KEY.fullmatch(os.path.basename(code_dir)):
        return None
    here = os.path.realpath(settings.code_root)
    return code_dir if os.path.realpath(os.path.dirname(code_dir)) == here and not os.path.islink(code_dir) else None


def make(settings: Settings, directory: str, commit: str, patch: Optional[Patch]) -> Code:
    """The snapshot of ``commit`` and ``patch``, made now unless it exists."""
    top = git.toplevel(directory)
    # Resolved: entries compare it as text (a delete keeps a snapshot any entry names), so
    # every spelling of the runs directory must give the same one.
    root = os.path.join(os.path.realpath(settings.code_root), key(commit, patch.sha256 if patch else None))
    inside = os.path.join(root, os.path.relpath(os.path.realpath(directory), os.path.realpath(top)))
    if not os.path.isdir(root):
        _make(settings, top, root, commit, patch)
    if not os.path.isdir(inside):
        raise RunsError(f"the snapshot {root} has no {os.path.relpath(inside, root)}: git tracks no file in "
                        f"{directory}; start the run from a directory of the work tree that holds code")
    return Code(os.path.normpath(inside), root)


def _make(settings: Settings, top: str, root: str, commit: str, patch: Optional[Patch]) -> None:
    os.makedirs(os.path.dirname(root), exist_ok=True)
    temp = tempfile.mkdtemp(prefix=f"{_MAKING}{os.getpid()}@{processes.host()}@", dir=os.path.dirname(root))
    try:
        _check_out(top, temp, commit, patch)
        _link_data(top, temp, settings.runs_dir)
        _freeze(temp)
        faults.point("snapshot:made")
        try:
            os.rename(temp, root)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            remove(temp)  # another runs made it meanwhile: theirs is the same
    except BaseException:
        remove(temp)
        raise


def _check_out(top: str, temp: str, commit: str, patch: Optional[Patch]) -> None:
    gitlinks = _check_out_tree(top, commit, temp, patch)
    for path, sub_commit in gitlinks:
        _check_out_submodule(top, temp, path, sub_commit)


def _check_out_tree(repository: str, commit: str, into: str, patch: Optional[Patch] = None) -> List[Tuple[str, str]]:
    """The files of ``commit`` (and ``patch``) of the repository at ``repository``, written
    into ``into`` through an index and object directory of their own; the submodules
    (path, commit) the tree records."""
    from runs_manager.runtime import patches

    _, git_dir, objects = git.locations(repository)
    with tempfile.TemporaryDirectory(prefix="runs-snapshot-") as scratch:
        env = patches.scratch_environment(scratch, git_dir, objects)
        git.call(repository, ["read-tree", commit], env)
        if patch is not None:
            path = os.path.join(scratch, "patch")
            with open(path, "wb") as f:
                f.write(patch.data)
            git.call(repository, ["apply", "--cached", "--whitespace=nowarn", path], env)
        # Parallel checkout (git >= 2.32; older ones ignore the key): creating the files is
        # the cost, mostly the kernel's, and one worker per core overlaps it (2-3x here).
        git.call(repository, ["-c", "checkout.workers=0", "checkout-index", "--all", "--force", f"--prefix={into}{os.sep}"], env)
        staged = git.call(repository, ["ls-files", "--stage", "-z"], env).split(b"\0")
    gitlinks = [line.split(b"\t", 1) for line in staged if line.startswith(b"160000 ")]
    return [(os.fsdecode(path), info.split()[1].decode("ascii")) for info, path in gitlinks]


def _check_out_submodule(top: str, temp: str, path: str, commit: str) -> None:
    """A submodule at its recorded commit, from its repository here (git does not fetch)."""
    from runs_manager.runtime import patches

    here = os.path.join(top, path)
    try:
        present = os.path.realpath(git.toplevel(here)) == os.path.realpath(here) and patches.has_commit(here, commit)
    except (RunsError, OSError):
        present = False
    if not present:
        print(f"runs: note: submodule {path} at commit {commit[:12]} is not checked out here; "
              "its directory in the code snapshot is empty", file=sys.stderr)
        return
    _check_out_tree(here, commit, os.path.join(temp, path))


def _link_data(top: str, temp: str, runs_dir: str) -> None:
    """Link what git ignores (data, environments, the runs directory) to the work tree's."""
    runs_dir = os.path.relpath(os.path.realpath(runs_dir), os.path.realpath(top))
    for path in [*_ignored(top), runs_dir, *_named_ignored(top)]:
        name = path.rstrip("/")
        if not name or name.startswith("..") or os.path.isabs(name):
            continue  # the runs directory outside the work tree: its absolute paths reach it
        link = os.path.join(temp, name)
        parent = os.path.dirname(link)
        if os.path.lexists(link) or not os.path.isdir(parent) or os.path.islink(parent):
            continue
        existing = os.path.exists(os.path.join(top, name))
        os.symlink(os.path.join(top, name) + ("/" if path.endswith("/") and not existing else ""), link)


def _ignored(top: str) -> List[str]:
    """The top-most ignored paths that exist (``git status --ignored`` collapses directories)."""
    out = git.call(top, ["status", "--porcelain=v1", "-z", "--ignored", "--untracked-files=normal"])
    found, fields = [], iter(out.split(b"\0"))
    for field in fields:
        if b"R" in field[:2] or b"C" in field[:2]:
            next(fields, None)  # a rename's source follows
        elif field.startswith(b"!! "):
            found.append(os.fsdecode(field[3:]))
    return found


def _named_ignored(top: str) -> List[str]:
    """Plain names the top ``.gitignore`` lists (``outputs/``, ``/wandb``), which git status
    does not name while they do not exist (or are empty): linked too, so what the program
    writes there lands where it would without a snapshot (the supervisor makes the missing
    ones first: see :func:`make_link_targets`)."""
    try:
        with open(os.path.join(top, ".gitignore"), encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f]
    except OSError:
        return []
    # A trailing slash (kept on the link's target) says the name is a directory, which
    # the supervisor may make; a file is made through the link by the program's open().
    names = [line.lstrip("/") for line in lines if line and not line.startswith(("#", "!"))]
    return [name for name in names if re.fullmatch(r"[\w.-]+/?", name) and name.rstrip("/") not in (".", "..")]


def make_link_targets(code_root: str, directory: str) -> None:
    """Before a program starts in a snapshot: make the work tree's directories its links
    name that do not exist yet (``outputs/``), as the program would have made them."""
    code_root = os.path.realpath(code_root)
    parts = os.path.relpath(os.path.realpath(directory), code_root).split(os.sep)
    if parts[0] == ".." or not KEY.fullmatch(parts[0]):
        return
    root = os.path.join(code_root, parts[0])
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            link = os.path.join(root, name)
            if os.path.islink(link) and not os.path.exists(link) and os.readlink(link).endswith("/"):
                with contextlib.suppress(OSError):
                    os.makedirs(os.readlink(link))


def _freeze(temp: str) -> None:
    """Read-only: code a run records must not change under it (or under the runs that share it)."""
    for directory, dirs, files in os.walk(temp, topdown=False):
        for name in files:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                os.chmod(path, stat.S_IMODE(mode) & ~0o222)
        os.chmod(directory, 0o555)


def remove(path: str) -> None:
    """Remove a snapshot (read-only) or a half-made one."""
    if os.path.isdir(path) and not os.path.islink(path):
        with contextlib.suppress(FileNotFoundError):
            fsutil.remove_tree(path)


def _remove_abandoned(code_root: str) -> None:
    """Half-made snapshots whose maker on this host has died."""
    for name in os.listdir(code_root):
        # .making-PID@HOST@RANDOM: '@' is in no host name, so the host is told exactly.
        parts = name[len(_MAKING):].split("@") if name.startswith(_MAKING) else []
        if len(parts) == 3 and parts[1] == processes.host() and parts[0].isdigit() and not os.path.exists(f"/proc/{int(parts[0])}"):
            remove(os.path.join(code_root, name))
