"""Runs from dirty work trees: stored as exact patches, restored byte for byte by the
lines `runs reproduce` prints, run through sh with the real `runs` and git.

Everything is real: git repositories with every kind of change, the test's own tmux
server, a file-size limit the kernel enforces (for a disk that is full), and SIGKILL.
"""
from __future__ import annotations

import hashlib
import os
import resource
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import pytest
import yaml

from tests.conftest import ROOT, Result, database, error_line, git, run_process, wait_for

Runs = Callable[..., Result]
Tree = Dict[str, Tuple[str, Any]]

ODD_NAMES = ["with space.txt", "quote's \"double\".txt", "ünïcödé 日本.txt", "-dash.txt"]


def snapshot(top: Path) -> Tree:
    """Every file, link and directory of the work tree but .git and .runs: kind and bytes,
    link target, executable bit."""
    tree: Tree = {}
    for root, dirs, files in os.walk(top):
        # A runs directory, wherever it is, is no part of the tree (its runs write to it meanwhile).
        dirs[:] = [d for d in dirs if not (d == ".runs" or (Path(root) == top and d == ".git"))]
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(top))
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                tree[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                if name not in dirs or os.path.islink(path):
                    continue
                tree[rel] = ("dir", None)
            else:
                tree[rel] = ("file", (path.read_bytes(), bool(info.st_mode & stat.S_IXUSR)))
    return {k: v for k, v in tree.items() if v[0] != "dir" or any(o.startswith(k + "/") for o in tree)}


def commit_all(repo: Path, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-qm", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


def make_every_change(repo: Path) -> None:
    """Staged and unstaged changes, deletions, untracked files, binary, modes, links, renames,
    empty files, changes of type (file to link, link to file, file to directory)."""
    (repo / "staged.py").write_text("print('staged')\n")
    git("add", "staged.py", cwd=repo)
    (repo / "main.py").write_text("import sys\nprint('changed', sys.argv)\n")
    (repo / "both.txt").write_text("staged version\n")
    git("add", "both.txt", cwd=repo)
    (repo / "both.txt").write_text("unstaged version on top\n")
    (repo / "gone.txt").unlink()
    git("rm", "-q", "--cached", "staged-gone.txt", cwd=repo)
    (repo / "staged-gone.txt").unlink()
    git("mv", "old-name.txt", "new-name.txt", cwd=repo)
    (repo / "moved.txt").rename(repo / "moved-unstaged.txt")
    (repo / "tool.sh").chmod(0o755)
    (repo / "was-exec.sh").chmod(0o644)
    (repo / "blob.bin").write_bytes(bytes(range(256)) * 40 + b"\0changed")
    (repo / "new.bin").write_bytes(os.urandom(3000))
    (repo / "empty.txt").write_bytes(b"")
    (repo / "link").symlink_to("main.py")
    (repo / "dangling").symlink_to("does/not/exist")
    os.unlink(repo / "old-link")
    (repo / "old-link").symlink_to("tool.sh")
    (repo / "deep/er").mkdir(parents=True)
    (repo / "deep/er/untracked.txt").write_text("untracked\n")
    (repo / "no-newline.txt").write_text("no newline at end")
    (repo / "crlf.txt").write_bytes(b"windows\r\nline\r\n")
    (repo / "trailing.txt").write_text("trailing space   \n\t\n")
    for name in ODD_NAMES:
        (repo / name).write_text(f"{name} changed\n")
    (repo / "new ü 'dir'").mkdir()
    (repo / "new ü 'dir'" / "f\"ile\".txt").write_text("x\n")
    (repo / "ignored.log").write_text("ignored: not part of the tree\n")
    (repo / "was-empty.txt").unlink()  # an empty file deleted, one filled, one emptied
    (repo / "filled.txt").write_text("filled\n")
    (repo / "emptied.txt").write_bytes(b"")
    (repo / "file-to-link").unlink()  # changes of type
    (repo / "file-to-link").symlink_to("main.py")
    os.unlink(repo / "link-to-file")
    (repo / "link-to-file").write_text("a file now\n")
    (repo / "file-to-dir").unlink()
    (repo / "file-to-dir").mkdir()
    (repo / "file-to-dir/inside.txt").write_text("inside\n")


def base_files(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    for name in ("both.txt", "gone.txt", "staged-gone.txt", "old-name.txt", "moved.txt", "tool.sh", "was-exec.sh"):
        (repo / name).write_text(f"{name}\n")
    (repo / "was-exec.sh").chmod(0o755)
    (repo / "blob.bin").write_bytes(bytes(range(256)) * 40)
    (repo / "old-link").symlink_to("main.py")
    for name in ("was-empty.txt", "filled.txt"):
        (repo / name).write_bytes(b"")
    (repo / "emptied.txt").write_text("emptied\n")
    (repo / "file-to-link").write_text("a file\n")
    (repo / "link-to-file").symlink_to("main.py")
    (repo / "file-to-dir").write_text("a file\n")
    for name in ODD_NAMES:
        (repo / name).write_text(f"{name}\n")


@pytest.fixture
def real_runs(tmp_path: Path) -> Path:
    """A directory with a `runs` program that runs this checkout's code."""
    bin_dir = tmp_path / "real-runs"
    bin_dir.mkdir()
    (bin_dir / "runs").write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} -m runs_manager "$@"\n'
    )
    (bin_dir / "runs").chmod(0o755)
    return bin_dir


def sh(script: str, bin_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-ec", script], capture_output=True, text=True, cwd=cwd, timeout=60,
        env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"),
    )


def clean_at(repo: Path, commit: str) -> None:
    """A clean tree at another commit, as a user would leave it (ignored files stay)."""
    git("reset", "-q", "--hard", cwd=repo)
    git("clean", "-qfd", cwd=repo)
    git("checkout", "-q", commit, cwd=repo)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=repo) == ""


