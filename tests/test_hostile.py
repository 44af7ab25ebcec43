"""Hostile input and a hostile environment.

Property-based (hypothesis): names, commands, descriptions, patterns and keys made of
unicode, control characters, '..', absolute paths, very long strings, shell
metacharacters and tmux target syntax. Whatever they are, `runs`
- never raises (no traceback) and exits 0, 1 or 2,
- never touches a file outside its runs directory (a sentinel tree outside it, the
  work tree and the parent directory are compared before and after),
- never touches another run's entry, files or tmux session (two victim runs with files
  and live sessions must survive every hostile new/delete/list/table/lookup/reproduce),
- never leaves the database unparseable,
- stores commands exactly, and `reproduce` prints them so they round-trip through sh.

Every hostile run is started with a virtualenv whose activate script is `exit 0`, so
no hostile command is ever executed.

Also: regular expressions that are invalid or catastrophic, bytes that are not UTF-8,
a working directory with spaces and quotes, symbolic links planted in the runs
directory, and tmux edge cases (no server yet, sessions sharing a prefix, runs called
from inside tmux, sessions the user already closed).
"""
from __future__ import annotations

import dataclasses
import operator
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Result, git, run_process, wait_for
from tests.test_reliability import (
    WAITING,
    Victim,
    assert_clean_exit,
    assert_intact,
    assert_nothing,
    assert_whole,
    checkpoint_files,
    db_names,
    leftovers,
    listed,
    load_db,
    make_victim,
    runs_env,
    started_name,
    tb_dir,
    tmux_sessions,
)

HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    database=None,  # no .hypothesis directory in the work tree
    suppress_health_check=list(HealthCheck),
)

# The fixture ---------------------------------------------------------------------------


def snapshot(root: Path, skip: Set[Path]) -> Dict[str, Any]:
    """Every path under ``root`` with its type, size, times and link target."""
    found: Dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in [".", *dirnames, *filenames]:
            path = here / name
            if name == "." and path != root:
                continue
            st_ = os.lstat(path)
            link = os.readlink(path) if stat.S_ISLNK(st_.st_mode) else None
            content = path.read_bytes() if stat.S_ISREG(st_.st_mode) else None
            found[str(path.relative_to(root))] = (stat.S_IFMT(st_.st_mode), st_.st_size, st_.st_mtime_ns, link, content)
    return found


def one_line_error(result: Result) -> bool:
    """One `runs: error:` line; a supervisor recording an outcome meanwhile may have made the
    command say first that it waits for the lock (a loaded machine)."""
    lines = [line for line in result.err.splitlines(keepends=True) if not line.startswith(f"runs: {WAITING}")]
    return len(lines) == 1 and lines[0].startswith("runs: error: ") and lines[0].endswith("\n")


@dataclasses.dataclass
class Arena:
    repo: Path
    tmp: Path
    venv: Path
    runs: Callable[..., Result]
    victims: List[Victim]
    outside: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def skip(self) -> Set[Path]:
        return {self.repo / ".runs", self.repo / ".git"}

    def freeze(self) -> None:
        self.outside = snapshot(self.tmp, self.skip())

    def check(self) -> None:
        """The invariants every hostile command must keep."""
        now = snapshot(self.tmp, self.skip())
        changed = sorted(k for k in set(now) | set(self.outside) if now.get(k) != self.outside.get(k))
        assert not changed, f"touched outside the runs directory: {changed}"
        names = db_names(self.repo)
        assert len(names) == len(set(names)), f"duplicate entries: {names}"
        db, live = load_db(self.repo), tmux_sessions()
        assert_intact(self.victims, db, live)
        assert leftovers(self.repo) == []

    def revive(self, name: str) -> None:
        """A victim that a hostile pattern legitimately matched: check it is wholly gone, make it anew."""
        assert_nothing(self.repo, name, load_db(self.repo), tmux_sessions())
        self.victims = [v for v in self.victims if v.name != name] + [make_victim(self.runs, self.repo, name)]

    def new(self, *args: str) -> Result:
        """`runs new` whose program never runs (the virtualenv's activate script exits)."""
        return self.runs("new", f"--virtualenv-path={self.venv}", *args)

    def round_trip(self, name: str) -> None:
        """`runs reproduce` prints words a POSIX shell reads back exactly, and running the
        printed `runs new` line records the same command and description."""
        entry = load_db(self.repo)[name]
        result = self.runs("reproduce", "--", name)
        assert_clean_exit(result)
        assert result.out.startswith("To reproduce:\n"), result.out
        body = result.out[len("To reproduce:\n") :]
        words = shlex.split(body)
        assert words[:5] == ["git", "checkout", entry["commit"], "runs", "new"], words
        script = "git() { printf '%s\\0' git \"$@\"; }\nruns() { printf '%s\\0' runs \"$@\"; }\n" + body
        done = subprocess.run(["sh", "-c", script], capture_output=True, timeout=10)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split(b"\0")[:-1] == [w.encode() for w in words], "sh reads other words than shlex"
        again = self.new("--overwrite", "-y", *words[5:])
        assert again.code == 0, f"the printed line does not run: {body!r}: {again.err}"
        assert started_name(again) == name
        redone = load_db(self.repo)[name]
        assert (redone["command"], redone["description"]) == (entry["command"], entry["description"])


