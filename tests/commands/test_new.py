from __future__ import annotations

import datetime
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import error_line, git


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def writes(out: Path, expression: str) -> str:
    """A command that writes ``expression``, expanded by the run's shell, to ``out``,
    ignoring the flags runs appends."""
    return f"sh -c 'echo \"{expression}\" > {out}' sh"


def test_new_records_the_five_fields(runs, db, head, tmux):
    result = runs("new", "exp1", "python main.py", "--description=first try")
    assert result.code == 0, result.err
    entry = db()["exp1"]
    assert entry["command"] == "python main.py"
    assert entry["commit"] == head
    assert entry["description"] == "first try"
    assert entry["host"] == os.uname().nodename
    stamp = datetime.datetime.fromisoformat(entry["datetime"])
    assert stamp.utcoffset() is not None
    assert abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) < 60
    assert "exp1" in tmux.sessions()
    assert "tmux attach -t =exp1" in result.out


def test_new_without_description_records_empty_string(runs, db):
    assert runs("new", "exp1", "true").code == 0
    assert db()["exp1"]["description"] == ""


def test_new_creates_directories_and_gitignore(runs, repo):
    assert runs("new", "sweep/lr-0.1", "true").code == 0
    assert (repo / ".runs/tensorboard/sweep/lr-0.1").is_dir()
    assert (repo / ".runs/checkpoints/sweep").is_dir()
    assert (repo / ".runs/.gitignore").read_text().splitlines()[-1] == "*"
    assert git("status", "--porcelain", cwd=repo) == ""


def test_program_gets_flags_as_separate_words(runs, repo, runsrc):
    runsrc({"save-path-flag": "-s", "extra-flags": [["goal-log-dir", "<runs-dir>/goal-logs/<run-name>.log"]]})
    git("add", ".runsrc", cwd=repo)
    git("commit", "-qm", "rc", cwd=repo)
    out = repo / "argv.txt"
    program = "python3 -c " + shlex.quote(f"import sys, json; open({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))")
    assert runs("new", "a.b", program).code == 0
    wait_for(out.exists)
    import json

    assert json.loads(out.read_text()) == [  # absolute: a command that changes directory still finds them
        "--tb-dir", f"{repo}/.runs/tensorboard/a.b/",
        "-s", f"{repo}/.runs/checkpoints/a.b",
        "--goal-log-dir", f"{repo}/.runs/goal-logs/a.b.log",
    ]


def test_command_goes_to_the_shell_as_typed(runs, repo):
    out = repo / "env.txt"
    assert runs("new", "e", f"FOO='a b;c' sh -c 'echo \"$FOO\" > {out}' ignored", "--tb-dir-flag", "None", "--save-path-flag", "None").code == 0
    wait_for(lambda: out.exists() and out.read_text())
    assert out.read_text() == "a b;c\n"


def test_session_stays_open_after_program_ends(runs, repo, tmux):
    assert runs("new", "short", "echo done-marker").code == 0
    time.sleep(0.5)
    assert "short" in tmux.sessions()
    pane = tmux.run("capture-pane", "-p", "-t", "=short:").stdout
    assert "done-marker" in pane
    assert "exited with status 0" in pane


def test_name_with_dots_gets_a_tmux_session_without_dots(runs, repo, db, tmux):
    assert runs("new", "lr-0.1", "true").code == 0
    assert db()["lr-0.1"]["tmux_session"] == "lr-0~1"
    assert "lr-0~1" in tmux.sessions()


def test_collision_appends_timestamp_and_says_so(runs, db):
    assert runs("new", "exp", "true").code == 0
    before = int(time.time())
    second = runs("new", "exp", "true")
    third = runs("new", "exp", "true")
    assert second.code == third.code == 0
    names = list(db())
    assert len(names) == 3 and names[0] == "exp"
    for name, result in zip(names[1:], (second, third)):
        assert name.startswith("exp") and int(name[3:13]) >= before
        assert f"'{name}'" in result.out
    assert len(set(names)) == 3


def test_group_conflicts_are_errors(runs, db):
    assert runs("new", "a/b", "true").code == 0
    result = runs("new", "a", "true")
    assert result.code == 1 and "group" in result.err
    assert runs("new", "c", "true").code == 0
    result = runs("new", "c/d", "true")
    assert result.code == 1 and "run 'c' exists" in result.err
    assert set(db()) == {"a/b", "c"}


