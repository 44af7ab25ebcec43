"""Placeholders: parsed exactly, refused clearly, and quoted so a real shell reads the value."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from typing import List

import hypothesis
import pytest
from hypothesis import strategies as st

from runs_manager.text import placeholders
from runs_manager.errors import RunsError
from runs_manager.runtime.launch import flags_note

# Every character a shell treats specially, and a placeholder-looking part that must stay.
HOSTILE = "/tmp/a b/it's \"q\" $HOME `id` \\ \\n *?[x] {name} ; & | ~/ \t end/"
ARGV = "python3 -c " + shlex.quote("import json, sys; print(json.dumps(sys.argv[1:]))")


def argv_of(line: str) -> List[str]:
    """What the program gets when /bin/sh runs ``line`` (as the tmux launcher does)."""
    done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "command,expected",
    [
        (ARGV + " --logdir {tb_dir}", ["--logdir", HOSTILE]),
        (ARGV + " --logdir={tb_dir}", ["--logdir=" + HOSTILE]),
        (ARGV + ' "--logdir={tb_dir}"', ["--logdir=" + HOSTILE]),
        (ARGV + " '--logdir={tb_dir}'", ["--logdir=" + HOSTILE]),
        (ARGV + " x{tb_dir}y{tb_dir}", ["x" + HOSTILE + "y" + HOSTILE]),
        (ARGV + ' "$(echo a)"{tb_dir} ${UNSET_VAR:-d}', ["a" + HOSTILE, "d"]),
        ("true > /dev/null && " + ARGV + " {tb_dir} 2>&1 | cat", [HOSTILE]),
        (ARGV + " {tb_dir} # it's a comment with {tb_dir}", [HOSTILE]),
        ("bash -c " + shlex.quote(ARGV + " {tb_dir} 'in {tb_dir}'"), [HOSTILE, "in " + HOSTILE]),
        ('sh -ec "' + ARGV + ' --l={tb_dir}"', ["--l=" + HOSTILE]),
        ("env A=1 bash -lc " + shlex.quote("bash -c " + shlex.quote(ARGV + " {tb_dir}")), [HOSTILE]),
        ("sh -c " + shlex.quote(ARGV + ' "$1"') + " sh {tb_dir}", [HOSTILE]),
        (ARGV + ' "$(printf %s {tb_dir})"', [HOSTILE.rstrip("\n")]),
    ],
)
def test_the_program_gets_exactly_the_value(command: str, expected: List[str]) -> None:
    line = placeholders.substitute(command, {"tb_dir": HOSTILE})
    assert argv_of(line) == expected


def test_braces_escape_and_shell_expansions_pass_through() -> None:
    command = "awk '{{print $1}}' ${HOME} ${X:-${Y}} {name}"
    assert placeholders.used(command) == {"name"}
    assert placeholders.fill(command, {"name": "n"}) == "awk '{print $1}' ${HOME} ${X:-${Y}} n"
    assert placeholders.substitute("echo }}{{", {}) == "echo }{"


@pytest.mark.parametrize(
    "command,message",
    [
        ("echo {unknown}", "unknown placeholder {unknown} in the command; known placeholders: {name}, {tb_dir}, {save_path}, {runs_dir}"),
        ("awk '{print}'", "unknown placeholder {print}"),
        ("echo {tb_dir", "'{' at column 6 of the command starts no placeholder"),
        ("{ echo a; }", "'{' at column 1 of the command starts no placeholder such as {tb_dir}; write '{{' for a literal '{'"),
        ("echo a}", "'}' at column 7 of the command closes no placeholder; write '}}' for a literal '}'"),
        ("echo ${HOME", "'${' at column 6 of the command is never closed"),
        ("echo ${X:-{tb_dir}}", "a placeholder inside ${...} (column 6 of the command)"),
    ],
)
def test_bad_placeholders_are_one_clear_error(command: str, message: str) -> None:
    with pytest.raises(RunsError) as error:
        placeholders.check(command, placeholders.RESERVED)
        placeholders.substitute(command, dict.fromkeys(placeholders.RESERVED, "v"))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "command,reason",
    [
        ("echo `ls {tb_dir}`", "inside backquotes"),
        ("echo \\{tb_dir}", "right after a backslash"),
        ("cat <<EOF\n{tb_dir}\nEOF", "after a here-document"),
        ("bash -c 'echo `ls {tb_dir}`'", "in the script of a nested shell is inside backquotes"),
    ],
)
def test_places_that_cannot_be_quoted_safely_are_refused(command: str, reason: str) -> None:
    with pytest.raises(RunsError) as error:
        placeholders.substitute(command, {"tb_dir": "/x"})
    assert reason in str(error.value)


def test_fill_puts_values_as_they_are() -> None:
    assert placeholders.fill("{runs_dir}/x-{name}.log", {"runs_dir": "/a b", "name": "n"}) == "/a b/x-n.log"


FLAGS = ["--tb-dir", "--save-path"]


@pytest.mark.parametrize(
    "command,part",
    [
        ("python train.py > out.txt 2>&1 && echo done", "go to 'echo done' only, the last command"),
        ("python train.py | tee log", "go to 'tee log' only"),
        ("python train.py; sleep 1", "go to 'sleep 1' only"),
        ("python a.py\npython b.py", "go to 'python b.py' only"),
        ("bash -c 'python train.py'", "go to bash as $0, $1, ..., not to the command of its -c"),
        ("(cd src && python train.py)", "do not reach the program: after ')'"),
        ("for s in 1 2; do python t.py --seed $s; done", "do not reach the program: after 'done'"),
        ("python train.py &", "do not reach the program: after '&'"),
        ("python t.py > 'my out.txt' 2>&1", "go to 'python t.py', past its redirections: that works"),
    ],
)
def test_compound_commands_say_where_the_flags_go(command: str, part: str) -> None:
    note = flags_note(command, FLAGS)
    assert note is not None and part in note
    assert note.startswith("the appended --tb-dir, --save-path")


@pytest.mark.parametrize("command", ["python train.py --lr 0.1", "A='x; y' python t.py 'a && b'", "torchrun --nproc 2 t.py --", "python 'unbalanced"])
def test_simple_commands_get_no_note(command: str) -> None:
    assert flags_note(command, FLAGS) is None


def test_the_note_is_about_real_shell_behaviour(tmp_path) -> None:
    """What the note says of `A && B` is what sh does: the flags go to B only."""
    first, second = tmp_path / "first", tmp_path / "second"
    dump = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    command = f"{sys.executable} -c {shlex.quote(dump)} {first} && {sys.executable} -c {shlex.quote(dump)} {second}"
    assert "last command" in (flags_note(command, FLAGS) or "")
    subprocess.run(["/bin/sh", "-c", command + " --tb-dir d"], check=True)
    assert json.loads(first.read_text()) == [] and json.loads(second.read_text()) == ["--tb-dir", "d"]


# Printable text without NUL (no argument can hold it) and without lone surrogates.
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
PRINT = "printf '%s\\0'"  # the shell's own printf: each argument, NUL-terminated
CONTEXTS = [
    PRINT + " {v}",
    PRINT + " -x={v}=",
    PRINT + ' "a {v} b"',
    PRINT + " 'a {v} b'",
    "bash -c " + shlex.quote(PRINT + " {v}"),
    "sh -c " + shlex.quote(PRINT + ' "in {v}"'),
    'sh -c "' + PRINT + " '{v}'\"",
]
EXPECTED = [["{v}"], ["-x={v}="], ["a {v} b"], ["a {v} b"], ["{v}"], ["in {v}"], ["{v}"]]


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(value=VALUES)
def test_any_value_in_any_context_reaches_the_program_exactly(value: str) -> None:
    for command, words in zip(CONTEXTS, EXPECTED):
        line = placeholders.substitute(command, {"v": value})
        done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, check=True)
        assert done.stdout.decode().split("\0")[:-1] == [word.replace("{v}", value) for word in words], line
