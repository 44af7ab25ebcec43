"""`runs completion bash|zsh|fish`: the scripts, driven in real shells, and the fast name lookup behind them.

bash is driven through its completion function with COMP_WORDS, fish through
`complete -C`, zsh interactively on a pseudo-terminal (its completion needs the line
editor). zsh and fish are skipped where they are not installed, except under CI.
"""
from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from tests.conftest import ROOT, run_process

NAMES = ["alpha", "alpine", "beta", "sweep/lr-0.1", "sweep/lr-0.5", "a,b", "x=1"]


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{shell} is not installed; scripts/test.sh installs it")
        pytest.skip(f"{shell} is not installed")
    return path


def write_db(repo: Path, names: List[str], where: str = ".runs/.runs.yml") -> None:
    path = repo / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({name: {"command": "true"} for name in names}, sort_keys=False))


def fresh(repo: Path, *flags: str) -> None:
    """Let the index be written and pass the two-second window in which its content is re-checked."""
    assert run_process("list", *flags).code == 0
    time.sleep(2.1)
    assert run_process("list", *flags).code == 0  # stamps the index as checked


@pytest.fixture
def shell_env(tmp_path: Path) -> Dict[str, str]:
    """PATH with a `runs` program that runs this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runs = bin_dir / "runs"
    runs.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m runs_manager \"$@\"\n")
    runs.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


def script(shell: str, tmp_path: Path) -> Path:
    result = run_process("completion", shell)
    assert result.code == 0, result.err
    path = tmp_path / f"completion.{shell}"
    path.write_text(result.out)
    return path


def bash_complete(tmp_path: Path, env: Dict[str, str], lines: List[str]) -> List[List[str]]:
    """What bash's completion function offers for each command line (the last word is completed)."""
    path = script("bash", tmp_path)
    calls = "\n".join(f"c {line}" + (" ''" if line.endswith(" ") else "") for line in lines)
    program = (
        f"source {path}\n"
        "c() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _shtab_runs;"
        " printf '%s\\n' \"${COMPREPLY[@]}\"; echo '<end>'; }\n" + calls + "\n"
    )
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    blocks = done.stdout.split("<end>\n")[:-1]
    assert len(blocks) == len(lines)
    return [sorted(filter(None, block.split("\n"))) for block in blocks]


def test_bash_completes_subcommands_flags_and_names(repo, tmp_path, shell_env):
    write_db(repo, NAMES)
    fresh(repo)
    offered = bash_complete(tmp_path, shell_env, [
        "runs de", "runs ", "runs delete --y", "runs delete ", "runs delete al", "runs lookup sweep/",
        "runs lookup alpha ", "runs mv be", "runs list --pattern a", "runs table -p sw", "runs tensorboard b",
        "runs kill alp", "runs reproduce a,", "runs table -s f", "runs table --format gi", "runs new al",
        "runs completion ", "runs metrics alp", "runs metrics beta --format j",
    ])
    assert offered[0] == ["delete", "describe"]
    assert {"new", "delete", "list", "table", "metrics", "lookup", "tensorboard", "completion"} <= set(offered[1])
    assert offered[2] == ["--yes"]
    assert offered[3] == sorted(NAMES)
    assert offered[4] == ["alpha", "alpine"]
    assert offered[5] == ["sweep/lr-0.1", "sweep/lr-0.5"]
    assert "commit" in offered[6] and "status" in offered[6]  # lookup NAME KEY: the keys
    assert offered[7] == ["beta"]
    assert offered[8] == ["a,b", "alpha", "alpine"]
    assert offered[9] == ["sweep/lr-0.1", "sweep/lr-0.5"]
    assert offered[10] == ["beta"]
    assert offered[11] == ["alpha", "alpine"]
    assert offered[12] == ["a,b"]
    assert offered[13] == ["failed", "finished"]
    assert offered[14] == ["github"]
    assert "alpha" not in offered[15]  # a new run's name is new
    assert offered[16] == ["bash", "fish", "zsh"]
    assert offered[17] == ["alpha", "alpine"]  # runs metrics NAME
    assert offered[18] == ["jira", "json", "jsonl"]  # tabulate's and the machine formats, as for table