@pytest.fixture
def arena(repo: Path, runs: Callable[..., Result], tmp_path: Path) -> Arena:
    sentinel = tmp_path / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "secret.txt").write_text("do not touch\n")
    (sentinel / "sub" / "deep.txt").write_text("nor this\n")
    venv = tmp_path / "no-exec-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("exit 0\n")
    victims = [make_victim(runs, repo, "victim-a"), make_victim(runs, repo, "victim.b")]
    # Traps: links from inside the runs directory to the sentinel.
    (repo / ".runs" / "tensorboard" / "trap").symlink_to(sentinel, target_is_directory=True)
    (repo / ".runs" / "checkpoints" / "trap.ckpt-1").symlink_to(sentinel / "secret.txt")
    result = Arena(repo, tmp_path, venv, runs, victims)
    result.freeze()
    return result


# Strategies ---------------------------------------------------------------------------

_ANY = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))  # argv holds no NUL
_PIECES = list("aZ09._+=@,-/~:;*%$`'\"\\ ()[]{}<>|&!?#^\t\n\r\x0b\x1b\x7f\x85\u2028é中😀") + [
    "..",
    "../",
    "$(",
    "${",
    "#{",
    "--",
    "victim-a",
    "victim.b",
]


def _hostile(max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(_PIECES), max_size=max_size).map("".join)


CURATED_NAMES = [
    "", ".", "..", "../x", "../../sentinel", "/abs", "/tmp/evil", "a/../b", "a//b", "a/", "/",
    "x" * 5000, "x" * 1001, "x" * 201, "y" * 200, "/".join(["p" * 199] * 5),
    "-x", "--help", "-", "--", "=", "=victim-a", "victim-a:0", "victim-a.0", "victim-a.*", "%0", "$0", "@0",
    "#{session_name}", "victim-a", "victim-a/x", "victim.b", "victim~b", "victim-a.ckpt-1",
    "victim-a.ckpt-1.index", "victim-a.ckpt-1.data-00000-of-00001", "trap", "trap/x", "trap.ckpt-1",
    ".runs", ".runs.yml", ".runs.yml.lock", "tensorboard", "checkpoints", "a;b", "$(touch pwned)",
    "`touch pwned`", "'", '"', "a b", "\n", "é", "exp\x1b[31m", "a\u2028b",
]
VALID_NAMES = st.from_regex(r"[A-Za-z0-9._+=@,-]{1,12}(/[A-Za-z0-9._+=@,-]{1,12}){0,2}", fullmatch=True)
NAMES = st.one_of(
    _hostile(10),
    st.text(_ANY, max_size=10),
    st.sampled_from(CURATED_NAMES),
    VALID_NAMES,
    st.builds(operator.add, st.sampled_from(["victim-a", "victim.b", "..", "/", "-"]), _hostile(3)),  # trap/...: see the curated test
)

CURATED_COMMANDS = [
    "echo $(touch pwned)", "`touch pwned`", "touch pwned; rm -rf ..", "'", '"', "'\"'\"'", "a\\b", "x\ny",
    "--flag", "-", "-c 'x'", "a\tb", " leading", "trailing ", "a\u2028b", "a\x85b", "a\r\nb", "#comment", "!!",
    "~", "*", "${HOME}", "\\", "a;b&&c||d|e>f<g", "\x1b[31mred", "}; touch pwned; {", "exit 1",
    "%s %n", "{a,b}", "é中😀", "x" * 20000, "'" * 300, "$'\\x41'", "a\x7fb",
    # Braces are placeholder syntax: a literal one is doubled; a stray one is refused.
    "}}; touch pwned; {{", "{{a,b}}", "echo {tb_dir} '{name}' \"{save_path}\" x{runs_dir}", "`echo {name}`",
    "{nope}", "${HOME:-{name}}",
]
COMMANDS = st.one_of(_hostile(25), st.text(_ANY, min_size=1, max_size=25), st.sampled_from(CURATED_COMMANDS))
DESCRIPTIONS = st.one_of(
    _hostile(8),
    st.text(_ANY, max_size=10),
    st.sampled_from(["", "-", "--x", "'", "\n", "a: b", "- item", "{x: 1}", "null", "~", "yes", "1e3", "0x10",
                     "2024-01-01", "...", "---", "&a *a", "!!python/object:os.system", "%TAG"]),
)

