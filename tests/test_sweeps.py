"""Grids: parsing --grid and --grid-file, and the runs (names, commands, descriptions) they make."""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from runs_manager.runtime import launch
from runs_manager.text import placeholders, sweeps
from runs_manager.errors import RunsError
from runs_manager.settings import Settings


def test_grid_options_split_on_commas_in_the_order_given() -> None:
    assert sweeps.parse_grid(["lr=0.1,0.01", "seed=1,2,3"], None) == [("lr", ["0.1", "0.01"]), ("seed", ["1", "2", "3"])]


def test_grid_file_takes_values_with_commas_and_yaml_scalars(tmp_path: Path) -> None:
    path = tmp_path / "grid.yml"
    path.write_text("layers: ['64,64', '128,128']\ndropout: [0.1, 0.5]\nuse_bn: [true, false]\nseed: 7\n")
    assert sweeps.parse_grid(["lr=1"], str(path)) == [
        ("lr", ["1"]), ("layers", ["64,64", "128,128"]), ("dropout", ["0.1", "0.5"]), ("use_bn", ["true", "false"]), ("seed", ["7"]),
    ]


@pytest.mark.parametrize("options,message", [
    (["lr="], "has an empty value"),
    (["lr=0.1,,0.2"], "has an empty value"),
    (["lr=0.1,"], "has an empty value"),
    (["lr"], "write KEY=VALUE1,VALUE2"),
    (["lr=1", "lr=2"], "grid key 'lr' is given twice"),
    (["1lr=1"], "is not a name of letters"),
    (["l-r=1"], "is not a name of letters"),
    (["tb_dir=1"], "grid key 'tb_dir' is reserved"),
    (["name=a"], "grid key 'name' is reserved"),
    (["lr=1,2,1"], "has the value '1' twice"),
    (["x=${HOME}"], "contains '${'"),
])
def test_bad_grids_are_one_line_errors(options: list, message: str) -> None:
    with pytest.raises(RunsError, match=message.replace("$", r"\$").replace("{", r"\{")):
        sweeps.parse_grid(options, None)


@pytest.mark.parametrize("text,message", [
    ("- 1\n- 2\n", "must hold a mapping"),
    ("", "must hold a mapping"),
    ("lr: []\n", "has no values"),
    ("lr: [1, {a: 2}]\n", "non-scalar"),
    ("lr: [1, '']\n", "empty"),
    ("lr: [1\n", "is not valid YAML"),
])
def test_bad_grid_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "grid.yml"
    path.write_text(text)
    with pytest.raises(RunsError, match=message) as error:
        sweeps.parse_grid(None, str(path))
    assert "\n" not in str(error.value)


def test_a_missing_grid_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RunsError, match="cannot read --grid-file"):
        sweeps.parse_grid(None, str(tmp_path / "absent.yml"))


def test_a_key_of_the_file_and_of_an_option_is_given_twice(tmp_path: Path) -> None:
    path = tmp_path / "grid.yml"
    path.write_text("lr: [1, 2]\n")
    with pytest.raises(RunsError, match="given twice"):
        sweeps.parse_grid(["lr=3"], str(path))


def test_members_are_the_cross_product_named_in_a_group() -> None:
    grid = sweeps.parse_grid(["lr=0.1,0.01", "seed=1,2"], None)
    members = sweeps.members("sweep", "python train.py --lr {lr} --seed {seed}", "lr {lr}, run {name}", grid)
    assert [m.name for m in members] == ["sweep/lr-0.1_seed-1", "sweep/lr-0.1_seed-2", "sweep/lr-0.01_seed-1", "sweep/lr-0.01_seed-2"]
    assert members[2].command == "python train.py --lr 0.01 --seed 1"
    assert members[2].description == "lr 0.01, run sweep/lr-0.01_seed-1"
    assert members[2].values == {"lr": "0.01", "seed": "1"}


def test_a_name_with_placeholders_names_each_run() -> None:
    grid = sweeps.parse_grid(["lr=0.1,0.01", "seed=1,2"], None)
    names = [m.name for m in sweeps.members("lr{lr}-s{seed}", "train {lr} {seed}", "", grid)]
    assert names == ["lr0.1-s1", "lr0.1-s2", "lr0.01-s1", "lr0.01-s2"]


def test_a_name_that_leaves_a_key_out_names_two_runs_the_same() -> None:
    grid = sweeps.parse_grid(["lr=0.1,0.01", "seed=1,2"], None)
    with pytest.raises(RunsError, match="names two runs 'lr0.1'"):
        sweeps.members("lr{lr}", "train {lr} {seed}", "", grid)


def test_a_key_the_command_does_not_use_is_an_error() -> None:
    grid = sweeps.parse_grid(["lr=0.1,0.01", "seed=1,2"], None)
    with pytest.raises(RunsError, match="grid key 'seed' is not used in COMMAND"):
        sweeps.members("s", "train {lr}", "", grid)


def test_an_unknown_placeholder_lists_the_grid_keys_too() -> None:
    grid = sweeps.parse_grid(["lr=1"], None)
    with pytest.raises(RunsError, match=r"unknown placeholder \{seed\}.*\{lr\}"):
        sweeps.members("s", "train {lr} {seed}", "", grid)


def test_a_value_that_cannot_be_in_a_run_name_asks_for_a_name_template() -> None:
    grid = sweeps.parse_grid(["opt=adam w,sgd"], None)
    with pytest.raises(RunsError, match="'adam w' of 'opt' holds ' '.*placeholders instead, such as NAME 's/opt{opt}'"):
        sweeps.members("s", "train {opt}", "", grid)
    # With a name that leaves the value out of it, the same values work.
    assert [m.name for m in sweeps.members("s{i}", "train {opt} {i}", "", sweeps.parse_grid(["opt=adam w", "i=1,2"], None))] == ["s1", "s2"]