def reproduce_through_sh(runs: Runs, repo: Path, name: str, real_runs: Path, other: str) -> Dict[str, Any]:
    """Print the lines, go to a clean tree at ``other``, run them in sh; the new run's entry."""
    printed = runs("reproduce", name)
    assert printed.code == 0, printed.err
    lines = printed.out.split("\n")
    assert lines[0] == "To reproduce:" and lines[2].startswith(" git apply ")
    assert lines[3].endswith(" --allow-dirty")
    clean_at(repo, other)
    before = set(database(repo))
    done = sh(printed.out.split("\n", 1)[1], real_runs, repo)
    assert done.returncode == 0, done.stderr
    (again,) = set(database(repo)) - before
    return {"name": again, **database(repo)[again]}


def test_every_kind_of_change_is_restored_byte_for_byte(runs, repo, real_runs):
    base_files(repo)
    commit_all(repo, "base")
    (repo / "later.txt").write_text("a later commit\n")
    other = commit_all(repo, "later")
    git("checkout", "-q", "HEAD~1", cwd=repo)
    make_every_change(repo)
    seen = snapshot(repo)

    result = runs("new", "exp", "true", "--allow-dirty", "-d", "dirty run")
    assert result.code == 0, result.err
    entry = database(repo)["exp"]
    patch = repo / ".runs/patches/exp.patch"
    assert entry["patch"] == ".runs/patches/exp.patch"
    assert entry["patch_sha256"] == hashlib.sha256(patch.read_bytes()).hexdigest()
    assert "Stored the uncommitted changes" in result.out and ".runs/patches/exp.patch" in result.out
    assert snapshot(repo) == seen, "storing the patch changed the work tree"
    assert "A  staged.py" in git("status", "--porcelain", cwd=repo), "storing the patch changed the index"
    assert b"ignored.log" not in patch.read_bytes()

    again = reproduce_through_sh(runs, repo, "exp", real_runs, other)
    restored = snapshot(repo)
    assert set(restored) == set(seen)
    for path in seen:
        assert restored[path] == seen[path], f"{path} differs after restoring"
    assert again["commit"] == entry["commit"] and again["description"] == "dirty run"
    assert (repo / again["patch"]).read_bytes() == patch.read_bytes(), "the new run recorded a different patch"
    assert again["patch_sha256"] == entry["patch_sha256"]


