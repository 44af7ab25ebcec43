"""Settings: defaults < .runsrc < flags after the subcommand."""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest
import yaml

from runs_manager.errors import RunsError
from runs_manager.settings import Settings
from tests.conftest import error_line, git

DEFAULTS = {
    "runs_dir": ".runs/",
    "db_filename": ".runs.yml",
    "tb_dir_flag": "--tb-dir",
    "save_path_flag": "--save-path",
    "column_width": None,  # fit the terminal; 30 elsewhere (cut_width)
    "virtualenv_path": None,
}


def fields(settings: Settings) -> dict:
    return {key: getattr(settings, key) for key in DEFAULTS}


def one_error_line(err: str) -> bool:
    return err.startswith("runs: error:") and len(err.strip().splitlines()) == 1


@pytest.fixture
def rc(tmp_path: Path):
    """Write a .runsrc (raw text) and return its path as a string."""

    def write(text: str) -> str:
        path = tmp_path / ".runsrc"
        path.write_text(text)
        return str(path)

    return write


def commit_all(repo: Path) -> None:
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "settings", cwd=repo)


def wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.05)
    return path.read_text()


def argv_program(out: Path) -> str:
    """A command that writes the arguments runs appended to it as JSON."""
    return "python3 -c " + shlex.quote(f"import sys, json; open({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))")


# Settings.load ----------------------------------------------------------------------------


def test_defaults_without_runsrc(tmp_path):
    settings = Settings.load({}, runsrc=str(tmp_path / "missing"))
    assert fields(settings) == DEFAULTS
    assert not settings.extra_flags
    assert Path(settings.db_path) == Path(".runs/.runs.yml")


def test_defaults_from_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert fields(Settings.load({})) == DEFAULTS
    (tmp_path / ".runsrc").write_text("column-width: 7\n")
    assert Settings.load({}).column_width == 7


def test_empty_runsrc_gives_defaults(rc):
    assert fields(Settings.load({}, runsrc=rc(""))) == DEFAULTS
    assert fields(Settings.load({}, runsrc=rc("# only a comment\n"))) == DEFAULTS


def test_runsrc_overrides_defaults(rc, tmp_path):
    venv = tmp_path / "venv"
    path = rc(
        "runs-dir: experiments/\n"
        "db-filename: db.yml\n"
        "tb-dir-flag: --logdir\n"
        "save-path-flag: -s\n"
        "column-width: 12\n"
        f"virtualenv-path: {venv}\n"
        "extra-flags:\n  - [--log-file, <runs-dir>/logs/<run-name>.log]\n  - [goal-dir, x]\n"
    )
    settings = Settings.load({}, runsrc=path)
    assert fields(settings) == {
        "runs_dir": "experiments/",
        "db_filename": "db.yml",
        "tb_dir_flag": "--logdir",
        "save_path_flag": "-s",
        "column_width": 12,
        "virtualenv_path": str(venv),
    }
    assert Path(settings.db_path) == Path("experiments/db.yml")
    assert tuple(map(tuple, settings.extra_flags)) == (("--log-file", "<runs-dir>/logs/<run-name>.log"), ("--goal-dir", "x"))


def test_flags_override_runsrc(rc):
    path = rc("runs-dir: from-file\ncolumn-width: 12\ntb-dir-flag: --logdir\n")
    settings = Settings.load({"runs-dir": "from-flag", "column-width": "44", "save-path-flag": "--ckpt"}, runsrc=path)
    assert settings.runs_dir == "from-flag"
    assert settings.column_width == 44
    assert settings.tb_dir_flag == "--logdir"  # not given as a flag: the file's value
    assert settings.save_path_flag == "--ckpt"


@pytest.mark.parametrize("key", ["column_width", "column-width"])
def test_keys_may_use_underscores_in_file_and_flags(rc, key):
    assert Settings.load({}, runsrc=rc(f"{key}: 9\nruns_dir: a/\ndb_filename: b.yml\n")).column_width == 9
    settings = Settings.load({key: "11", "runs_dir": "c/"}, runsrc=rc("runs_dir: a/\n"))
    assert settings.column_width == 11
    assert settings.runs_dir == "c/"


@pytest.mark.parametrize("value", ["None", "null", "~", "'None'", "Null"])
@pytest.mark.parametrize("key", ["tb-dir-flag", "save-path-flag", "tb_dir_flag"])
def test_none_or_null_disables_a_path_flag_in_the_file(rc, key, value):
    settings = Settings.load({}, runsrc=rc(f"{key}: {value}\n"))
    assert getattr(settings, key.replace("-", "_")) is None


