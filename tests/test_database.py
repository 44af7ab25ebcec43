"""The runs database as a whole: torn appends, files that cannot be spliced, hand-written
formatting, damaged files, full and read-only disks, and concurrent writers.

Everything is real: files on disk, `runs` in this process or as a subprocess, tmpfs and
read-only bind mounts (skipped where mounting is not allowed), SIGKILL at the fault points.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml

from runs_manager.store import yamlfile
from runs_manager.store.database import Database
from runs_manager.errors import RunsError
from tests.conftest import ROOT, error_line
from tests.dbfiles import DB, SHA, many, run_text

@pytest.fixture
def repo_db(repo: Path) -> Path:
    path = repo / DB
    path.parent.mkdir()
    return path


def truth(path: Path) -> Dict[str, Any]:
    return yaml.safe_load(path.read_bytes().decode("utf-8")) or {}


def indexed(path: Path) -> List[Tuple[str, Dict[str, Any]]]:
    with Database(str(path)).reading() as index:
        return list(index.entries())




def python(script: str, env: Optional[Dict[str, str]] = None, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a Python snippet that uses runs_manager, in a process of its own."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    environment.pop("RUNS_CRASH_AT", None)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60, **kwargs)


# 2. Torn appends ---------------------------------------------------------------------------


@pytest.mark.parametrize("next_command", [["list"], ["table"], ["lookup", "run1", "description"]])
def test_torn_append_by_runs_new_is_cut_by_the_next_command(
    repo_db: Path, runs: Any, runs_process: Any, tmux: Any, next_command: List[str]
) -> None:
    repo_db.write_text(many(3))
    assert runs("list").code == 0  # index built
    before = repo_db.read_bytes()

    result = runs_process("new", "torn", "python main.py", "--description=half of me", env={"RUNS_CRASH_AT": "append:torn"})
    assert result.code == -9, result.err
    torn = repo_db.read_bytes()
    assert torn.startswith(before) and len(torn) > len(before)
    assert torn[len(before) :].startswith(b"torn:")  # half an entry really is there
    assert Path(str(repo_db) + ".pending").exists()

    result = runs(*next_command)
    assert result.code == 0, result.err
    assert result.err == ""
    if next_command == ["list"]:
        assert result.out == "run0\nrun1\nrun2\n"
    elif next_command == ["table"]:
        assert [line.split()[0] for line in result.out.splitlines()[2:]] == ["run0", "run1", "run2"]
    else:
        assert result.out == "seed 0001\n"
    assert repo_db.read_bytes() == before  # the half entry is gone, nothing else changed
    assert list(truth(repo_db)) == ["run0", "run1", "run2"]
    assert not Path(str(repo_db) + ".pending").exists()
    assert "torn" not in tmux.sessions()  # recovery stopped the half-made run
    assert not (repo_db.parent / "tensorboard" / "torn").exists()
    # And the next run goes where it should.
    with Database(str(repo_db)).writing() as txn:
        txn.add("after", {"command": "python after.py"})
    assert list(truth(repo_db)) == ["run0", "run1", "run2", "after"]


def test_torn_append_through_the_api_is_cut_by_the_next_reader(dbpath: Path) -> None:
    dbpath.write_text(many(40))
    assert len(indexed(dbpath)) == 40
    before = dbpath.read_bytes()
    script = f"""
from runs_manager.store.database import Database
with Database({str(dbpath)!r}).writing() as txn:
    txn.add("torn", {{"command": "python train.py " + "x" * 300, "description": "long enough to tear"}})
"""
    assert python(script, env={"RUNS_CRASH_AT": "append:torn"}).returncode == -9
    assert len(dbpath.read_bytes()) > len(before)
    names = [name for name, _ in indexed(dbpath)]
    assert names == [f"run{i}" for i in range(40)]
    assert dbpath.read_bytes() == before
    assert truth(dbpath) == dict(indexed(dbpath))


def crash_after_appending_a_run(dbpath: Path) -> None:
    """Three runs, then a process killed right after appending a fourth, 'whole' (through
    the plain API: a Transaction that recorded no intent)."""
    dbpath.write_text(many(3))
    assert len(indexed(dbpath)) == 3
    script = f"""