CATASTROPHIC = ["(a+)+$", "(a|aa)*$", "(a*)*$", "(a|a?)+$", "([a-z]+)*$", "(x+x+)+y"]
INVALID = ["(", ")", "[", "*", "+a", "?", "a{2,1}", "(?P<", "\\", "(?<=a+)b", "(?P<n>a)(?P=m)", "[z-a]",
           "\\p{L}", "(?i", "a{99999999999999999999}", "(" * 2000 + ")" * 2000, "(" * 2000, "x(?", "\\8"]
_REGEX_PIECES = list("ab.*+?()[]{}|^$\\-,:=!<>#Pvictm0123 /~") + ["\n", "é", "(?", "\\d", "{2}", "victim", "(?P<"]
PATTERNS = st.one_of(
    st.lists(st.sampled_from(_REGEX_PIECES), max_size=12).map("".join),
    st.text(_ANY, max_size=8),
    st.sampled_from(INVALID + CATASTROPHIC + [".*", ".+", "victim-.*", "victim.b", "victim\\.b", "", "trap", "v.*|x",
                                               "(" * 300 + ")" * 300]),
)
KEYS = st.one_of(st.sampled_from(["command", "commit", "description", "tmux_session", "", "../x", "-", "\n"]), _hostile(5))


# Properties ---------------------------------------------------------------------------


def _new_checked(arena: Arena, name: str, *args: str) -> Optional[Tuple[str, List[str]]]:
    """`runs new ARGS` for run ``name``: a one-line error that changed nothing, or a run under
    ``name`` (or name + Unix time) appended to the database. (final name, names before) or None."""
    before = db_names(arena.repo)
    result = arena.new(*args)
    assert result.code in (0, 1, 2), result
    arena.check()
    if result.code != 0:
        assert one_line_error(result), result.err
        assert db_names(arena.repo) == before
        return None
    final = started_name(result)
    assert final == name or re.fullmatch(re.escape(name) + r"\d{10}(-\d+)?", final), final
    assert db_names(arena.repo) == before + [final]
    return final, before


@settings(HYPOTHESIS, max_examples=40)
@given(name=NAMES, command=COMMANDS, description=DESCRIPTIONS)
def test_hostile_new(arena: Arena, name: str, command: str, description: str) -> None:
    made = _new_checked(arena, name, f"--description={description}", "--", name, command)
    if made is None:
        return
    final, _ = made
    entry = load_db(arena.repo)[final]
    assert entry["command"] == command and entry["description"] == description
    tb = tb_dir(arena.repo, final)
    assert tb.is_dir() and os.path.realpath(tb).startswith(os.path.realpath(arena.repo / ".runs" / "tensorboard") + os.sep)
    assert arena.runs("lookup", "--", final, "command").out == command + "\n"
    assert arena.runs("lookup", "--", final, "description").out == description + "\n"
    _parameters_shown(arena, final, command)
    arena.round_trip(final)
    arena.check()


def _parameters_shown(arena: Arena, name: str, command: str) -> None:
    """Whatever the command, `table --params all` shows its parameters as params.py reads them."""
    import json

    from runs_manager import tabular
    from runs_manager.text import params
    from runs_manager.settings import Settings

    result = arena.runs("table", "-p", re.escape(name), "-c", "name", "--params", "all", "-f", "jsonl")
    assert result.code == 0 and "Traceback" not in result.err, result
    row = json.loads(result.out)
    expected = params.parameters({"command": command}, params.own_flags(Settings()))
    headers = {("param:" + k if "param:" + k in row else k): v for k, v in expected.items()}
    assert result.out == tabular.json_text({"name": name, **headers}) + "\n"