def test_names_come_from_the_database_the_command_line_or_runsrc_names(repo, tmp_path, shell_env):
    write_db(repo, ["here"])
    write_db(repo, ["there"], "other/db.yml")
    (repo / "cfg").mkdir()
    offered = bash_complete(tmp_path, shell_env, [
        "runs lookup ", "runs lookup --runs-dir other --db-filename db.yml ", "runs delete --runs-dir other --db-filename db.yml t",
    ])
    assert offered == [["here"], ["there"], ["there"]]
    done = fast("t", "runs", "delete", "--runs-dir=other", "--db-filename=db.yml", "t", cwd=repo)
    assert done.stdout == "there\n"
    (repo / ".runsrc").write_text("runs-dir: other  # the shared one\ndb_filename: 'db.yml'\n")
    assert bash_complete(tmp_path, shell_env, ["runs delete "]) == [["there"]]


def test_a_hand_edit_is_seen_at_once(repo, tmp_path, shell_env):
    write_db(repo, ["old"])
    fresh(repo)
    write_db(repo, ["old", "added"])  # the index no longer describes the file: the slow path reads it
    assert bash_complete(tmp_path, shell_env, ["runs delete "]) == [["added", "old"]]


def test_fish_completes_subcommands_flags_and_names(repo, tmp_path, shell_env):
    fish = need("fish")
    write_db(repo, NAMES)
    fresh(repo)
    path = script("fish", tmp_path)
    lines = ["runs de", "runs delete --y", "runs lookup al", "runs lookup sweep/", "runs table -p be", "runs tensorboard a,"]
    program = f"source {path}\n" + "\n".join(f"complete -C{line!r}; echo '<end>'" for line in lines)
    done = subprocess.run([fish, "--no-config", "-c", program], capture_output=True, text=True, env=shell_env, timeout=120)
    assert done.returncode == 0, done.stderr
    blocks = [sorted(line.split("\t")[0] for line in block.split("\n") if line) for block in done.stdout.split("<end>\n")[:-1]]
    assert blocks == [["delete", "describe"], ["--yes"], ["alpha", "alpine"], ["sweep/lr-0.1", "sweep/lr-0.5"], ["beta"], ["a,b"]]


class Zsh:
    """An interactive zsh on a pseudo-terminal, with the completion script in its fpath."""

    def __init__(self, zsh: str, fpath: Path, env: Dict[str, str], cwd: Path) -> None:
        master, slave = pty.openpty()
        self.master = master
        env = dict(env, TERM="xterm", HOME=str(fpath), PS1="> ")
        self.proc = subprocess.Popen([zsh, "-f", "-i"], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True)
        os.close(slave)
        self.type(f"fpath=({fpath} $fpath); autoload -U compinit; compinit -u -D; setopt nobeep\n")
        self.read()

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def read(self, quiet: float = 1.0, limit: float = 20.0) -> str:
        """Output until none has come for ``quiet`` seconds, without terminal escapes."""
        out, last, start = b"", time.monotonic(), time.monotonic()
        while time.monotonic() - last < quiet and time.monotonic() - start < limit:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    break
                out, last = out + chunk, time.monotonic()
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|[\x07\x08\r]", "", out.decode(errors="replace"))

    def complete(self, line: str) -> str:
        self.type("\x15" + line + "\t")  # Ctrl-U clears what the last completion left
        return self.read()

    def close(self) -> None:
        self.type("\x15exit\n")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.master)


def test_zsh_completes_subcommands_flags_and_names(repo, tmp_path, shell_env):
    zsh_path = need("zsh")
    write_db(repo, NAMES)
    fresh(repo)
    fpath = tmp_path / "zfunc"
    fpath.mkdir()
    shutil.copy(script("zsh", tmp_path), fpath / "_runs")
    zsh = Zsh(zsh_path, fpath, shell_env, repo)
    try:
        assert "runs lookup beta" in zsh.complete("runs lookup be")  # one match: completed in the line
        assert "runs delete alp" in zsh.complete("runs delete al")  # two: their common part, then a list
        zsh.type("\t")
        listed = zsh.read()
        assert "alpha" in listed and "alpine" in listed and "beta" not in listed
        assert "runs kill sweep/lr-0." in zsh.complete("runs kill sw")  # their common part
        listed = zsh.complete("runs de")
        assert "delete" in listed and "describe" in listed
        assert "runs delete --yes" in zsh.complete("runs delete --ye")
        assert "runs table --pattern a,b" in zsh.complete("runs table --pattern a,")
    finally:
        zsh.close()