@pytest.mark.parametrize(
    "name",
    ["", "/abs", "a/", "a//b", "..", "a/../b", ".", "has space", "tab\tname", "new\nline", "semi;colon", "dollar$", "quote'", "é", "a:b", "x" * 201],
)
def test_invalid_names_are_refused_before_anything_is_written(runs, repo, name):
    result = runs("new", name, "true")
    assert result.code == 1
    assert result.err.startswith("runs: error: invalid run name")
    assert len(result.err.strip().splitlines()) == 1
    assert not (repo / ".runs").exists()


def test_not_a_git_repository(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runs("new", "exp", "true")
    assert result.code == 1 and "not in a git repository" in result.err
    assert not (tmp_path / ".runs").exists()


def test_repository_without_commits(runs, tmp_path, monkeypatch):
    git("init", "-q", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path / "empty")
    result = runs("new", "exp", "true")
    assert result.code == 1 and "no commits" in result.err
    assert not (tmp_path / "empty/.runs").exists()


@pytest.mark.parametrize("change", ["modify", "stage", "untracked"])
def test_dirty_tree_is_refused_and_paths_listed(runs, repo, change):
    if change == "modify":
        (repo / "main.py").write_text("changed\n")
    elif change == "stage":
        (repo / "new.py").write_text("x\n")
        git("add", "new.py", cwd=repo)
    else:
        (repo / "scratch.txt").write_text("x\n")
    result = runs("new", "exp", "true")
    assert result.code == 1
    assert "uncommitted changes" in result.err
    assert ("main.py" if change == "modify" else "new.py" if change == "stage" else "scratch.txt") in result.err
    assert not (repo / ".runs").exists()


def test_a_tools_output_directory_is_named_with_its_gitignore_line(runs, repo):
    """Hydra's outputs/ after a first run (and W&B's wandb/) make the tree dirty: the refusal
    says whose they are and the .gitignore lines, and where Hydra's output can go instead."""
    from tests.conftest import error_line

    (repo / "outputs" / "2026-12-06" / "20-20-59").mkdir(parents=True)
    (repo / "outputs" / "2026-12-06" / "20-20-59" / "main.log").write_text("x\n")
    (repo / "wandb" / "run-1").mkdir(parents=True)
    (repo / "wandb" / "run-1" / "files.txt").write_text("x\n")
    message = error_line(runs("new", "exp", "true"))
    assert message.rstrip("\n").endswith("outputs/ is Hydra's output, wandb/ is Weights & Biases' output: add 'outputs/' and "
                            "'wandb/' to .gitignore (or write Hydra's under the run's own path: hydra.run.dir={save_path})")
    (repo / ".gitignore").write_text("outputs/\nwandb/\n")
    git("add", ".gitignore", cwd=repo)
    git("commit", "-qm", "ignore tools' output", cwd=repo)
    assert runs("new", "exp", "true").code == 0  # the line it named is enough
    (repo / "notes.txt").write_text("x\n")
    assert "Hydra" not in error_line(runs("new", "exp2", "true"))  # only when such a directory is there


def test_no_gitignore_line_for_a_tracked_file_in_a_tools_directory(runs, repo):
    """.gitignore does nothing for a file git tracks: a changed outputs/README.md that the
    project committed is a change like any other, with no .gitignore line suggested."""
    from tests.conftest import error_line

    (repo / "outputs").mkdir()
    (repo / "outputs" / "README.md").write_text("what goes here\n")
    git("add", "outputs/README.md", cwd=repo)
    git("commit", "-qm", "document outputs/", cwd=repo)
    (repo / "outputs" / "README.md").write_text("what goes here, and why\n")
    message = error_line(runs("new", "exp", "true"))
    assert "outputs/README.md" in message and ".gitignore" in message  # the general advice stays
    assert "Hydra" not in message and "'outputs/'" not in message
    (repo / "outputs" / "2026-12-06").mkdir()
    (repo / "outputs" / "2026-12-06" / "main.log").write_text("x\n")
    assert "outputs/ is Hydra's output" in error_line(runs("new", "exp", "true"))  # untracked beside it: named


def test_dirty_listing_is_capped(runs, repo):
    for i in range(25):
        (repo / f"f{i:02}.txt").write_text("x")
    result = runs("new", "exp", "true")
    assert "and 15 more" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_ignored_files_and_runs_dir_do_not_count(runs, repo, db):
    (repo / ".gitignore").write_text("*.log\n")
    git("add", ".gitignore", cwd=repo)
    git("commit", "-qm", "ignore", cwd=repo)
    (repo / "train.log").write_text("x")
    assert runs("new", "one", "true").code == 0
    # A tracked database file that runs itself changes must not make the tree dirty.
    git("add", "-f", ".runs/.runs.yml", cwd=repo)
    git("commit", "-qm", "track db", cwd=repo)
    assert runs("new", "two", "true").code == 0
    assert set(db()) == {"one", "two"}


def test_tmux_missing_is_refused(runs, repo, monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip(), bin_dir / "git")
    monkeypatch.setenv("PATH", str(bin_dir))
    result = runs("new", "exp", "true")
    assert result.code == 1 and "tmux is not installed" in result.err
    assert not (repo / ".runs").exists()


def test_failed_launch_rolls_back(runs, repo, db, tmp_path, monkeypatch):
    assert runs("new", "kept", "true").code == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_tmux = subprocess.run(["which", "tmux"], capture_output=True, text=True).stdout.strip()
    fake = bin_dir / "tmux"
    # A tmux that answers questions but cannot start sessions (the fault we cannot cause for real).
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = new-session ] && {{ echo "create session failed" >&2; exit 1; }}; done\nexec {real_tmux} "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = runs("new", "doomed", "true")
    assert result.code == 1 and "create session failed" in result.err
    assert set(db()) == {"kept"}
    assert not (repo / ".runs/tensorboard/doomed").exists()
    assert not (repo / ".runs/.runs.yml.pending").exists()