# Mostly values a run name can hold (else the sweep is refused: test_sweeps.py gives
# such values to a real shell), with the shell's metacharacters that names allow.
GRID_VALUES = st.lists(
    st.one_of(st.from_regex(r"[A-Za-z0-9._+=@-]{1,8}", fullmatch=True), st.sampled_from(["-", "--x=1", "..a", "@", "+"]), _hostile(8)),
    min_size=1, max_size=3,
)
# Hostile commands with their braces literal, so that most sweeps are made.
SWEEP_COMMANDS = st.one_of(COMMANDS.map(lambda c: c.replace("{", "{{").replace("}", "}}")), COMMANDS)


@settings(HYPOTHESIS, max_examples=50)
@given(name=st.one_of(VALID_NAMES, NAMES), values=GRID_VALUES, command=SWEEP_COMMANDS, description=DESCRIPTIONS)
def test_hostile_sweeps(arena: Arena, name: str, values: List[str], command: str, description: str) -> None:
    """A grid of hostile values (and names, commands, descriptions): a one-line error that
    recorded nothing, or every run of the grid, each with its value written into its
    command so that filling the paths in later gives the very line that filling everything
    at once would, and a reproduce line that round-trips."""
    import json

    from runs_manager import tabular
    from runs_manager.text import params, placeholders

    before = db_names(arena.repo)
    template = f"{command} {{v}}"
    description = description.replace("$", "").replace("{", "{{").replace("}", "}}")  # "${" is the shell's, not a brace
    result = arena.new("--grid", "v=" + ",".join(values), f"--description={description}", "--", name, template)
    assert result.code in (0, 1, 2), result
    arena.check()
    if result.code != 0:
        assert one_line_error(result), result.err
        assert db_names(arena.repo) == before
        return
    db = load_db(arena.repo)
    made = [f"{name}/v-{value}" for value in values]
    assert db_names(arena.repo) == before + made
    paths = {key: f"/p/{key} 'x'" for key in placeholders.RESERVED}
    for member, value in zip(made, values):
        assert db[member]["grid"] == {"v": value}
        assert db[member]["description"] == description.replace("{{", "{").replace("}}", "}")
        assert placeholders.substitute(db[member]["command"], paths) == placeholders.substitute(template, {**paths, "v": value})
    shown = json.loads(arena.runs("table", "-p", re.escape(made[0]), "-c", "param:v", "-f", "json").out)
    assert shown == [{"param:v": json.loads(tabular.json_text(params.typed(values[0])))}]
    arena.round_trip(made[0])
    arena.check()


@HYPOTHESIS
@given(name=NAMES, new=NAMES, text=DESCRIPTIONS, pattern=PATTERNS)
def test_hostile_lifecycle_commands(arena: Arena, name: str, new: str, text: str, pattern: str) -> None:
    """mv, describe, logs and kill with hostile names, texts and patterns: a one-line error
    that changed nothing, or exactly the change asked for; the victims (running) are never
    moved, described, killed or touched."""
    made = _new_checked(arena, name, "--", name, "true")
    if made is not None:  # its program ends at once (the virtualenv exits): let that be recorded first
        assert wait_for(lambda: "exit_code" in load_db(arena.repo)[made[0]], timeout=20)
    victims = {v.name for v in arena.victims}
    for argv in (("logs", "--", name), ("logs", "-n", "1", "--", new), ("kill", "--", pattern)):
        before = (arena.repo / ".runs/.runs.yml").read_bytes()
        result = arena.runs(*argv)
        assert result.code in (0, 1, 2), result
        if argv[0] == "kill":  # stdin is not a terminal: never confirmed, nothing killed
            assert result.code != 0 and (arena.repo / ".runs/.runs.yml").read_bytes() == before
            # The runs it would kill, or notes on those it leaves alone, then one error line.
            assert "Traceback" not in result.err and result.err.splitlines()[-1].startswith("runs: error: ")
        elif result.code:
            assert one_line_error(result), result.err
    arena.check()
    if made is None:
        return
    final, _ = made
    if final not in victims:
        result = arena.runs("describe", "--", final, text)
        assert result.code in (0, 1), result
        if result.code == 0:
            assert load_db(arena.repo)[final]["description"] == text
        else:
            assert one_line_error(result), result.err
    names_before = db_names(arena.repo)
    result = arena.runs("mv", "--", final, new)
    assert result.code in (0, 1, 2), result
    arena.check()
    if result.code:
        assert one_line_error(result), result.err
        assert db_names(arena.repo) == names_before
        return
    after = db_names(arena.repo)
    assert final not in after and after == [new if n == final else n for n in names_before]
    tb = tb_dir(arena.repo, new)
    assert tb.is_dir() and os.path.realpath(tb).startswith(os.path.realpath(arena.repo / ".runs" / "tensorboard") + os.sep)
    assert not os.path.lexists(tb_dir(arena.repo, final))


