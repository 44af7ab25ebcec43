"""`runs mv OLD NEW`: a run (or a group of runs) renamed with every file it has, all or nothing.

Everything is real: a git repository, `runs` in this process or as a process of its own,
the test's own tmux server, and SIGKILL at the named fault points (RUNS_CRASH_AT).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import yaml

from tests.conftest import NO_FLAGS, error_line, ROOT, Result, Tmux, wait_status

Runs = Callable[..., Result]


# Helpers ---------------------------------------------------------------------------------



def finished_run(runs: Runs, name: str, command: str = "true", *extra: str) -> None:
    """`runs new NAME COMMAND`, then wait until its program has ended with status 0."""
    result = runs("new", name, command, *(extra or NO_FLAGS))
    assert result.code == 0, result.err
    wait_status(name, "finished")


def running_run(runs: Runs, name: str) -> None:
    result = runs("new", name, "sleep 600", *NO_FLAGS)
    assert result.code == 0, result.err
    wait_status(name, "running")


def run_files(repo: Path, name: str, kind: str = "file") -> Dict[Path, str]:
    """Give run ``name`` TensorBoard events and checkpoints (its save path a file or a directory)."""
    runs_dir = repo / ".runs"
    ck = runs_dir / "checkpoints"
    files = {
        runs_dir / "tensorboard" / name / "events.out.tfevents.1": f"events of {name}",
        runs_dir / "tensorboard" / name / "eval" / "events.out.tfevents.2": f"eval events of {name}",
        ck / f"{name}.ckpt-1.index": f"tf index of {name}",
        ck / f"{name}.ckpt-1.data-00000-of-00001": f"tf data of {name}",
        ck / f"{name}-100.index": f"step 100 index of {name}",
        ck / f"{name}-100.meta": f"step 100 meta of {name}",
    }
    if kind == "file":
        files[ck / name] = f"weights of {name}"
    else:
        files[ck / name / "model.pt"] = f"weights of {name}"
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def renamed(files: Dict[Path, str], repo: Path, old: str, new: str) -> Dict[Path, str]:
    """Where each of run ``old``'s files belongs once it is named ``new``."""
    out = {}
    for path, text in files.items():
        rel = str(path.relative_to(repo / ".runs"))
        root, rest = rel.split(os.sep, 1)
        assert rest.startswith(old), rel
        out[repo / ".runs" / root / (new + rest[len(old) :])] = text
    return out


def assert_files(files: Dict[Path, str]) -> None:
    for path, text in files.items():
        assert path.is_file(), f"{path} is missing"
        assert path.read_text() == text, f"{path} holds something else"


def assert_gone(paths: List[Path]) -> None:
    for path in paths:
        assert not os.path.lexists(path), f"{path} is still there"


def snapshot(repo: Path) -> Dict[str, str]:
    """Every path of the project (but git's own and the derived index and lock), with contents."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = sorted(d for d in dirnames if not (dirpath == str(repo) and d == ".git"))
        for d in dirnames:
            path = Path(dirpath) / d
            result[str(path.relative_to(repo))] = "-> " + os.readlink(path) if path.is_symlink() else "<dir>"
        for f in sorted(filenames):
            path = Path(dirpath) / f
            if path.name in (".runs.yml.index", ".runs.yml.lock"):
                continue
            rel = str(path.relative_to(repo))
            result[rel] = "-> " + os.readlink(path) if path.is_symlink() else path.read_bytes().hex()
    return result


def sessions(tmux: Tmux) -> Dict[str, str]:
    """Session name -> session id on the test's own tmux server."""
    result = tmux.run("list-sessions", "-F", "#{session_name}\t#{session_id}")
    if result.returncode != 0:
        return {}
    return dict(line.rsplit("\t", 1) for line in result.stdout.splitlines())