def test_overwrite_asks_and_no_keeps_the_old_run(runs, db, repo):
    assert runs("new", "exp", "true", "--description=old").code == 0
    result = runs("new", "exp", "true", "--overwrite")  # stdin (pytest's, unreadable) gives no answer: that is a no
    assert result.code == 1
    assert db()["exp"]["description"] == "old"


@pytest.mark.parametrize("answer, replaced", [("y\n", True), ("n\n", False), ("", False)])
def test_overwrite_reads_a_piped_answer(runs, runs_process, db, repo, answer, replaced):
    assert runs("new", "exp", "true", "--description=old").code == 0
    result = runs_process("new", "exp", "true", "--description=new", "--overwrite", input=answer)
    assert "Traceback" not in result.err and "[y/N]" in result.err
    assert result.code == (0 if replaced else 1), result.err
    assert db()["exp"]["description"] == ("new" if replaced else "old")


def test_overwrite_with_yes_replaces_the_run(runs, db, repo, tmux):
    tmux.new("keeps-the-server-up")  # so session ids are not reused
    assert runs("new", "exp", "sleep 600; true", "--description=old").code == 0
    (repo / ".runs/tensorboard/exp/events.out").write_text("old events")
    (repo / ".runs/checkpoints/exp.ckpt-1.index").write_text("old")
    old_id = db()["exp"]["tmux_session_id"]
    assert runs("new", "exp", "sleep 600; true", "--description=new", "--overwrite", "-y").code == 0
    assert list(db()) == ["exp"]
    assert db()["exp"]["description"] == "new"
    assert db()["exp"]["tmux_session_id"] != old_id
    assert not (repo / ".runs/tensorboard/exp/events.out").exists()
    assert not (repo / ".runs/checkpoints/exp.ckpt-1.index").exists()
    assert tmux.sessions().count("exp") == 1


def test_overwrite_refused_on_dirty_tree_keeps_old_run(runs, db, repo):
    assert runs("new", "exp", "true", "--description=old").code == 0
    (repo / "main.py").write_text("dirty")
    result = runs("new", "exp", "true", "--overwrite", "-y")
    assert result.code == 1
    assert db()["exp"]["description"] == "old"
    assert (repo / ".runs/tensorboard/exp").is_dir()


