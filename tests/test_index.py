"""The SQLite index is derived data: whenever it and the YAML file disagree, the YAML file wins.

Each test changes the YAML file or the index behind runs' back (hand edits, appends by other
processes, crashes, damaged or foreign index files) and checks that the next command answers
exactly what yaml.safe_load reads from the file.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from runs_manager import fsutil
from runs_manager.store.database import Database
from runs_manager.store.index import SCHEMA, Index
from tests.conftest import ROOT
from tests.dbfiles import many, run_text

def truth(path: Path) -> Dict[str, Any]:
    """What a strict YAML reader finds in the file."""
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def indexed(path: Path) -> List[Tuple[str, Dict[str, Any]]]:
    with Database(str(path)).reading() as index:
        return list(index.entries())


def index_path(path: Path) -> Path:
    return Path(str(path) + ".index")


def assert_agrees(path: Path, runs: Any) -> None:
    """Every way of reading gives what the file holds, in file order."""
    expected = truth(path)
    assert indexed(path) == list(expected.items())
    result = runs("list")
    assert result.code == 0, result.err
    assert result.out.split() == list(expected)


def same_size_edit(path: Path, old: bytes, new: bytes) -> None:
    """Change bytes in place (the same inode, the same size), as an editor that writes in place does."""
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1
    with open(path, "r+b") as f:
        f.write(data.replace(old, new))


# Hand edits of the same size -------------------------------------------------------------


@pytest.mark.parametrize("how", ["at-once", "mtime-set-back", "index-looks-old", "long-after-mtime-set-back"])
def test_same_size_hand_edit_is_seen(dbpath: Path, runs: Any, how: str) -> None:
    db = Database(str(dbpath))
    for i in range(3):
        with db.writing() as txn:
            txn.add(f"run{i}", yaml.safe_load(run_text("x", i))["x"])
    assert indexed(dbpath)[1][1]["description"] == "seed 0001"
    if how == "long-after-mtime-set-back":
        # As if the file last changed long before the index was written: then the index
        # trusts the file's stat without reading it.
        past = time.time_ns() - 60 * 10**9
        os.utime(dbpath, ns=(past, past))
        assert indexed(dbpath)[1][1]["description"] == "seed 0001"
        ino = index_path(dbpath).stat().st_ino
        assert indexed(dbpath)[1][1]["description"] == "seed 0001"
        assert index_path(dbpath).stat().st_ino == ino  # fresh: not rebuilt
    before = os.stat(dbpath)
    if how == "index-looks-old":
        # The edit comes more than 2 s after the index was written.
        old = time.time_ns() - 3 * 10**9
        os.utime(index_path(dbpath), ns=(old, old))
    same_size_edit(dbpath, b"description: seed 0001", b"description: seed 0777")
    if how in ("mtime-set-back", "long-after-mtime-set-back"):
        os.utime(dbpath, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(dbpath)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    if how != "at-once" and how != "index-looks-old":
        assert after.st_mtime_ns == before.st_mtime_ns

    assert dict(indexed(dbpath))["run1"]["description"] == "seed 0777"
    result = runs("lookup", "run1", "description")
    assert (result.code, result.out) == (0, "seed 0777\n")
    assert_agrees(dbpath, runs)


def test_hand_edit_that_changes_the_size_is_seen(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(20))
    assert_agrees(dbpath, runs)
    dbpath.write_text(dbpath.read_text().replace("description: seed 0005", "description: a much longer text"))
    assert dict(indexed(dbpath))["run5"]["description"] == "a much longer text"
    assert_agrees(dbpath, runs)


# Appends by other processes --------------------------------------------------------------


def append_from_another_process(path: Path, text: str) -> None:
    subprocess.run(["sh", "-c", 'cat >> "$1"', "sh", str(path)], input=text.encode(), check=True)


def test_append_by_another_process_is_taken_in_incrementally(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(200))
    assert_agrees(dbpath, runs)
    ino = index_path(dbpath).stat().st_ino

    append_from_another_process(dbpath, run_text("extra1", 1000))
    assert_agrees(dbpath, runs)
    assert [name for name, _ in indexed(dbpath)][-2:] == ["run199", "extra1"]
    assert index_path(dbpath).stat().st_ino == ino, "an append must not rebuild the index"

    append_from_another_process(dbpath, "\n# two more, by hand\n" + run_text("extra2", 1001) + run_text("extra3", 1002))
    assert_agrees(dbpath, runs)
    assert index_path(dbpath).stat().st_ino == ino
    entries = dict(indexed(dbpath))
    assert entries["run0"] == truth(dbpath)["run0"] and entries["extra3"]["command"] == "python train.py --seed 1002"

    # runs' own append after theirs goes to the right place.
    with Database(str(dbpath)).writing() as txn:
        txn.add("ours", {"command": "python x.py"})
    assert list(truth(dbpath))[-4:] == ["extra1", "extra2", "extra3", "ours"]
    assert_agrees(dbpath, runs)


def test_append_without_final_newline_then_runs_appends(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(5))
    assert_agrees(dbpath, runs)
    append_from_another_process(dbpath, run_text("extra", 9).rstrip("\n"))
    assert_agrees(dbpath, runs)
    with Database(str(dbpath)).writing() as txn:
        txn.add("ours", {"command": "python x.py"})
    assert list(truth(dbpath)) == [f"run{i}" for i in range(5)] + ["extra", "ours"]
    assert truth(dbpath)["extra"]["host"] == "box"
    assert_agrees(dbpath, runs)


def test_appended_name_that_exists_is_reported_not_hidden(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(5))
    assert_agrees(dbpath, runs)
    append_from_another_process(dbpath, run_text("run2", 77))
    data = dbpath.read_bytes()
    result = runs("list")
    assert result.code == 1
    assert result.err.startswith("runs: error: ") and result.err.count("\n") == 1
    assert ".runs/.runs.yml, line 31:" in result.err and "run2" in result.err
    assert dbpath.read_bytes() == data


@pytest.mark.parametrize("tail", ["---\n", "--- # more runs\n", "%YAML 1.1\n---\n"], ids=["start", "start-comment", "directive"])
def test_appended_second_document_is_an_error_as_when_read_whole(dbpath: Path, runs: Any, tail: str) -> None:
    """Someone appends another database file, document marker and all: YAML allows one
    document here, so the file is invalid whether or not an index existed before."""
    dbpath.write_text(many(3))
    assert_agrees(dbpath, runs)
    append_from_another_process(dbpath, tail + run_text("extra", 5))
    with pytest.raises(yaml.YAMLError):
        truth(dbpath)
    data = dbpath.read_bytes()
    with_index = runs("list")
    index_path(dbpath).unlink()
    without_index = runs("list")
    assert without_index.code == 1 and ".runs/.runs.yml, line 19:" in without_index.err
    assert (with_index.code, with_index.out, with_index.err) == (without_index.code, without_index.out, without_index.err)
    assert dbpath.read_bytes() == data


def test_append_after_a_keep_block_scalar_changes_that_entry_and_the_index_follows(dbpath: Path, runs: Any) -> None:
    """Blank lines appended after a `|+` scalar belong to it: the last entry changed too."""
    dbpath.write_text(many(2) + "notes:\n  text: |+\n    first line\n")
    assert_agrees(dbpath, runs)
    append_from_another_process(dbpath, "\n\n" + run_text("extra", 5))
    assert truth(dbpath)["notes"]["text"] == "first line\n\n\n"
    assert dict(indexed(dbpath))["notes"] == truth(dbpath)["notes"]
    assert_agrees(dbpath, runs)


@pytest.mark.parametrize("chomping", ["|", "|+", ">"])
def test_runs_append_after_a_block_scalar_without_final_newline_keeps_that_entry(
    dbpath: Path, runs: Any, chomping: str
) -> None:
    """A hand-edited last entry ends in a block scalar and the editor wrote no final newline.
    Adding a run must not change what that entry says (nor leave the index believing it did not)."""
    dbpath.write_text(many(2) + f"notes:\n  text: {chomping}\n    first line")
    before = truth(dbpath)
    assert dict(indexed(dbpath)) == before
    with Database(str(dbpath)).writing() as txn:
        txn.add("ours", {"command": "python x.py"})
    after = truth(dbpath)
    assert after == {**before, "ours": {"command": "python x.py"}}
    assert_agrees(dbpath, runs)


# Crashes between the YAML file and the index ------------------------------------------------


@pytest.mark.parametrize("point", ["append:written", "index:written"])
def test_crash_between_yaml_and_index_during_runs_new(repo: Path, runs: Any, runs_process: Any, tmux: Any, point: str) -> None:
    path = repo / ".runs" / ".runs.yml"
    path.parent.mkdir()
    path.write_text(many(3))
    assert_agrees(path, runs)
    result = runs_process("new", "crashed", "true", env={"RUNS_CRASH_AT": point})
    assert result.code == -9, result.err
    assert "crashed" in truth(path)
    assert Path(str(path) + ".pending").exists()

    result = runs("list")
    assert result.code == 0, result.err
    assert result.out.split() == ["run0", "run1", "run2", "crashed"]
    assert truth(path)["crashed"]["command"] == "true"
    assert dict(indexed(path))["crashed"] == truth(path)["crashed"]
    assert "crashed" in tmux.sessions()  # a whole run: recovery keeps its session


def test_old_index_copied_back_after_an_append(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(10))
    assert_agrees(dbpath, runs)
    saved = index_path(dbpath).read_bytes()
    with Database(str(dbpath)).writing() as txn:
        txn.add("late", {"command": "python late.py"})
    index_path(dbpath).write_bytes(saved)  # as if the index update never happened
    assert [name for name, _ in indexed(dbpath)][-1] == "late"
    assert_agrees(dbpath, runs)


@pytest.mark.parametrize("change", ["delete", "rewrite"])
def test_old_index_copied_back_after_a_replace(dbpath: Path, runs: Any, change: str) -> None:
    dbpath.write_text(many(10) if change == "delete" else "{" + ", ".join(f"r{i}: {{command: c{i}}}" for i in range(10)) + "}\n")
    assert_agrees(dbpath, runs)
    first = list(truth(dbpath))[0]
    saved = index_path(dbpath).read_bytes()
    with Database(str(dbpath)).writing() as txn:
        if change == "delete":
            txn.remove([first])
        else:
            txn.add("late", {"command": "python late.py"})
    index_path(dbpath).write_bytes(saved)
    names = [name for name, _ in indexed(dbpath)]
    assert (first not in names) if change == "delete" else (names[-1] == "late")
    assert_agrees(dbpath, runs)


def test_crash_while_rebuilding_the_index(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(50))
    script = f"from runs_manager.store.database import Database\nwith Database({str(dbpath)!r}).reading() as i: print(i.names())"
    done = subprocess.run(
        [sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=str(ROOT), RUNS_CRASH_AT="index:rebuilding")
    )
    assert done.returncode == -9
    assert_agrees(dbpath, runs)
    assert not [n for n in os.listdir(dbpath.parent) if fsutil.TEMP_MARK in n], "temporary index files left behind"


# Damaged and foreign index files -----------------------------------------------------------


def damage(path: Path, how: str) -> None:
    index = index_path(path)
    data = index.read_bytes()
    if how == "deleted":
        index.unlink()
    elif how == "empty":
        index.write_bytes(b"")
    elif how == "truncated-header":
        index.write_bytes(data[:50])
    elif how == "truncated-half":
        index.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        index.write_bytes(os.urandom(len(data)))
    elif how == "text":
        index.write_text("not a database\n")
    elif how in ("other-schema", "other-schema-same-version", "other-schema-same-tables"):
        index.unlink()
        conn = sqlite3.connect(index)
        if how == "other-schema":
            conn.executescript("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'x');")
        elif how == "other-schema-same-version":
            conn.executescript(f"CREATE TABLE runs (name TEXT); INSERT INTO runs VALUES ('ghost'); PRAGMA user_version={SCHEMA};")
        else:
            conn.executescript(
                "CREATE TABLE runs (pos INTEGER PRIMARY KEY, name TEXT, length INTEGER, entry TEXT);"
                "CREATE TABLE state (id INTEGER PRIMARY KEY, json TEXT);"
                "INSERT INTO runs VALUES (1, 'ghost', 10, '{}'); INSERT INTO state VALUES (0, '{}');"
                f"PRAGMA user_version={SCHEMA};"
            )
        conn.commit()
        conn.close()
    elif how == "damaged-pages":
        # The file keeps its size and its first pages (header, schema, the state row), but the
        # pages of the runs table are overwritten: a disk error, a bad copy.
        conn = sqlite3.connect(index)
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        runs_root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        state_root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'state'").fetchone()[0]
        conn.close()
        assert len(data) > 8 * page_size
        broken = bytearray(data)
        for page in [runs_root] + list(range(state_root + 1, len(data) // page_size + 1)):
            broken[(page - 1) * page_size : page * page_size] = b"\xa5" * page_size
        index.write_bytes(bytes(broken))
    else:
        raise AssertionError(how)


DAMAGES = [
    "deleted", "empty", "truncated-header", "truncated-half", "garbage", "text",
    "other-schema", "other-schema-same-version", "other-schema-same-tables", "damaged-pages",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_or_foreign_index_is_rebuilt(dbpath: Path, runs: Any, how: str) -> None:
    dbpath.write_text(many(300))
    assert_agrees(dbpath, runs)
    yaml_before = dbpath.read_bytes()
    damage(dbpath, how)

    result = runs("table", "--pattern", "run29.")
    assert result.code == 0, result.err
    assert [line.split()[0] for line in result.out.splitlines()[2:]] == [f"run29{i}" for i in range(10)]
    assert_agrees(dbpath, runs)
    result = runs("lookup", "run150", "description")
    assert (result.code, result.out) == (0, "seed 0150\n")
    assert dbpath.read_bytes() == yaml_before
    # The index is whole again: a plain SQLite reader sees every run.
    conn = sqlite3.connect(index_path(dbpath))
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 300
    conn.close()
    # And it is trusted again: the next read does not rebuild it.
    ino = index_path(dbpath).stat().st_ino
    assert len(indexed(dbpath)) == 300
    assert index_path(dbpath).stat().st_ino == ino


@pytest.mark.parametrize("how", ["empty", "garbage", "damaged-pages"])
def test_damaged_index_then_a_write(dbpath: Path, runs: Any, how: str) -> None:
    dbpath.write_text(many(300))
    assert_agrees(dbpath, runs)
    damage(dbpath, how)
    with Database(str(dbpath)).writing() as txn:
        txn.remove(["run7"])
        txn.add("new", {"command": "python new.py"})
    expected = truth(dbpath)
    assert "run7" not in expected and list(expected)[-1] == "new" and len(expected) == 300
    assert_agrees(dbpath, runs)


# The YAML file replaced --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["renamed-over", "recreated"])
def test_yaml_replaced_by_another_file_of_the_same_size_and_mtime(dbpath: Path, runs: Any, how: str) -> None:
    dbpath.write_text(many(30))
    assert_agrees(dbpath, runs)
    before = os.stat(dbpath)
    other = dbpath.read_text().replace("run17:", "rux17:").replace("seed 0003", "seed 9993")
    assert len(other) == before.st_size
    if how == "renamed-over":
        temp = dbpath.with_name("replacement")
        temp.write_text(other)
        os.utime(temp, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(temp, dbpath)
        assert os.stat(dbpath).st_ino != before.st_ino
    else:
        dbpath.unlink()  # the inode number may well be reused
        dbpath.write_text(other)
        os.utime(dbpath, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(dbpath)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    entries = dict(indexed(dbpath))
    assert "rux17" in entries and "run17" not in entries
    assert entries["run3"]["description"] == "seed 9993"
    assert_agrees(dbpath, runs)


def test_yaml_deleted_or_emptied(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(5))
    assert_agrees(dbpath, runs)
    dbpath.write_text("")
    assert indexed(dbpath) == []
    assert runs("list").out == ""
    dbpath.write_text(many(2))
    assert_agrees(dbpath, runs)
    dbpath.unlink()
    assert indexed(dbpath) == []
    result = runs("list")
    assert (result.code, result.out) == (0, "")


def test_a_reader_keeps_its_snapshot_while_another_process_writes(dbpath: Path) -> None:
    """Readers never see half a change: a snapshot opened before a writer changes the file
    keeps answering as before, and the writer waits for it before updating the index."""
    dbpath.write_text(many(10))
    db = Database(str(dbpath))
    assert len(indexed(dbpath)) == 10
    script = (
        "from runs_manager.store.database import Database\n"
        f"with Database({str(dbpath)!r}).writing() as txn:\n"
        "    txn.remove(['run0'])\n"
        "    txn.add('new', {'command': 'x'})\n"
    )
    with db.reading() as index:
        writer = subprocess.Popen(
            [sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=str(ROOT)), stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 20
        while b"run0:" in dbpath.read_bytes():  # the writer has changed the YAML file
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.01)
        assert index.names() == [f"run{i}" for i in range(10)]
        assert index.entry("run0") is not None and index.entry("new") is None
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    with db.reading() as index:
        assert index.names() == [f"run{i}" for i in range(1, 10)] + ["new"]
    assert list(truth(dbpath)) == [f"run{i}" for i in range(1, 10)] + ["new"]


def test_index_open_refuses_what_is_not_an_index(tmp_path: Path) -> None:
    from runs_manager.store.index import IndexUnusable

    path = tmp_path / "x.index"
    with pytest.raises(IndexUnusable):
        Index.open(str(path), snapshot=True)
    path.write_bytes(b"\0" * 1000)
    with pytest.raises(IndexUnusable):
        Index.open(str(path), snapshot=True)
    path.unlink()
    index = Index.create(str(path))
    index.insert([("a", {"when": __import__("datetime").date(2020, 1, 2), 3: [1, None]}, 10)])
    index.commit()
    index.close()
    index = Index.open(str(path), snapshot=True)
    assert index.entry("a") == {"when": "2020-01-02", "3": [1, None]}
    with pytest.raises(IndexUnusable):
        index.state()  # no state row yet: unusable, so it gets rebuilt
    index.close()


def test_rebuilding_a_large_index_says_so_with_progress(dbpath: Path, runs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from runs_manager.store import database

    dbpath.write_text(many(300))
    monkeypatch.setattr(database, "SHOW_PROGRESS_BYTES", len(dbpath.read_bytes()) // 2)
    result = runs("list")
    assert result.code == 0 and len(result.out.split()) == 300
    lines = result.err.splitlines()
    assert lines[0].startswith(f"runs: indexing {os.path.join('.runs', '.runs.yml')}")
    assert lines[-1].endswith("100%")  # stderr is not a terminal: one line per step
    assert runs("list").err == ""  # built once: the next command says nothing


def test_small_rebuilds_are_silent(dbpath: Path, runs: Any) -> None:
    dbpath.write_text(many(30))
    result = runs("list")
    assert result.code == 0 and result.err == ""


@pytest.mark.parametrize("kept", ["not json", "{}", '[["lr"]]', '[[1, "0.1", 0.1]]', '[["lr", 3, 3]]', "[1]"])
def test_kept_parameters_of_another_form_rebuild_the_index(dbpath: Path, runs: Any, kept: str) -> None:
    dbpath.write_text("a:\n  command: python t.py --lr 0.1\nb:\n  command: python t.py --lr 0.2\n")
    assert runs("list").code == 0  # builds the index
    conn = sqlite3.connect(index_path(dbpath))
    conn.execute("UPDATE runs SET params = ? WHERE name = 'a'", (kept,))
    conn.commit()
    conn.close()
    for argv in (["table", "-c", "name,lr", "-f", "csv"], ["table", "--params", "-c", "name", "-f", "csv"]):
        result = runs(*argv)
        assert result.code == 0 and result.out.splitlines()[1:] == ["a,0.1", "b,0.2"], result
        if argv[1] == "-c":  # rebuilt: the next one is served as kept
            conn = sqlite3.connect(index_path(dbpath))
            assert conn.execute("SELECT params FROM runs WHERE name = 'a'").fetchone()[0] == '[["lr", "0.1", 0.1]]'
            conn.execute("UPDATE runs SET params = ? WHERE name = 'a'", (kept,))
            conn.commit()
            conn.close()