def segments(text: str) -> Dict[str, str]:
    """The text of each top-level entry of the YAML file, by run name."""
    starts = [m.start() for m in re.finditer(r"^[^\s#]", text, re.M)] + [len(text)]
    found = {}
    for start, stop in zip(starts, starts[1:]):
        chunk = text[start:stop]
        found[chunk.split(":", 1)[0]] = chunk
    return found




def db_path(repo: Path) -> Path:
    return repo / ".runs" / ".runs.yml"


def load(repo: Path) -> Dict[str, dict]:
    return yaml.safe_load(db_path(repo).read_text()) or {}


# Renaming one run -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_renaming_a_finished_run_moves_entry_files_log_and_session(
    runs: Runs, repo: Path, tmux: Tmux, kind: str
) -> None:
    """The entry keeps its place and fields; TensorBoard dir, checkpoints (TensorFlow-style
    siblings too), log and tmux session follow the new name; the old paths are gone."""
    finished_run(runs, "first")
    finished_run(runs, "a", "python main.py", "--description=the one")
    finished_run(runs, "a-1")  # its a-1.index is not a's step 1
    finished_run(runs, "last")
    files = run_files(repo, "a", kind)
    neighbour = repo / ".runs/checkpoints/a-1.index"
    neighbour.write_text("a-1's")
    log = repo / ".runs/logs/a.log"
    assert "--save-path" in log.read_text()  # the supervisor wrote what the program printed
    files[log] = log.read_text()
    text_before, entries_before = db_path(repo).read_text(), load(repo)
    session_id = sessions(tmux)["a"]

    result = runs("mv", "a", "b")
    assert result.code == 0, result.err
    assert result.err == ""
    assert "'a'" in result.out and "'b'" in result.out

    entries = load(repo)
    assert list(entries) == ["first", "b", "a-1", "last"]
    assert entries["b"] == {**entries_before["a"], "tmux_session": "b"}
    for name in ("first", "a-1", "last"):
        assert segments(db_path(repo).read_text())[name] == segments(text_before)[name], f"the text of {name} changed"
    assert_files(renamed(files, repo, "a", "b"))
    assert_gone(list(files) + [repo / ".runs/tensorboard/a", repo / ".runs/checkpoints/a"])
    assert neighbour.read_text() == "a-1's"
    live = sessions(tmux)
    assert "a" not in live
    assert live.get("b") == session_id, "the run's own session was not renamed"

    assert runs("lookup", "b", "status").out == "finished\n"
    assert runs("lookup", "b", "description").out == "the one\n"
    assert runs("logs", "b").out == files[log]
    reproduce = runs("reproduce", "b")
    assert reproduce.code == 0, reproduce.err
    assert " runs new b 'python main.py' --description='the one' --no-runsrc\n" in reproduce.out
    gone = runs("lookup", "a")
    assert gone.code == 1 and "no run named 'a'" in gone.err


def test_renamed_run_can_be_deleted_with_all_its_files(runs: Runs, repo: Path, tmux: Tmux) -> None:
    """After a move, the files and session are the new name's: `runs delete NEW` removes them all."""
    finished_run(runs, "a")
    files = run_files(repo, "a")
    assert runs("mv", "a", "b").code == 0
    result = runs("delete", "b", "-y")
    assert result.code == 0, result.err
    assert load(repo) == {}
    assert_gone(list(renamed(files, repo, "a", "b")) + [repo / ".runs/logs/b.log"])
    assert "b" not in sessions(tmux)


def test_renaming_into_a_new_group_and_out_again(runs: Runs, repo: Path, tmux: Tmux) -> None:
    """Group directories are made for the new name and removed when they are left empty."""
    finished_run(runs, "a")
    files = run_files(repo, "a")
    assert runs("mv", "a", "g/h/a").code == 0
    assert_files(renamed(files, repo, "a", "g/h/a"))
    assert "g/h/a" in sessions(tmux)
    assert runs("mv", "g/h/a", "z").code == 0
    assert_files(renamed(files, repo, "a", "z"))
    for root in ("tensorboard", "checkpoints", "logs"):
        assert not (repo / ".runs" / root / "g").exists(), f"{root}/g was left behind"
    assert list(load(repo)) == ["z"]