def _python_matches(pattern: str, names: List[str]) -> Optional[List[str]]:
    try:
        regex = re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    return [name for name in names if regex.fullmatch(name)]


def _table_names(result: Result) -> List[str]:
    lines = result.out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    return [line.split()[0] for line in lines[rule + 1 :] if line.strip()]


@HYPOTHESIS
@given(pattern=PATTERNS)
def test_hostile_patterns(arena: Arena, pattern: str) -> None:
    names = db_names(arena.repo)
    expected = _python_matches(pattern, names)
    for argv, shown in ((("list", f"--pattern={pattern}"), listed), (("table", f"--pattern={pattern}"), _table_names)):
        start = time.monotonic()
        result = arena.runs(*argv)
        assert time.monotonic() - start < 10
        assert result.code in (0, 1, 2), result
        if result.code == 0:
            assert expected is not None and shown(result) == expected, (pattern, result.out)
        else:
            assert one_line_error(result), result.err
            assert expected is None, f"a valid pattern {pattern!r} was refused: {result.err}"
    result = arena.runs("delete", "-y", "--", pattern)
    assert result.code in (0, 1, 2), result
    after = db_names(arena.repo)
    if result.code == 0:
        assert expected, result
        assert [n for n in names if n not in after] == expected
    else:
        assert one_line_error(result), result.err
        assert not expected and after == names
    for name in expected or ():
        arena.revive(name)
    arena.check()


@HYPOTHESIS
@given(name=NAMES, key=st.one_of(st.none(), KEYS))
def test_hostile_lookup_and_reproduce(arena: Arena, name: str, key: Optional[str]) -> None:
    db = load_db(arena.repo)
    result = arena.runs("lookup", "--", name, *([] if key is None else [key]))
    assert result.code in (0, 1, 2), result
    if name in db and (key is None or key in db[name]):
        assert result.code == 0, result
    else:
        assert result.code == 1 and one_line_error(result), result
    result = arena.runs("reproduce", "--", name)
    assert result.code in (0, 1, 2), result
    assert result.code == (0 if name in db else 1), result
    if result.code:
        assert one_line_error(result), result.err
    arena.check()


def test_every_curated_hostile_name(arena: Arena) -> None:
    """Each curated name once, through new, list, table, lookup, reproduce and delete
    (every name is tried; the failures are reported together)."""
    problems = []
    for name in CURATED_NAMES:
        try:
            _curated_name(arena, name)
        except AssertionError as e:
            problems.append(f"{name[:60]!r}: {str(e).splitlines()[0]}")
            arena.freeze()  # judge the next name on its own
    assert not problems, "\n".join(problems)


def _curated_name(arena: Arena, name: str) -> None:
    made = _new_checked(arena, name, "--", name, "sleep 600; true")
    if made is None:
        return
    final, before = made
    assert listed(arena.runs("list")) == before + [final]
    assert final in arena.runs("table", f"--pattern={re.escape(final)}").out
    assert arena.runs("lookup", "--", final, "command").out == "sleep 600; true\n"
    arena.round_trip(final)
    assert_clean_exit(arena.runs("delete", "-y", "--", re.escape(final)))
    assert_nothing(arena.repo, final, load_db(arena.repo), tmux_sessions())
    assert db_names(arena.repo) == before
    arena.check()


def _bad_braces(command: str) -> bool:
    from runs_manager.text import placeholders
    from runs_manager.errors import RunsError

    try:
        placeholders.check(command, placeholders.RESERVED)
        placeholders.substitute(command, dict.fromkeys(placeholders.RESERVED, "v"))
    except RunsError:
        return True
    return False


def test_shell_metacharacter_commands_are_stored_exactly(arena: Arena) -> None:
    for i, command in enumerate(CURATED_COMMANDS):
        description = CURATED_COMMANDS[-1 - i]
        result = arena.new(f"--description={description}", "--", f"cmd-{i}", command)
        lost = "would be lost" in result.err  # the appended flags would go into a comment, an open quote...
        if (len(command) > 10_000 or _bad_braces(command) or lost) and result.code == 1:  # refused, nothing made
            assert one_line_error(result), result.err
            assert_nothing(arena.repo, f"cmd-{i}", load_db(arena.repo), tmux_sessions())
            continue
        assert_clean_exit(result)
        entry = load_db(arena.repo)[f"cmd-{i}"]
        assert entry["command"] == command and entry["description"] == description
        assert arena.runs("lookup", f"cmd-{i}", "command").out == command + "\n"
        arena.round_trip(f"cmd-{i}")
    arena.check()