def test_virtualenv_is_activated(runs, repo, runsrc, tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/activate").write_text("export ACTIVATED=yes\n")
    out = repo / "venv.txt"
    assert runs("new", "v", writes(out, "$ACTIVATED"), f"--virtualenv-path={venv}").code == 0
    wait_for(lambda: out.exists() and out.read_text())
    assert out.read_text() == "yes\n"


def test_missing_virtualenv_is_refused_before_writing(runs, repo, tmp_path):
    result = runs("new", "v", "true", f"--virtualenv-path={tmp_path / 'nope'}")
    assert result.code == 1 and "does not exist" in result.err
    assert not (repo / ".runs").exists()


def test_run_sees_the_environment_runs_was_started_with(runs, repo, tmux, monkeypatch):
    tmux.new("users-own-session")  # a server that already runs, started with another environment
    monkeypatch.setenv("RUNS_TEST_VAR", "from-this-shell")
    out = repo / "var.txt"
    assert runs("new", "envtest", writes(out, "$RUNS_TEST_VAR")).code == 0
    wait_for(lambda: out.exists() and out.read_text())
    assert out.read_text() == "from-this-shell\n"


def test_works_from_inside_tmux(runs, repo, tmux, monkeypatch):
    tmux.new("outer")
    socket = tmux.run("display-message", "-p", "-t", "=outer:", "#{socket_path}").stdout.strip()
    monkeypatch.setenv("TMUX", f"{socket},1,0")
    result = runs("new", "inner", "true")
    assert result.code == 0, result.err
    assert "tmux switch-client -t =inner" in result.out
    assert "inner" in tmux.sessions()


def test_working_directory_with_spaces_and_quotes(runs, tmp_path, monkeypatch, db):
    path = tmp_path / "my 'odd' \"dir\" $HOME"
    path.mkdir()
    git("init", "-q", cwd=path)
    (path / "main.py").write_text("")
    git("add", ".", cwd=path)
    git("commit", "-qm", "x", cwd=path)
    monkeypatch.chdir(path)
    out = path / "pwd.txt"
    assert runs("new", "odd", f"pwd > {shlex.quote(str(out))}", *NO_FLAGS_NEW).code == 0
    wait_for(lambda: out.exists() and out.read_text())
    assert out.read_text().strip() == str(path)


def test_run_does_not_see_variables_this_shell_lacks(runs, repo, tmux, monkeypatch):
    monkeypatch.setenv("RUNS_STALE_VAR", "from-the-server")
    tmux.new("started-with-the-variable")
    monkeypatch.delenv("RUNS_STALE_VAR")
    out = repo / "stale.txt"
    assert runs("new", "fresh", writes(out, "[${RUNS_STALE_VAR-unset}]")).code == 0
    wait_for(lambda: out.exists() and out.read_text())
    assert out.read_text() == "[unset]\n"


# Placeholders and the RUNS_* environment (issue 13): what the program really gets.
DUMP = """import json, os, sys
out = {"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k.startswith("RUNS_")}}
open(os.environ["RUNS_NAME"] + ".json", "w").write(json.dumps(out))
"""


@pytest.fixture
def dump(repo):
    """A program that writes its argv and RUNS_* environment to NAME.json in the project."""
    (repo / "dump.py").write_text(DUMP)
    (repo / ".gitignore").write_text("*.json\n*.txt\n")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "dump", cwd=repo)

    def result(name: str):
        import json

        path = repo / f"{name}.json"
        wait_for(lambda: path.exists() and path.read_text())
        return json.loads(path.read_text())

    return result


@pytest.fixture
def odd_runs_dir(tmp_path):
    return tmp_path / "my runs 'dir' \"q\" $HOME"


def test_placeholders_in_a_compound_command_give_exact_paths(runs, dump, odd_runs_dir):
    command = 'python3 dump.py --logdir={tb_dir} "{save_path}" \'{name}\' > out.txt 2>&1 && echo done | tee log.txt'
    result = runs("new", "p", command, "--runs-dir", str(odd_runs_dir))
    assert result.code == 0, result.err
    assert "note" not in result.err  # the placeholders placed every flag
    got = dump("p")
    assert got["argv"] == [f"--logdir={odd_runs_dir}/tensorboard/p/", f"{odd_runs_dir}/checkpoints/p", "p"]
    import yaml

    entry = yaml.safe_load((odd_runs_dir / ".runs.yml").read_text())["p"]
    assert entry["command"] == command  # as typed: reproduce round-trips
    assert "{tb_dir}" not in entry["launched"] and "--tb-dir" not in entry["launched"]


def test_placeholder_in_a_nested_shell_script(runs, dump, odd_runs_dir):
    command = "bash -c 'python3 dump.py {tb_dir} \"--name={name}\"'"
    assert runs("new", "n", command, "--runs-dir", str(odd_runs_dir), "--save-path-flag", "None").code == 0
    assert dump("n")["argv"] == [f"{odd_runs_dir}/tensorboard/n/", "--name=n"]


