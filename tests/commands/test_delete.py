"""`runs delete PATTERN`: whole-name matching, confirmation, and deleting exactly a run's things."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

import pytest
import yaml

from tests.conftest import NO_FLAGS, PtyRun, error_line, wait_for

PROMPT = "Delete the following runs? [y/N]"


def write_db(repo: Path, entries: Dict[str, Optional[dict]]) -> None:
    path = repo / ".runs/.runs.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(entries, sort_keys=False, default_flow_style=False))


def one_error_line(err: str) -> bool:
    return err.startswith("runs: error:") and len(err.strip().splitlines()) == 1


def tree(root: Path, skip: Optional[Path] = None) -> Dict[str, str]:
    """Every path below root (symlinks not followed) with file contents, to compare before and after."""
    result = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        rel = str(path.relative_to(root))
        if path.is_symlink():
            result[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            result[rel] = path.read_text(errors="replace")
        else:
            result[rel] = "<dir>"
    return result


# Matching ------------------------------------------------------------------------------


def test_pattern_is_an_alternation_of_whole_names(runs, db):
    for name in ("a1", "a10", "b1", "xa1", "c1"):
        assert runs("new", name, "true").code == 0
    result = runs("delete", "a1|b1", "-y")
    assert result.code == 0, result.err
    assert list(db()) == ["a10", "xa1", "c1"]


def test_pattern_does_not_match_a_longer_name(runs, db):
    for name in ("alpha", "alphabet", "beta", "betamax"):
        assert runs("new", name, "true").code == 0
    result = runs("delete", "alpha|beta", "--yes")
    assert result.code == 0, result.err
    assert list(db()) == ["alphabet", "betamax"]


def test_matches_are_listed_and_others_are_not(runs, repo):
    for name in ("sweep/lr-1", "sweep/lr-2", "other"):
        assert runs("new", name, "true").code == 0
    result = runs("delete", "sweep/.*", "-y")
    assert result.code == 0
    listed = result.out.split("Deleted")[0]
    assert "sweep/lr-1" in listed and "sweep/lr-2" in listed
    assert "other" not in listed


def test_no_match_is_an_error_and_deletes_nothing(runs, db, repo):
    assert runs("new", "exp", "true").code == 0
    before = tree(repo / ".runs")
    result = runs("delete", "ex", "-y")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "ex" in result.err and "match" in result.err
    assert list(db()) == ["exp"]
    assert tree(repo / ".runs") == before


def test_no_database_is_no_match(runs, repo):
    result = runs("delete", "exp", "-y")
    assert result.code == 1
    assert one_error_line(result.err)


@pytest.mark.parametrize("pattern", ["(", "a[", "*x", "a{2,1}"])
def test_invalid_regex_is_a_one_line_error(runs, db, pattern):
    assert runs("new", "exp", "true").code == 0
    result = runs("delete", pattern, "-y")
    assert result.code == 1
    assert one_error_line(result.err)
    assert list(db()) == ["exp"]


# Confirmation --------------------------------------------------------------------------


@pytest.mark.parametrize("answer, deleted", [("y", True), ("yes", True), ("Y", True), ("n", False), ("", False), ("no", False), ("yep", False)])
def test_answer_at_a_terminal(runs, db, repo, tmux, answer, deleted):
    assert runs("new", "exp", "sleep 600; true").code == 0
    assert runs("new", "keep", "sleep 600; true").code == 0
    child = PtyRun("delete", "exp")
    child.wait_for_output(PROMPT)
    assert "  exp   (running: stopped first)\n" in child.err.decode().split(PROMPT)[0]  # listed before the question (both on stderr)
    child.type(answer + "\n")
    code, out, err = child.finish()
    assert "Traceback" not in err
    if deleted:
        assert code == 0, err
        assert list(db()) == ["keep"]
        assert not (repo / ".runs/tensorboard/exp").exists()
        assert "exp" not in tmux.sessions()
    else:
        assert code != 0
        assert list(db()) == ["exp", "keep"]
        assert (repo / ".runs/tensorboard/exp").is_dir()
        assert "exp" in tmux.sessions()
    assert "keep" in tmux.sessions()


def test_the_prompt_marks_the_runs_it_will_stop(runs, runs_process, db, tmux):
    """Deleting a running run stops it: the prompt says so for each, not only their names."""
    assert runs("new", "train", "sleep 600; true").code == 0
    assert runs("new", "done", "true").code == 0
    assert runs("new", "q", "sleep 600 {i}", "--grid", "i=1,2", "--max-parallel", "1", *NO_FLAGS).code == 0
    wait_for(lambda: runs("lookup", "done", "status").out == "finished\n")
    result = runs_process("delete", ".*", input="n\n")
    listing, question = result.err.split("Runs to delete:\n")[1].split("\n", 4)[:4], result.err.splitlines()[-2]
    assert listing == ["  train   (running: stopped first)", "  done", "  q/i-1   (running: stopped first)",
                       "  q/i-2   (queued: taken out of the queue)"]
    assert question.startswith("3 of them are live and will be stopped. Delete the following runs? [y/N]")
    assert result.code == 1 and len(db()) == 4


@pytest.mark.parametrize("answer, deleted", [("y\n", True), ("YES\n", True), ("y", True), ("n\n", False), ("\n", False), ("", False), ("yep\n", False)])
def test_answer_from_a_pipe(runs, runs_process, db, repo, tmux, answer, deleted):
    """A piped answer counts, as for pip, apt and rm -i; an empty stdin is a no."""
    assert runs("new", "exp", "sleep 600; true").code == 0
    assert runs("new", "keep", "true").code == 0
    result = runs_process("delete", "e.*", input=answer)
    assert "Traceback" not in result.err
    assert PROMPT in result.err and "  exp   (running: stopped first)\n" in result.err.split(PROMPT)[0]
    if deleted:
        assert (result.code, result.out) == (0, "Deleted 1 run.\n"), result.err
        assert list(db()) == ["keep"]
        assert not (repo / ".runs/tensorboard/exp").exists()
        assert "exp" not in tmux.sessions()
    else:
        assert result.code == 1 and result.err.splitlines()[-1] == "runs: error: not confirmed; nothing was deleted"
        assert list(db()) == ["exp", "keep"]
        assert (repo / ".runs/tensorboard/exp").is_dir()
        assert "exp" in tmux.sessions()


@pytest.mark.parametrize("pipeline, deleted", [
    ("echo y | {runs} delete 'a.*'", True),
    ("yes | {runs} delete 'a.*'", True),  # `yes` writes forever: one line is read, then it gets SIGPIPE
    ("yes n | {runs} delete 'a.*'", False),
    ("{runs} delete 'a.*' < /dev/null", False),
    ("{runs} delete 'a.*' <&-", False),  # stdin closed
])
def test_answer_from_a_shell_pipeline(runs, db, repo, pipeline, deleted):
    import shlex
    import subprocess
    import sys

    from tests.conftest import ROOT

    for name in ("a1", "a2", "b1"):
        assert runs("new", name, "true").code == 0
    command = pipeline.format(runs=f"{shlex.quote(sys.executable)} -m runs_manager")
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), stdin=subprocess.DEVNULL)
    assert "Traceback" not in done.stderr
    if deleted:
        assert done.returncode == 0, done.stderr
        assert list(db()) == ["b1"]
    else:
        assert done.returncode == 1
        assert "no (nothing on stdin" in done.stderr or "[y/N] n\n" in done.stderr
        assert list(db()) == ["a1", "a2", "b1"]


def test_stdin_not_a_terminal_in_process(runs, db):
    assert runs("new", "exp", "true").code == 0
    result = runs("delete", "exp")
    assert result.code != 0
    assert list(db()) == ["exp"]


@pytest.mark.parametrize("flag", ["-y", "--yes"])
def test_yes_flag_skips_the_question(runs, db, flag):
    assert runs("new", "exp", "true").code == 0
    result = runs("delete", "exp", flag)
    assert result.code == 0
    assert "[y/N]" not in result.out + result.err
    assert db() == {}


# What is deleted -----------------------------------------------------------------------


@pytest.mark.parametrize("save_path_kind", ["file", "dir"])
def test_deletes_entry_tensorboard_and_checkpoints(runs, db, repo, save_path_kind):
    assert runs("new", "exp", "true").code == 0
    assert runs("new", "keep", "true").code == 0
    tb = repo / ".runs/tensorboard/exp"
    (tb / "events.out.tfevents.1").write_text("e")
    (tb / "eval").mkdir()
    (tb / "eval/events.out.tfevents.2").write_text("e")
    ck = repo / ".runs/checkpoints"
    if save_path_kind == "file":
        (ck / "exp").write_text("weights")
    else:
        (ck / "exp").mkdir()
        (ck / "exp/model.pt").write_text("weights")
    tf_files = ["exp.ckpt", "exp.ckpt-100.index", "exp.ckpt-100.data-00000-of-00001", "exp.ckpt-100.meta"]
    for f in tf_files:
        (ck / f).write_text("tf")
    (repo / ".runs/tensorboard/keep/events").write_text("k")
    (ck / "keep.ckpt-1.index").write_text("k")
    (ck / "keep").write_text("k")

    result = runs("delete", "exp", "-y")
    assert result.code == 0, result.err
    assert list(db()) == ["keep"]
    assert not tb.exists()
    assert not os.path.lexists(ck / "exp")
    for f in tf_files:
        assert not (ck / f).exists(), f
    assert (repo / ".runs/tensorboard/keep/events").read_text() == "k"
    assert (ck / "keep.ckpt-1.index").read_text() == "k"
    assert (ck / "keep").read_text() == "k"


def test_deletes_several_runs_and_their_sessions(runs, db, repo, tmux):
    for name in ("s/a", "s/b", "lr-0.1", "keep"):
        assert runs("new", name, "sleep 600; true").code == 0
    assert {"s/a", "s/b", "lr-0~1", "keep"} <= set(tmux.sessions())
    result = runs("delete", "s/.*|lr-0\\.1", "-y")
    assert result.code == 0, result.err
    assert list(db()) == ["keep"]
    assert set(tmux.sessions()) & {"s/a", "s/b", "lr-0~1"} == set()
    assert "keep" in tmux.sessions()
    for name in ("s/a", "s/b", "lr-0.1"):
        assert not (repo / ".runs/tensorboard" / name).exists()


def test_session_is_targeted_exactly(runs, db, tmux):
    tmux.new("exp1509804959")
    tmux.new("exp-notes")
    tmux.new("ex")
    assert runs("new", "exp", "sleep 600; true").code == 0
    assert runs("new", "exp", "sleep 600; true").code == 0  # taken: named exp<unix time>
    second = [name for name in db() if name != "exp"][0]
    assert second in tmux.sessions()
    result = runs("delete", "exp", "-y")
    assert result.code == 0, result.err
    sessions = set(tmux.sessions())
    assert "exp" not in sessions
    assert {"exp1509804959", "exp-notes", "ex", second} <= sessions
    assert list(db()) == [second]


def test_run_whose_session_was_closed_can_be_deleted(runs, db, repo, tmux):
    tmux.new("keeps-the-server-up")
    assert runs("new", "exp", "sleep 600; true").code == 0
    assert tmux.run("kill-session", "-t", "=exp").returncode == 0
    result = runs("delete", "exp", "-y")
    assert result.code == 0, result.err
    assert db() == {}
    assert not (repo / ".runs/tensorboard/exp").exists()
    assert "keeps-the-server-up" in tmux.sessions()


def test_run_can_be_deleted_when_no_tmux_server_runs(runs, db, repo, tmux):
    assert runs("new", "exp", "sleep 600; true").code == 0
    tmux.run("kill-server")
    assert tmux.sessions() == []
    result = runs("delete", "exp", "-y")
    assert result.code == 0, result.err
    assert db() == {}


def test_users_session_that_took_the_closed_sessions_name_is_left_alone(runs, db, tmux):
    tmux.new("keeps-the-server-up")
    assert runs("new", "exp", "sleep 600; true").code == 0
    tmux.run("kill-session", "-t", "=exp")
    tmux.new("exp")  # the user's own session, not the run's
    result = runs("delete", "exp", "-y")
    assert result.code == 0, result.err
    assert db() == {}
    assert "exp" in tmux.sessions()


def test_empty_group_directories_are_pruned(runs, repo):
    for name in ("sweep/lr-1", "sweep/lr-2", "g/h/i"):
        assert runs("new", name, "true").code == 0
    (repo / ".runs/checkpoints/sweep/lr-1.ckpt-1.index").write_text("c")
    (repo / ".runs/checkpoints/g/h/i").write_text("c")
    assert runs("delete", "sweep/lr-1", "-y").code == 0
    assert (repo / ".runs/tensorboard/sweep/lr-2").is_dir()
    assert not (repo / ".runs/checkpoints/sweep/lr-1.ckpt-1.index").exists()
    assert runs("delete", "sweep/lr-2|g/h/i", "-y").code == 0
    for root in ("tensorboard", "checkpoints"):
        assert not (repo / ".runs" / root / "sweep").exists()
        assert not (repo / ".runs" / root / "g").exists()


def test_remaining_run_keeps_the_directory_its_save_path_needs(runs, repo):
    # `runs new sweep/lr-2` created checkpoints/sweep/ so the program can save to checkpoints/sweep/lr-2;
    # deleting its sibling must not take that directory away while lr-2 may still be writing.
    assert runs("new", "sweep/lr-1", "true").code == 0
    assert runs("new", "sweep/lr-2", "true").code == 0
    assert (repo / ".runs/checkpoints/sweep").is_dir()
    assert runs("delete", "sweep/lr-1", "-y").code == 0
    assert (repo / ".runs/checkpoints/sweep").is_dir(), "run sweep/lr-2 can no longer save to its --save-path"


def test_a_group_directory_with_other_files_is_kept(runs, repo):
    assert runs("new", "sweep/lr-1", "true").code == 0
    (repo / ".runs/tensorboard/sweep/notes.txt").write_text("mine")
    assert runs("delete", "sweep/lr-1", "-y").code == 0
    assert (repo / ".runs/tensorboard/sweep/notes.txt").read_text() == "mine"


# Nothing else is touched -----------------------------------------------------------------


def test_nothing_outside_the_runs_dir_is_touched(runs, repo):
    assert runs("new", "exp", "true").code == 0
    (repo / "exp").write_text("user file")
    (repo / "tensorboard/exp").mkdir(parents=True)
    (repo / "tensorboard/exp/events").write_text("user")
    (repo / "checkpoints").mkdir()
    (repo / "checkpoints/exp.ckpt-1.index").write_text("user")
    (repo / "checkpoints/exp").write_text("user")
    before = tree(repo, skip=repo / ".runs")
    assert runs("delete", "exp", "-y").code == 0
    assert tree(repo, skip=repo / ".runs") == before


@pytest.mark.parametrize("other_file", ["a.ckpt-x", "a.ckpt-x.ckpt-5.index", "a.ckpt-x.meta", "a.ckpt-x-100.index", "a.ckpt-x-100.data-00000-of-00001"])
def test_files_of_run_a_ckpt_x_survive_deleting_run_a(runs, db, repo, other_file):
    assert runs("new", "a", "true").code == 0
    assert runs("new", "a.ckpt-x", "true").code == 0
    ck = repo / ".runs/checkpoints"
    (ck / "a.ckpt-1.index").write_text("a's")
    (ck / other_file).write_text("a.ckpt-x's")
    (repo / ".runs/tensorboard/a.ckpt-x/events").write_text("a.ckpt-x's")
    result = runs("delete", "a", "-y")
    assert result.code == 0, result.err
    assert list(db()) == ["a.ckpt-x"]
    assert not (ck / "a.ckpt-1.index").exists()
    assert (ck / other_file).exists(), f"deleting run 'a' removed {other_file}, a file of run 'a.ckpt-x'"
    assert (repo / ".runs/tensorboard/a.ckpt-x/events").exists()


def test_files_of_run_a_slash_b_survive_deleting_run_a(runs, db, repo):
    # `runs new` refuses a run and a group of the same name, but a hand-edited database can hold both.
    write_db(repo, {"a": {"command": "x"}, "a/b": {"command": "y"}})
    (repo / ".runs/tensorboard/a/b").mkdir(parents=True)
    (repo / ".runs/tensorboard/a/b/events").write_text("a/b's")
    (repo / ".runs/checkpoints/a").mkdir(parents=True)
    (repo / ".runs/checkpoints/a/b").write_text("a/b's")
    (repo / ".runs/checkpoints/a.ckpt-1.index").write_text("a's")
    result = runs("delete", "a", "-y")
    assert result.code == 0, result.err
    assert list(db()) == ["a/b"]
    assert not (repo / ".runs/checkpoints/a.ckpt-1.index").exists()
    assert (repo / ".runs/tensorboard/a/b/events").exists(), "run a/b's TensorBoard files were deleted"
    assert (repo / ".runs/checkpoints/a/b").exists(), "run a/b's checkpoint was deleted"


def test_symlink_inside_tensorboard_dir_is_removed_not_followed(runs, repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    assert runs("new", "exp", "true").code == 0
    link = repo / ".runs/tensorboard/exp/link"
    link.symlink_to(outside)
    (repo / ".runs/tensorboard/exp/filelink").symlink_to(outside / "precious")
    assert runs("delete", "exp", "-y").code == 0
    assert not os.path.lexists(link)
    assert not (repo / ".runs/tensorboard/exp").exists()
    assert (outside / "precious").read_text() == "keep me"


def test_tensorboard_dir_that_is_a_symlink_is_unlinked_not_emptied(runs, repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    assert runs("new", "exp", "true").code == 0
    tb = repo / ".runs/tensorboard/exp"
    tb.rmdir()
    tb.symlink_to(outside, target_is_directory=True)
    assert runs("delete", "exp", "-y").code == 0
    assert not os.path.lexists(tb)
    assert (outside / "precious").read_text() == "keep me"


def test_checkpoint_symlinks_are_unlinked_not_followed(runs, repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "weights").write_text("keep me")
    (outside / "dir").mkdir()
    (outside / "dir/file").write_text("keep me too")
    assert runs("new", "exp", "true").code == 0
    ck = repo / ".runs/checkpoints"
    (ck / "exp").symlink_to(outside / "dir", target_is_directory=True)
    (ck / "exp.ckpt-1.index").symlink_to(outside / "weights")
    assert runs("delete", "exp", "-y").code == 0
    assert not os.path.lexists(ck / "exp")
    assert not os.path.lexists(ck / "exp.ckpt-1.index")
    assert (outside / "weights").read_text() == "keep me"
    assert (outside / "dir/file").read_text() == "keep me too"


def test_hand_written_entry_with_a_path_like_name_touches_no_files(runs, db, repo, tmp_path):
    victim = repo / ".runs/precious"  # where tensorboard/../precious and checkpoints/../precious point
    write_db(repo, {"../precious": {"command": "x"}, "keep": {"command": "y"}})
    (repo / ".runs/tensorboard").mkdir()
    (repo / ".runs/checkpoints").mkdir()
    victim.mkdir()
    (victim / "file").write_text("keep me")
    result = runs("delete", "\\.\\./precious", "-y")
    assert result.code == 0, result.err
    assert list(db()) == ["keep"]
    assert (victim / "file").read_text() == "keep me"


def test_deletes_the_patch_of_each_deleted_run_and_no_other(runs, repo):
    """Runs started from uncommitted changes: their patches go with them, emptied group
    directories too; the patch of a run whose name merely starts the same stays."""
    (repo / "main.py").write_text("changed\n")
    for name in ("a", "ab", "g/a", "g/b"):
        assert runs("new", name, "true", "--allow-dirty").code == 0
    patches = repo / ".runs/patches"
    assert runs("delete", "a|g/a", "-y").code == 0
    assert not (patches / "a.patch").exists() and not (patches / "g/a.patch").exists()
    assert (patches / "ab.patch").is_file() and (patches / "g/b.patch").is_file()
    assert runs("delete", "g/b", "-y").code == 0
    assert not (patches / "g").exists()
    assert sorted(p.name for p in patches.iterdir()) == ["ab.patch"]


def test_delete_of_a_queued_run_just_deletes_it_and_the_queue_goes_on(runs, db, repo):
    from tests.conftest import status_of, wait_status

    assert runs("new", "dq", "sleep {t}", "--grid", "t=600,0,1", "--max-parallel", "1", *NO_FLAGS).code == 0
    result = runs("delete", "dq/t-0", "-y")
    assert result.code == 0, result.err
    assert list(db()) == ["dq/t-600", "dq/t-1"]
    assert status_of("dq/t-600") == "running" and status_of("dq/t-1") == "queued"
    assert runs("kill", "dq/t-600", "-y").code == 0
    wait_status("dq/t-1", "finished")


def test_deleting_a_running_run_of_a_queue_starts_the_next(runs, db):
    from tests.conftest import status_of, wait_status

    assert runs("new", "dr", "sleep {t}", "--grid", "t=600,601", "--max-parallel", "1", *NO_FLAGS).code == 0
    result = runs("delete", "dr/t-600", "-y")
    assert result.code == 0, result.err
    assert "Started queued run 'dr/t-601' in its place." in result.out
    wait_status("dr/t-601", "running")
    assert list(db()) == ["dr/t-601"]


# All or nothing, and only what is provably the run's (issue 28) -----------------------


def finished_runs(repo: Path, names, **fields) -> None:
    write_db(repo, {name: {"command": "true", "exit_code": 0, "datetime": "2026-12-01T10:00:00+00:00", **fields}
                    for name in names})
    for name in names:
        (repo / ".runs/tensorboard" / name).mkdir(parents=True, exist_ok=True)
        (repo / ".runs/tensorboard" / name / "events").write_text(name)
        (repo / ".runs/logs" / f"{name}.log").parent.mkdir(parents=True, exist_ok=True)
        (repo / ".runs/logs" / f"{name}.log").write_text(name)
        (repo / ".runs/checkpoints" / f"{name}.ckpt-1.index").parent.mkdir(parents=True, exist_ok=True)
        (repo / ".runs/checkpoints" / f"{name}.ckpt-1.index").write_text(name)


def test_deleting_a_groups_last_member_removes_its_directories(runs, db, repo):
    assert runs("new", "g", "echo {t}", "--grid", "t=0.1,0.2,0.3").code == 0
    result = runs("delete", "g/.*", "-y")
    assert result.code == 0, result.err
    for root in ("tensorboard", "checkpoints", "logs"):
        assert not (repo / ".runs" / root / "g").exists(), f"{root}/g was left behind"
    result = runs("new", "g", "true")
    assert result.code == 0, result.err
    assert "taken" not in result.out and list(db()) == ["g"]


def test_a_deleted_groups_name_can_be_moved_to(runs, db, repo):
    finished_runs(repo, ["h/a", "h/b", "x"])
    assert runs("delete", "h/.*", "-y").code == 0
    result = runs("mv", "x", "h")
    assert result.code == 0, result.err
    assert list(db()) == ["h"] and (repo / ".runs/tensorboard/h/events").read_text() == "x"


def test_a_users_session_made_years_after_an_old_entry_is_left_alone(runs, db, repo, tmux):
    write_db(repo, {"old": {"command": "python train.py", "datetime": "2017-11-04T19:11:47.395433"}})
    tmux.new("old")  # the user's own, today; the 2017 entry records no session id
    result = runs("delete", "old", "-y")
    assert result.code == 0, result.err
    assert db() == {}
    assert "old" in tmux.sessions()


def test_an_old_entrys_session_made_just_after_it_is_closed(runs, db, repo, tmux):
    import datetime

    tmux.new("old")
    now = datetime.datetime.now().astimezone().isoformat()  # as the original tool recorded a run
    write_db(repo, {"old": {"command": "python train.py", "datetime": now}})
    result = runs("delete", "old", "-y")
    assert result.code == 0, result.err
    assert "old" not in tmux.sessions()


def test_finished_runs_are_deleted_where_tmux_is_not_installed(runs, db, repo, tmp_path, monkeypatch):
    finished_runs(repo, ["a", "b"], launcher="tmux", tmux_session="a")
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    result = runs("delete", "a|b", "-y")
    assert result.code == 0, result.err
    assert db() == {}
    assert not (repo / ".runs/tensorboard/a").exists() and not (repo / ".runs/logs/b.log").exists()


def test_the_trash_is_emptied_after_a_delete(runs, repo):
    finished_runs(repo, ["a", "b"])
    assert runs("delete", "a", "-y").code == 0
    assert not (repo / ".runs/.trash").exists()
    assert (repo / ".runs/tensorboard/b/events").read_text() == "b"


def test_a_run_whose_files_cannot_move_is_kept_whole(runs, db, repo, monkeypatch):
    finished_runs(repo, ["a", "b"])
    real_rename = os.rename

    def rename(source, target):  # a file still open on NFS, say: a fault no test can cause for real
        if source.endswith("b.ckpt-1.index"):
            raise OSError(16, "Device or resource busy", source)
        real_rename(source, target)

    monkeypatch.setattr("runs_manager.runtime.trash.os.rename", rename)
    result = runs("delete", "a|b", "-y")
    assert result.code == 1
    assert "could not delete the files of 'b'" in result.err and "it is kept" in result.err
    assert list(db()) == ["b"]
    for path in ("tensorboard/b/events", "logs/b.log", "checkpoints/b.ckpt-1.index"):
        assert (repo / ".runs" / path).read_text() == "b", f"{path} was not put back"
    assert not (repo / ".runs/tensorboard/a").exists()


def test_a_delete_killed_half_way_is_undone_by_a_command_spelling_the_runs_dir_otherwise(runs, db, repo):
    """A supervisor names the runs directory by its absolute path: it must undo the delete
    too, and no later command may empty a trash that holds a listed run's files."""
    from tests.conftest import run_process

    finished_runs(repo, ["a", "b"])
    crashed = run_process("delete", "a", "-y", env={"RUNS_CRASH_AT": "delete:files-moved"}, cwd=repo)
    assert crashed.code == -9, crashed
    assert runs("list", "--runs-dir", str(repo / ".runs")).out == "a\nb\n"
    assert (repo / ".runs/tensorboard/a/events").read_text() == "a"
    assert runs("delete", "b", "-y").code == 0
    for path in ("tensorboard/a/events", "logs/a.log", "checkpoints/a.ckpt-1.index"):
        assert (repo / ".runs" / path).read_text() == "a", f"{path} of the listed run 'a' is gone"


@pytest.mark.parametrize("target", ["tensorboard", "tensorboard/other"])
def test_a_trash_that_is_a_symbolic_link_is_never_used(runs, db, repo, target):
    finished_runs(repo, ["x", "other", "delete-old"])
    (repo / ".runs/tensorboard/other/delete-me").mkdir()
    (repo / ".runs/.trash").symlink_to(target)
    assert runs("list").code == 0  # the index, built once
    before = tree(repo / ".runs")
    result = runs("delete", "x", "-y")
    assert "symbolic link" in error_line(result)
    assert tree(repo / ".runs") == before
    assert list(db()) == ["x", "other", "delete-old"]


def test_a_database_no_command_has_read_yet_is_seen(runs, repo):
    finished_runs(repo, ["a"])  # written by hand: no lock file beside it yet
    result = runs("new", "b", "true", "--db-filename", "other.yml")
    line = error_line(result)
    assert ".runs.yml" in line and "other.yml" in line
