"""A run's parameters, read from its grid and command: what the shell really passes, typed as YAML reads it.

The property test gives generated command lines to a real /bin/sh whose programs are
stubs recording the words they receive, and checks that every parameter reported is
among them: a parameter is never invented from a quoted string's inside, a comment, a
here-document or an expansion.
"""
from __future__ import annotations

import math
import os
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runs_manager.text import params
from runs_manager.text.params import command_parameters, typed

OWN = frozenset({"tb-dir", "save-path"})


@pytest.mark.parametrize("command, expected", [
    ("python train.py --lr 0.1 --seed 1", {"lr": "0.1", "seed": "1"}),
    ("python train.py --lr=0.1 --amp --epochs 3", {"lr": "0.1", "amp": True, "epochs": "3"}),
    ("python train.py --amp", {"amp": True}),
    ("python train.py --amp --lr 1", {"amp": True, "lr": "1"}),
    ("python train.py -k 3 -v --lr 1", {"lr": "1"}),  # short flags stay out
    ("python train.py --lr -0.5 --wd -1e-4 --x -y", {"lr": "-0.5", "wd": "-1e-4", "x": True}),
    ("python train.py model.depth=3 +trainer.gpus=2 ++seed=7 ~drop", {"model.depth": "3", "trainer.gpus": "2", "seed": "7"}),
    ("python train.py --amp model.depth=3", {"amp": True, "model.depth": "3"}),  # an override is no flag's value
    ("python train.py --lr 0.1 --seed 1 --lr 0.2", {"lr": "0.2", "seed": "1"}),  # the last wins, in its first place
    ("python train.py --opt=a=b --name 'two words' --tag '-x y'", {"opt": "a=b", "name": "two words", "tag": "-x y"}),
    ("python train.py --msg \"it's\" --empty '' --e=", {"msg": "it's", "empty": "", "e": ""}),
    ("python train.py --x 1 -- --y 2 z=3", {"x": "1", "z": "3"}),  # -- ends the options
    ("CUDA_VISIBLE_DEVICES=0 nohup env A=1 python train.py --lr 1", {"lr": "1"}),
    ("python train.py --tb-dir {tb_dir} --save-path={save_path} --lr 1", {"lr": "1"}),  # runs' own
    ("python train.py --out {runs_dir}/x --name={name} --lr 1", {"lr": "1"}),  # filled in by runs
    ("python t.py --w {{a}} --v 1", {"v": "1"}),  # a literal brace: bash may expand it
])
def test_flags_and_overrides(command: str, expected: Dict[str, Any]) -> None:
    assert command_parameters(command, OWN) == expected


@pytest.mark.parametrize("command, expected", [
    ("python t.py --a \"$HOME\" --b $X --c $(date) --d `date` --e '$Y' --f 1", {"e": "$Y", "f": "1"}),
    ("python t.py --lr 1 --lr $LR", {}),  # the last value is the shell's to decide
    ("python t.py --lr 1 --lr=$LR lr=2 lr=$X --s 1 --s$X", {}),
    ("prog $'a' '--b 1 --c 2 ' --d 3", {"d": "3"}),  # bash's $'...' is one word: its quotes pair
    ("prog --seed \"2\">log --n \\3>x 2>&1", {"seed": "2", "n": "3"}),  # a quoted number is no descriptor
    ("env -i FOO=1 nice -n 5 python t.py --lr 1", {"lr": "1"}),  # wrappers' options and variables
    ("python t.py --data ~/d --g *.py --h 'x*' --i a{b,c}", {"h": "x*"}),
    ("cd src && python t.py --a 1 || echo --b 2; python u.py --c 3 | tee --d log & wait",
     {"a": "1", "b": "2", "c": "3", "d": "log"}),
    ("python t.py --a 1 > out.txt 2>&1 --b 2 < in >> log --c 3", {"a": "1", "b": "2", "c": "3"}),
    ("python t.py --a 1 # --b 2\npython u.py --c 3", {"a": "1", "c": "3"}),
    ("cat <<EOF | python t.py --a 1\n--b 2\nEOF\npython u.py --c 3", {"a": "1", "c": "3"}),
    ("cat <<-'END'\n\t--b 2\n\tEND\npython u.py --c 3", {"c": "3"}),
    ("python t.py --a \"1 --b 2\" --c 'x --d 4'", {"a": "1 --b 2", "c": "x --d 4"}),
    ("python t.py --a \"un --b 2", {}),  # unbalanced quotes: the word is the shell's to refuse
    ("sh -c 'python t.py --lr 1'", {}),  # a script is one quoted word: nothing invented from inside it
    ("python t.py --a \\$HOME --b x\\ y", {"a": "$HOME", "b": "x y"}),
    ("python t.py --a $((1+2)) --b ${X:-1} --c 2", {"c": "2"}),
    ("{bad --a 1", {"a": "1"}),  # not a template (an original tool's entry): read as typed
])
def test_the_shells_own_syntax(command: str, expected: Dict[str, Any]) -> None:
    assert command_parameters(command) == expected