# The fast path ---------------------------------------------------------------------------

FAST = (
    "import sys\n"
    "sys.argv = ['runs', '__complete', 'names'] + sys.argv[1:]\n"
    "import runs_manager.__main__ as entry\n"
    "try:\n    entry.console()\nexcept SystemExit as e:\n    code = e.code\n"
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('yaml', 'git', 'libtmux', 'tabulate', 'shtab'))\n"
    "print('exit', code, 'imported', heavy, 'main' if 'runs_manager.main' in sys.modules else '', file=sys.stderr)\n"
)


def fast(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FAST, *argv], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)


def test_the_fast_path_imports_none_of_the_dependencies(repo):
    write_db(repo, NAMES + ["bad name", "../up"])
    fresh(repo)
    done = fast("al", "runs", "delete", "al", cwd=repo)
    assert done.stdout == "alpha\nalpine\n"
    assert done.stderr == "exit 0 imported [] \n"
    done = fast("", cwd=repo)
    assert done.stdout.split() == sorted(n for n in NAMES)  # invalid names (not shell words) are left out
    (repo / ".runsrc").write_text("runs-dir: .runs/\ncolumn-width: 12\nextra-flags:\n  - [--x, y]\n")
    assert fast("b", cwd=repo).stderr == "exit 0 imported [] \n"


def test_the_fast_path_falls_back_when_it_cannot_tell(repo):
    write_db(repo, ["exp"])
    done = fast("e", cwd=repo)  # a new index, within the window in which its content is re-checked
    assert done.stdout == "exp\n" and done.stderr.startswith("exit 0 imported ['yaml'")
    fresh(repo)
    (repo / ".runsrc").write_text('runs-dir: "\\x2eruns"\n')  # an escape: PyYAML reads it
    done = fast("e", cwd=repo)
    assert done.stdout == "exp\n" and "'yaml'" in done.stderr


@pytest.mark.parametrize("text", [
    "", "# only a comment\n", "runs-dir: a\n", "runs_dir: a/b  # note\n", "runs-dir: 'a b'\n", 'runs-dir: "a"\n',
    "runs-dir:\n", "runs-dir: ~\n", "runs-dir: null\n", "runs-dir: None\n", "runs-dir: ~/x\n", "db-filename: d.yml\ncolumn-width: 3\n",
    "tb-dir-flag: --logdir\nruns-dir: r\n", "extra-flags:\n  - [--a, b]\nruns-dir: r\n", "runs-dir: a#b\n",
    "runs-dir: 'it''s'\n", 'runs-dir: "a\\tb"\n', "runs-dir: [a]\n", "runs-dir: {a: b}\n", "runs-dir:\n  a\n",
    "{runs-dir: a}\n", "---\nruns-dir: a\n", "runs-dir: a: b\n", "runs-dir: &x a\n", "runs-dir: |\n  a\n", "runs-dir: a\n...\n",
])
def test_the_fast_runsrc_reader_agrees_with_settings_or_steps_aside(tmp_path, text):
    from runs_manager import complete
    from runs_manager.settings import Settings

    path = tmp_path / ".runsrc"
    path.write_text(text)
    try:
        expected = Settings.load({}, runsrc=str(path))
    except Exception:
        expected = None
    try:
        found = complete.read_runsrc(str(path))
    except complete._Unsure:
        return  # the slow path decides
    assert expected is not None, "the fast reader accepted what Settings rejects"
    assert os.path.expanduser(found.get("runs-dir") or ".runs/") == expected.runs_dir
    assert os.path.expanduser(found.get("db-filename") or ".runs.yml") == expected.db_filename


def test_completion_never_prints_a_traceback(repo, tmp_path):
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text("exp: [unclosed\n")
    done = fast("", cwd=repo)
    assert done.stdout == "" and "Traceback" not in done.stderr
    (repo / ".runsrc").write_text("runs-dir: [\n")
    done = fast("", cwd=repo)
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert run_process("__complete", "bogus").code == 2