@pytest.mark.parametrize("key", ["tb-dir-flag", "save-path-flag"])
def test_none_on_the_command_line_disables_a_path_flag(rc, key):
    settings = Settings.load({key: "None"}, runsrc=rc(f"{key}: --something\n"))
    assert getattr(settings, key.replace("-", "_")) is None


@pytest.mark.parametrize("key, default", [("column-width", None), ("runs-dir", ".runs/"), ("db-filename", ".runs.yml")])
def test_empty_value_means_the_default(rc, key, default):
    settings = Settings.load({}, runsrc=rc(f"{key}:\n"))
    assert getattr(settings, key.replace("-", "_")) == default
    settings = Settings.load({}, runsrc=rc(f"{key}: ''\n"))
    assert getattr(settings, key.replace("-", "_")) == default


def test_empty_column_width_flag_means_the_default(rc):
    settings = Settings.load({"column-width": ""}, runsrc=rc(""))
    assert settings.column_width is None and settings.cut_width == 30
    assert Settings.load({"column-width": "0"}, runsrc=rc("")).cut_width is None  # 0: never cut
    assert Settings.load({"column-width": "30"}, runsrc=rc("")).column_width == 30  # set: no fitting


def test_virtualenv_none_means_no_virtualenv(rc):
    assert Settings.load({}, runsrc=rc("virtualenv-path: None\n")).virtualenv_path is None
    assert Settings.load({}, runsrc=rc("virtualenv-path:\n")).virtualenv_path is None


def test_extra_flags_none_or_empty(rc):
    for text in ("extra-flags: None\n", "extra-flags:\n", "extra-flags: []\n"):
        assert not Settings.load({}, runsrc=rc(text)).extra_flags


# Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "column-width: [1\n",  # not valid YAML
        "runs-dir: a\n  bad indent: b\n",
        "- a\n- b\n",  # not a mapping
        "just a string\n",
        "\tcolumn-width: 3\n",
    ],
)
def test_malformed_runsrc_is_an_error_naming_the_file(rc, text):
    path = rc(text)
    with pytest.raises(RunsError) as error:
        Settings.load({}, runsrc=path)
    assert path in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key, suggestion", [("colum-width", "column-width"), ("runs_dirr", "runs-dir"), ("tb-dir", "tb-dir-flag"), ("extra_flag", "extra-flags")])
def test_unknown_key_suggests_the_closest(rc, key, suggestion):
    path = rc(f"{key}: 3\n")
    with pytest.raises(RunsError) as error:
        Settings.load({}, runsrc=path)
    message = str(error.value)
    assert path in message and key in message
    assert f"'{suggestion}'" in message


def test_unknown_key_far_from_all_lists_known_keys(rc):
    with pytest.raises(RunsError) as error:
        Settings.load({}, runsrc=rc("zzzzzz: 1\n"))
    for key in ("runs-dir", "column-width", "extra-flags"):
        assert key in str(error.value)


@pytest.mark.parametrize(
    "text",
    [
        "column-width: abc\n",
        "column-width: -1\n",
        "column-width: -5\n",
        "column-width: 2.5\n",
        "column-width: true\n",
        "column-width: [30]\n",
        "runs-dir: [a, b]\n",
        "runs-dir: 5\n",
        "db-filename: {a: 1}\n",
        "db-filename: a/b.yml\n",
        "tb-dir-flag: 5\n",
        "tb-dir-flag: [--a]\n",
        "save-path-flag: true\n",
        "virtualenv-path: [x]\n",
        "extra-flags: --log\n",
        "extra-flags: [--log, x]\n",
        "extra-flags: [[--log]]\n",
        "extra-flags: [[--log, x, y]]\n",
        "extra-flags: [[--log, {a: 1}]]\n",
    ],
)
def test_wrong_type_is_an_error_naming_the_file_and_key(rc, text):
    path = rc(text)
    key = text.split(":")[0]
    with pytest.raises(RunsError) as error:
        Settings.load({}, runsrc=path)
    message = str(error.value)
    assert path in message and key in message
    assert "\n" not in message


@pytest.mark.parametrize("flags", [{"column-width": "abc"}, {"column-width": "-1"}, {"tb-dir-flag": " "}])
def test_wrong_flag_value_is_an_error_naming_the_flag(rc, flags):
    with pytest.raises(RunsError) as error:
        Settings.load(flags, runsrc=rc(""))
    assert "--" + next(iter(flags)) in str(error.value)