def test_environment_and_the_compound_note(runs, dump, repo):
    result = runs("new", "e", "python3 dump.py > out.txt 2>&1 && echo done")
    assert result.code == 0
    notes = [line for line in result.err.splitlines() if line.startswith("runs: note:")]
    assert len(notes) == 1 and "go to 'echo done' only" in notes[0] and "{tb_dir}" in notes[0]
    got = dump("e")
    assert got["argv"] == []  # the shell gave the flags to echo, as the note says
    runs_dir = str(repo / ".runs")
    assert got["env"] == {
        "RUNS_NAME": "e",
        "RUNS_TB_DIR": f"{runs_dir}/tensorboard/e/",
        "RUNS_SAVE_PATH": f"{runs_dir}/checkpoints/e",
        "RUNS_DIR": runs_dir,
        "RUNS_SOURCE_DIR": str(repo),  # the work tree's top, wherever the program starts (a snapshot)
    }


def test_bash_c_gets_the_note_and_the_environment(runs, dump, repo):
    result = runs("new", "b", "bash -c 'python3 dump.py'")
    assert "go to bash as $0, $1" in result.err
    assert dump("b")["env"]["RUNS_TB_DIR"] == f"{repo}/.runs/tensorboard/b/"


def test_extra_flags_take_placeholders_and_old_spellings(runs, dump, runsrc, repo):
    runsrc({"extra-flags": [["log", "{runs_dir}/logs x/{name}.log"], ["old", "<runs-dir>/<run-name>"]], "save-path-flag": None})
    git("add", ".runsrc", cwd=repo)
    git("commit", "-qm", "rc", cwd=repo)
    assert runs("new", "x", "python3 dump.py --tb {tb_dir}").code == 0
    assert dump("x")["argv"] == ["--tb", f"{repo}/.runs/tensorboard/x/", "--log", f"{repo}/.runs/logs x/x.log", "--old", f"{repo}/.runs/x"]


@pytest.mark.parametrize(
    "command,message",
    [
        ("python3 t.py --x {unknown}", "unknown placeholder {unknown} in the command; known placeholders: {name}, {tb_dir}"),
        ("python3 t.py --x {tb_dir", "'{' at column 18 of the command starts no placeholder"),
        ("echo `echo {name}`", "inside backquotes"),
    ],
)
def test_bad_placeholders_write_nothing(runs, repo, tmux, command, message):
    from tests.conftest import error_line

    assert message in error_line(runs("new", "bad", command))
    assert not (repo / ".runs").exists() and tmux.sessions() == []


def test_bad_placeholder_in_extra_flags_writes_nothing(runs, repo, runsrc):
    from tests.conftest import error_line

    runsrc({"extra-flags": [["log", "{nme}.log"]]})
    git("add", ".runsrc", cwd=repo)
    git("commit", "-qm", "rc", cwd=repo)
    assert "unknown placeholder {nme} in extra-flags" in error_line(runs("new", "bad", "python3 t.py"))
    assert not (repo / ".runs").exists()



# Sweeps (issue 11): --grid, --grid-file, --max-parallel, --gpus -----------------------


def test_a_grid_records_and_starts_every_run_with_its_values(runs, dump, db, repo, tmux):
    (repo / "sw").mkdir()  # dump.py writes sw/lr-...json
    result = runs("new", "sw", "python3 dump.py --lr {lr} --seed={seed} '{lr}' {tb_dir}", "--grid", "lr=0.1,0.01,0.001",
                  "--grid", "seed=1,2", "-d", "lr {lr}, seed {seed}")
    assert result.code == 0, result.err
    names = [f"sw/lr-{lr}_seed-{seed}" for lr in ("0.1", "0.01", "0.001") for seed in (1, 2)]
    assert "Sweep 'sw': 6 runs" in result.out and "6 started" in result.out
    assert "runs table --pattern 'sw/.*'" in result.out
    entries = db()
    assert list(entries) == names
    for name in names:
        lr, seed = entries[name]["grid"]["lr"], entries[name]["grid"]["seed"]
        assert entries[name]["sweep"] == "sw" and "queued" not in entries[name]
        assert entries[name]["queue"] == {"id": entries[names[0]]["queue"]["id"], "directory": str(repo)}  # no limits
        assert entries[name]["command"] == f"python3 dump.py --lr {lr} --seed={seed} '{lr}' {{tb_dir}}"
        assert entries[name]["description"] == f"lr {lr}, seed {seed}"
        argv = dump(name)["argv"]
        assert argv[:4] == ["--lr", lr, f"--seed={seed}", lr]
        assert argv[4] == str(repo / ".runs/tensorboard" / name) + "/"
    # Each had a session of its own; a sweep's runs close theirs when they end (keep-sessions).
    assert sorted(entries[name]["tmux_session"] for name in names) == sorted(name.replace(".", "~") for name in names)
    assert set(tmux.sessions()) <= {name.replace(".", "~") for name in names}
    assert runs("list", "--pattern", "sw/.*").out.split() == names