@pytest.mark.parametrize("command, expected", [
    # Placeholders are runs' to fill in: a value holding one is unknown, never a marker.
    ("python t.py --note \"{name}\" --lr 1", {"lr": "1"}),
    ("python app.py 'hydra.run.dir={runs_dir}/hydra/{name}' db=mysql", {"db": "mysql"}),
    ("python t.py --out=\"{tb_dir}/x\" --k '{save_path}' --v 2", {"v": "2"}),
    # Hydra's overrides as Hydra reads them: config groups, prefixes, removal, quoting.
    ("python app.py hydra/job_logging=disabled +experiment/opt=adam db=mysql",
     {"hydra/job_logging": "disabled", "experiment/opt": "adam", "db": "mysql"}),
    ("python app.py db@backup=mysql ++trainer.max_epochs=3", {"db@backup": "mysql", "trainer.max_epochs": "3"}),
    ("python app.py db.user=alice ~db.user seed=1", {"seed": "1"}),  # ~ removes the parameter
    ("python app.py db.user=alice ~db.user=alice", {}),
    ("python app.py 'db.user=\"a b\"' \"db.pass='x y'\" 'q=\"unclosed'", {"db.user": "a b", "db.pass": "x y", "q": '"unclosed'}),
])
def test_placeholders_and_hydra_overrides(command: str, expected: Dict[str, Any]) -> None:
    assert command_parameters(command, OWN) == expected


def test_a_grid_key_that_is_a_whole_value_is_one_parameter_under_the_commands_name() -> None:
    entry = {"command": "python app.py db.user=alice --lr 0.1", "grid": {"user": "alice", "lr": "0.1"}}
    assert params.parameters(entry) == {"lr": 0.1, "db.user": "alice"}
    # So a sweep member and the run its `runs reproduce` line makes (no grid) have the same ones.
    assert params.parameters(entry) == params.parameters({"command": entry["command"]})
    ambiguous = {"command": "python app.py a=1 b=1", "grid": {"k": "1"}}  # which one it fills is unknown
    assert params.parameters(ambiguous) == {"k": 1, "a": 1, "b": 1}


@pytest.mark.parametrize("text, value", [
    ("0.1", 0.1), ("1e-3", 0.001), ("-2", -2), ("+3", 3), ("007", 7), ("0x1F", 31), ("0o17", 15), (".5", 0.5),
    ("true", True), ("False", False), ("null", None), ("~", None), (".inf", math.inf), ("-.Inf", -math.inf),
    ("yes", "yes"), ("on", "on"), ("1_000", "1_000"), ("0x1_0", "0x1_0"), ("1.2.3", "1.2.3"), ("", ""),
    ("٣", "٣"), ("9" * 500, "9" * 500), (True, True),
])
def test_values_are_typed_as_yaml_1_2_reads_them(text: Any, value: Any) -> None:
    assert typed(text) == value and type(typed(text)) is type(value)


def test_nan_and_sameness() -> None:
    assert math.isnan(typed(".nan"))
    assert params.same(typed(".nan"), typed(".NaN"))
    assert not params.same(1, 1.0) and not params.same(1, True) and params.same(0.1, typed("0.10"))


