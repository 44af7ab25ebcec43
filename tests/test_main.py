"""The `runs` command line: usage, one-line errors, no tracebacks, Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, PtyRun

SUBCOMMANDS = ("new", "delete", "list", "table", "lookup", "reproduce")


def one_error_line(err: str) -> bool:
    return err.startswith("runs: error:") and len(err.strip().splitlines()) == 1


def test_no_subcommand_prints_usage_and_fails(runs_process, repo):
    result = runs_process()
    assert result.code != 0
    assert "usage: runs" in result.out + result.err
    for command in SUBCOMMANDS:
        assert command in result.out + result.err
    assert "Traceback" not in result.err


def test_no_subcommand_in_process(runs):
    result = runs()
    assert result.code != 0
    assert "usage: runs" in result.out + result.err


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(runs_process, flag):
    result = runs_process(flag)
    assert result.code == 0
    assert result.out.startswith("usage: runs")
    for command in SUBCOMMANDS:
        assert command in result.out
    assert result.err == ""


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_each_subcommand(runs_process, command):
    result = runs_process(command, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: runs {command}")
    assert result.err == ""


def test_help_does_not_need_a_repository_or_create_files(runs_process, tmp_path):
    result = runs_process("--help", cwd=tmp_path)
    assert result.code == 0
    assert list(tmp_path.iterdir()) == []


def test_help_in_process_exits_zero(runs):
    with pytest.raises(SystemExit) as exit_info:
        runs("--help")
    assert exit_info.value.code in (0, None)


def test_version(runs_process):
    from runs_manager import __version__

    result = runs_process("--version")
    assert result.code == 0
    assert __version__ in result.out


@pytest.mark.parametrize(
    "argv",
    [
        ("frobnicate",),
        ("delete",),
        ("lookup",),
        ("reproduce",),
        ("new",),
        ("new", "exp"),
        ("list", "--bogus"),
        ("table", "--column-width"),
        ("delete", "x", "y", "z"),
        ("--bogus",),
        ("list", "--pattern"),
    ],
)
def test_bad_usage_is_one_error_line(runs_process, repo, argv):
    result = runs_process(*argv)
    assert result.code != 0
    assert one_error_line(result.err), result.err
    assert "Traceback" not in result.err
    assert result.out == ""
    assert not (repo / ".runs").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ("delete", "(", "-y"),
        ("delete", "nothing-matches", "-y"),
        ("list", "--pattern", "["),
        ("table", "--pattern", "*"),
        ("table", "--column-width", "zero"),
        ("lookup", "nope"),
        ("lookup", "exp", "nokey"),
        ("reproduce", "nope"),
        ("new", "bad name", "true"),
        ("new", "exp", ""),
        ("new", "exp/sub", "true"),
    ],
)
def test_error_paths_have_no_traceback(runs, runs_process, repo, argv):
    assert runs("new", "exp", "true").code == 0
    result = runs_process(*argv)
    assert result.code == 1
    assert one_error_line(result.err), result.err
    assert "Traceback" not in result.err


def test_malformed_database_is_one_line_without_traceback(runs_process, repo):
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text("exp:\n  command: [unclosed\n")
    for argv in (("list",), ("table",), ("lookup", "exp"), ("delete", "exp", "-y")):
        result = runs_process(*argv)
        assert result.code == 1
        assert one_error_line(result.err), result.err
        assert ".runs.yml" in result.err
        assert "Traceback" not in result.err


def test_malformed_runsrc_is_one_line_without_traceback(runs_process, repo):
    (repo / ".runsrc").write_text("column-width: [1\n")
    result = runs_process("list")
    assert result.code == 1
    assert one_error_line(result.err)
    assert ".runsrc" in result.err
    assert "Traceback" not in result.err


def test_outside_a_repository_new_fails_without_traceback(runs_process, tmp_path):
    result = runs_process("new", "exp", "true", cwd=tmp_path)
    assert result.code == 1
    assert one_error_line(result.err)
    assert "Traceback" not in result.err


def test_python_dash_m_runs_a_subcommand(runs, runs_process, repo):
    assert runs("new", "exp", "true").code == 0
    assert runs("new", "exp2", "true").code == 0
    result = runs_process("list")
    assert (result.code, result.out, result.err) == (0, "exp\nexp2\n", "")


def test_list_into_a_closed_pipe_is_quiet(runs, repo):
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump({f"run-{i}": {"command": "x" * 200} for i in range(3000)}, sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        f"{sys.executable} -m runs_manager table | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.stdout.split() == ["name", "status", "command", "commit", "datetime", "description", "host"]
    assert "Traceback" not in done.stderr
    assert "Error" not in done.stderr


# Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_at_the_confirmation_prompt_exits_130_and_deletes_nothing(runs, db, repo, tmux):
    assert runs("new", "x", "sleep 600; true").code == 0
    (repo / ".runs/checkpoints/x.ckpt-1.index").write_text("c")
    child = PtyRun("delete", "x")
    try:
        child.wait_for_output("[y/N]")  # the prompt, on stderr
        child.proc.send_signal(signal.SIGINT)
        code, rest, err = child.finish()
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    assert code == 130
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err + rest
    assert list(db()) == ["x"]
    assert (repo / ".runs/tensorboard/x").is_dir()
    assert (repo / ".runs/checkpoints/x.ckpt-1.index").exists()
    assert "x" in tmux.sessions()



def test_an_option_whose_value_is_two_dashes(runs, repo):
    """Python 3.11's argparse turns `--pattern=--` into an empty list; '--' is a valid run name."""
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text("--:\n  command: 'true'\nother:\n  command: 'true'\n")
    result = runs("list", "--pattern=--")
    assert (result.code, result.out) == (0, "--\n"), result


def test_a_positional_that_is_two_dashes(runs, repo, db):
    """`runs new -- a --` gave COMMAND as [] and a traceback (found by the hostile tests)."""
    result = runs("new", "--tb-dir-flag=None", "--save-path-flag=None", "--", "a", "--")
    assert result.code == 0, result.err
    assert db()["a"]["command"] == "--"


def test_the_status_help_names_every_status() -> None:
    """flags.py writes the statuses out (importing them would cost `runs --help` its speed):
    the list must not drift from the statuses there are."""
    from runs_manager import flags, outcome

    assert flags.STATUSES_SHOWN.split(", ") == list(outcome.STATUSES)
