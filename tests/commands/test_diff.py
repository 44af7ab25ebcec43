"""`runs diff A B`: the fields two real runs differ in, their commits and their patches."""
from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import database, error_line, git, wait_for


def ended(runs, name: str, *argv: str) -> None:
    result = runs("new", name, *argv)
    assert result.code == 0, result.err
    assert wait_for(lambda: "exit_code" in database(Path.cwd())[name])


def test_identical_runs_say_so(runs, repo):
    ended(runs, "a", "true", "-d", "same")
    ended(runs, "b", "true", "-d", "same")
    result = runs("diff", "a", "b")
    assert result.code == 0, result.err
    assert result.out.startswith("Runs 'a' and 'b' are the same")
    assert result.out.count("\n") == 1


def test_command_description_and_other_fields(runs, repo):
    ended(runs, "a", "true", "-d", "first")
    ended(runs, "b", "false", "-d", "second")
    out = runs("diff", "a", "b").out
    assert out.startswith("Runs 'a' and 'b' differ:\n")
    assert "command:\n  a: true\n  b: false\n" in out
    assert "description:\n  a: first\n  b: second\n" in out
    assert "exit_code:\n  a: 0\n  b: 1\n" in out  # any other recorded field
    assert "launched:" in out  # the command lines differ beyond the runs' own paths
    assert "commit:" not in out and "patch:" not in out
    assert out.index("command:") < out.index("description:") < out.index("exit_code:")


def test_launched_lines_differing_only_in_the_runs_own_paths_are_not_shown(runs, repo):
    ended(runs, "a", "true")
    ended(runs, "b", "true", "--save-path-flag=--out")
    out = runs("diff", "a", "b").out
    assert "launched:" in out  # a different flag
    ended(runs, "c", "true")
    assert "launched" not in runs("diff", "a", "c").out


def test_commits_with_stat(runs, repo):
    ended(runs, "a", "true")
    first = git("rev-parse", "HEAD").strip()
    (repo / "model.py").write_text("layers = 3\n")
    git("add", "model.py")
    git("commit", "-qm", "model")
    second = git("rev-parse", "HEAD").strip()
    ended(runs, "b", "true")
    out = runs("diff", "a", "b").out
    assert f"commit:\n  a: {first}\n  b: {second}\n" in out
    assert "model.py | 1 +" in out and "1 file changed" in out


def test_commit_not_in_the_repository(runs, repo):
    ended(runs, "a", "true")
    ended(runs, "b", "true")
    data = database(repo)
    data["b"]["commit"] = "0123456789abcdef0123456789abcdef01234567"
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    out = runs("diff", "a", "b").out
    assert "not both commits are in this repository" in out


def test_patches_are_diffed(runs, repo):
    (repo / "main.py").write_text("print('lr 0.1')\n")
    ended(runs, "a", "true", "--allow-dirty")
    (repo / "main.py").write_text("print('lr 0.2')\n")
    ended(runs, "b", "true", "--allow-dirty")
    out = runs("diff", "a", "b").out
    assert "patch:\n  a: .runs/patches/a.patch (" in out
    assert "-+print('lr 0.1')\n" in out and "++print('lr 0.2')\n" in out
    (repo / "main.py").write_text("print('lr 0.2')\n")
    ended(runs, "c", "true", "--allow-dirty")
    assert "patch" not in runs("diff", "b", "c").out  # the same changes: the same patch


def test_patch_against_a_clean_run(runs, repo):
    ended(runs, "clean", "true")
    (repo / "main.py").write_text("changed\n")
    ended(runs, "dirty", "true", "--allow-dirty")
    out = runs("diff", "clean", "dirty").out
    assert "  clean: none (started from a clean tree)\n" in out
    assert "+++ b/.runs/patches/dirty.patch" in out and "++changed" in out
    (repo / ".runs/patches/dirty.patch").unlink()
    assert "dirty: .runs/patches/dirty.patch is missing" in runs("diff", "clean", "dirty").out