def test_grid_values_first_and_winning_and_bad_entries() -> None:
    entry = {"command": "python t.py --seed 2 --lr 0.5 --wd 0", "grid": {"lr": "0.1", "seed": "1"}}
    assert params.parameters(entry) == {"lr": 0.1, "seed": 1, "wd": 0}
    assert list(params.parameters(entry)) == ["lr", "seed", "wd"]
    assert params.parameters("not a mapping") == {}
    assert params.parameters({"command": ["a", "list"], "grid": "x"}) == {}
    assert params.parameters({"grid": {"k": ["nested"], "ok": 3, "bad key": 1}}) == {"ok": 3}


def test_hostile_text_never_raises() -> None:
    for command in ["\udcff--x 1", "python t.py --a \udcfe --b '\x00' --c \"\u2028\"", "\\", "'", '"', "`", "$(", "${",
                    "<<", "a <<EOF", "--", "python --=1 --é 2 --a\u00a0b 3", "x " * 5000 + "--z 1"]:
        found = command_parameters(command)
        assert all(isinstance(k, str) for k in found)
    assert command_parameters("python t.py --a \udcfe --b 2") == {"a": "\udcfe", "b": "2"}
    assert command_parameters("x " * 5000 + "--z 1") == {"z": "1"}


# What the shell really passes -----------------------------------------------------------