def test_a_dot_in_the_new_name_gives_the_session_tmux_can_hold(runs: Runs, repo: Path, tmux: Tmux) -> None:
    """tmux rewrites '.' in session names: run 'lr-0.1' gets the session 'lr-0~1', recorded and live."""
    finished_run(runs, "a")
    assert runs("mv", "a", "lr-0.1").code == 0
    assert load(repo)["lr-0.1"]["tmux_session"] == "lr-0~1"
    assert "lr-0~1" in sessions(tmux)


def test_a_new_name_whose_session_tmux_has_gets_a_free_session(runs: Runs, repo: Path, tmux: Tmux) -> None:
    """Another project's session 'b' on the same tmux server: the move is made, and the run's
    own session is renamed to 'b@repo'; moving back finds it by its id."""
    finished_run(runs, "a")
    session_id = sessions(tmux)["a"]
    tmux.new("b")
    stranger = sessions(tmux)["b"]
    result = runs("mv", "a", "b")
    assert result.code == 0, result.err
    assert load(repo)["b"]["tmux_session"] == "b@repo"
    live = sessions(tmux)
    assert live["b@repo"] == session_id and live["b"] == stranger and "a" not in live  # the stranger's left alone
    assert runs("mv", "b", "a").code == 0
    assert sessions(tmux)["a"] == session_id and load(repo)["a"]["tmux_session"] == "a"


def test_an_undone_move_gives_the_session_back_its_recorded_name(runs: Runs, repo: Path, tmux: Tmux, monkeypatch) -> None:
    """Run 'x' has the session 'x@repo' (another 'x' had the name); that one is closed, and an
    mv fails after the session was renamed: it is renamed back to 'x@repo', as recorded, and
    a delete still closes it (found by its id, whatever its name)."""
    from runs_manager.store.transaction import Transaction

    tmux.new("x")
    finished_run(runs, "x")
    assert load(repo)["x"]["tmux_session"] == "x@repo"
    tmux.run("kill-session", "-t", "=x")

    def disk_full(self: Any, changes: Any) -> None:  # a fault that cannot be made for real here (root)
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(Transaction, "change", disk_full)
        assert runs("mv", "x", "y").code == 1
    assert "x@repo" in sessions(tmux) and load(repo)["x"]["tmux_session"] == "x@repo"
    tmux.run("rename-session", "-t", "=x@repo", "renamed-by-hand")
    assert runs("delete", "x", "-y").code == 0
    assert "renamed-by-hand" not in sessions(tmux)


# Moving a group ---------------------------------------------------------------------------


def test_moving_a_group_moves_every_run_and_removes_the_old_group_dirs(runs: Runs, repo: Path, tmux: Tmux) -> None:
    """`mv sweep old-sweep` renames sweep/a and sweep/b with their files, keeps their places,
    leaves 'sweeper' (not in the group) alone and removes the emptied sweep/ directories."""
    finished_run(runs, "before")
    finished_run(runs, "sweep/a")
    finished_run(runs, "sweeper")
    finished_run(runs, "sweep/b")
    files_a, files_b = run_files(repo, "sweep/a"), run_files(repo, "sweep/b", "dir")
    other = run_files(repo, "sweeper")
    entries_before = load(repo)

    result = runs("mv", "sweep", "old-sweep")
    assert result.code == 0, result.err
    entries = load(repo)
    assert list(entries) == ["before", "old-sweep/a", "sweeper", "old-sweep/b"]
    for member in ("a", "b"):
        assert entries[f"old-sweep/{member}"] == {**entries_before[f"sweep/{member}"], "tmux_session": f"old-sweep/{member}"}
    assert_files(renamed(files_a, repo, "sweep/a", "old-sweep/a"))
    assert_files(renamed(files_b, repo, "sweep/b", "old-sweep/b"))
    assert (repo / ".runs/logs/old-sweep/a.log").is_file() and (repo / ".runs/logs/old-sweep/b.log").is_file()
    assert_files(other)
    for root in ("tensorboard", "checkpoints", "logs"):
        assert not (repo / ".runs" / root / "sweep").exists(), f"the empty {root}/sweep/ was left behind"
    live = sessions(tmux)
    assert {"old-sweep/a", "old-sweep/b", "sweeper"} <= set(live)
    assert not {"sweep/a", "sweep/b"} & set(live)