@pytest.mark.parametrize(
    "text, words",
    [
        ("column-width: [1\n", [".runsrc"]),
        ("colum-width: 3\n", [".runsrc", "colum-width", "column-width"]),
        ("column-width: abc\n", [".runsrc", "column-width"]),
        ("- a\n", [".runsrc"]),
    ],
)
def test_bad_runsrc_is_a_one_line_error_from_every_command(runs, runsrc, text, words):
    runsrc(text)
    for argv in (("list",), ("table",), ("lookup", "x"), ("delete", "x", "-y"), ("reproduce", "x"), ("new", "x", "true")):
        result = runs(*argv)
        assert result.code == 1, argv
        assert one_error_line(result.err), result.err
        for word in words:
            assert word in result.err


def test_bad_column_width_flag_is_a_one_line_error(runs, repo):
    result = runs("table", "--column-width", "wide")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "column-width" in result.err


# End to end: where the database goes, what the program gets ---------------------------------


def test_runs_dir_flag_moves_the_database(runs, repo):
    assert runs("new", "exp", "true", "--runs-dir", "experiments").code == 0
    data = yaml.safe_load((repo / "experiments/.runs.yml").read_text())
    assert list(data) == ["exp"]
    assert (repo / "experiments/tensorboard/exp").is_dir()
    assert not (repo / ".runs").exists()
    assert runs("list", "--runs-dir", "experiments").out == "exp\n"
    assert runs("list").out == ""


def test_db_filename_in_runsrc_names_the_database(runs, repo, runsrc):
    runsrc({"db-filename": "custom.yml"})
    commit_all(repo)
    assert runs("new", "exp", "true").code == 0
    assert list(yaml.safe_load((repo / ".runs/custom.yml").read_text())) == ["exp"]
    assert not (repo / ".runs/.runs.yml").exists()
    assert runs("list").out == "exp\n"
    assert runs("lookup", "exp", "command").out == "true\n"


def test_runs_dir_and_db_filename_in_runsrc_and_flag_overrides(runs, repo, runsrc):
    runsrc({"runs_dir": "rdir/", "db_filename": "file.yml"})
    commit_all(repo)
    assert runs("new", "one", "true").code == 0
    assert runs("new", "two", "true", "--db-filename", "other.yml", "--runs-dir", "second").code == 0
    assert runs("new", "three", "true", "--runs-dir", "elsewhere").code == 0
    assert list(yaml.safe_load((repo / "rdir/file.yml").read_text())) == ["one"]
    assert list(yaml.safe_load((repo / "second/other.yml").read_text())) == ["two"]
    assert list(yaml.safe_load((repo / "elsewhere/file.yml").read_text())) == ["three"]
    assert not (repo / ".runs").exists()


def test_a_second_database_in_one_runs_dir_is_refused(runs, repo):
    """Their runs would share tensorboard/, checkpoints/ and logs/: deleting run 'y' of one
    took 'y-1.index' of the other's run 'y-1'. One runs directory holds one database."""
    assert runs("new", "y-1", "true").code == 0
    before = sorted(p.name for p in (repo / ".runs").iterdir())
    for argv in (("new", "y", "true"), ("delete", "y-1", "-y"), ("mv", "y-1", "z")):
        result = runs(*argv, "--db-filename", "other.yml")
        line = error_line(result)
        assert ".runs.yml" in line and "other.yml" in line and "--runs-dir" in line, line
    assert sorted(p.name for p in (repo / ".runs").iterdir()) == before
    assert runs("list").out == "y-1\n"


def test_program_gets_flags_from_runsrc_and_flags_override(runs, repo, runsrc):
    runsrc(
        "tb-dir-flag: --logdir\n"
        "save-path-flag: None\n"
        "extra-flags:\n  - [--log-file, <runs-dir>/logs/<run-name>.log]\n  - [--name, <run-name>]\n"
    )
    commit_all(repo)
    out1, out2 = repo.parent / "argv1.json", repo.parent / "argv2.json"
    assert runs("new", "g/exp", argv_program(out1)).code == 0
    assert json.loads(wait_for(out1)) == [
        "--logdir", f"{repo}/.runs/tensorboard/g/exp/",  # absolute, wherever the program changes directory to
        "--log-file", f"{repo}/.runs/logs/g/exp.log",
        "--name", "g/exp",
    ]
    result = runs("new", "e2", argv_program(out2), "--tb-dir-flag=None", "--save-path-flag=--ckpt", "--runs-dir", "rd")
    assert result.code == 0, result.err
    assert json.loads(wait_for(out2)) == ["--ckpt", f"{repo}/rd/checkpoints/e2", "--log-file", f"{repo}/rd/logs/e2.log", "--name", "e2"]