# Each call's words are appended in one write: the calls of a pipeline run at once, and
# word-by-word appends would interleave.
STUB = """#!/bin/sh
{ for word in "$@"; do printf '%s\\036' "$word"; done; printf '\\035'; } > "$RUNS_TEST_ARGV.$$"
cat "$RUNS_TEST_ARGV.$$" >> "$RUNS_TEST_ARGV" && rm -f "$RUNS_TEST_ARGV.$$"
"""
TEXT = st.text(st.sampled_from("ab1.-_= *$\"'\\#;&|<>~{}()é\t"), min_size=0, max_size=6)
PLAIN = st.from_regex(r"[a-z][a-z0-9_.]{0,4}", fullmatch=True)
WORDS = st.one_of(
    PLAIN.map(lambda k: "--" + k),
    st.tuples(PLAIN, st.from_regex(r"-?[0-9.e]{1,4}", fullmatch=True)).map(lambda kv: f"--{kv[0]}={kv[1]}"),
    st.tuples(PLAIN, PLAIN).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(st.sampled_from(["+", "++"]), PLAIN, PLAIN).map("".join).map(lambda w: w.replace(".", "=", 1) if "=" not in w else w),
    st.from_regex(r"-[a-z]|-[0-9]|-\.[0-9]|--", fullmatch=True),
    PLAIN,
    TEXT.map(shlex.quote),  # any text, quoted as one word
    TEXT.map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`") + '"'),
    st.tuples(PLAIN, TEXT).map(lambda kt: f"'--{kt[0]} {kt[1].replace(chr(39), '')}'"),  # a flag inside quotes
    # Expansions whose results are no flags (the reader assumes that of a word unless its
    # literal start is one: --e=$X), and bash's $'...' quoting.
    st.sampled_from(["$X", '"$X"', "${X}", "$(echo x)", "`echo y`", "*.nomatch", "~", "a{b,c}", "$HOME/x",
                     "--e=$X", "--e=1", "e=$X", "--f=*", '"a"b\'c\'', "x\\ y", "\\$X", "--g=\\'", "$'a'", '"2"', "\\2"]),
    st.sampled_from([">/dev/null", "2>&1", "</dev/null", ">> /dev/null", "# --c 3 d=4", '"2">/dev/null']),
)
PROGRAM = st.sampled_from(["prog", "X=--k prog", "env prog", "nohup prog", "A=1 B=2 prog"])
SIMPLE = st.tuples(PROGRAM, st.lists(WORDS, max_size=8)).map(lambda pw: " ".join([pw[0], *pw[1]]))
HEREDOC = SIMPLE.map(lambda c: c.replace("#", "") + " <<'EOF'\n--h 1 k=2\nEOF\n")
JOIN = st.sampled_from([" && ", "; ", " | ", "\n"])


@st.composite
def command_lines(draw: Any) -> str:
    parts = draw(st.lists(st.one_of(SIMPLE, HEREDOC), min_size=1, max_size=3))
    line = parts[0]
    for part in parts[1:]:
        if "#" in line.rsplit("\n", 1)[-1]:
            line += "\n"  # a comment runs to the end of its line
        line += ("" if line.endswith("\n") else draw(JOIN)) + part
    return line


@pytest.fixture(scope="module")
def stub_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = tmp_path_factory.mktemp("bin")
    stub = bin_dir / "prog"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def as_launched(command: str) -> Any:
    """The command as runs hands it to the shell: a literal brace is written {{ or }} in a
    template (None for one runs would refuse, or that holds a placeholder to fill in)."""
    if "{" not in command and "}" not in command:
        return command
    from runs_manager.errors import RunsError
    from runs_manager.text import placeholders

    try:
        pieces = placeholders.parse(command)
    except RunsError:
        return None
    return "".join(pieces) if all(isinstance(piece, str) for piece in pieces) else None


def shell_argv(command: str, bin_dir: Path, record: Path) -> List[List[str]]:
    record.write_bytes(b"")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNS_TEST_ARGV": str(record), "HOME": str(bin_dir)}
    done = subprocess.run(["/bin/sh", "-c", command], env=env, cwd=bin_dir, capture_output=True, timeout=20)
    assert done.returncode == 0, (command, done.stderr)
    calls = record.read_bytes().decode("utf-8", "surrogateescape").split("\x1d")[:-1]
    return [call.split("\x1e")[:-1] for call in calls]


def passed(key: str, raw: Any, calls: List[List[str]]) -> bool:
    for words in calls:
        if raw is True and "--" + key in words:
            return True
        if isinstance(raw, str):
            if any(w in words for w in (f"--{key}={raw}", f"{key}={raw}", f"+{key}={raw}", f"++{key}={raw}")):
                return True
            if any(a == "--" + key and b == raw for a, b in zip(words, words[1:])):
                return True
    return False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=command_lines())
def test_every_parameter_is_a_word_the_shell_passes(command: str, stub_path: Path, tmp_path_factory: Any) -> None:
    record = stub_path / "argv"
    launched = as_launched(command)
    assume(launched is not None)
    calls = shell_argv(launched, stub_path, record)
    assert calls, command  # the stub ran
    # What each call's own words give (no expansions left in them): a reported value is the
    # last one some call really received, not one the shell replaced later in the line.
    received = [params.command_parameters(" ".join(["prog"] + [shlex.quote(w) for w in words])) for words in calls]
    for key, raw in command_parameters(command).items():
        assert passed(key, raw, calls), (command, key, raw, calls)
        assert any(got.get(key) == raw for got in received), (command, key, raw, calls)


def test_the_property_test_sees_what_it_should(stub_path: Path) -> None:
    """The checker itself: a real parameter is found among the words, an invented one is not."""
    calls = shell_argv("prog --lr 0.1 'a=b' --x\nprog --amp <<EOF\n--h 1\nEOF\n", stub_path, stub_path / "argv")
    assert calls == [["--lr", "0.1", "a=b", "--x"], ["--amp"]]
    assert passed("lr", "0.1", calls) and passed("a", "b", calls) and passed("amp", True, calls)
    assert not passed("h", "1", calls) and not passed("lr", "0.2", calls)


_PIECES = st.sampled_from(["{name}", "{tb_dir}", "{save_path}", "{runs_dir}", "x", "1", "a b", "=", "/", "-", "'", '"'])


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["--note", "--out=", "db.user=", "+hydra.run.dir=", "~x=", "k"]),
       pieces=st.lists(_PIECES, min_size=1, max_size=5), quote=st.sampled_from(["", "'", '"']))
def test_no_placeholder_marker_reaches_a_parameter(key: str, pieces: List[str], quote: str) -> None:
    value = "".join(pieces)
    command = f"python t.py {key}{' ' if not key.endswith('=') else ''}{quote}{value}{quote} --z 1"
    try:
        found = params.parameters({"command": command, "grid": {"g": value}})
    except Exception as e:  # never: any text is read without an error
        raise AssertionError(f"{command!r}: {e!r}")
    for name, got in found.items():
        assert "\x00" not in name and "\x00" not in str(got), (command, found)


def hydra_project(repo: Path) -> None:
    """One of Hydra's example apps, committed: a db group (mysql, postgresql) and a seed; it
    saves the config it read as $RUNS_SAVE_PATH.json."""
    from tests.conftest import git

    (repo / "conf/db").mkdir(parents=True)
    (repo / "conf/config.yaml").write_text("defaults:\n  - db: mysql\n  - _self_\nseed: 1\n")
    (repo / "conf/db/mysql.yaml").write_text("driver: mysql\nuser: root\n")
    (repo / "conf/db/postgresql.yaml").write_text("driver: postgresql\nuser: postgres\n")
    (repo / "app.py").write_text(HYDRA_APP)
    git("add", ".", cwd=repo)
    git("commit", "-qm", "hydra app", cwd=repo)


HYDRA_APP = """\
import json, os
import hydra
from omegaconf import OmegaConf

@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    with open(os.environ["RUNS_SAVE_PATH"] + ".json", "w") as f:
        json.dump(OmegaConf.to_container(cfg), f)

main()
"""


def test_parameters_are_what_a_real_hydra_app_reads(repo: Path) -> None:
    """Hydra's own parser against runs': groups, quoting, ~ and placeholders in values."""
    import json
    import sys

    from tests.conftest import run_process, wait_for

    hydra_project(repo)
    command = (f"{sys.executable} app.py db={{db}} 'db.user=\"a b\"' hydra/job_logging=disabled ~seed "
               "'hydra.run.dir={save_path}' hydra.output_subdir=null")
    result = run_process("new", "h-{db}", command, "--grid", "db=mysql,postgresql", "--tb-dir-flag", "None", "--save-path-flag", "None")
    assert result.code == 0, result.err
    saved = {db: repo / ".runs/checkpoints" / f"h-{db}.json" for db in ("mysql", "postgresql")}
    assert wait_for(lambda: all(path.is_file() for path in saved.values()), timeout=60), (repo / ".runs/logs/h-mysql.log").read_text()
    table = json.loads(run_process("table", "--params", "all", "-f", "json").out)
    assert sorted(row["name"] for row in table) == ["h-mysql", "h-postgresql"]
    for row in table:
        db = row["name"][2:]
        cfg = json.loads(saved[db].read_text())
        assert cfg["db"] == {"driver": db, "user": "a b"} and "seed" not in cfg  # what Hydra read
        assert {k: v for k, v in row.items() if k not in ("name", "status")} == {
            "db": db, "db.user": "a b", "hydra/job_logging": "disabled", "hydra.output_subdir": None}


_GRIDS = st.dictionaries(st.sampled_from(["lr", "seed", "user", "a", "bad key"]),
                         st.one_of(st.sampled_from(["0.1", "1", "alice", ".inf", ".nan", "true"]), st.integers(-3, 3), st.booleans()),
                         max_size=3)


@settings(max_examples=200, deadline=None)
@given(command=command_lines(), grid=_GRIDS, own=st.sampled_from([frozenset(), OWN, frozenset({"a", "lr"})]))
def test_parameters_served_by_the_index_are_those_read_directly(command: str, grid: Dict[str, Any], own: Any) -> None:
    from runs_manager.store.index import Index

    entry: Dict[str, Any] = {"command": command, **({"grid": grid} if grid else {})}
    index = Index.create(None)
    try:
        index.insert([("run", entry, None)])
        [(_, stored, kept)] = list(index.each_entry(kept=True))
    finally:
        index.close()
    direct, served = params.parameters(entry, own), params.parameters_from(stored, kept, own)
    assert list(direct) == list(served), (command, grid)
    assert all(params.same(direct[key], served[key]) and type(direct[key]) is type(served[key]) for key in direct)
