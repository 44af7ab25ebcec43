"""A run's uncommitted changes, stored as a patch that `git apply` restores exactly.

The patch is what `git diff --cached HEAD` says after `git add -A` into a temporary index,
with new blobs written to a temporary object directory: the user's index, objects and
work tree are never touched. Every option that configuration could change is pinned, so
the same tree at the same commit always gives the same bytes (reproduce relies on that).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from runs_manager import git
from runs_manager.errors import RunsError

if TYPE_CHECKING:
    from runs_manager.settings import Settings

# Settings that would change what `git diff` writes, or make `git add` refuse.
CONFIG = (
    "-c", "core.quotepath=off",
    "-c", "core.safecrlf=false",  # checked below, with a message that says what to do
    "-c", "diff.noprefix=false",
    "-c", "diff.mnemonicPrefix=false",
    "-c", "diff.suppressBlankEmpty=false",
    "-c", "diff.relative=false",
    "-c", "core.looseCompression=0",  # the new blobs are thrown away: compressing them only costs time
)
# What makes git convert a file between the work tree and the repository.
SHOW_DIRTY = 10  # changed paths named when a dirty tree is refused
CONVERSIONS = ("text", "eol", "crlf", "filter", "ident", "working-tree-encoding")
DIFF = (
    "diff", "--cached", "--no-renames", "--no-ext-diff", "--no-textconv", "--no-color",
    "--ignore-submodules=none", "--submodule=short", "--src-prefix=a/", "--dst-prefix=b/",
)
GITLINK = "160000"
REGULAR = ("100644", "100755")


class Change(NamedTuple):
    old_mode: str
    new_mode: str
    new_blob: str
    status: str
    path: str


class Patch(NamedTuple):
    data: bytes
    changes: Tuple[Change, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def submodules(self) -> List[str]:
        """Submodules whose recorded commit changed (their contents are not in the patch)."""
        return [c.path for c in self.changes if GITLINK in (c.old_mode, c.new_mode)]


def make(directory: str, runs_dir: str) -> Patch:
    """Everything in the work tree of ``directory`` that differs from HEAD, but the runs directory."""
    top, git_dir, objects = git.locations(directory)
    with tempfile.TemporaryDirectory(prefix="runs-patch-") as temp:
        env = scratch_environment(temp, git_dir, objects)
        index = os.path.join(git_dir, "index")
        if os.path.isfile(index):  # its stat data spares `git add` rereading unchanged files
            shutil.copy2(index, env["GIT_INDEX_FILE"])  # with its mtime, which git's racy-file check needs
        else:
            git.call(top, ["read-tree", "HEAD"], env)
        git.call(top, [*CONFIG, "add", "--all", "--", *_pathspec(top, runs_dir)], env)
        changes = _parse_raw(git.call(top, [*CONFIG, *DIFF, "--raw", "-z", "HEAD"], env))
        if not changes:
            return Patch(b"", ())
        _require_round_trip(top, changes, env)
        data = git.call(
            top, [*CONFIG, *DIFF, "--binary", "--full-index", "-U3", "--diff-algorithm=myers", "-O/dev/null", "HEAD"], env
        )
    return Patch(data, tuple(changes))


def scratch_environment(temp: str, git_dir: str, objects: str) -> Dict[str, str]:
    """git's environment for work in ``temp``: an index and object directory of its own (the
    repository's objects read through alternates), so the user's are never written."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_EXTERNAL_DIFF", "GIT_DIFF_OPTS", "GIT_INDEX_FILE")}
    os.mkdir(os.path.join(temp, "objects"))
    alternates = env.get("GIT_ALTERNATE_OBJECT_DIRECTORIES")
    env.update(
        GIT_INDEX_FILE=os.path.join(temp, "index"),
        GIT_OBJECT_DIRECTORY=os.path.join(temp, "objects"),
        GIT_ALTERNATE_OBJECT_DIRECTORIES=objects + (os.pathsep + alternates if alternates else ""),
    )
    return env


def _pathspec(top: str, runs_dir: str) -> List[str]:
    """The whole tree but the runs directory (its '*' .gitignore does not cover tracked files)."""
    real_top, real_runs = os.path.realpath(top), os.path.realpath(runs_dir)
    if real_runs == real_top or not real_runs.startswith(real_top.rstrip(os.sep) + os.sep):
        return ["."]
    return [".", ":(top,exclude,literal)" + os.path.relpath(real_runs, real_top)]


