"""Transaction.change and Transaction.update: runs replaced, renamed and removed in place.

The YAML file is spliced (streamed into a temporary file with the new text in place, then
renamed over the old one): every byte that is not a changed run stays as it was, the index
follows without a rebuild, and memory stays bounded however large the file is.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml

from runs_manager.store import yamlfile
from runs_manager.store.database import HEADER, Database
from runs_manager.store.index import Index
from tests.conftest import ROOT
from tests.dbfiles import many, run_text

Entry = Dict[str, Any]


# Helpers ---------------------------------------------------------------------------------


def truth(path: Path) -> Dict[str, Entry]:
    """The file as a strict YAML parser reads it."""
    return yaml.safe_load(path.read_bytes().decode("utf-8")) or {}


def assert_index_follows(path: Path) -> None:
    """The index describes the file as it is now (so no reader rebuilds it), and answers
    exactly what a full YAML parse gives, before and after it is rebuilt from scratch."""
    data = path.read_bytes()
    index = Index.open(str(path) + ".index", snapshot=True)
    try:
        state = index.state()
    finally:
        index.close()
    assert state.same_stat(os.stat(path)), "the index was left describing the old file"
    assert state.crc == zlib.crc32(data), "the index holds the CRC of other content"
    assert state.ends_with_newline == data.endswith(b"\n")
    expected = list(truth(path).items())
    assert Database(str(path)).read(lambda i: i.entries()) == expected
    assert Database(str(path)).read(lambda i: i.names()) == [name for name, _ in expected]
    with Database(str(path)).reading() as index:
        for name, entry in expected:
            assert index.entry(name) == entry, name
    os.unlink(str(path) + ".index")
    assert Database(str(path)).read(lambda i: i.entries()) == expected


def entry_span(text: str, name: str) -> Tuple[int, int]:
    """Where run ``name``'s own lines are: its key line and the indented lines after it
    (not blank lines or top-level comments that follow)."""
    match = re.search(rf"^{re.escape(name)}:[^\n]*\n", text, re.M)
    assert match, name
    stop = match.end()
    for line in re.finditer(r"[^\n]*(?:\n|$)", text[stop:]):
        chunk = line.group(0)
        if not chunk or not chunk.startswith((" ", "\t")):
            break
        stop += len(chunk)
    return match.start(), stop


def spliced(text: str, name: str, replacement: str) -> str:
    start, stop = entry_span(text, name)
    return text[:start] + replacement + text[stop:]


def dump(name: str, entry: Entry) -> str:
    return yamlfile.dump_entry(name, entry).decode("utf-8")


def write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))


def build_index(path: Path) -> None:
    Database(str(path)).read(lambda i: i.names())


NEW: Entry = {"command": "python train.py --seed 99", "description": "changed", "exit_code": 0}


# Update keeps every other byte --------------------------------------------------------------


@pytest.mark.parametrize("which", ["run0", "run2", "run4"], ids=["first", "middle", "last"])
def test_update_of_a_runs_written_file_changes_only_that_entry(dbpath: Path, which: str) -> None:
    """In a file `runs` wrote, updating the first, a middle or the last run replaces its
    text and leaves every other byte identical; the index follows."""
    before = HEADER.decode() + many(5)
    write(dbpath, before)
    build_index(dbpath)
    with Database(str(dbpath)).writing() as txn:
        txn.update(which, NEW)
    assert dbpath.read_text() == spliced(before, which, dump(which, NEW))
    assert truth(dbpath)[which] == NEW
    assert list(truth(dbpath)) == [f"run{i}" for i in range(5)]
    assert_index_follows(dbpath)


HAND_WRITTEN = (
    "# my experiments\n"
    "\n"
    "# about a\n"
    "a:\n"
    "  command: python a.py   # an inline comment\n"
    "  n: 1\n"
    "\n"
    "# ---- sweeps, May ----\n"
    "\n"
    "b:\n"
    "  command: python b.py\n"
    "  n: 2\n"
    "# about c\n"
    "c:\n"
    "  command: python c.py\n"
    "  n: 3\n"
    "\n"
    "# the end\n"
)


@pytest.mark.parametrize("which", ["a", "b", "c"], ids=["first", "middle", "last"])
def test_update_of_a_hand_written_file_keeps_the_text_around_the_entry(dbpath: Path, which: str) -> None:
    """Blank lines and comments between runs (a section heading, a closing note) are not
    part of the run above them: updating that run (as the supervisor does when it ends)
    must keep them, like the comment lines above the run itself."""
    write(dbpath, HAND_WRITTEN)
    build_index(dbpath)
    entry = {**truth(dbpath)[which], "exit_code": 0}
    with Database(str(dbpath)).writing() as txn:
        txn.update(which, entry)
    assert truth(dbpath)[which] == entry
    assert dbpath.read_text() == spliced(HAND_WRITTEN, which, dump(which, entry))
    assert_index_follows(dbpath)


def test_update_keeps_the_comments_directly_above_the_run(dbpath: Path) -> None:
    """The comment lines directly above a run belong to it and stay with its new text."""
    before = many(1, "a") + "# b is the one in the paper\n# (keep)\n" + many(1, "b") + many(1, "c")
    write(dbpath, before)
    with Database(str(dbpath)).writing() as txn:
        txn.update("b0", NEW)
    assert dbpath.read_text() == many(1, "a") + "# b is the one in the paper\n# (keep)\n" + dump("b0", NEW) + many(1, "c")
    assert_index_follows(dbpath)


# Renames -------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["run0", "run2", "run4"], ids=["first", "middle", "last"])
def test_rename_keeps_the_run_in_its_place(dbpath: Path, which: str) -> None:
    """A renamed run stays where it was in the file; every other byte is unchanged."""
    before = HEADER.decode() + many(5)
    write(dbpath, before)
    entry = truth(dbpath)[which]
    with Database(str(dbpath)).writing() as txn:
        txn.change({which: ("renamed/" + which, entry)})
    assert dbpath.read_text() == spliced(before, which, dump("renamed/" + which, entry))
    assert list(truth(dbpath)) == [("renamed/" + n if n == which else n) for n in (f"run{i}" for i in range(5))]
    assert_index_follows(dbpath)
    assert Database(str(dbpath)).read(lambda i: i.has(which)) is False
    assert Database(str(dbpath)).read(lambda i: i.first_in_group("renamed")) == "renamed/" + which


def test_rename_keeps_the_comment_above(dbpath: Path) -> None:
    write(dbpath, many(1, "a") + "# note on b\n" + many(1, "b"))
    entry = truth(dbpath)["b0"]
    with Database(str(dbpath)).writing() as txn:
        txn.change({"b0": ("b-new", entry)})
    assert dbpath.read_text() == many(1, "a") + "# note on b\n" + dump("b-new", entry)
    assert_index_follows(dbpath)


def test_rename_keeps_a_section_comment_below(dbpath: Path) -> None:
    """A heading for the runs that follow, separated from them by a blank line, survives a
    rename of the run above it."""
    before = many(1, "a") + "# ---- sweeps ----\n\n" + many(1, "b")
    write(dbpath, before)
    entry = truth(dbpath)["a0"]
    with Database(str(dbpath)).writing() as txn:
        txn.change({"a0": ("a-new", entry)})
    assert dbpath.read_text() == dump("a-new", entry) + "# ---- sweeps ----\n\n" + many(1, "b")


def test_names_can_be_swapped_in_one_change(dbpath: Path) -> None:
    """New names may be names of runs changed in the same call (a swap): the file is right
    and the index follows it, rather than being thrown away for the next reader to rebuild."""
    write(dbpath, many(3))
    build_index(dbpath)
    e0, e1, e2 = truth(dbpath)["run0"], truth(dbpath)["run1"], truth(dbpath)["run2"]
    with Database(str(dbpath)).writing() as txn:
        txn.change({"run0": ("run1", e0), "run1": ("run0", e1)})
    assert list(truth(dbpath).items()) == [("run1", e0), ("run0", e1), ("run2", e2)]
    assert os.path.exists(str(dbpath) + ".index"), (
        "the index was discarded: renaming its rows one by one broke UNIQUE(name) half-way through the swap"
    )
    assert_index_follows(dbpath)


# Several changes at once ------------------------------------------------------------------


def test_several_changes_and_removals_in_one_call(dbpath: Path) -> None:
    """Renames, updates and removals all land in one replace of the file, in place."""
    before = HEADER.decode() + many(7)
    write(dbpath, before)
    build_index(dbpath)
    ino = os.stat(dbpath).st_ino
    renamed = {**truth(dbpath)["run1"], "description": "renamed"}
    with Database(str(dbpath)).writing() as txn:
        txn.change({"run1": ("g/one", renamed), "run3": None, "run4": ("run4", NEW), "run6": None, "absent": None})
    expected = before
    expected = spliced(expected, "run1", dump("g/one", renamed))
    expected = expected.replace(run_text("run3", 3), "")
    expected = spliced(expected, "run4", dump("run4", NEW))
    expected = expected.replace(run_text("run6", 6), "")
    assert dbpath.read_text() == expected
    assert list(truth(dbpath)) == ["run0", "g/one", "run2", "run4", "run5"]
    assert os.stat(dbpath).st_ino != ino, "not replaced atomically (a new file renamed over the old)"
    assert [p for p in os.listdir(dbpath.parent) if ".tmp-" in p] == []
    assert_index_follows(dbpath)


def test_changes_then_appends_then_changes(dbpath: Path) -> None:
    """The index stays right across a mix of splices and appends in separate transactions."""
    write(dbpath, many(3))
    db = Database(str(dbpath))
    with db.writing() as txn:
        txn.update("run1", NEW)
    with db.writing() as txn:
        txn.add("added", {"command": "python added.py"})
    with db.writing() as txn:
        txn.change({"run0": None, "added": ("added-renamed", {"command": "python added.py", "exit_code": 1})})
    assert list(truth(dbpath)) == ["run1", "run2", "added-renamed"]
    assert truth(dbpath)["added-renamed"] == {"command": "python added.py", "exit_code": 1}
    assert_index_follows(dbpath)


# A last entry without a final newline ----------------------------------------------------


NO_NEWLINE = many(3) + "last:\n  command: python last.py\n  n: 4"


@pytest.mark.parametrize(
    "change",
    [
        {"last": ("last", NEW)},
        {"run1": ("run1", NEW)},
        {"last": ("renamed", {"command": "python last.py", "n": 4})},
        {"last": None},
        {"run2": None},
    ],
    ids=["update-last", "update-middle", "rename-last", "remove-last", "remove-before-last"],
)
def test_file_whose_last_entry_has_no_final_newline(dbpath: Path, change: Dict[str, Optional[Tuple[str, Entry]]]) -> None:
    """Changes are right, and a run added afterwards does not run into the last line."""
    write(dbpath, NO_NEWLINE)
    build_index(dbpath)
    expected = dict(truth(dbpath))
    order = list(expected)
    with Database(str(dbpath)).writing() as txn:
        txn.change(change)
    for old, new in change.items():
        position = order.index(old)
        if new is None:
            order.pop(position)
        else:
            order[position] = new[0]
            expected[new[0]] = new[1]
    assert list(truth(dbpath).items()) == [(name, expected[name]) for name in order]
    if "run1" in change:
        assert dbpath.read_text().endswith("  n: 4"), "bytes after the changed run were altered"
    assert_index_follows(dbpath)
    with Database(str(dbpath)).writing() as txn:
        txn.add("added", {"command": "python added.py"})
    assert list(truth(dbpath).items()) == [(name, expected[name]) for name in order] + [("added", {"command": "python added.py"})]
    assert_index_follows(dbpath)


# Files that cannot be spliced -----------------------------------------------------------------


NOT_SIMPLE = {
    "flow": "{run1: {command: python a.py, n: 1}, run2: {command: python b.py, n: 2}, run3: {command: python c.py, n: 3}}\n",
    "alias": "run1:\n  command: &cmd python train.py\n  n: 1\nrun2:\n  command: *cmd\n  n: 2\nrun3:\n  command: python c.py\n  n: 3\n",
    "merge-key": textwrap.dedent(
        """\
        run1: &base
          command: python train.py
          n: 1
        run2:
          <<: *base
          n: 2
        run3:
          command: python c.py
          n: 3
        """
    ),
    "crlf": "run1:\r\n  command: python a.py\r\n  n: 1\r\nrun2:\r\n  command: python b.py\r\n  n: 2\r\nrun3:\r\n  command: python c.py\r\n  n: 3\r\n",
}


@pytest.mark.parametrize("kind", list(NOT_SIMPLE))
@pytest.mark.parametrize("op", ["update", "rename", "remove", "mixed"])
def test_file_that_cannot_be_spliced_is_rewritten_right(dbpath: Path, kind: str, op: str) -> None:
    """A hand-edited file in flow style, with anchors shared between runs or with CRLF
    line ends is rewritten whole: the entries are what the change asked for (aliases
    resolved), in the same order, and the index follows."""
    write(dbpath, NOT_SIMPLE[kind])
    build_index(dbpath)
    before = truth(dbpath)
    run1, run2 = before["run1"], before["run2"]
    all_changes: Dict[str, Dict[str, Optional[Tuple[str, Entry]]]] = {
        "update": {"run1": ("run1", {**run1, "n": 10})},
        "rename": {"run1": ("first", run1)},
        "remove": {"run1": None},
        "mixed": {"run1": None, "run2": ("second", {**run2, "n": 20}), "run3": ("run3", NEW)},
    }
    changes = all_changes[op]
    expected: List[Tuple[str, Entry]] = []
    for name, entry in before.items():
        new = changes.get(name, (name, entry))
        if new is not None:
            expected.append(new)
    with Database(str(dbpath)).writing() as txn:
        txn.change(changes)
    assert list(truth(dbpath).items()) == expected
    if kind in ("alias", "merge-key") and op in ("remove", "mixed"):
        assert truth(dbpath)[expected[0][0]]["command"] == "python train.py"  # what the alias meant is kept
    assert_index_follows(dbpath)
    with Database(str(dbpath)).writing() as txn:  # canonical now: spliced in place
        txn.update(expected[-1][0], {"command": "python last.py"})
    assert list(truth(dbpath).items()) == expected[:-1] + [(expected[-1][0], {"command": "python last.py"})]
    assert_index_follows(dbpath)


# Memory on a large database --------------------------------------------------------------------


MEMORY_SCRIPT = r"""
import resource, sys
import yaml
from runs_manager.store import yamlfile
from runs_manager.store.database import Database

def peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

path = sys.argv[1]
db = Database(path)
assert db.read(lambda i: i.has("run2000"))  # the index exists and is fresh: nothing is parsed
base = peak_kb()
with db.writing() as txn:
    entry = txn.entry("run2000")
    entry["description"] = "updated"
    txn.update("run2000", entry)
with db.writing() as txn:
    txn.change({"run10": ("renamed", txn.entry("run10")), "run3000": None})
print(base, peak_kb())
"""
BIG_VALUE = "x" * 10_000


def big_entry(i: int) -> str:
    return f"run{i}:\n  command: python train.py --seed {i}\n  description: {BIG_VALUE}\n  i: {i}\n"


def test_memory_of_a_change_to_a_40_mb_database_stays_bounded(dbpath: Path) -> None:
    """An update, a rename and a removal on a ~40 MB file stream it: the process's peak
    memory rises by far less than the file's size, and the file is right afterwards."""
    count = 4000
    before = "".join(big_entry(i) for i in range(count))
    write(dbpath, before)
    size = dbpath.stat().st_size
    assert size > 40_000_000
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RUNS_CRASH_AT", None)
    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, "-c", "import sys; from runs_manager.store.database import Database; Database(sys.argv[1]).read(lambda i: i.names())", str(dbpath)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert built.returncode == 0, built.stderr
    # Through a shell that forks (not execs) Python: a child started straight from this
    # large process would report this process's peak as its own (ru_maxrss survives exec).
    done = subprocess.run(
        ["/bin/sh", "-c", '"$0" -c "$1" "$2"; code=$?; exit $code', sys.executable, MEMORY_SCRIPT, str(dbpath)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "indexing" not in done.stderr, "the index was rebuilt: the measurement would include the parse"
    base_kb, peak_kb = map(int, done.stdout.split())
    assert base_kb * 1024 < size, f"the baseline ({base_kb} KB) hides growth: the measurement cannot fail"
    grown = (peak_kb - base_kb) * 1024
    assert grown < 16_000_000, f"peak memory rose by {grown / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"
    assert time.monotonic() - started < 20

    expected = before.replace(big_entry(10), big_entry(10).replace("run10:", "renamed:", 1))
    expected = expected.replace(big_entry(2000), dump("run2000", {"command": "python train.py --seed 2000", "description": "updated", "i": 2000}))
    expected = expected.replace(big_entry(3000), "")
    assert dbpath.read_text() == expected
    names = Database(str(dbpath)).read(lambda i: i.names())
    assert names[10] == "renamed" and "run3000" not in names and len(names) == count - 1
    updated = Database(str(dbpath)).read(lambda i: i.entry("run2000"))
    assert updated is not None and updated["description"] == "updated"


# A splice prepared before the lock ---------------------------------------------------------


def prepared_files(path: Path) -> List[str]:
    return sorted(p for p in os.listdir(path.parent) if ".prepared-" in p)


def test_a_prepared_removal_is_renamed_into_place_under_the_lock(dbpath: Path) -> None:
    """What delete does: the new file is written before the lock, and under it only renamed
    (its inode becomes the database's); the result is what a splice gives."""
    before = HEADER.decode() + many(5)
    write(dbpath, before)
    db = Database(str(dbpath))
    build_index(dbpath)
    prepared = db.prepare({"run1": None, "run3": None, "absent": None})
    assert prepared is not None and prepared_files(dbpath) == [os.path.basename(prepared.temp)]
    assert dbpath.read_text() == before, "preparing changed the database"
    made = os.stat(prepared.temp).st_ino
    with db.writing(prepared) as txn:
        txn.remove(["run1", "run3", "absent"])
    assert os.stat(dbpath).st_ino == made, "the prepared file was not used"
    assert dbpath.read_text() == before.replace(run_text("run1", 1), "").replace(run_text("run3", 3), "")
    assert prepared_files(dbpath) == []
    assert_index_follows(dbpath)


@pytest.mark.parametrize("meanwhile", ["appended", "hand-edited", "other-change"])
def test_a_prepared_file_is_not_used_once_the_database_changed(dbpath: Path, meanwhile: str) -> None:
    """Between prepare and the lock another command appends a run, someone edits the file,
    or the transaction is asked for another change: the splice is made afresh, nothing of
    the meanwhile change is lost, and the prepared file is removed."""
    write(dbpath, HEADER.decode() + many(4))
    db = Database(str(dbpath))
    build_index(dbpath)
    prepared = db.prepare({"run2": None})
    assert prepared is not None
    if meanwhile == "appended":
        with db.writing() as txn:
            txn.add("late", {"command": "python late.py"})
    elif meanwhile == "hand-edited":
        time.sleep(0.01)
        write(dbpath, dbpath.read_text().replace("--seed 0", "--seed 100"))
    with db.writing(prepared) as txn:
        txn.remove(["run2", "run0"] if meanwhile == "other-change" else ["run2"])
    names = list(truth(dbpath))
    assert "run2" not in names and "run1" in names and "run3" in names
    if meanwhile == "appended":
        assert names[-1] == "late"
    if meanwhile == "hand-edited":
        assert truth(dbpath)["run0"]["command"].endswith("--seed 100")
    if meanwhile == "other-change":
        assert "run0" not in names
    assert prepared_files(dbpath) == []
    assert_index_follows(dbpath)


def test_a_prepared_file_left_by_a_crash_is_removed_once_stale(dbpath: Path) -> None:
    """A command killed between prepare and the lock leaves its file; a later command removes
    it once it is older than any prepare could be, never a fresh one (another command's)."""
    write(dbpath, HEADER.decode() + many(3))
    db = Database(str(dbpath))
    build_index(dbpath)
    stale, fresh = db.prepare({"run0": None}), db.prepare({"run1": None})
    assert stale is not None and fresh is not None
    old = time.time() - 3600
    os.utime(stale.temp, (old, old))
    with db.writing() as txn:
        txn.add("next", {"command": "python next.py"})
    assert prepared_files(dbpath) == [os.path.basename(fresh.temp)]
    with db.writing(fresh) as txn:
        txn.remove(["run1"])
    assert list(truth(dbpath)) == ["run0", "run2", "next"]
    assert prepared_files(dbpath) == []