def test_null_in_runsrc_passes_no_path_flags(runs, repo, runsrc):
    runsrc("tb_dir_flag: null\nsave_path_flag: ~\n")
    commit_all(repo)
    out = repo.parent / "argv.json"
    assert runs("new", "exp", argv_program(out)).code == 0
    assert json.loads(wait_for(out)) == []


def test_default_flags_reach_the_program(runs, repo):
    out = repo.parent / "argv.json"
    assert runs("new", "exp", argv_program(out)).code == 0
    assert json.loads(wait_for(out)) == ["--tb-dir", f"{repo}/.runs/tensorboard/exp/", "--save-path", f"{repo}/.runs/checkpoints/exp"]


def test_column_width_from_runsrc_reaches_the_table(runs, repo, runsrc):
    runsrc("column-width:\n")
    commit_all(repo)
    assert runs("new", "exp", "x" * 40).code == 0
    assert ("x" * 30 + "...") in runs("table").out
    runsrc("column_width: 4\n")
    assert "xxxx..." in runs("table").out
    assert ("x" * 8 + "...") in runs("table", "--column-width=8").out


def test_column_width_zero_means_never_cut(rc):
    assert Settings.load({}, runsrc=rc("column-width: 0\n")).column_width == 0
    assert Settings.load({"column-width": "0"}, runsrc=rc("column-width: 12\n")).column_width == 0


def test_launcher_and_sbatch_args(rc):
    path = rc("launcher: slurm\nsbatch-args: [--partition=gpu, --time=04:00:00]\n")
    settings = Settings.load({}, runsrc=path)
    assert settings.launcher == "slurm" and settings.sbatch_args == ("--partition=gpu", "--time=04:00:00")
    # The command line's options come after .runsrc's (sbatch takes the last of a repeated one).
    given = Settings.load({"sbatch-args": "--time=00:10:00 --comment='a b'", "launcher": "tmux"}, runsrc=path)
    assert given.sbatch_args == ("--partition=gpu", "--time=04:00:00", "--time=00:10:00", "--comment=a b")
    assert given.launcher == "tmux"
    assert Settings.load({"sbatch_args": "--x"}, runsrc=rc("")).sbatch_args == ("--x",)


@pytest.mark.parametrize("text,message", [
    ("launcher: pbs\n", "launcher must be one of tmux, slurm, got 'pbs'"),
    ("sbatch-args: --partition=gpu\n", None),
    ("sbatch-args: {a: 1}\n", "must be a list of sbatch options"),
])
def test_bad_launcher_settings(rc, text, message):
    if message is None:  # a single string is split like the command line's
        assert Settings.load({}, runsrc=rc(text)).sbatch_args == ("--partition=gpu",)
        return
    with pytest.raises(RunsError) as error:
        Settings.load({}, runsrc=rc(text))
    assert message in str(error.value)


# The project, found from a subdirectory -----------------------------------------------------