def test_catastrophic_regex_is_a_bounded_error(arena: Arena) -> None:
    slow = "a" * 40 + "-"  # (a+)+$ backtracks through 2^40 ways to fail on it
    assert arena.runs("new", slow, "sleep 600; true").code == 0
    arena.freeze()
    start = time.monotonic()
    result = run_process("list", "--pattern=(a+)+$", timeout=30)
    assert time.monotonic() - start < 8, "runs list hung on a catastrophic pattern"
    assert result.code == 1 and one_line_error(result) and "(a+)+$" in result.err, result
    for argv in (("table", "--pattern=(a+)+$"), ("delete", "-y", "(a+)+$")):
        start = time.monotonic()
        result = arena.runs(*argv)
        assert time.monotonic() - start < 6, f"runs {argv} hung"
        assert result.code == 1 and one_line_error(result), result
    assert slow in load_db(arena.repo)
    arena.check()


def test_invalid_regexes_are_one_line_errors(arena: Arena) -> None:
    for pattern in INVALID:
        for argv in (("list", f"--pattern={pattern}"), ("table", f"--pattern={pattern}"), ("delete", "-y", "--", pattern)):
            result = arena.runs(*argv)
            assert result.code == 1 and one_line_error(result), (argv, result)
    arena.check()


def test_arguments_that_are_not_utf8(arena: Arena) -> None:
    """Bytes that are not UTF-8 reach Python's argv as lone surrogates: a clear error or
    an exact record, never a traceback, never damage."""
    python = os.fsencode(sys.executable)
    venv = b"--virtualenv-path=" + os.fsencode(str(arena.venv))
    cases = [
        [b"new", venv, b"bad\xffname", b"true"],
        [b"new", venv, b"bytes-command", b"echo \xff\xfe"],
        [b"new", venv, b"bytes-description", b"true", b"--description=caf\xe9"],
        [b"lookup", b"\xff"],
        [b"lookup", b"victim-a", b"\xff"],
        [b"reproduce", b"\xff"],
        [b"list", b"--pattern=\xff"],
        [b"table", b"--pattern=\xff.*"],
        [b"delete", b"-y", b"\xff"],
    ]
    env = {os.fsencode(k): os.fsencode(v) for k, v in runs_env().items()}
    problems = []
    for argv in cases:
        done = subprocess.run([python, b"-m", b"runs_manager", *argv], capture_output=True, env=env, timeout=30)
        err = done.stderr.decode("utf-8", "replace")
        if "Traceback" in err or done.returncode not in (0, 1, 2):
            last = err.strip().splitlines()[-1] if err.strip() else ""
            problems.append(f"runs {b' '.join(argv)!r}: exit {done.returncode}, {last}")
        if argv[0] == b"new" and done.returncode == 0:
            name = argv[2].decode()
            stored = subprocess.run([python, b"-m", b"runs_manager", b"lookup", argv[2], b"command"], capture_output=True, env=env, timeout=30)
            assert stored.stdout == argv[3] + b"\n", f"{name}: stored {stored.stdout!r}"
        arena.check()
        assert run_process("list", timeout=30).code == 0
    assert not problems, "\n".join(problems)


def test_long_names(arena: Arena) -> None:
    start = time.monotonic()
    result = arena.runs("new", "x" * 5000, "true")
    assert result.code == 1 and one_line_error(result) and time.monotonic() - start < 5
    deep = "/".join(["p" * 199] * 5)  # 999 characters: the longest name allowed
    result = arena.new(deep, "true")
    assert_clean_exit(result)
    assert started_name(result) == deep
    for argv in (("list",), ("table",), ("lookup", deep), ("reproduce", deep)):
        assert_clean_exit(arena.runs(*argv))
    # Taken: the name plus a timestamp would be too long, which is an error, not a crash.
    result = arena.new(deep, "true")
    assert result.code == 1 and one_line_error(result), result
    assert_clean_exit(arena.runs("delete", "-y", re.escape(deep)))
    assert not (arena.repo / ".runs" / "tensorboard" / ("p" * 199)).exists()
    arena.check()