NO_FLAGS_NEW = ("--tb-dir-flag", "None", "--save-path-flag", "None")


def write_grid(repo: Path, text: str) -> Path:
    path = repo.parent / "grid.yml"  # outside the work tree, which it would make dirty
    path.write_text(text)
    return path


def test_a_member_reproduces_as_a_plain_run(runs, db):
    result = runs("new", "rp{i}", "echo {opt} {i}", "--grid", "opt=it's", "--grid", "i=1,2", *NO_FLAGS_NEW)
    assert result.code == 0, result.err
    command = db()["rp1"]["command"]
    assert command == "echo 'it'\"'\"'s' 1"
    printed = runs("reproduce", "rp1").out.splitlines()
    assert printed[-1] == f" runs new rp1 {shlex.quote(command)} --no-runsrc --tb-dir-flag=None --save-path-flag=None"
    assert shlex.split(printed[-1])[3] == command  # the plain run's command, placeholders already filled


def test_grid_file_values_with_commas(runs, dump, db, repo):
    grid = write_grid(repo, "layers: ['64,64', '128,128,128']\n")
    from tests.conftest import error_line

    # A default name leaves ',' out (programs split at it): the runs need a NAME template.
    message = error_line(runs("new", "net", "python3 dump.py --layers {layers}", "--grid-file", str(grid)))
    assert "grid value '64,64' of 'layers' holds ','" in message and "NAME 'net/layers{layers}'" in message
    assert not (repo / ".runs" / ".runs.yml").exists()
    (repo / "net").mkdir()  # dump.py writes net/l...json
    result = runs("new", "net/l{layers}", "python3 dump.py --layers {layers}", "--grid-file", str(grid))
    assert result.code == 0, result.err
    assert list(db()) == ["net/l64,64", "net/l128,128,128"]  # a template's names are kept as typed
    assert dump("net/l128,128,128")["argv"][:2] == ["--layers", "128,128,128"]


@pytest.mark.parametrize("args,message", [
    (["--grid", "lr=1,2", "--grid", "seed=1"], "grid key 'seed' is not used in COMMAND"),
    (["--grid", "lr="], "has an empty value"),
    (["--grid", "lr=1", "--grid", "lr=2"], "given twice"),
    (["--grid", "lr=1,1"], "twice"),
    (["--grid", "lr=a b"], "name the runs with placeholders instead, such as NAME 'bad/lr{lr}'"),
    (["--grid", "lr=1", "--gpus", "0,x"], "not a GPU number"),
    (["--grid", "lr=1", "--gpus", ""], "give GPU numbers"),
    (["--grid", "lr=1", "--launcher", "slurm", "--gpus", "0"], "the scheduler queues them"),
    (["--grid", "lr=1", "--launcher", "slurm", "--max-parallel", "2"], "the scheduler queues them"),
    (["--grid", "lr=1", "-d", "{seed}"], "unknown placeholder {seed} in the description"),
])
def test_bad_grids_write_nothing(runs, repo, tmux, args, message):
    from tests.conftest import error_line

    assert message in error_line(runs("new", "bad", "echo {lr}", *args))
    assert not (repo / ".runs").exists() and tmux.sessions() == []


def test_max_parallel_must_be_a_positive_number(runs, repo):
    result = runs("new", "bad", "echo {lr}", "--grid", "lr=1", "--max-parallel", "0")
    assert result.code == 2 and "at least 1" in result.err and not (repo / ".runs").exists()


def test_a_sweep_over_ten_thousand_runs_needs_yes(runs, repo):
    from tests.conftest import error_line

    result = runs("new", "big", "echo {a} {b}", "--grid", "a=" + ",".join(map(str, range(101))), "--grid", "b=" + ",".join(map(str, range(100))))
    assert "makes 10,100 runs, more than 10,000; pass --yes" in error_line(result)
    assert not (repo / ".runs").exists()