def test_unknown_shell_is_a_usage_error(repo):
    result = run_process("completion", "tcsh")
    assert result.code == 2 and result.out == "" and result.err.startswith("runs: error: ") and result.err.count("\n") == 1


def test_the_fast_completion_path_keeps_the_rules_it_copies() -> None:
    """complete.py imports nothing of runs (a Tab must answer at once), so it copies three
    rules: they must be the ones the package uses."""
    from runs_manager import complete, names
    from runs_manager.store import database, index

    assert complete.SCHEMA == index.SCHEMA and complete.RACY_NS == database.RACY_NS
    part = names._PART.pattern
    assert complete._NAME.pattern == f"{part}(/{part})*"
    for name in ("a", "g/x=1,y=2", "a@b+c", "run.1", "a b", "x/", "é"):
        if names.is_valid(name):
            assert complete._NAME.fullmatch(name), name


class Bash:
    """An interactive bash on a pseudo-terminal with runs' completion script sourced: keys
    typed go through readline, as a user's Tab does."""

    def __init__(self, tmp_path: Path, env: Dict[str, str], cwd: Path) -> None:
        path = script("bash", tmp_path)
        self.master, slave = pty.openpty()
        env = dict(env, PS1="$ ", TERM="dumb", HOME=str(tmp_path), INPUTRC="/dev/null")
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile", "-i"], stdin=slave, stdout=slave, stderr=slave,
                                     env=env, cwd=cwd, start_new_session=True)
        os.close(slave)
        self.seen = b""
        self.typed(f"source {path}; echo sourced\n", b"sourced")

    def typed(self, text: str, wait_for: bytes, timeout: float = 30.0) -> None:
        """Type ``text``; wait until ``wait_for`` has been shown."""
        os.write(self.master, text.encode())
        deadline = time.monotonic() + timeout
        while wait_for not in self.seen and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.2)[0]:
                self.seen += os.read(self.master, 4096).replace(b"\x07", b"")  # the bell of an ambiguous completion
        assert wait_for in self.seen, self.seen.decode(errors="replace")

    def close(self) -> None:
        os.close(self.master)
        self.proc.kill()
        self.proc.wait()


def test_bash_completes_names_with_equals_signs_in_a_real_terminal(repo, tmp_path, shell_env):
    """Through readline, as a user presses Tab: bash splits 'sw/lr=0.' at '=' (COMP_WORDBREAKS)."""
    write_db(repo, {"sw/lr=0.1,seed=1": {"command": "x"}, "sw/lr=0.1,seed=2": {"command": "x"}, "other": {"command": "x"}})
    fresh(repo)
    bash = Bash(tmp_path, shell_env, repo)
    try:
        bash.typed("runs logs sw/lr=0.\t", b"sw/lr=0.1,seed=")  # the common part, after the '='
        bash.typed("1\x05 # done\n", b"# done")
        assert b"sw/lr=0.1,seed=1 # done" in bash.seen, bash.seen.decode(errors="replace")
    finally:
        bash.close()


# --metrics: tags from the metrics cache ----------------------------------------------------

ODD_TAGS = ["loss", "val/loss", "a,b", " x ", "", 'q"t', "acc:max", "n:m"]


def test_metric_values_finish_a_word_in_the_quoting_metrics_reads():
    from runs_manager import complete, metrics

    assert complete.AGGREGATES == metrics.AGGREGATES
    every = complete.metric_values(ODD_TAGS, "")
    assert every == sorted(['""', '" x "', '"a,b"', '"acc:max"', "loss", "n:m", 'q"t', "val/loss"])
    for value in every:
        (spec,) = metrics.parse_specs([value])
        assert (spec.aggregate, _spelled_back(value)) == ("last", spec.tag)
    assert complete.metric_values(ODD_TAGS, "lo") == ["loss"]
    assert complete.metric_values(ODD_TAGS, "loss,v") == ["loss,val/loss"]
    assert complete.metric_values(ODD_TAGS, 'loss,"a') == ['loss,"a,b"', 'loss,"acc:max"']
    assert complete.metric_values(ODD_TAGS, '"a,b",') == ['"a,b",' + v for v in every]
    assert complete.metric_values(ODD_TAGS, "loss:m") == ["loss:max", "loss:mean", "loss:min"]
    assert complete.metric_values(ODD_TAGS, '"a,b":c') == ['"a,b":count']
    assert complete.metric_values(ODD_TAGS, "nothing") == []


