"""Fixtures: a real git repository, a real tmux server of the test's own, a .runsrc factory.

Nothing here touches the user's home directory or tmux server: HOME points into the
test's temporary directory and tmux's socket lives in a directory made for the test.
"""
from __future__ import annotations

import getpass
import os
import pty
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

import pytest
import yaml

from runs_manager.main import main

ROOT = Path(__file__).resolve().parent.parent


class Result(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep every test off the real home directory and the user's tmux server."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # never the checkout itself
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    # A short directory: tmux's socket path must fit in 108 bytes.
    tmux_dir = tempfile.mkdtemp(prefix="runs-tmux-", dir="/tmp")
    monkeypatch.setenv("TMUX_TMPDIR", tmux_dir)
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)
    monkeypatch.delenv("RUNS_SOURCE_DIR", raising=False)  # runs new sets it in its process: not for the next test
    monkeypatch.setenv("SHELL", "/bin/sh")
    tmux_bin = shutil.which("tmux") or "tmux"
    real_home = os.path.expanduser("~")
    assert real_home == str(home)
    yield
    subprocess.run([tmux_bin, "kill-server"], capture_output=True, env=dict(os.environ, TMUX_TMPDIR=tmux_dir))
    shutil.rmtree(tmux_dir, ignore_errors=True)


def git(*args: str, cwd: Optional[Path] = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def committed_repo(path: Path, files: Dict[str, str]) -> Path:
    """A new git repository at ``path`` whose one commit holds ``files`` (name: text)."""
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    for name, text in files.items():
        (path / name).write_text(text)
    git("add", ".", cwd=path)
    git("commit", "-qm", "initial", cwd=path)
    return path


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit, as the current directory."""
    path = committed_repo(tmp_path / "repo", {"main.py": "import sys\nprint(sys.argv)\n"})
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).strip()


class Tmux:
    """The test's own tmux server."""

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", *args], capture_output=True, text=True)

    def sessions(self) -> List[str]:
        result = self.run("list-sessions", "-F", "#{session_name}")
        return result.stdout.split() if result.returncode == 0 else []

    def new(self, name: str, command: str = "sleep 600; true") -> None:
        subprocess.run(["tmux", "new-session", "-d", "-s", name, command], check=True)


@pytest.fixture
def tmux() -> Tmux:
    return Tmux()


@pytest.fixture
def runsrc(repo: Path) -> Callable[[Any], Path]:
    """Write .runsrc in the current directory: a mapping (dumped as YAML) or raw text."""

    def write(content: Any) -> Path:
        path = repo / ".runsrc"
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        return path

    return write


@pytest.fixture
def runs(capsys: pytest.CaptureFixture) -> Callable[..., Result]:
    """Run `runs ARGS...` in this process; returns exit code, stdout and stderr."""

    def call(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call


def run_process(*argv: str, input: Optional[str] = None, timeout: float = 60, env: Optional[Dict[str, str]] = None, cwd: Any = None) -> Result:
    """Run `python -m runs_manager ARGS...` as a separate process."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    done = subprocess.run(
        [sys.executable, "-m", "runs_manager", *argv],
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,  # never the test runner's stdin: a question reads it
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=cwd,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def runs_process() -> Callable[..., Result]:
    return run_process


def in_shell(script: str, bin_dir: Path, cwd: Any = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``script`` in sh with the real `runs` (this checkout's code) first on PATH, as a
    user pastes printed commands; ``bin_dir`` is a new directory for its wrapper."""
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "runs"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} -m runs_manager "$@"\n')
    wrapper.chmod(0o755)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"))


def database(repo: Path, name: str = ".runs/.runs.yml") -> Dict[str, Any]:
    """The YAML database as a strict YAML parser reads it ({} when absent)."""
    path = repo / name
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


@pytest.fixture
def db(repo: Path) -> Callable[[], Dict[str, Any]]:
    return lambda: database(repo)


@pytest.fixture
def dbpath() -> Path:
    """The default database path of a project in the current directory (the test's own)."""
    path = Path.cwd() / ".runs" / ".runs.yml"
    path.parent.mkdir()
    return path


class PtyRun:
    """`python -m runs_manager ARGS` with a pseudo-terminal as stdin (stdout and stderr are pipes)."""

    def __init__(self, *argv: str) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runs_manager", *argv],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            start_new_session=True,
        )
        os.close(slave)
        self.out = b""
        self.err = b""

    def wait_for_output(self, text: str, timeout: float = 15.0) -> None:
        """Wait until ``text`` appears on stdout or stderr (the prompt goes to stderr)."""
        deadline = time.monotonic() + timeout
        streams = {self.proc.stdout.fileno(): "out", self.proc.stderr.fileno(): "err"}
        while text.encode() not in self.out + self.err:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select(list(streams), [], [], max(remaining, 0))
            if not ready:
                raise AssertionError(f"timed out waiting for {text!r}; so far: {self.out!r} {self.err!r}")
            for fd in ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError(f"output closed before {text!r}: {self.out!r} {self.err!r}")
                setattr(self, streams[fd], getattr(self, streams[fd]) + chunk)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 15.0):
        try:
            rest, err = self.proc.communicate(timeout=timeout)
        finally:
            os.close(self.master)
        return self.proc.returncode, (self.out + rest).decode(), (self.err + err).decode()