def test_a_name_taken_anywhere_in_the_grid_records_none_of_it(runs, db, tmux):
    assert runs("new", "s/lr-2", "sleep 600", *NO_FLAGS_NEW).code == 0
    before = db()
    from tests.conftest import error_line

    message = error_line(runs("new", "s", "echo {lr}", "--grid", "lr=1,2,3", *NO_FLAGS_NEW))
    assert "run 's/lr-2' exists" in message and "--overwrite" in message
    assert db() == before and tmux.sessions() == ["s/lr-2"]
    # A run that would be the sweep's group.
    assert "run 's/lr-2' exists, so the sweep's run 's/lr-2/x-1'" in error_line(
        runs("new", "s/lr-2", "echo {x}", "--grid", "x=1", *NO_FLAGS_NEW))
    assert db() == before


def test_a_grid_naming_a_run_and_its_group_records_nothing(runs, repo):
    from tests.conftest import error_line

    assert "'g' and 'g/b': a run cannot also be a group" in error_line(runs("new", "{a}", "echo {a}", "--grid", "a=g,g/b"))
    assert not (repo / ".runs" / ".runs.yml").exists()


def test_overwrite_replaces_the_taken_runs_of_a_grid(runs, db):
    assert runs("new", "o", "echo {lr}", "--grid", "lr=1,2", *NO_FLAGS_NEW).code == 0
    old = db()["o/lr-2"]["datetime"]
    result = runs("new", "o", "echo {lr}", "--grid", "lr=2,3", "--overwrite", "-y", *NO_FLAGS_NEW)
    assert result.code == 0, result.err
    entries = db()
    assert list(entries) == ["o/lr-1", "o/lr-2", "o/lr-3"]
    assert entries["o/lr-2"]["datetime"] != old


def test_a_plain_run_given_gpus_is_named_as_usual_and_queued(runs, db):
    assert runs("new", "solo", "sleep 600", "--gpus", "3", *NO_FLAGS_NEW).code == 0
    second = runs("new", "solo", "sleep 600", "--gpus", "3", *NO_FLAGS_NEW)
    assert second.code == 0, second.err
    names = list(db())
    assert f"The name 'solo' is taken; this run is named '{names[1]}'." in second.out  # as any single run
    assert names[0] == "solo" and names[1].startswith("solo") and len(names) == 2
    assert db()["solo"]["cuda_visible_devices"] == "3" and db()[names[1]]["queued"] is True
    assert "sweep" not in db()["solo"]


def test_a_slurm_grid_submits_a_job_per_run(runs, db, slurm):
    result = runs("new", "js", "echo {lr}", "--grid", "lr=1,2,3", "--launcher", "slurm", "--sbatch-args=--time=1", *NO_FLAGS_NEW)
    assert result.code == 0, result.err
    entries = db()
    assert [entries[f"js/lr-{lr}"]["launcher"] for lr in (1, 2, 3)] == ["slurm"] * 3
    assert len({entries[f"js/lr-{lr}"]["job_id"] for lr in (1, 2, 3)}) == 3
    assert all("--time=1" in entries[f"js/lr-{lr}"]["sbatch_args"] for lr in (1, 2, 3))
    assert "submitted as Slurm job" in result.out
    from tests.conftest import wait_status

    wait_status("js/lr-3", "finished", timeout=60)
    assert (Path(".runs/logs/js/lr-3.log")).read_text().startswith("3")


def test_a_grid_whose_start_fails_records_none_of_it(runs, repo, db, tmp_path, monkeypatch, tmux):
    assert runs("new", "kept", "true").code == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_tmux = subprocess.run(["which", "tmux"], capture_output=True, text=True).stdout.strip()
    count = tmp_path / "sessions"
    fake = bin_dir / "tmux"
    # A tmux that starts one session, then cannot start more (the fault we cannot cause for real).
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = new-session ] && {{ [ -e {count} ] && {{ echo "create session failed" >&2; exit 1; }}; touch {count}; }}; done\nexec {real_tmux} "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = runs("new", "g", "sleep 600 {i}", "--grid", "i=1,2,3", *NO_FLAGS_NEW)
    assert result.code == 1 and "create session failed" in result.err
    assert set(db()) == {"kept"}
    assert [s for s in tmux.sessions() if s.startswith("g/")] == []  # the one that started was stopped
    assert not (repo / ".runs/tensorboard/g").exists() and not (repo / ".runs/logs/g").exists()
    assert not (repo / ".runs/.runs.yml.pending").exists()