def _parse_raw(raw: bytes) -> List[Change]:
    """`git diff --raw -z` (renames off): ':old new old-blob new-blob status NUL path NUL' each."""
    fields = raw.split(b"\0")
    changes = []
    for meta, path in zip(fields[0::2], fields[1::2]):
        old_mode, new_mode, _, new_blob, status = meta.decode().lstrip(":").split(" ")
        changes.append(Change(old_mode, new_mode, new_blob, status, os.fsdecode(path)))
    return changes


def _require_round_trip(top: str, changes: Sequence[Change], env: Mapping[str, str]) -> None:
    """Refuse a file that `git apply` would not write back as it is now.

    `git add` stores a file as core.autocrlf and .gitattributes (eol, text, filters) make
    it, and `git apply` writes it back through the same conversion: a file with line endings
    other than checkout would give (or a filter that is not its own inverse) comes back
    different, and the restored tree would not be what the program saw.
    """
    files = _converted(top, [c for c in changes if c.status != "D" and c.new_mode in REGULAR], env)
    if not files:
        return
    # `git checkout-index` writes each file as a checkout would (cat-file --batch --filters
    # cannot be trusted: git 2.39 gives the unfiltered size in its header).
    with tempfile.TemporaryDirectory(prefix="runs-checkout-") as out:
        paths = b"".join(os.fsencode(c.path) + b"\0" for c in files)
        git.call(top, ["checkout-index", "--force", "-z", "--stdin", "--prefix=" + out + os.sep], env, input=paths)
        for change in files:
            if not _same_file(os.path.join(top, change.path), os.path.join(out, change.path)):
                raise RunsError(
                    f"{change.path} would not be restored byte for byte: git's line-ending or filter settings "
                    "(core.autocrlf, .gitattributes) would change it; give it the line endings a checkout gives, "
                    "or commit it"
                )


def _converted(top: str, files: List[Change], env: Mapping[str, str]) -> List[Change]:
    """The files git may convert: all with core.autocrlf on, else those with attributes."""
    if not files:
        return []
    autocrlf = git.call(top, ["config", "--type=bool-or-str", "--get", "core.autocrlf"], env, ok=(0, 1)).strip()
    if autocrlf in (b"true", b"input"):
        return files
    paths = b"".join(os.fsencode(c.path) + b"\0" for c in files)
    out = git.call(top, ["check-attr", "-z", "--stdin", *CONVERSIONS], env, input=paths).split(b"\0")
    # path NUL attribute NUL value NUL, for each attribute of each path
    marked = {os.fsdecode(p) for p, v in zip(out[0::3], out[2::3]) if v != b"unspecified"}
    return [c for c in files if c.path in marked]