def test_clean_tree_records_no_patch(runs, repo):
    result = runs("new", "exp", "true", "--allow-dirty")
    assert result.code == 0, result.err
    assert "patch" not in database(repo)["exp"] and "patch_sha256" not in database(repo)["exp"]
    assert not (repo / ".runs/patches").exists()
    assert "Stored" not in result.out
    assert runs("reproduce", "exp").out.count("\n") == 3  # no apply line, no --allow-dirty
    assert "--allow-dirty" not in runs("reproduce", "exp").out


def test_refusal_names_allow_dirty_and_writes_nothing(runs, repo):
    (repo / "main.py").write_text("changed\n")
    result = runs("new", "exp", "true")
    assert "--allow-dirty" in error_line(result)
    assert not (repo / ".runs").exists()


def test_allow_dirty_from_runsrc(runs, repo, runsrc):
    runsrc({"allow-dirty": True})
    git("add", ".runsrc", cwd=repo)
    git("commit", "-qm", "runsrc", cwd=repo)
    (repo / "main.py").write_text("changed\n")
    assert runs("new", "exp", "true").code == 0
    assert (repo / ".runs/patches/exp.patch").is_file()
    runsrc({"allow-dirty": "maybe"})
    assert "true or false" in error_line(runs("new", "exp2", "true"))


def test_runs_dir_never_counts_even_tracked_files(runs, repo):
    assert runs("new", "one", "true").code == 0
    git("add", "-f", ".runs/.runs.yml", cwd=repo)
    git("commit", "-qm", "track the database", cwd=repo)
    (repo / "main.py").write_text("changed\n")
    assert runs("new", "two", "true", "--allow-dirty").code == 0
    text = (repo / ".runs/patches/two.patch").read_text()
    assert "main.py" in text and ".runs" not in text


def test_program_sees_the_dirty_tree_it_was_started_from(runs, repo, tmp_path):
    (repo / "main.py").write_text("changed for the run\n")
    out = tmp_path / "seen"
    assert runs("new", "exp", f"cat main.py > {shlex.quote(str(out))}", "--allow-dirty", "--tb-dir-flag=None",
                "--save-path-flag=None").code == 0
    assert wait_for(lambda: out.exists() and out.read_text() == "changed for the run\n")


@pytest.mark.parametrize("setup", ["autocrlf-true", "autocrlf-input", "eol-attribute", "filter-driver"])
def test_line_ending_settings_restore_what_the_program_saw(runs, repo, real_runs, setup):
    if setup == "autocrlf-true":
        git("config", "core.autocrlf", "true", cwd=repo)
    elif setup == "autocrlf-input":
        git("config", "core.autocrlf", "input", cwd=repo)
    elif setup == "eol-attribute":
        (repo / ".gitattributes").write_text("*.txt text eol=crlf\n")
    else:  # a clean filter that uppercases, a smudge filter that lowercases: its own inverse on lowercase text
        (repo / ".gitattributes").write_text("*.txt filter=case\n")
        git("config", "filter.case.clean", "tr a-z A-Z", cwd=repo)
        git("config", "filter.case.smudge", "tr A-Z a-z", cwd=repo)
    (repo / "notes.txt").write_bytes(b"one\ntwo\n")
    commit_all(repo, "attributes")
    git("rm", "-q", "--cached", "notes.txt", cwd=repo)
    (repo / "notes.txt").unlink()
    git("checkout", "-q", "HEAD", "--", "notes.txt", cwd=repo)  # as checkout writes it under these settings
    other = git("rev-parse", "HEAD", cwd=repo).strip()
    git("commit", "-q", "--allow-empty", "-m", "other", cwd=repo)
    git("checkout", "-q", other, cwd=repo)
    checked_out = (repo / "notes.txt").read_bytes()
    eol = b"\r\n" if b"\r\n" in checked_out else b"\n"
    (repo / "notes.txt").write_bytes(checked_out + b"three" + eol)
    (repo / "fresh.txt").write_bytes(b"fresh" + eol + b"file" + eol)
    seen = snapshot(repo)
    result = runs("new", "exp", "true", "--allow-dirty")
    assert result.code == 0, result.err
    again = reproduce_through_sh(runs, repo, "exp", real_runs, "main")
    assert snapshot(repo) == seen
    assert (repo / again["patch"]).read_bytes() == (repo / ".runs/patches/exp.patch").read_bytes()