def test_planted_symbolic_links_are_not_followed(arena: Arena) -> None:
    """A run whose directories were replaced by links out of the runs directory: deleting
    it removes the links, never what they point to."""
    sentinel = arena.tmp / "sentinel"
    assert_clean_exit(arena.runs("new", "linked", "sleep 600; true"))
    tb = tb_dir(arena.repo, "linked")
    (tb / "events").write_text("x")
    shutil.rmtree(tb)
    tb.symlink_to(sentinel, target_is_directory=True)
    ckpt = arena.repo / ".runs" / "checkpoints"
    (ckpt / "linked.ckpt-1.index").symlink_to(sentinel / "secret.txt")
    (ckpt / "linked").symlink_to(sentinel / "sub")
    assert_clean_exit(arena.runs("delete", "-y", "linked"))
    assert not os.path.lexists(tb) and not checkpoint_files(arena.repo, "linked")
    # and the traps planted without any run stay untouched links
    assert (arena.repo / ".runs" / "tensorboard" / "trap").is_symlink()
    arena.check()


def test_working_directory_with_spaces_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "my 'odd' \"dir\" $HOME `x` ; & (y) \\z"
    path.mkdir()
    git("init", "-q", cwd=path)
    (path / "main.py").write_text("")
    git("add", ".", cwd=path)
    git("commit", "-qm", "x", cwd=path)
    assert_clean_exit(run_process("new", "odd", "sleep 600; true", "--description=it's odd", cwd=path, timeout=30))
    live = tmux_sessions()
    db = load_db(path)
    assert_whole(path, "odd", db, live)
    pane = subprocess.run(["tmux", "display-message", "-p", "-t", live["odd"], "#{pane_current_path}"],
                          capture_output=True, text=True, timeout=10).stdout.strip()
    assert pane == str(path)
    assert listed(run_process("list", cwd=path, timeout=30)) == ["odd"]
    assert "it's odd" in run_process("table", cwd=path, timeout=30).out
    assert run_process("lookup", "odd", "command", cwd=path, timeout=30).out == "sleep 600; true\n"
    assert_clean_exit(run_process("reproduce", "odd", cwd=path, timeout=30))
    assert_clean_exit(run_process("delete", "odd", "-y", cwd=path, timeout=30))
    assert_nothing(path, "odd", load_db(path), tmux_sessions())
    assert git("status", "--porcelain", cwd=path) == ""


# tmux ---------------------------------------------------------------------------------


def _user_sessions(tmux: Any, *names: str) -> Dict[str, str]:
    for name in names:
        tmux.new(name)
    live = tmux_sessions()
    return {name: live[name] for name in names}


def _assert_user_sessions_alive(user: Dict[str, str]) -> None:
    live = tmux_sessions()
    touched = {name for name, sid in user.items() if live.get(name) != sid}
    assert not touched, f"the user's own sessions were touched: {sorted(touched)}"


def test_first_new_starts_the_tmux_server(repo: Path) -> None:
    assert subprocess.run(["tmux", "list-sessions"], capture_output=True, timeout=10).returncode != 0
    assert_clean_exit(run_process("new", "first", "sleep 600; true", timeout=30))
    live = tmux_sessions()
    assert list(live) == ["first"]
    assert_whole(repo, "first", load_db(repo), live)
    assert_clean_exit(run_process("delete", "first", "-y", timeout=30))
    assert_nothing(repo, "first", load_db(repo), tmux_sessions())