def _same_file(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def size_text(size: int) -> str:
    """A byte count as people read it: 812 bytes, 4.2 kB, 50.0 MB."""
    if size < 1000:
        return f"{size} byte{'s' if size != 1 else ''}"
    value, unit = size / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"


def store(path: str, data: bytes) -> None:
    """Write the patch whole or not at all (a full disk leaves nothing)."""
    from runs_manager import fsutil

    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fsutil.atomic_write(path, data)
    except OSError as e:
        raise RunsError(f"cannot store the uncommitted changes as {path} ({e.strerror}); the run is not started") from None


def read_verified(path: str, sha256: object, run: str) -> bytes:
    """The stored patch, if it is the one run ``run`` recorded."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise RunsError(f"run '{run}' started from uncommitted changes stored in {path}, which is missing; they cannot be restored") from None
    except OSError as e:
        raise RunsError(f"cannot read {path}: {e.strerror}") from None
    if not isinstance(sha256, str):
        raise RunsError(f"run '{run}' has no patch_sha256 recorded, so {path} cannot be checked")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise RunsError(
            f"{path} has changed since run '{run}' stored it (SHA-256 {actual[:16]}..., recorded {sha256[:16]}...); "
            "it would not restore the run's tree"
        )
    return data


def check_applies(directory: str, commit: str, path: str) -> str:
    """That ``path`` applies to ``commit`` (without touching the work tree); the work tree's top."""
    top, git_dir, objects = git.locations(directory)
    if not has_commit(top, commit):
        raise RunsError(f"commit {commit} is not in this repository, so {path} cannot be applied")
    with tempfile.TemporaryDirectory(prefix="runs-patch-") as temp:
        env = scratch_environment(temp, git_dir, objects)
        git.call(top, ["read-tree", commit], env)
        try:  # in the form the printed line has (see apply_options)
            git.call(top, ["apply", "--cached", "--check", "--whitespace=nowarn", os.path.abspath(path)], env)
        except RunsError as e:
            raise RunsError(f"{path} no longer applies to commit {commit[:12]}: {str(e).split(': ', 1)[-1]}") from None
    return top


def apply_options(top: str) -> List[str]:
    """What `git apply` needs here to write the stored bytes: apply.whitespace=fix or strip
    in the user's configuration would rewrite lines with trailing blanks, =error refuse them."""
    value = git.call(top, ["config", "--get", "apply.whitespace"], ok=(0, 1)).strip().lower()
    return [] if value in (b"", b"warn", b"nowarn") else ["--whitespace=nowarn"]


def submodule_commits(data: bytes) -> List[Tuple[str, str]]:
    """(path, commit) of each submodule the patch points at another commit. `git apply`
    records no such change in the work tree: the submodule must be checked out by hand."""
    if b" 160000" not in data:  # no gitlink in the patch: spare splitting 50 MB into lines
        return []
    found: List[Tuple[str, str]] = []
    path, gitlink = "", False
    for line in data.split(b"\n"):
        if line.startswith(b"diff --git "):
            path, gitlink = "", False
        elif line.startswith((b"index ", b"new file mode ")) and line.endswith(b" " + GITLINK.encode()):
            gitlink = True
        elif line.startswith(b"+++ b/"):
            path = os.fsdecode(line[len(b"+++ b/"):])
        elif gitlink and line.startswith(b"+Subproject commit "):
            found.append((path, line.split()[-1].decode("ascii", "replace")))
    return found


def has_commit(top: str, commit: str) -> bool:
    try:
        git.call(top, ["cat-file", "-e", commit + "^{commit}"])
    except RunsError:
        return False
    return True


# Directories tools make for their output where the program runs: untracked, they make
# every later run's tree dirty, so a refusal names the .gitignore line.
TOOL_OUTPUTS = {"outputs": "Hydra's", "multirun": "Hydra's", "wandb": "Weights & Biases'", "mlruns": "MLflow's",
                "lightning_logs": "PyTorch Lightning's"}


def _tool_outputs(untracked: List[str]) -> str:
    # Untracked paths only: .gitignore does nothing for a file git tracks.
    found = sorted({part for path in untracked for part in path.split(os.sep)[:-1] if part in TOOL_OUTPUTS})
    if not found:
        return ""
    whose = ", ".join(f"{name}/ is {TOOL_OUTPUTS[name]} output" for name in found)
    lines = " and ".join(f"'{name}/'" for name in found)
    hydra = " (or write Hydra's under the run's own path: hydra.run.dir={save_path})" if "outputs" in found else ""
    return f". {whose}: add {lines} to .gitignore{hydra}"


def for_run(settings: Settings, directory: str, dirty: git.Dirty) -> Optional[Patch]:
    """None for a clean tree (no git call more); else the changes, if --allow-dirty allows them."""
    if not dirty:
        return None
    if not settings.allow_dirty:
        shown = ", ".join(dirty[:SHOW_DIRTY]) + (f" and {len(dirty) - SHOW_DIRTY} more" if len(dirty) > SHOW_DIRTY else "")
        raise RunsError(
            f"the git work tree has uncommitted changes ({shown}); a run must be reproducible from its commit: "
            "commit or stash them, add untracked files to .gitignore, or pass --allow-dirty to store them "
            "as a patch with the run" + _tool_outputs(dirty.untracked)
        )
    patch = make(directory, settings.runs_dir)
    if not patch.data:  # only the contents of submodules differ
        print("runs: note: only the contents of submodules differ from the commit, and runs does not capture "
              "those; the run records no patch", file=sys.stderr)
        return None
    return patch