from runs_manager.store.database import Database
with Database({str(dbpath)!r}).writing() as txn:
    txn.add("whole", {{"command": "python whole.py"}})
"""
    assert python(script, env={"RUNS_CRASH_AT": "append:written"}).returncode == -9


def test_journal_left_by_a_complete_append_keeps_the_run(dbpath: Path) -> None:
    crash_after_appending_a_run(dbpath)
    assert Path(str(dbpath) + ".pending").exists()
    complete = dbpath.read_bytes()
    assert [name for name, _ in indexed(dbpath)] == ["run0", "run1", "run2", "whole"]
    with Database(str(dbpath)).writing() as txn:
        assert txn.names() == ["run0", "run1", "run2", "whole"]
    assert dbpath.read_bytes() == complete
    assert not Path(str(dbpath) + ".pending").exists()


def test_journal_left_by_a_complete_api_append_then_a_runs_command(dbpath: Path, runs: Any) -> None:
    """The journal of a Transaction that recorded no intent (the plain API) must not break
    the next `runs` command, which recovers interrupted `runs new` intents."""
    crash_after_appending_a_run(dbpath)
    result = runs_in_subprocess("list")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "run0\nrun1\nrun2\nwhole\n"
    assert list(truth(dbpath)) == ["run0", "run1", "run2", "whole"]


def runs_in_subprocess(*argv: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runs_manager", *argv],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_journal_does_not_cut_a_file_that_was_replaced_since(dbpath: Path) -> None:
    """After a torn append someone fixes the file by hand (the editor writes a new file);
    the stale journal must not truncate the fixed file."""
    dbpath.write_text(many(3))
    assert len(indexed(dbpath)) == 3
    script = f"""
from runs_manager.store.database import Database
with Database({str(dbpath)!r}).writing() as txn:
    txn.add("torn", {{"command": "python torn.py", "description": "{'y' * 200}"}})