def test_unknown_run_is_a_one_line_error(runs, repo):
    ended(runs, "a", "true")
    result = runs("diff", "a", "nope")
    assert "no run named 'nope'" in error_line(result)
    assert result.out == ""


def test_unknown_first_run_and_no_database(runs, repo):
    result = runs("diff", "nope", "other")
    assert error_line(result) and result.out == ""
    ended(runs, "a", "true")
    assert "no run named 'nope'" in error_line(runs("diff", "nope", "a"))


def test_runs_from_the_same_dirty_tree_are_the_same(runs, repo):
    (repo / "main.py").write_text("print('lr 0.3')\n")
    ended(runs, "a", "true", "--allow-dirty", "-d", "same")
    ended(runs, "b", "true", "--allow-dirty", "-d", "same")
    result = runs("diff", "a", "b")
    assert result.code == 0, result.err
    assert result.out.startswith("Runs 'a' and 'b' are the same: same command, description, commit and changes")


def test_placeholders_of_the_runs_own_paths_are_not_a_difference(runs, repo):
    ended(runs, "a", "true --logdir={tb_dir} '{save_path}'")
    ended(runs, "b", "true --logdir={tb_dir} '{save_path}'")
    assert "launched" not in runs("diff", "a", "b").out
    ended(runs, "c", "true --logdir={save_path} '{tb_dir}'")
    assert "launched:" in runs("diff", "a", "c").out


def test_differing_parameters_come_first_by_name(runs, repo):
    result = runs("new", "sw", "true --seed {seed} --lr {lr} --epochs 3", "--grid", "lr=0.1,0.01", "--grid", "seed=1",
                  "-d", "sweep")
    assert result.code == 0, result.err
    ended(runs, "hand", "true --lr=0.1 --seed 1 --epochs 3 --amp", "-d", "sweep")
    assert wait_for(lambda: all("exit_code" in e for e in database(Path.cwd()).values()))
    a, b = list(database(Path.cwd()))[:2]
    out = runs("diff", a, b).out
    assert out.startswith(f"Runs '{a}' and '{b}' differ:\nparameters ({a} -> {b}):\n  lr: 0.1 -> 0.01\ncommand:\n"), out
    out = runs("diff", b, "hand").out
    assert out.startswith(f"Runs '{b}' and 'hand' differ:\nparameters ({b} -> hand):\n  amp: (none) -> true\n"
                          "  lr: 0.01 -> 0.1\ncommand:\n"), out


def test_runs_without_parameters_have_no_such_section(runs, repo):
    ended(runs, "a", "true", "-d", "one")
    ended(runs, "b", "true 'x --lr 1'", "-d", "one")
    out = runs("diff", "a", "b").out
    assert out.startswith("Runs 'a' and 'b' differ:\ncommand:\n") and "\nparameters:" not in out


def test_a_sweep_member_and_the_run_its_reproduce_line_makes_have_the_same_parameters(runs, repo):
    """A grid key that is a flag's whole value (db.user={user}) is one parameter, under the
    command's name: the member's reproduce line (no grid) gives a run with the same ones."""
    import shlex

    result = runs("new", "sw", "true db.user={user} --lr 0.1", "--grid", "user=alice,bob", "--tb-dir-flag", "None",
                  "--save-path-flag", "None")
    assert result.code == 0, result.err
    printed = runs("reproduce", "sw/user-alice").out.splitlines()[-1].strip()
    words = shlex.split(printed)
    assert words[:2] == ["runs", "new"]
    words[2] = "again"  # a name of its own
    assert runs(*words[1:]).code == 0
    diff = runs("diff", "sw/user-alice", "again")
    assert "parameters (" not in diff.out and "user: alice -> (none)" not in diff.out, diff.out
    table = runs("table", "--params", "all", "-c", "name", "-f", "csv").out.splitlines()
    assert table[0] == "name,db.user,lr" and "sw/user-alice,alice,0.1" in table and "again,alice,0.1" in table