@pytest.mark.parametrize("whitespace", ["fix", "strip", "error"])
def test_apply_whitespace_configuration_changes_no_byte(runs, repo, real_runs, whitespace):
    """With apply.whitespace=fix a plain `git apply` would strip trailing blanks; =error would refuse."""
    git("config", "apply.whitespace", whitespace, cwd=repo)
    (repo / "main.py").write_text("x = 1   \n\t\n")
    (repo / "fresh.txt").write_text("trailing \n\n\n")
    seen = snapshot(repo)
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    out = runs("reproduce", "exp").out
    assert " git apply --whitespace=nowarn .runs/patches/exp.patch\n" in out
    again = reproduce_through_sh(runs, repo, "exp", real_runs, "main")
    assert snapshot(repo) == seen
    assert (repo / again["patch"]).read_bytes() == (repo / ".runs/patches/exp.patch").read_bytes()


def test_a_file_line_endings_would_change_is_refused_naming_it(runs, repo):
    git("config", "core.autocrlf", "true", cwd=repo)
    (repo / "unix.txt").write_bytes(b"lf only\n")  # checkout would write it with CRLF
    result = runs("new", "exp", "true", "--allow-dirty")
    line = error_line(result)
    assert "unix.txt" in line and "byte for byte" in line
    assert not (repo / ".runs").exists()


def test_submodule_pointer_is_recorded_and_its_contents_are_said_not_to_be(runs, repo, tmp_path, real_runs):
    sub = tmp_path / "sub"
    sub.mkdir()
    git("init", "-q", "-b", "main", cwd=sub)
    (sub / "a.txt").write_text("one\n")
    first = commit_all(sub, "one")
    (sub / "a.txt").write_text("two\n")
    second = commit_all(sub, "two")
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "lib", cwd=repo)
    git("-C", "lib", "checkout", "-q", first, cwd=repo)
    commit_all(repo, "submodule at one")
    git("-C", "lib", "checkout", "-q", second, cwd=repo)
    result = runs("new", "exp", "true", "--allow-dirty")
    assert result.code == 0, result.err
    assert "submodule lib" in result.err and "not captured" in result.err
    text = (repo / ".runs/patches/exp.patch").read_text()
    assert f"+Subproject commit {second}" in text and f"-Subproject commit {first}" in text
    printed = runs("reproduce", "exp")
    assert printed.code == 0, printed.err  # it applies to the commit
    # git apply leaves the submodule where it is: the note says how to check it out.
    assert "submodule lib" in printed.err and "not in the patch" in printed.err
    checkout = f"git -C lib checkout {second}"
    assert printed.err.rstrip().endswith(checkout)
    git("-C", "lib", "checkout", "-q", first, cwd=repo)
    clean_at(repo, "HEAD")
    before = set(database(repo))
    lines = printed.out.split("\n", 1)[1].split("\n")
    script = "\n".join(lines[:2] + [checkout] + lines[2:])  # the note's command, after git apply
    done = sh(script, real_runs, repo)
    assert done.returncode == 0, done.stderr
    (again,) = set(database(repo)) - before
    assert git("-C", "lib", "rev-parse", "HEAD", cwd=repo).strip() == second
    assert (repo / database(repo)[again]["patch"]).read_text() == text, "the new run recorded a different patch"


def test_a_patch_without_submodules_gets_no_note(runs, repo):
    (repo / "main.py").write_text("+Subproject commit 0123456789abcdef0123456789abcdef01234567\n")
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    assert runs("reproduce", "exp").err == ""  # the line is a file's text, not a submodule's commit