"""
    assert python(script, env={"RUNS_CRASH_AT": "append:torn"}).returncode == -9
    fixed = dbpath.read_bytes()
    fixed = fixed[: fixed.rindex(b"torn:")] + run_text("torn", 7).encode()
    replacement = dbpath.with_name("edited")
    replacement.write_bytes(fixed)
    os.replace(replacement, dbpath)
    assert [name for name, _ in indexed(dbpath)] == ["run0", "run1", "run2", "torn"]
    assert dbpath.read_bytes() == fixed


# 3. Files that cannot be spliced -----------------------------------------------------------


UNSPLITTABLE = {
    "flow": "{run1: {command: python a.py, commit: abc}, run2: {command: python b.py, description: 'x, y'}}\n",
    "flow-over-lines": "{\n  run1: {command: python a.py},\n  run2: {command: python b.py, tags: [a, b]},\n}\n",
    "merge-key": textwrap.dedent(
        """\
        base: &base
          command: python train.py
          commit: abc
          host: box
        run1:
          <<: *base
          description: one
        run2:
          <<: *base
          description: two
          host: other
        """
    ),
    "alias": "run1:\n  command: &cmd python train.py --long\n  commit: abc\nrun2:\n  command: *cmd\n  commit: def\n",
    "anchor-on-a-name": "&first run1:\n  command: python a.py\nrun2:\n  command: python b.py\n  parent: *first\n",
    "document-end": "run1:\n  command: python a.py\nrun2:\n  command: python b.py\n...\n",
    "document-end-then-comment": "run1:\n  command: python a.py\n...\n# written after the end\n",
    "crlf": "# made on Windows\r\nrun1:\r\n  command: python a.py\r\n  description: 'one\r\n    two'\r\nrun2:\r\n  command: python b.py\r\n",
    "null": "null\n",
    "tilde": "~\n",
    "empty-flow": "{}\n",
    "document-start-flow": "--- {run1: {command: x}}\n",
}
NEW = {"command": "python new.py", "description": "added"}


def write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))  # exactly these bytes: no newline translation


@pytest.mark.parametrize("kind", list(UNSPLITTABLE))
def test_unsplittable_file_reads(dbpath: Path, runs: Any, kind: str) -> None:
    write(dbpath, UNSPLITTABLE[kind])
    expected = truth(dbpath)
    assert indexed(dbpath) == list(expected.items())
    result = runs("list")
    assert (result.code, result.out.split()) == (0, list(expected))
    for name, entry in expected.items():
        result = runs("lookup", name, "command")
        assert (result.code, result.out) == (0, entry["command"] + "\n")


@pytest.mark.parametrize("kind", list(UNSPLITTABLE))
def test_unsplittable_file_add_and_delete(dbpath: Path, kind: str) -> None:
    write(dbpath, UNSPLITTABLE[kind])
    expected = truth(dbpath)
    db = Database(str(dbpath))
    with db.writing() as txn:
        txn.add("added", NEW)
    assert truth(dbpath) == {**expected, "added": NEW}
    assert list(truth(dbpath)) == list(expected) + ["added"]
    for name in list(expected):
        with db.writing() as txn:
            txn.remove([name])
        del expected[name]
        assert truth(dbpath) == {**expected, "added": NEW}, f"after deleting {name}"
        assert dict(indexed(dbpath)) == truth(dbpath)
    with db.writing() as txn:
        txn.add("last", NEW)
    assert truth(dbpath) == {"added": NEW, "last": NEW}


def test_deleting_the_anchor_entry_keeps_what_others_merged_from_it(dbpath: Path) -> None:
    write(dbpath, UNSPLITTABLE["merge-key"])
    expected = truth(dbpath)
    with Database(str(dbpath)).writing() as txn:
        txn.remove(["base"])
    assert truth(dbpath) == {"run1": expected["run1"], "run2": expected["run2"]}
    assert truth(dbpath)["run2"] == {"command": "python train.py", "commit": "abc", "host": "other", "description": "two"}


# 4. Simple files keep what people wrote ------------------------------------------------------


HAND_WRITTEN = [
    "# Experiments for the paper.\n# Keep this file sorted by date.\n\n",
    textwrap.dedent(
        """\
        baseline:   # the reference everything is compared with
            command: python train.py --lr 0.1
            commit: 1111111
            description: "first try"   # quoted on purpose

        """
    ),
    textwrap.dedent(
        """\
        doomed:
          command: python train.py --lr 10
          commit: '2222222'
          description: diverged
          # a comment inside the entry
        """
    ),
    textwrap.dedent(
        """\
        sweep/lr-0.01:
          command: >-
            python train.py
            --lr 0.01
          commit: 3333333
          tags: [sweep, 'lr']
          notes: |
            kept: this one
              is indented
          params: {lr: 0.01, layers: 4}
            # an indented comment after the entry

        """
    ),
    yamlfile.dump_entry("written-by-runs", {"command": "python x.py", "commit": SHA, "description": ""}).decode(),
    "# the end\n",
]


def test_deleting_a_run_leaves_the_bytes_of_every_other_run(dbpath: Path, runs: Any) -> None:
    write(dbpath, "".join(HAND_WRITTEN))
    assert list(truth(dbpath)) == ["baseline", "doomed", "sweep/lr-0.01", "written-by-runs"]
    result = runs("delete", "doomed", "--yes")
    assert result.code == 0, result.err
    assert dbpath.read_text() == "".join(HAND_WRITTEN[:2] + HAND_WRITTEN[3:])
    with Database(str(dbpath)).writing() as txn:
        txn.remove(["baseline"])
    assert dbpath.read_text() == "".join(HAND_WRITTEN[:1] + HAND_WRITTEN[3:])
    assert truth(dbpath)["sweep/lr-0.01"]["notes"] == "kept: this one\n  is indented\n"


def test_adding_a_run_appends_and_changes_no_byte_before_it(dbpath: Path) -> None:
    write(dbpath, "".join(HAND_WRITTEN))
    before = dbpath.read_bytes()
    with Database(str(dbpath)).writing() as txn:
        txn.add("new", NEW)
    assert dbpath.read_bytes() == before + yamlfile.dump_entry("new", NEW)


def test_a_comment_above_a_kept_run_survives_deleting_the_run_before_it(dbpath: Path) -> None:
    """People put the note about a run on the line above it."""
    write(dbpath, many(1, "a") + "# b was a mistake\n" + many(1, "b") + "# c is the one in the paper!\n" + many(1, "c"))
    with Database(str(dbpath)).writing() as txn:
        txn.remove(["b0"])
    assert "# c is the one in the paper!\n" + many(1, "c") in dbpath.read_text()
    assert list(truth(dbpath)) == ["a0", "c0"]


# 5. Damaged and hand-edited databases -------------------------------------------------------


MARKER = "hacked-marker"
DAMAGED: Dict[str, Tuple[bytes, List[str]]] = {
    "duplicate-run": (
        (many(1, "run") + many(1, "other") + run_text("run0", 5)).encode(),
        ["line 13", "run0", "twice", "line 1)"],
    ),
    "duplicate-field": (
        (many(1) + "run1:\n  command: a\n  commit: b\n  command: c\n").encode(),
        ["line 10", "command", "twice"],
    ),
    "python-tag-in-value": (
        (many(1) + f'run1:\n  command: !!python/object/apply:os.system ["echo hacked > {MARKER}"]\n').encode(),
        ["line 8", "python/object/apply"],
    ),
    "python-tag-as-entry": (
        (many(2) + f'run9: !!python/object/apply:os.system ["echo hacked > {MARKER}"]\n').encode(),
        ["line 13"],
    ),
    "python-tag-as-document": (f'!!python/object/apply:os.system ["echo hacked > {MARKER}"]\n'.encode(), ["line 1"]),
    "top-level-list": (b"- run1\n- run2\n", ["line 1", "mapping"]),
    "entry-is-a-string": ((many(2) + "run2: just a note\n").encode(), ["line 13", "run2", "mapping"]),
    "unclosed-bracket": ((many(1) + "run1:\n  command: x\n  tags: [a, b\nrun2:\n  command: y\n").encode(), ["line "]),
    "invalid-utf8": ((many(1) + "run1:\n  command: caf").encode() + b"\xe9\n", ["line 8", "UTF-8"]),
    "name-is-a-list": (b"run0:\n  command: x\n[a, b]:\n  command: y\n", ["line 3"]),
}
COMMANDS = [["list"], ["table"], ["lookup", "run0"], ["delete", "run0", "--yes"], ["new", "fresh", "true"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("kind", list(DAMAGED))
def test_damaged_database_is_reported_and_untouched(repo_db: Path, runs: Any, tmux: Any, kind: str, command: List[str]) -> None:
    data, expected = DAMAGED[kind]
    repo_db.write_bytes(data)
    result = runs(*command)
    err = error_line(result)
    assert f"{DB}" in err
    for part in expected:
        assert part in err, err
    assert result.out == ""
    assert repo_db.read_bytes() == data
    assert not (repo_db.parent.parent / MARKER).exists()
    assert not Path(MARKER).exists()
    assert "fresh" not in tmux.sessions()


def test_duplicate_run_is_reported_even_when_appended_later(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(5))
    assert runs("list").code == 0
    with open(dbpath, "a") as f:
        f.write(run_text("run3", 9))
    data = dbpath.read_bytes()
    err = error_line(runs("lookup", "run3", "description"))
    assert "line 31" in err and "run3" in err
    assert dbpath.read_bytes() == data


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_directory_where_the_database_should_be(repo_db: Path, runs: Any, command: List[str]) -> None:
    repo_db.mkdir()
    err = error_line(runs(*command))
    assert DB in err and "directory" in err
    assert repo_db.is_dir() and os.listdir(repo_db) == []


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_dangling_symlink_where_the_database_should_be(repo_db: Path, runs: Any, command: List[str]) -> None:
    target = repo_db.parent / "elsewhere" / "runs.yml"
    repo_db.symlink_to(target)
    err = error_line(runs(*command))
    assert DB in err and "link" in err
    assert repo_db.is_symlink() and not target.exists() and not target.parent.exists()


def test_symlinked_database_stays_a_symlink(dbpath: Path, tmp_path: Path) -> None:
    real = tmp_path / "shared" / "runs.yml"
    real.parent.mkdir()
    real.write_text(many(3))
    dbpath.symlink_to(real)
    with Database(str(dbpath)).writing() as txn:
        txn.remove(["run1"])
        txn.add("new", NEW)
    assert dbpath.is_symlink()
    assert list(truth(real)) == ["run0", "run2", "new"]


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "# nothing yet", "\n\n", "---\n"], ids=["empty", "comment", "comment-no-newline", "blank", "document-start"])
def test_empty_databases_are_not_errors(dbpath: Path, runs: Any, text: str) -> None:
    write(dbpath, text)
    result = runs("list")
    assert (result.code, result.out, result.err) == (0, "", "")
    result = runs("table")
    assert result.code == 0 and result.out.split()[:7] == ["name", "status", "command", "commit", "datetime", "description", "host"]
    assert len(result.out.splitlines()) == 2  # the header and its rule, no rows
    result = runs("lookup", "x")
    assert result.code == 1 and "no run named 'x'" in result.err
    with Database(str(dbpath)).writing() as txn:
        txn.add("first", NEW)
    assert truth(dbpath) == {"first": NEW}
    if text.startswith("#") and text.endswith("\n"):
        assert dbpath.read_text().startswith(text)  # the comment is kept


ODD = textwrap.dedent(
    """\
    bare:
      command: python bare.py
    rich:
      command: python rich.py
      commit: 4444444
      datetime: 2020-01-02 03:04:05
      description: 42
      host: [gpu1, gpu2]
      lr: 0.001
      tags: [a, b]
      notes: {k: v}
      when: 2021-03-04
      flag: yes
      nothing: null
    empty:
    """
)


def test_missing_extra_and_non_string_fields(dbpath: Path, runs: Any) -> None:
    write(dbpath, ODD)
    result = runs("list")
    assert (result.code, result.out) == (0, "bare\nrich\nempty\n")
    result = runs("table")
    assert result.code == 0, result.err
    rows = {line.split()[0]: line.split() for line in result.out.splitlines()[2:]}
    assert rows["bare"] == ["bare", "unknown", "python", "bare.py", "_", "_", "_", "_"]
    assert rows["empty"] == ["empty", "unknown", "_", "_", "_", "_", "_"]
    assert "2020-01-02T03:04:05" in rows["rich"] and "42" in rows["rich"]
    assert '["gpu1",' in rows["rich"]
    checks = {
        ("rich", "lr"): "0.001\n",
        ("rich", "when"): "2021-03-04\n",
        ("rich", "description"): "42\n",
        ("rich", "flag"): "true\n",
        ("rich", "tags"): "- a\n- b\n",
        ("rich", "notes"): "k: v\n",
        ("rich", "nothing"): "null\n",
        ("bare", "command"): "python bare.py\n",
    }
    for (name, key), out in checks.items():
        result = runs("lookup", name, key)
        assert (result.code, result.out) == (0, out), (name, key, result)
    result = runs("lookup", "bare", "commit")
    assert result.code == 1 and "has no key 'commit'" in result.err
    result = runs("lookup", "bare")
    assert (result.code, result.out) == (0, "command: python bare.py\n")
    # And it can still be changed, each run keeping what it had.
    with Database(str(dbpath)).writing() as txn:
        txn.remove(["bare"])
        txn.add("added", NEW)
    assert truth(dbpath) == {**{k: v for k, v in yaml.safe_load(ODD).items() if k != "bare"}, "added": NEW}


# 6. Full and read-only disks ------------------------------------------------------------------


PAGE = 4096


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of the test's own (root only)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(directory: Path, leave_pages: int = 0) -> None:
    """Fill the file system of ``directory`` to the last page, then free ``leave_pages``."""
    fillers = directory / "filler"
    fillers.mkdir(exist_ok=True)
    made = []
    while True:
        path = fillers / str(len(made))
        try:
            with open(path, "wb") as f:
                f.write(b"x" * PAGE)
        except OSError as e:
            assert e.errno == errno.ENOSPC
            path.unlink()
            break
        made.append(path)
    for path in made[:leave_pages]:
        path.unlink()
    probe = os.statvfs(directory)
    assert probe.f_bavail * probe.f_frsize == leave_pages * PAGE


def unfill(directory: Path) -> None:
    for path in (directory / "filler").iterdir():
        path.unlink()


def padded_to_page_end(text: str) -> str:
    """``text`` after a comment that makes the file end one byte before a page boundary, so
    that any append needs a new page."""
    pad = (PAGE - 1 - len(text) - len("#\n")) % PAGE
    return "#" + "-" * pad + "\n" + text


def test_append_on_a_full_disk_fails_cleanly(tmpfs: Path) -> None:
    path = tmpfs / "runs.yml"
    path.write_text(padded_to_page_end(many(5)))
    assert path.stat().st_size % PAGE == PAGE - 1
    assert len(indexed(path)) == 5
    before = path.read_bytes()
    fill(tmpfs, leave_pages=1)  # room for the journal, none for the append
    with pytest.raises(RunsError) as caught:
        with Database(str(path)).writing() as txn:
            txn.add("new", NEW)
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert path.read_bytes() == before
    assert [name for name, _ in indexed(path)] == [f"run{i}" for i in range(5)]
    unfill(tmpfs)
    with Database(str(path)).writing() as txn:
        txn.add("new", NEW)
    assert list(truth(path)) == [f"run{i}" for i in range(5)] + ["new"]


@pytest.mark.parametrize("change", ["delete", "add-big", "add-to-unsplittable", "delete-from-unsplittable"])
def test_changes_on_a_full_disk_fail_cleanly(tmpfs: Path, change: str) -> None:
    path = tmpfs / "runs.yml"
    path.write_text(many(30) if "unsplittable" not in change else UNSPLITTABLE["merge-key"])
    assert indexed(path)
    before = path.read_bytes()
    fill(tmpfs)
    with pytest.raises((RunsError, OSError)) as caught:
        with Database(str(path)).writing() as txn:
            if change.startswith("delete"):
                txn.remove([txn.names()[0]])
            else:
                txn.add("new", {"command": "python big.py", "description": "z" * 3 * PAGE})
    assert "No space left on device" in str(caught.value)
    assert path.read_bytes() == before
    unfill(tmpfs)
    assert dict(indexed(path)) == truth(path)
    assert path.read_bytes() == before


def test_runs_new_on_a_full_disk_gives_a_clear_error(repo: Path, tmpfs: Path, runs: Any, tmux: Any) -> None:
    runs_dir = tmpfs / "runs"
    runs_dir.mkdir()
    path = runs_dir / ".runs.yml"
    path.write_text(many(3))
    (runs_dir / ".gitignore").write_text("*\n")
    assert runs("list", "--runs-dir", str(runs_dir)).out.split() == ["run0", "run1", "run2"]
    before = path.read_bytes()
    fill(tmpfs)
    result = runs("new", "big", "python main.py", "--description", "d" * 3 * PAGE, "--runs-dir", str(runs_dir))
    err = error_line(result)
    assert "No space left on device" in err
    assert path.read_bytes() == before
    assert "big" not in tmux.sessions()
    unfill(tmpfs)
    assert runs("list", "--runs-dir", str(runs_dir)).out.split() == ["run0", "run1", "run2"]


def test_index_update_failing_on_a_full_disk_does_not_break_the_transaction(tmpfs: Path) -> None:
    """The YAML append fits in the file's last page, the index update does not fit: the
    change has happened, and the rest of the transaction must still see every run."""
    path = tmpfs / "runs.yml"
    path.write_text("# a few runs\n" + many(5))
    assert path.stat().st_size % PAGE < PAGE // 2
    assert len(indexed(path)) == 5
    fill(tmpfs, leave_pages=1)  # the journal takes it
    with Database(str(path)).writing() as txn:
        txn.add("first", NEW)
        assert txn.names() == [f"run{i}" for i in range(5)] + ["first"]
        txn.add("second", NEW)
        assert txn.entry("run0") == truth(path)["run0"]
    assert list(truth(path)) == [f"run{i}" for i in range(5)] + ["first", "second"]
    unfill(tmpfs)
    assert dict(indexed(path)) == truth(path)


def test_reading_with_a_stale_index_on_a_full_disk(tmpfs: Path) -> None:
    """The index is a cache: when it is stale and cannot be rewritten, `runs list` still
    answers from the YAML file, or at least fails with one clear line."""
    runs_dir = tmpfs / "runs"
    runs_dir.mkdir()
    path = runs_dir / ".runs.yml"
    path.write_text(many(20))
    assert len(indexed(path)) == 20
    with open(path, "a") as f:
        f.write(run_text("by-hand", 99))
    os.unlink(str(path) + ".index")
    fill(tmpfs)
    result = runs_in_subprocess("list", "--runs-dir", str(runs_dir))
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 0:
        assert result.stdout.split() == [f"run{i}" for i in range(20)] + ["by-hand"]
    else:
        assert result.returncode == 1 and result.stderr.startswith("runs: error: ") and result.stderr.count("\n") == 1


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    """Make a directory read-only for everyone, root included: a read-only bind mount on itself."""
    mounted: List[Path] = []

    def make(directory: Path) -> None:
        done = subprocess.run(["mount", "--bind", str(directory), str(directory)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount: {done.stderr.strip()}")
        mounted.append(directory)
        done = subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")
        try:
            (directory / "probe").touch()
        except OSError as e:
            assert e.errno == errno.EROFS
        else:
            pytest.skip("the read-only mount is writable")

    yield make
    for directory in reversed(mounted):
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True)


@pytest.mark.parametrize("index", ["fresh", "stale", "missing", "stale-append"])
def test_read_only_runs_directory(repo_db: Path, runs: Any, tmux: Any, read_only: Any, index: str) -> None:
    repo_db.write_text(many(4))
    (repo_db.parent / ".gitignore").write_text("*\n")
    assert runs("list").code == 0
    if index == "stale":
        repo_db.write_text(repo_db.read_text().replace("seed 0002", "seed 2222"))
    elif index == "missing":
        os.unlink(str(repo_db) + ".index")
    elif index == "stale-append":
        with open(repo_db, "a") as f:
            f.write(run_text("by-hand", 7))
    expected = truth(repo_db)
    before = {p.name: p.read_bytes() for p in repo_db.parent.iterdir() if p.is_file()}
    read_only(repo_db.parent)

    result = runs("list")
    assert (result.code, result.out.split(), result.err) == (0, list(expected), "")
    result = runs("table")
    assert result.code == 0 and [line.split()[0] for line in result.out.splitlines()[2:]] == list(expected)
    result = runs("lookup", "run2", "description")
    assert (result.code, result.out) == (0, expected["run2"]["description"] + "\n")
    assert result.out == ("seed 2222\n" if index == "stale" else "seed 0002\n")

    result = runs("new", "fresh", "true")
    err = error_line(result)
    assert "Read-only file system" in err
    assert "fresh" not in tmux.sessions()
    assert {p.name: p.read_bytes() for p in repo_db.parent.iterdir() if p.is_file()} == before


def test_read_only_runs_directory_after_a_torn_append(repo_db: Path, runs: Any, runs_process: Any, read_only: Any) -> None:
    """Readers never see half a change, even where they cannot take the lock to cut it off
    (a colleague's runs directory they may only read, a read-only snapshot)."""
    repo_db.write_text(many(3))
    assert runs("list").code == 0
    result = runs_process("new", "torn", "python main.py", env={"RUNS_CRASH_AT": "append:torn"})
    assert result.code == -9
    read_only(repo_db.parent)
    result = runs("list")
    assert (result.code, result.out, result.err) == (0, "run0\nrun1\nrun2\n", "")


# 8. Concurrent writers ----------------------------------------------------------------------------


WRITER = """
import sys
from runs_manager.store.database import Database
path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    with Database(path).writing() as txn:
        txn.add(f"w{worker}/run{i}", {"command": f"python train.py --worker {worker} --i {i}", "commit": "c" * 40,
                                      "description": "written concurrently " * (i % 4), "worker": worker, "i": i})
"""
READER = """
import sys, time
from runs_manager.store.database import Database
path, stop = sys.argv[1], sys.argv[2]
import os
reads = 0
last = 0
while not os.path.exists(stop):
    with Database(path).reading() as index:
        entries = list(index.entries())
    names = [n for n, _ in entries]
    assert len(names) == len(set(names)), "duplicate names"
    assert len(names) >= last, "runs disappeared"
    for name, entry in entries:
        if "worker" in entry:
            assert entry["command"].endswith(f"--i {entry['i']}"), (name, entry)
    last = len(names)
    reads += 1
print(reads)
"""


def test_concurrent_writers_lose_nothing(dbpath: Path) -> None:
    workers, count = 8, 25
    dbpath.write_text(many(3))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RUNS_CRASH_AT", None)
    stop = dbpath.parent / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(dbpath), str(stop)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(dbpath), str(w), str(count)], env=env, stderr=subprocess.PIPE, text=True)
        for w in range(workers)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    stop.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out) > 0

    data = dbpath.read_bytes()
    loaded = yaml.safe_load(data.decode())
    expected = {f"w{w}/run{i}" for w in range(workers) for i in range(count)} | {f"run{i}" for i in range(3)}
    assert set(loaded) == expected and len(loaded) == workers * count + 3
    parser, runs = yamlfile.parse_all(data)  # also refuses duplicate names
    assert len(runs) == len(expected) and parser.simple
    for w in range(workers):  # each writer's runs in the order it added them
        mine = [name for name, _, _, _ in runs if name.startswith(f"w{w}/")]
        assert mine == [f"w{w}/run{i}" for i in range(count)]
    for name, entry in loaded.items():
        if name.startswith("w"):
            assert entry["command"] == f"python train.py --worker {entry['worker']} --i {entry['i']}"
    assert dict(indexed(dbpath)) == loaded
    os.unlink(str(dbpath) + ".index")
    assert dict(indexed(dbpath)) == loaded


def test_a_rewrite_that_drops_comments_says_so(dbpath: Path, capsys: pytest.CaptureFixture) -> None:
    dbpath.write_bytes(b"# my notes\r\n" + run_text("a", 1).replace("\n", "\r\n").encode())
    with Database(str(dbpath)).writing() as txn:
        txn.add("b", {"command": "python b.py"})
    assert list(truth(dbpath)) == ["a", "b"]
    assert "comments were not kept" in capsys.readouterr().err
    with Database(str(dbpath)).writing() as txn:  # canonical now: appended, nothing to say
        txn.add("c", {"command": "python c.py"})
    assert list(truth(dbpath)) == ["a", "b", "c"]
    assert capsys.readouterr().err == ""