def test_runs_named_as_a_run_and_its_group_are_refused_later_but_made_here() -> None:
    members = sweeps.members("{a}", "x {a}", "", sweeps.parse_grid(["a=g,g/b"], None))
    assert [m.name for m in members] == ["g", "g/b"]


HOSTILE = ["it's", 'say "hi"', "$(touch pwned)", "`touch pwned`", "a b", "x;y", "\\n", "{lr}", "}{", "é ü", "*", "--flag", "-"]


@pytest.mark.parametrize("template", [
    "printf '%s\\n' {v}",
    "printf '%s\\n' \"{v}\"",
    "printf '%s\\n' '{v}'",
    "printf '%s\\n' --v={v}",
    "sh -c 'printf \"%s\\n\" {v}'",
])
def test_hostile_values_reach_the_program_exactly(tmp_path: Path, template: str) -> None:
    """Each value, quoted into the member's command and its path placeholders filled at
    launch, is exactly what a POSIX shell hands the program."""
    settings = Settings(runs_dir=str(tmp_path / "runs dir 'q'"), tb_dir_flag=None, save_path_flag=None)
    for value in HOSTILE:
        command = placeholders.substitute_some(template, {"v": value})
        line = launch.program_line(settings, "s", command)
        out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, cwd=tmp_path).stdout
        expected = ("--v=" if "--v=" in template else "") + value
        assert out == expected + "\n", (value, command, line)
    assert not (tmp_path / "pwned").exists()


def test_path_placeholders_stay_as_typed_in_a_member_command() -> None:
    members = sweeps.members("s", "train --lr {lr} --logdir={tb_dir} {{literal}} ${HOME}", "", [("lr", ["1e-3"])])
    assert members[0].command == "train --lr 1e-3 --logdir={tb_dir} {{literal}} ${HOME}"


def test_braces_in_a_value_are_doubled_so_they_stay_literal() -> None:
    command = placeholders.substitute_some("echo {v} {name}", {"v": "{a}"})
    assert command == "echo '{{a}}' {name}"
    assert shlex.split(launch.program_line(Settings(tb_dir_flag=None, save_path_flag=None), "r", command)) == ["echo", "{a}", "r"]


def test_sizes_multiply() -> None:
    assert sweeps.size([("a", ["1", "2", "3"]), ("b", ["1", "2"])]) == 6


@pytest.mark.parametrize("text,expected", [("0,1,2,3", ["0", "1", "2", "3"]), ("3", ["3"]), (" 0, 1 ", ["0", "1"]),
                                           ("GPU-8a1b2c3d-aaaa", ["GPU-8a1b2c3d-aaaa"])])
def test_gpus(text: str, expected: list) -> None:
    assert sweeps.parse_gpus(text) == expected


@pytest.mark.parametrize("text,message", [("", "give GPU numbers"), ("0,,1", "give GPU numbers"), ("a", "not a GPU number"),
                                          ("0,1,0", "names a GPU twice"), ("-1", "not a GPU number")])
def test_bad_gpus(text: str, message: str) -> None:
    with pytest.raises(RunsError, match=message):
        sweeps.parse_gpus(text)


def test_default_member_names_fit_programs_grammars_and_paths() -> None:
    """Members are 'sw/db-mysql_user-root': Hydra's override grammar and TensorBoard's
    --logdir_spec (split at ',' and ':') take them, and so does a path."""
    grid = sweeps.parse_grid(["db=mysql,postgresql", "user=root,test-user"], None)
    members = sweeps.members("sw", "app.py db={db} db.user={user} +tb_dir={tb_dir}", "", grid)
    assert [m.name for m in members] == ["sw/db-mysql_user-root", "sw/db-mysql_user-test-user",
                                         "sw/db-postgresql_user-root", "sw/db-postgresql_user-test-user"]
    # Names that would be the same are an error: (a='x_b-y', b='z') and (a='x', b='y_b-z').
    with pytest.raises(RunsError, match="names two runs 'sw/a-x_b-y_b-z'"):
        sweeps.members("sw", "x {a} {b}", "", [("a", ["x_b-y", "x"]), ("b", ["z", "y_b-z"])])


def test_a_real_hydra_app_takes_default_member_names_in_its_overrides(repo: Path) -> None:
    """{name} and {tb_dir} in Hydra overrides: with 'sw/db=mysql,user=root' Hydra stopped
    every member at "mismatched input '='"; 'sw/db-mysql_user-root' is a plain value."""
    import json
    import sys

    from tests.conftest import run_process, wait_for
    from tests.test_params import hydra_project

    hydra_project(repo)
    command = (f"{sys.executable} app.py db={{db}} db.user={{user}} +run_name={{name}} +tb_dir={{tb_dir}} "
               "hydra.run.dir={save_path} hydra.output_subdir=null hydra/job_logging=disabled")
    result = run_process("new", "sw", command, "--grid", "db=mysql,postgresql", "--grid", "user=root,test-user",
                         "--tb-dir-flag", "None", "--save-path-flag", "None")
    assert result.code == 0, result.err
    names = [f"sw/db-{db}_user-{user}" for db in ("mysql", "postgresql") for user in ("root", "test-user")]
    saved = {name: repo / ".runs/checkpoints" / f"{name}.json" for name in names}
    assert wait_for(lambda: all(path.is_file() for path in saved.values()), timeout=90), run_process("table").out
    for name, path in saved.items():
        cfg = json.loads(path.read_text())
        assert cfg["run_name"] == name and cfg["tb_dir"] == str(repo / ".runs/tensorboard" / name) + "/"
        assert cfg["db"]["user"] == name.rsplit("user-", 1)[1]