def test_a_grid_whose_directory_is_a_file_of_another_run_records_nothing(runs, repo, db):
    from tests.conftest import error_line

    assert runs("new", "a", "true").code == 0
    (repo / ".runs/checkpoints/a.ckpt-1.index").write_text("a's checkpoint")
    message = error_line(runs("new", "a.ckpt-1.index", "echo {v}", "--grid", "v=1,2", *NO_FLAGS_NEW))
    assert "checkpoints/a.ckpt-1.index is a file, where run 'a.ckpt-1.index/v-1' needs a directory" in message
    assert set(db()) == {"a"} and (repo / ".runs/checkpoints/a.ckpt-1.index").read_text() == "a's checkpoint"


# Launches as the README says (issue 30) -------------------------------------------------


def test_appended_paths_are_absolute_when_the_command_changes_directory(runs, repo):
    (repo / "src").mkdir()
    (repo / "src/train.py").write_text("import json, sys\nopen('argv.json', 'w').write(json.dumps(sys.argv[1:]))\n")
    (repo / ".gitignore").write_text("argv.json\n")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "src", cwd=repo)
    assert runs("new", "r", "cd src && python3 train.py").code == 0
    out = repo / "src/argv.json"
    wait_for(out.exists)
    assert json.loads(out.read_text()) == ["--tb-dir", f"{repo}/.runs/tensorboard/r/", "--save-path", f"{repo}/.runs/checkpoints/r"]
    assert not (repo / "src/.runs").exists()


@pytest.mark.parametrize("command, why", [
    ("python3 train.py  # try lr 0.1", "comment"),
    ("python3 train.py \\", "backslash"),
    ("python3 train.py 'lr=0.1", "quote"),
])
def test_a_command_that_would_swallow_the_flags_is_refused(runs, repo, db, command, why):
    result = runs("new", "c", command)
    line = error_line(result)
    assert "would be lost" in line and why in line and "{tb_dir}" in line
    assert db() == {} and not (repo / ".runs/tensorboard/c").exists()
    assert runs("new", "c", command, *NO_FLAGS_NEW).code == 0  # nothing to append: nothing lost


def test_a_flag_the_command_passes_itself_is_not_appended_again(runs, repo, db):
    result = runs("new", "own", "true --tb-dir /data/mytb")
    assert result.code == 0, result.err
    launched = db()["own"]["launched"]
    assert launched.count("--tb-dir") == 1 and "/data/mytb" in launched and "--save-path" in launched
    assert "passes --tb-dir itself" in result.err


def test_the_note_names_only_the_flag_the_command_passes_with_its_own_value(runs, repo, db):
    result = runs("new", "mixed", "true --tb-dir {tb_dir} --save-path /data/ckpt")
    assert result.code == 0, result.err
    assert "passes --save-path itself" in result.err and "passes --tb-dir" not in result.err
    assert db()["mixed"]["launched"].count("--save-path") == 1


def test_another_projects_session_of_the_same_name_takes_neither_the_name_nor_the_session(runs, repo, tmp_path, db, tmux):
    """One tmux server, two projects: project A's run 'baseline' (and a stranger's session
    'sw/x-2') leave B's runs their names; B's get free sessions, recorded and printed."""
    import os

    from tests.conftest import committed_repo

    other = committed_repo(tmp_path / "projA", {"main.py": "print(1)\n"})
    os.chdir(other)
    assert runs("new", "baseline", "sleep 600", *NO_FLAGS_NEW).code == 0
    os.chdir(repo)
    tmux.new("sw/x-2")
    result = runs("new", "baseline", "sleep 600", *NO_FLAGS_NEW)
    assert result.code == 0, result.err
    assert "is taken" not in result.out and "tmux session 'baseline@repo'" in result.out
    assert "another" in result.out  # why it is not 'baseline'
    assert db()["baseline"]["tmux_session"] == "baseline@repo"
    assert runs("new", "sw", "sleep 600 {x}", "--grid", "x=1,2", *NO_FLAGS_NEW).code == 0
    assert {name: entry["tmux_session"] for name, entry in db().items() if name.startswith("sw/")} == {
        "sw/x-1": "sw/x-1", "sw/x-2": "sw/x-2@repo"}
    assert {"baseline", "baseline@repo", "sw/x-1", "sw/x-2", "sw/x-2@repo"} <= set(tmux.sessions())
    # Each project's commands act on their own run's session alone.
    assert runs("kill", "baseline", "-y").code == 0
    assert runs("delete", "baseline", "-y").code == 0
    assert "baseline" in tmux.sessions() and "baseline@repo" not in tmux.sessions()  # A's run goes on
    os.chdir(other)
    assert "running" in runs("lookup", "baseline", "status").out