def _spelled_back(value: str) -> str:
    return value[1:-1].replace('""', '"') if value.startswith('"') else value


def complete_metrics(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runs_manager", "__complete", "metrics", *argv], capture_output=True,
                          text=True, cwd=cwd, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)


def write_raw_scalar(logdir: Path, tag: str, value: float) -> None:
    """A tag as it is (tensorboardX would make 'x,y' 'x_y'), through TensorBoard's own writer."""
    from tests.commands.test_metrics import Writer

    writer = Writer(logdir)
    writer.add(tag, 0, value)
    writer.close()


def metrics_repo(repo: Path) -> None:
    """Two runs with events: a subdirectory's tag, a top-level one that clashes with it, a tag with a comma."""
    from tests.commands.test_metrics import tb, write_scalars

    write_db(repo, ["one", "two"])
    (tb(repo, "one") / "train").mkdir()
    write_scalars(tb(repo, "one") / "train", [("loss", 0, 1.0)])
    write_scalars(tb(repo, "one"), [("train/loss", 0, 2.0)])
    write_raw_scalar(tb(repo, "one"), "x,y", 0.5)
    write_scalars(tb(repo, "two"), [("acc", 0, 0.25)])
    assert run_process("table", "--metrics", "acc").code == 0  # reads every run's files into the cache


def test_metric_tags_come_from_the_cache_named_as_runs_names_them(repo):
    metrics_repo(repo)
    done = complete_metrics("zsh", "", "runs", "table", "-m", "", cwd=repo)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == ['"x,y"', "./train/loss", "acc", "train/loss"]
    bash = complete_metrics("bash", "", "runs", "table", "-m", "", cwd=repo).stdout.splitlines()
    assert bash == ["'\"x,y\"'", "./train/loss", "acc", "train/loss"]  # shell words: bash inserts them as they are
    assert complete_metrics("bash", "'\"x", cwd=repo).stdout == "'\"x,y\"'\n"
    assert complete_metrics("bash", "", "--runs-dir", "elsewhere", cwd=repo).stdout == ""


def test_bash_offers_a_tag_quoted_and_the_table_shows_it_in_a_real_terminal(repo, tmp_path, shell_env):
    need("bash")
    from tests.commands.test_metrics import tb

    write_db(repo, ["one"])
    write_raw_scalar(tb(repo, "one"), "x,y", 0.5)
    assert run_process("table", "--metrics", "x").code == 0
    bash = Bash(tmp_path, shell_env, repo)
    try:
        bash.typed("runs table -c name -f csv -m \t", b"'\"x,y\"'")
        bash.typed("\n", b"one,0.5")  # run as completed: the tag's column, with the value
        assert b'name,"""x,y"""\r\none,0.5' in bash.seen, bash.seen.decode(errors="replace")  # headed by the spec "x,y"
    finally:
        bash.close()


def test_fish_and_zsh_offer_the_tags_too(repo, tmp_path, shell_env):
    fish = need("fish")
    metrics_repo(repo)
    program = f"source {script('fish', tmp_path)}\n" + "\n".join(
        f"complete -C{line!r}; echo '<end>'" for line in ["runs table -m tr", "runs table --metrics acc:m"])
    done = subprocess.run([fish, "--no-config", "-c", program], capture_output=True, text=True, env=shell_env, timeout=120)
    assert done.returncode == 0, done.stderr
    blocks = [sorted(line.split("\t")[0] for line in block.split("\n") if line) for block in done.stdout.split("<end>\n")[:-1]]
    assert blocks == [["train/loss"], ["acc:max", "acc:mean", "acc:min"]]
    fpath = tmp_path / "zfunc"
    fpath.mkdir()
    shutil.copy(script("zsh", tmp_path), fpath / "_runs")
    zsh = Zsh(need("zsh"), fpath, shell_env, repo)
    try:
        assert "runs table -m train/loss" in zsh.complete("runs table -m tr")
        assert "runs table -m acc:max" in zsh.complete("runs table -m acc:ma")
    finally:
        zsh.close()