def test_a_subdirectory_finds_the_projects_runs_and_its_program_runs_there(runs, repo, monkeypatch):
    """`cd scripts && runs new` records in the top's database (as git finds its repository);
    the program starts in scripts/; list, table and lookup see the run from anywhere in the tree."""
    assert runs("new", "top", "true").code == 0
    (repo / "scripts").mkdir()
    (repo / "other" / "deep").mkdir(parents=True)
    monkeypatch.chdir(repo / "scripts")
    result = runs("new", "fromsub", "pwd > where.txt", "--tb-dir-flag", "None", "--save-path-flag", "None")
    assert result.code == 0, result.err
    assert "note" not in result.err and not (repo / "scripts" / ".runs").exists()
    entry = yaml.safe_load((repo / ".runs" / ".runs.yml").read_text())["fromsub"]
    assert "runs_dir" not in entry.get("settings", {})  # the project's own: found again wherever it is reproduced
    deadline = time.monotonic() + 30
    while not (repo / "scripts" / "where.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (repo / "scripts" / "where.txt").read_text().strip() == str(repo / "scripts")
    monkeypatch.chdir(repo / "other" / "deep")
    assert runs("list").out.split() == ["top", "fromsub"]
    assert "fromsub" in runs("table", "-c", "name").out
    from tests.conftest import run_process

    assert run_process("__complete", "names", "fr", cwd=repo / "other" / "deep").out == "fromsub\n"  # Tab, too
    monkeypatch.chdir(repo)
    assert runs("lookup", "fromsub", "command").out.strip().startswith("pwd")


def test_a_runsrc_at_the_top_applies_below_with_its_paths_from_the_top(runs, repo, runsrc, monkeypatch):
    runsrc({"runs-dir": "experiments", "column-width": 5})
    git("add", ".runsrc", cwd=repo)
    git("commit", "-qm", "runsrc", cwd=repo)
    (repo / "src").mkdir()
    monkeypatch.chdir(repo / "src")
    assert runs("new", "a", "true").code == 0
    assert (repo / "experiments" / ".runs.yml").is_file() and not (repo / "src" / "experiments").exists()
    assert runs("list").out.split() == ["a"]
    # A flag's path is the caller's, as a flag's path always is.
    assert runs("list", "--runs-dir", "elsewhere").out == ""
    assert "unknown key" in error_line(_after_writing(repo / ".runsrc", "colum-width: 5\n", runs))


def _after_writing(path: Path, text: str, runs):
    path.write_text(text)
    return runs("list")


def test_without_a_project_a_subdirectory_gets_its_own_with_a_note(runs, repo, monkeypatch):
    (repo / "scripts").mkdir()
    monkeypatch.chdir(repo / "scripts")
    result = runs("new", "first", "true")
    assert result.code == 0
    assert result.err == (f"runs: note: this work tree has no runs directory yet: making {repo / 'scripts' / '.runs'} "
                          "(runs finds it from here and the directories below)\n")
    assert (repo / "scripts" / ".runs" / ".runs.yml").is_file()
    monkeypatch.chdir(repo)
    assert runs("list").out == ""  # the top is above it: not its project
    monkeypatch.chdir(repo / "scripts")
    assert runs("new", "second", "true").err == ""  # said once


def test_a_directory_above_the_work_tree_is_no_project(runs, repo, tmp_path, monkeypatch):
    (tmp_path / ".runsrc").write_text("column-width: nonsense\n")  # would be an error, were it read
    (tmp_path / ".runs").mkdir()
    (tmp_path / ".runs" / ".runs.yml").write_text("elsewhere: {command: x}\n")
    assert runs("list").code == 0 and runs("list").out == ""
    from runs_manager.settings import find_project

    assert find_project(str(repo)) is None and find_project(str(tmp_path)) is None  # no work tree: nothing found


def test_from_a_subdirectory_reproduce_recreates_the_launch_and_home_paths_expand(runs, repo, runsrc, monkeypatch, tmp_path):
    """The printed line (--no-runsrc) finds the project too; a .runsrc path is exact in the
    entry; '~' in a .runsrc path is the home directory, not a directory of the project."""
    import shlex

    home = tmp_path / "home"
    (home / "venvs" / "x" / "bin").mkdir(parents=True)
    (home / "venvs" / "x" / "bin" / "activate").write_text("")
    monkeypatch.setenv("HOME", str(home))
    runsrc({"runs-dir": "exp_runs", "virtualenv-path": "~/venvs/x"})
    git("add", ".runsrc", cwd=repo)
    git("commit", "-qm", "runsrc", cwd=repo)
    (repo / "src").mkdir()
    monkeypatch.chdir(repo / "src")
    result = runs("new", "b", "echo hi")
    assert result.code == 0, result.err
    entry = yaml.safe_load((repo / "exp_runs" / ".runs.yml").read_text())["b"]
    assert entry["settings"]["runs_dir"] == str(repo / "exp_runs")
    assert entry["settings"]["virtualenv_path"] == str(home / "venvs" / "x")
    line = runs("reproduce", "b").out.splitlines()[-1]
    again = shlex.split(line)[1:]  # "new", the name, ...
    again[1] = "b2"
    assert runs(*again).code == 0  # pasted where the run was made
    assert not (repo / "src" / ".runs").exists() and not (repo / "src" / "exp_runs").exists()
    assert "b2" in yaml.safe_load((repo / "exp_runs" / ".runs.yml").read_text())


def test_no_runsrc_still_finds_the_projects_runs_directory(runs, repo, monkeypatch):
    assert runs("new", "top", "true").code == 0
    (repo / "src").mkdir()
    monkeypatch.chdir(repo / "src")
    assert runs("new", "below", "true", "--no-runsrc").code == 0
    assert not (repo / "src" / ".runs").exists()
    assert runs("list").out.split() == ["top", "below"]