def error_line(result: Result) -> str:
    """The one-line `runs: error: ...` of a command that failed with status 1, no traceback."""
    assert result.code == 1, (result.code, result.out, result.err)
    assert result.err.startswith("runs: error: "), result.err
    assert result.err.count("\n") == 1 and result.err.endswith("\n"), result.err
    assert "Traceback" not in result.err
    return result.err


# Runs whose command takes no appended flags, so any shell command runs as typed.
NO_FLAGS = ("--tb-dir-flag", "None", "--save-path-flag", "None")


def start_run(runs: Callable[..., Result], name: str, command: str) -> None:
    """`runs new NAME COMMAND` (without the path flags), which must succeed."""
    result = runs("new", name, command, *NO_FLAGS)
    assert result.code == 0, result.err


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def status_of(name: str, runs_dir: str = ".runs/") -> str:
    """A run's derived status, as `runs lookup NAME status` prints it."""
    from runs_manager.runtime import status
    from runs_manager.runtime.runs import database
    from runs_manager.settings import Settings

    settings = Settings(runs_dir=runs_dir)
    entry = database(settings).read(lambda index: index.entry(name))
    return "missing" if entry is None else status.derive(settings, [(name, entry)])[name]


def wait_status(name: str, wanted: str, timeout: float = 20.0) -> None:
    """Wait until run ``name`` has status ``wanted``; fail with the status it has otherwise."""
    if not wait_for(lambda: status_of(name) == wanted, timeout):
        raise AssertionError(f"run {name!r} is {status_of(name)!r}, not {wanted!r}, after {timeout} s")


@pytest.fixture(scope="session")
def slurm_conf() -> str:
    """A real single-node Slurm cluster on localhost (scripts/slurm-cluster.sh), shared by
    the session's tests. Without Slurm the tests are skipped, except under CI=true, where
    a missing component is a failure."""
    done = subprocess.run(["sh", str(ROOT / "scripts" / "slurm-cluster.sh"), "start"], capture_output=True, text=True)
    if done.returncode != 0:
        message = f"no Slurm cluster: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def slurm(slurm_conf: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SLURM_CONF", slurm_conf)
    yield slurm_conf
    # The cluster's one node is shared: a job a failed test left running would hold it, and
    # every later test's jobs would wait behind it.
    subprocess.run(["scancel", f"--user={getpass.getuser()}"], env=dict(os.environ, SLURM_CONF=slurm_conf), capture_output=True)


@pytest.fixture
def small_runs_dir(repo: Path) -> Any:
    """The runs directory on a 2 MB tmpfs of its own, to fill for real; and a way to fill it."""
    runs_dir = repo / ".runs"
    runs_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(runs_dir)], capture_output=True, text=True)
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs for the full-disk tests: {mounted.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here (not root?): {mounted.stderr.strip()}")
    filler = runs_dir / "filler"

    def fill() -> None:
        with open(filler, "ab", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass

    try:
        yield fill, filler
    finally:
        subprocess.run(["umount", "-l", str(runs_dir)], capture_output=True)