def test_sessions_sharing_a_prefix_are_never_touched(repo: Path, runs: Callable[..., Result], tmux: Any) -> None:
    user = _user_sessions(tmux, "exp1509804959", "exp-mine", "ex", "exp~", "expo")
    assert_clean_exit(runs("new", "exp", "sleep 600; true"))
    assert_clean_exit(run_process("delete", "exp", "-y", timeout=30))
    assert_nothing(repo, "exp", load_db(repo), tmux_sessions())
    _assert_user_sessions_alive(user)

    assert_clean_exit(run_process("new", "exp", "sleep 600; true", timeout=30))
    old = load_db(repo)["exp"]["tmux_session_id"]
    assert_clean_exit(run_process("new", "exp", "sleep 600; true", "--overwrite", "-y", timeout=30))
    db, live = load_db(repo), tmux_sessions()
    assert_whole(repo, "exp", db, live) and db["exp"]["tmux_session_id"] != old
    _assert_user_sessions_alive(user)

    # The user closed the run's session: a prefix match (tmux -t exp) would now hit exp1509804959.
    subprocess.run(["tmux", "kill-session", "-t", db["exp"]["tmux_session_id"]], check=True, timeout=10)
    assert_clean_exit(run_process("delete", "exp", "-y", timeout=30))
    assert_nothing(repo, "exp", load_db(repo), tmux_sessions())
    _assert_user_sessions_alive(user)
    assert_clean_exit(runs("new", "exp", "sleep 600; true"))
    subprocess.run(["tmux", "kill-session", "-t", load_db(repo)["exp"]["tmux_session_id"]], check=True, timeout=10)
    assert_clean_exit(run_process("new", "exp", "sleep 600; true", "--overwrite", "-y", timeout=30))
    assert_whole(repo, "exp", load_db(repo), tmux_sessions())
    _assert_user_sessions_alive(user)

    # The unique name runs would pick is a user's session: the run has that name (sessions
    # do not take names), and a session of its own, the user's untouched.
    now = int(time.time())
    user.update(_user_sessions(tmux, *(f"exp{t}" for t in range(now, now + 3))))
    result = runs("new", "exp", "sleep 600; true")
    assert_clean_exit(result)
    final = started_name(result)
    assert re.fullmatch(r"exp\d{10}", final)
    session = load_db(repo)[final]["tmux_session"]
    assert session not in user and session == (f"{final}@repo" if final in user else final)
    assert_whole(repo, final, load_db(repo), tmux_sessions())
    _assert_user_sessions_alive(user)


@pytest.mark.parametrize("server", ["same server", "restarted server"])
def test_users_session_with_the_runs_name_is_left_alone(repo: Path, runs: Callable[..., Result], tmux: Any, server: str) -> None:
    """The user closed the run's session and later opened one of their own with the same
    name. tmux numbers sessions per server from $0, so once the server has restarted (the
    run's session was the last one, or the machine rebooted) the new session can also get
    the id the run recorded: name and id together still do not identify the run's session."""
    if server == "same server":
        tmux.new("keeps-the-server-up")
    assert_clean_exit(runs("new", "exp", "sleep 600; true"))
    subprocess.run(["tmux", "kill-session", "-t", load_db(repo)["exp"]["tmux_session_id"]], check=True, timeout=10)
    user = _user_sessions(tmux, "exp")  # the user's own session, of the same name
    result = run_process("delete", "exp", "-y", timeout=30)
    assert_clean_exit(result)
    assert "exp" not in load_db(repo)
    _assert_user_sessions_alive(user)
    assert_clean_exit(runs("new", "exp2", "sleep 600; true"))
    subprocess.run(["tmux", "kill-session", "-t", load_db(repo)["exp2"]["tmux_session_id"]], check=True, timeout=10)
    user.update(_user_sessions(tmux, "exp2"))
    result = run_process("new", "exp2", "sleep 600; true", "--overwrite", "-y", timeout=30)
    assert_clean_exit(result)
    _assert_user_sessions_alive(user)


def test_runs_from_inside_tmux(repo: Path, tmux: Any) -> None:
    user = _user_sessions(tmux, "outer")
    socket = tmux.run("display-message", "-p", "-t", user["outer"], "#{socket_path}").stdout.strip()
    env = {"TMUX": f"{socket},{os.getpid()},0", "TMUX_PANE": "%0"}
    result = run_process("new", "inner", "sleep 600; true", env=env, timeout=30)
    assert_clean_exit(result)
    assert "tmux switch-client -t =inner" in result.out
    assert_whole(repo, "inner", load_db(repo), tmux_sessions())
    assert listed(run_process("list", env=env, timeout=30)) == ["inner"]
    assert_clean_exit(run_process("delete", "inner", "-y", env=env, timeout=30))
    assert_nothing(repo, "inner", load_db(repo), tmux_sessions())
    _assert_user_sessions_alive(user)


def test_delete_after_the_user_closed_the_session_or_the_server(repo: Path, runs: Callable[..., Result]) -> None:
    for name in ("a", "b", "c"):
        assert_clean_exit(runs("new", name, "sleep 600; true"))
    subprocess.run(["tmux", "kill-session", "-t", load_db(repo)["a"]["tmux_session_id"]], check=True, timeout=10)
    assert_clean_exit(run_process("delete", "a", "-y", timeout=30))
    assert_nothing(repo, "a", load_db(repo), tmux_sessions())
    subprocess.run(["tmux", "kill-server"], capture_output=True, timeout=10)
    assert_clean_exit(run_process("delete", "b|c", "-y", timeout=30))
    db, live = load_db(repo), tmux_sessions()
    assert_nothing(repo, "b", db, live)
    assert_nothing(repo, "c", db, live)
    assert db == {}