def test_changes_only_inside_a_submodule_are_said_not_to_be_captured(runs, repo, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    git("init", "-q", "-b", "main", cwd=sub)
    (sub / "a.txt").write_text("one\n")
    commit_all(sub, "one")
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "lib", cwd=repo)
    commit_all(repo, "submodule")
    (repo / "lib/a.txt").write_text("edited inside\n")
    result = runs("new", "exp", "true", "--allow-dirty")
    assert result.code == 0, result.err
    assert "submodules" in result.err and "not capture" in result.err
    assert "patch" not in database(repo)["exp"]


def test_a_50_mb_patch_says_how_big_it_is(runs, repo, real_runs):
    line = b"".join(b"%08d 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n" % i for i in range(10000))
    with open(repo / "big.txt", "wb") as f:
        for _ in range(63):
            f.write(line)
    result = runs("new", "exp", "true", "--allow-dirty")
    assert result.code == 0, result.err
    size = (repo / ".runs/patches/exp.patch").stat().st_size
    assert size > 50_000_000
    assert f"({1} file, {size / 1e6:.1f} MB)" in result.out
    seen = snapshot(repo)
    reproduce_through_sh(runs, repo, "exp", real_runs, "main")
    assert snapshot(repo) == seen


def full_disk() -> None:
    """In the child: files may grow to 1 MB, then writes fail (EFBIG), as on a full disk."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_a_patch_that_cannot_be_stored_starts_nothing(runs, repo, tmux):
    (repo / "data.bin").write_bytes(os.urandom(700_000))
    commit_all(repo, "data")
    assert runs("new", "earlier", "true").code == 0
    assert wait_for(lambda: "exit_code" in database(repo)["earlier"])
    before = database(repo)
    # Each file stays below 1 MB (git's blob, the copy checked), the patch does not: it holds
    # both versions of a changed binary file, base-85 encoded.
    (repo / "data.bin").write_bytes(os.urandom(700_000))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "runs_manager", "new", "exp", "true", "--allow-dirty"], cwd=repo,
                          capture_output=True, text=True, env=env, preexec_fn=full_disk, timeout=60)
    line = error_line(Result(done.returncode, done.stdout, done.stderr))
    assert "cannot store" in line and ".runs/patches/exp.patch" in line and "not started" in line
    assert database(repo) == before
    assert not any((repo / ".runs/patches").iterdir()) if (repo / ".runs/patches").exists() else True
    assert not (repo / ".runs/tensorboard/exp").exists() and not (repo / ".runs/logs/exp.log").exists()
    assert "exp" not in tmux.sessions()
    assert runs("new", "exp", "true", "--allow-dirty").code == 0  # with room, the same name is free


def test_crash_after_the_patch_is_written_leaves_nothing(runs, repo):
    (repo / "main.py").write_text("changed\n")
    crashed = run_process("new", "exp", "sleep 600", "--allow-dirty", env={"RUNS_CRASH_AT": "new:patch-written"})
    assert crashed.code == -9, crashed
    assert (repo / ".runs/patches/exp.patch").exists()
    assert runs("new", "follow", "true", "--allow-dirty").code == 0  # takes the lock: recovery runs
    assert "exp" not in database(repo)
    assert not (repo / ".runs/patches/exp.patch").exists()
    assert sorted(p.name for p in (repo / ".runs/patches").iterdir()) == ["follow.patch"]


def test_reproduce_checks_the_patch(runs, repo):
    (repo / "main.py").write_text("changed\n")
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    patch = repo / ".runs/patches/exp.patch"
    original = patch.read_bytes()

    patch.write_bytes(original.replace(b"+changed", b"+edited!"))
    line = error_line(runs("reproduce", "exp"))
    assert ".runs/patches/exp.patch has changed" in line

    patch.unlink()
    line = error_line(runs("reproduce", "exp"))
    assert ".runs/patches/exp.patch" in line and "missing" in line
    patch.write_bytes(original)
    assert runs("reproduce", "exp").code == 0


def rewrite_entry(repo: Path, name: str, **fields: Any) -> None:
    data = database(repo)
    data[name].update(fields)
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_reproduce_of_a_patch_that_no_longer_applies_names_the_file(runs, repo):
    first = git("rev-parse", "HEAD", cwd=repo).strip()
    (repo / "main.py").write_text("a second version\n")
    commit_all(repo, "second")
    (repo / "main.py").write_text("a third version\n")
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    rewrite_entry(repo, "exp", commit=first)  # a commit whose main.py the patch does not fit
    line = error_line(runs("reproduce", "exp"))
    assert ".runs/patches/exp.patch no longer applies" in line and first[:12] in line
    rewrite_entry(repo, "exp", commit="0123456789abcdef0123456789abcdef01234567")  # a commit that is gone
    line = error_line(runs("reproduce", "exp"))
    assert "not in this repository" in line and ".runs/patches/exp.patch" in line


def test_reproduce_from_a_subdirectory_applies_to_the_whole_tree(runs, repo, real_runs):
    (repo / "src").mkdir()
    (repo / "src/model.py").write_text("model\n")
    commit_all(repo, "src")
    (repo / "main.py").write_text("changed at the top\n")
    (repo / "src/model.py").write_text("changed below\n")
    os.chdir(repo / "src")
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    seen = snapshot(repo)
    out = runs("reproduce", "exp").out
    assert " git -C .. apply src/.runs/patches/exp.patch\n" in out
    clean_at(repo, "HEAD")
    done = sh(out.split("\n", 1)[1].rsplit("\n runs new", 1)[0], real_runs, repo / "src")
    assert done.returncode == 0, done.stderr
    assert snapshot(repo) == seen


def test_delete_and_mv_take_the_patch_with_the_run(runs, repo):
    (repo / "main.py").write_text("changed\n")
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    assert wait_for(lambda: "exit_code" in database(repo)["exp"])
    assert runs("mv", "exp", "group/exp").code == 0
    assert not (repo / ".runs/patches/exp.patch").exists()
    assert (repo / ".runs/patches/group/exp.patch").is_file()
    assert database(repo)["group/exp"]["patch"] == ".runs/patches/group/exp.patch"
    assert " git apply .runs/patches/group/exp.patch\n" in runs("reproduce", "group/exp").out
    assert runs("delete", "group/exp", "-y").code == 0
    assert not (repo / ".runs/patches/group").exists()
    assert (repo / ".runs/patches").is_dir()


def test_overwrite_replaces_the_patch(runs, repo):
    (repo / "main.py").write_text("first\n")
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    (repo / "main.py").write_text("second\n")
    assert runs("new", "exp", "true", "--allow-dirty", "--overwrite", "-y").code == 0
    assert "+second" in (repo / ".runs/patches/exp.patch").read_text()
    shutil.rmtree(repo / ".runs/patches")
    assert "missing" in error_line(runs("reproduce", "exp"))


def test_overwriting_with_a_run_from_a_clean_tree_removes_the_old_patch(runs, repo):
    (repo / "main.py").write_text("dirty\n")
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    git("checkout", "-q", "--", "main.py", cwd=repo)
    assert runs("new", "exp", "true", "--overwrite", "-y").code == 0
    assert "patch" not in database(repo)["exp"]
    assert not (repo / ".runs/patches/exp.patch").exists()
    assert "git apply" not in runs("reproduce", "exp").out


def test_a_change_of_the_same_size_in_the_same_second_as_the_commit(runs, repo):
    """Racy git: the file's size and mtime match the index's stat data; the change must still be seen
    (the copied index keeps its own mtime, by which git knows which entries to reread)."""
    path = repo / "same.txt"
    for attempt in range(5):  # all within one second, as git's stat data counts time
        time.sleep(1 - time.time() % 1 + 0.01)
        path.write_text(f"aaa{attempt}\n")
        before = path.stat()
        commit_all(repo, "same size")
        path.write_text("bbbb\n")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if int(path.stat().st_ctime) == int(before.st_ctime):
            break
    assert runs("new", "exp", "true", "--allow-dirty").code == 0
    assert "+bbbb" in (repo / ".runs/patches/exp.patch").read_text()