def test_moving_a_group_refuses_if_one_member_is_running(runs: Runs, repo: Path, tmux: Tmux) -> None:
    """All or nothing: one running member stops the whole group move, and names it."""
    finished_run(runs, "sweep/a")
    running_run(runs, "sweep/b")
    files = run_files(repo, "sweep/a")
    before, live = snapshot(repo), sessions(tmux)
    err = error_line(runs("mv", "sweep", "done"))
    assert "'sweep/b'" in err and "running" in err
    assert snapshot(repo) == before
    assert sessions(tmux) == live
    assert_files(files)


# Refusals -----------------------------------------------------------------------------------


def _setup_refusals(runs: Runs, repo: Path) -> Dict[Path, str]:
    finished_run(runs, "a")
    finished_run(runs, "x")
    finished_run(runs, "g/y")
    return run_files(repo, "a")


REFUSALS: Dict[str, Tuple[Tuple[str, str], Optional[Callable[[Path], object]], str]] = {
    # case: ((OLD, NEW), what to make by hand first, a word the error must hold)
    "unknown-old": (("nope", "b"), None, "nope"),
    "unknown-group": (("g/nope", "b"), None, "g/nope"),
    "dot-dot": (("a", "../x"), None, "invalid"),
    "dot-dot-inside": (("a", "g/../../x"), None, "invalid"),
    "absolute": (("a", "/tmp/x"), None, "invalid"),
    "space": (("a", "a b"), None, "invalid"),
    "empty": (("a", ""), None, "empty"),
    "trailing-slash": (("a", "b/"), None, "invalid"),
    "dot": (("a", "."), None, "invalid"),
    "newline": (("a", "b\nc"), None, "invalid"),
    "non-ascii": (("a", "café"), None, "invalid"),
    "taken-by-a-run": (("a", "x"), None, "'x'"),
    "would-nest-under-a-run": (("a", "x/y"), None, "'x'"),
    "would-be-a-group-of-runs": (("a", "g"), None, "g/y"),
    "group-into-a-run": (("g", "x"), None, "'x'"),
    "old-contains-new": (("a", "a/b"), None, "nest"),
    "new-contains-old": (("g/y", "g"), None, "nest"),
    "same-name": (("a", "a"), None, "'a'"),
    "stray-tensorboard-dir": (("a", "b"), lambda repo: (repo / ".runs/tensorboard/b").mkdir(), "tensorboard/b"),
    "stray-checkpoint": (("a", "b"), lambda repo: (repo / ".runs/checkpoints/b").write_text("mine"), "checkpoints/b"),
    "stray-tf-checkpoint": (
        ("a", "b"), lambda repo: (repo / ".runs/checkpoints/b.ckpt-7.index").write_text("mine"), "b.ckpt-7.index"
    ),
    "stray-log": (("a", "b"), lambda repo: (repo / ".runs/logs/b.log").write_text("mine"), "logs/b.log"),
    "stray-patch": (
        ("a", "b"), lambda repo: ((repo / ".runs/patches").mkdir(), (repo / ".runs/patches/b.patch").write_text("mine")),
        "patches/b.patch",
    ),
    "stray-in-group": (
        ("g", "h"), lambda repo: (repo / ".runs/tensorboard/h/y").mkdir(parents=True), "tensorboard/h/y"
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_moves_change_nothing(runs: Runs, repo: Path, tmux: Tmux, case: str) -> None:
    """A refused move is a one-line error that names the problem; database bytes, files
    and tmux sessions are exactly as before."""
    (old, new), prepare, word = REFUSALS[case]
    files = _setup_refusals(runs, repo)
    if prepare is not None:
        prepare(repo)
    before, db_before, live = snapshot(repo), db_path(repo).read_bytes(), sessions(tmux)

    err = error_line(runs("mv", old, new))
    assert word in err
    assert db_path(repo).read_bytes() == db_before
    assert snapshot(repo) == before
    assert sessions(tmux) == live
    assert_files(files)
    assert list(load(repo)) == ["a", "x", "g/y"]


def test_a_running_run_cannot_move(runs: Runs, repo: Path, tmux: Tmux) -> None:
    """Its program holds the old paths: refused, naming the run; it goes on running."""
    running_run(runs, "r")
    before, live = snapshot(repo), sessions(tmux)
    err = error_line(runs("mv", "r", "s"))
    assert "'r'" in err and "running" in err
    assert snapshot(repo) == before
    assert sessions(tmux) == live
    assert runs("lookup", "r", "status").out == "running\n"


# Hostile names never reach outside the runs directory -------------------------------------


HOSTILE = ["../x", "../../x", "g/../../x", "/tmp/runs-mv-hostile", "..", "x/..", "./x", "x//y", "~/x", "$HOME", "x\0y"]


@pytest.mark.parametrize("new", HOSTILE)
def test_hostile_new_names_create_nothing_anywhere(runs: Runs, repo: Path, tmp_path: Path, new: str) -> None:
    """Refused before anything is made: nothing appears in or around the project."""
    finished_run(runs, "a")
    files = run_files(repo, "a")
    around = snapshot(tmp_path)
    result = runs("mv", "a", new)
    assert result.code != 0
    assert "Traceback" not in result.err
    assert snapshot(tmp_path) == around
    assert not os.path.lexists("/tmp/runs-mv-hostile")
    assert_files(files)
    assert list(load(repo)) == ["a"]


@pytest.mark.parametrize("root", ["tensorboard", "checkpoints", "logs"])
def test_a_symlinked_group_directory_cannot_lead_files_out(runs: Runs, repo: Path, tmp_path: Path, root: str) -> None:
    """With <runs-dir>/ROOT/out a symbolic link to a directory outside, `mv a out/x` is
    refused and nothing of the run ends up outside the runs directory."""
    finished_run(runs, "a")
    files = run_files(repo, "a")
    files[repo / ".runs/logs/a.log"] = (repo / ".runs/logs/a.log").read_text()
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / ".runs" / root / "out").symlink_to(outside, target_is_directory=True)
    result = runs("mv", "a", "out/x")
    assert sorted(os.listdir(outside)) == [], f"run files were moved out of the runs directory into {outside}"
    error_line(result)
    assert_files(files)
    assert list(load(repo)) == ["a"]


# Crash safety --------------------------------------------------------------------------------


def _crash_setup(runs: Runs, repo: Path) -> Dict[Path, str]:
    finished_run(runs, "keep")
    finished_run(runs, "a")
    files = run_files(repo, "a")
    log = repo / ".runs/logs/a.log"
    files[log] = log.read_text()
    return files


def _assert_recovered(repo: Path, tmux: Tmux, files: Dict[Path, str], entries_before: Dict[str, dict]) -> None:
    """The run kept its old name, its files are back at the old paths, the YAML parses."""
    assert load(repo) == entries_before
    assert_files(files)
    assert_gone(list(renamed(files, repo, "a", "b")) + [repo / ".runs/tensorboard/b"])
    live = sessions(tmux)
    assert "a" in live and "b" not in live


NEXT_COMMANDS = [["list"], ["lookup", "a", "status"], ["logs", "a"], ["describe", "keep", "after the crash"], ["new", "follow", "true", *NO_FLAGS]]


@pytest.mark.parametrize("next_command", NEXT_COMMANDS, ids=[c[0] for c in NEXT_COMMANDS])
def test_crash_after_the_files_moved_is_undone_by_the_next_command(
    runs: Runs, runs_process: Callable[..., Result], repo: Path, tmux: Tmux, next_command: List[str]
) -> None:
    """SIGKILL after the files moved and before the database changed: whatever command
    comes next finds the run under its old name with all its files back in place."""
    files = _crash_setup(runs, repo)
    entries_before = load(repo)
    crashed = runs_process("mv", "a", "b", env={"RUNS_CRASH_AT": "mv:files-moved"}, cwd=repo)
    assert crashed.code == -9, f"mv:files-moved was not reached: {crashed}"
    assert (repo / ".runs/tensorboard/b").is_dir()  # the crash really came after the files moved

    result = runs(*next_command)
    assert result.code == 0, result.err
    if next_command[0] == "describe":
        entries_before["keep"]["description"] = "after the crash"
    if next_command[0] == "new":
        entries_before["follow"] = load(repo)["follow"]
    _assert_recovered(repo, tmux, files, entries_before)
    again = runs("mv", "a", "b")  # and the move can be made now
    assert again.code == 0, again.err
    assert_files(renamed(files, repo, "a", "b"))


def test_crash_at_the_first_atomic_write_of_mv_leaves_the_run_whole(
    runs: Runs, runs_process: Callable[..., Result], repo: Path, tmux: Tmux
) -> None:
    """RUNS_CRASH_AT=atomic-write:temp-written kills mv at its first atomic write (the
    journal): the next command finds the run whole under its old name, no temp file left."""
    files = _crash_setup(runs, repo)
    entries_before = load(repo)
    crashed = runs_process("mv", "a", "b", env={"RUNS_CRASH_AT": "atomic-write:temp-written"}, cwd=repo)
    assert crashed.code == -9, f"atomic-write:temp-written was not reached: {crashed}"
    result = runs("describe", "keep", "next")
    assert result.code == 0, result.err
    entries_before["keep"]["description"] = "next"
    _assert_recovered(repo, tmux, files, entries_before)
    assert [p for p in os.listdir(repo / ".runs") if ".tmp-" in p or p.endswith(".pending")] == []


# `runs mv` with the fault point armed only once its journal is written, so that the process
# dies while the database itself is being replaced (its temp file written, not yet renamed).
CRASH_IN_SPLICE = """
import os, sys
from runs_manager.store import transaction
from runs_manager.main import main

intend = transaction.Transaction.intend

def intend_then_arm(self, intent):
    intend(self, intent)
    os.environ["RUNS_CRASH_AT"] = "atomic-write:temp-written"

transaction.Transaction.intend = intend_then_arm
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("next_command", [["list"], ["describe", "keep", "next"]], ids=["list", "describe"])
def test_crash_while_the_database_is_replaced_is_undone(
    runs: Runs, repo: Path, tmux: Tmux, next_command: List[str]
) -> None:
    """SIGKILL with the renamed database written to its temp file but not yet in place:
    the next command puts the files back, removes the temp file, and the YAML parses."""
    files = _crash_setup(runs, repo)
    entries_before = load(repo)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RUNS_CRASH_AT", None)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_IN_SPLICE, "mv", "a", "b"], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert crashed.returncode == -9, crashed.stderr
    temps = [p for p in os.listdir(repo / ".runs") if p.startswith(".runs.yml.tmp-")]
    assert temps, "the crash did not come while the database was being replaced"
    assert "\nb:\n" in (repo / ".runs" / temps[0]).read_text()

    result = runs(*next_command)
    assert result.code == 0, result.err
    if next_command[0] == "describe":
        entries_before["keep"]["description"] = "next"
    _assert_recovered(repo, tmux, files, entries_before)
    assert [p for p in os.listdir(repo / ".runs") if p.startswith(".runs.yml.tmp-")] == []


def test_names_starting_with_a_dash_keep_their_session(repo: Path, runs: Runs, tmux: Tmux) -> None:
    result = runs("new", *NO_FLAGS, "--", "-dash", "true")
    assert result.code == 0, result.err
    wait_status("-dash", "finished")
    result = runs("mv", "--", "-dash", "-dash2")
    assert result.code == 0 and result.err == "", result
    assert "-dash2" in tmux.sessions() and "-dash" not in tmux.sessions()
    assert yaml.safe_load((repo / ".runs/.runs.yml").read_text())["-dash2"]["tmux_session"] == "-dash2"


def test_a_group_is_never_merged_into_another(repo: Path, runs: Runs) -> None:
    finished_run(runs, "old/a")
    finished_run(runs, "other/x")
    before = (repo / ".runs/.runs.yml").read_bytes()
    result = runs("mv", "old", "other")
    assert result.code == 1 and "group 'other' exists (it holds 'other/x')" in result.err
    assert (repo / ".runs/.runs.yml").read_bytes() == before


def test_a_hand_edited_invalid_name_is_not_moved(repo: Path, runs: Runs) -> None:
    finished_run(runs, "victim")
    text = (repo / ".runs/.runs.yml").read_text()
    with open(repo / ".runs/.runs.yml", "a") as f:
        f.write("sub/../victim:\n  exit_code: 0\n")
    result = runs("mv", "sub/../victim", "stolen")
    assert result.code == 1 and "is not a valid run name" in result.err
    assert (repo / ".runs/tensorboard/victim").is_dir() and (repo / ".runs/logs/victim.log").is_file()
    assert (repo / ".runs/.runs.yml").read_text().startswith(text)


def test_moving_a_group_moves_each_runs_patch(runs: Runs, repo: Path, tmux: Tmux) -> None:
    """Runs started from uncommitted changes keep their patches, entries pointing at the new
    place and checksums unchanged; the emptied patches/sweep/ goes; reproduce finds them."""
    (repo / "main.py").write_text("print('a')\n")
    finished_run(runs, "sweep/a", "true", *NO_FLAGS, "--allow-dirty")
    (repo / "main.py").write_text("print('b')\n")
    finished_run(runs, "sweep/b", "true", *NO_FLAGS, "--allow-dirty")
    patches = {m: (repo / f".runs/patches/sweep/{m}.patch").read_bytes() for m in ("a", "b")}
    before = load(repo)

    result = runs("mv", "sweep", "old")
    assert result.code == 0, result.err
    entries = load(repo)
    for member, data in patches.items():
        assert (repo / f".runs/patches/old/{member}.patch").read_bytes() == data
        assert entries[f"old/{member}"]["patch"] == f".runs/patches/old/{member}.patch"
        assert entries[f"old/{member}"]["patch_sha256"] == before[f"sweep/{member}"]["patch_sha256"]
        assert f" git apply .runs/patches/old/{member}.patch\n" in runs("reproduce", f"old/{member}").out
    assert not (repo / ".runs/patches/sweep").exists()


def test_a_mv_killed_half_way_is_undone_by_a_command_spelling_the_runs_dir_otherwise(runs, repo):
    """A supervisor names the runs directory by its absolute path: it must undo the mv too."""
    from tests.commands.test_delete import finished_runs
    from tests.conftest import run_process

    finished_runs(repo, ["a"])
    crashed = run_process("mv", "a", "b", env={"RUNS_CRASH_AT": "mv:files-moved"}, cwd=repo)
    assert crashed.code == -9, crashed
    (repo / "elsewhere").mkdir()
    listing = run_process("list", "--runs-dir", str(repo / ".runs"), cwd=repo / "elsewhere")
    assert listing.out == "a\n", listing
    for path in ("tensorboard/a/events", "logs/a.log", "checkpoints/a.ckpt-1.index"):
        assert (repo / ".runs" / path).read_text() == "a", f"{path} was not put back"
