"""`runs tensorboard PATTERN [-- ARGS...]`: TensorBoard on the matching runs, each under its run name.

A stand-in `tensorboard` on PATH (a real program) records its arguments and the links of
the directory it is given; when TensorBoard itself is installed, it is run too and asked
over HTTP which runs it shows.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from tests.conftest import ROOT, Result

FAKE = """#!{python}
import json, os, signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))  # a real TensorBoard ends quietly on Ctrl-C, at any moment
args = sys.argv[1:]
view = args[args.index("--logdir") + 1] if "--logdir" in args else None
links = {{}}
for root, dirs, files in os.walk(view or "/nonexistent"):
    for entry in dirs + files:
        path = os.path.join(root, entry)
        if os.path.islink(path):
            links[os.path.relpath(path, view)] = os.readlink(path)
with open(os.environ["FAKE_RECORD"], "w") as f:
    json.dump({{"argv": args, "links": links, "view": view, "pid": os.getpid(), "program": sys.argv[0]}}, f)
print("Serving TensorBoard on localhost; to expose to the network, use a proxy or pass --bind_all", file=sys.stderr)
print("TensorBoard 9.9.9 at http://localhost:6123/ (Press CTRL+C to quit)", file=sys.stderr, flush=True)
print("its own stdout", flush=True)
if os.environ.get("FAKE_WAIT"):
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        sys.exit(0)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


def make_venv(venv: Path) -> Path:
    """A virtualenv (no pip) whose Python imports this checkout's runs and its dependencies,
    as an install into it would; its Python."""
    import site

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "runs-under-test.pth").write_text("\n".join([str(ROOT), *site.getsitepackages()]) + "\n")
    return python


@pytest.fixture(scope="module")
def fake_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the stand-in as its tensorboard: runs looks beside its own Python first."""
    python = make_venv(tmp_path_factory.mktemp("fake-venv") / "venv")
    program = python.parent / "tensorboard"
    program.write_text(FAKE.format(python=sys.executable))
    program.chmod(0o755)
    return python


@pytest.fixture
def fake(tmp_path: Path, fake_venv: Path) -> Dict[str, Any]:
    """The Python to run runs with (the stand-in beside it), its environment, and where the
    stand-in writes what it saw."""
    record = tmp_path / "record.json"
    return {"env": {"FAKE_RECORD": str(record)}, "record": record, "python": str(fake_venv),
            "program": str(fake_venv.parent / "tensorboard")}


def run_tb(fake: Dict[str, Any], *argv: str, env: Any = None) -> Result:
    """`runs ARGV` in a process of the virtualenv's Python, as a user's runs there."""
    done = subprocess.run([fake["python"], "-m", "runs_manager", *argv], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or fake["env"])))
    return Result(done.returncode, done.stdout, done.stderr)


def seen(fake: Dict[str, Any]) -> Dict[str, Any]:
    return json.loads(fake["record"].read_text())


def write_db(repo: Path, names: Any) -> None:
    (repo / ".runs").mkdir(exist_ok=True)
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump({name: {"command": "true"} for name in names}, sort_keys=False))
    for name in names:
        (repo / ".runs/tensorboard" / name).mkdir(parents=True, exist_ok=True)


def test_each_run_under_its_name_arguments_passed_and_the_url_printed(runs, repo, fake):
    for name in ("exp", "sweep/lr-0.1", "sweep/lr-0.5", "other"):
        assert runs("new", name, "true").code == 0
    result = run_tb(fake, "tensorboard", "exp|sweep/.*", "--", "--port", "6123", "--reload_interval=1", env=fake["env"])
    assert result.code == 0, result.err
    assert result.out == "its own stdout\nTensorBoard on 3 runs: http://localhost:6123/\n" or \
        result.out == "TensorBoard on 3 runs: http://localhost:6123/\nits own stdout\n"
    assert "TensorBoard 9.9.9 at http://localhost:6123/" in result.err  # its output is relayed
    record = seen(fake)
    view = record["view"]
    assert record["argv"] == ["--logdir", view, "--port", "6123", "--reload_interval=1"]
    assert record["links"] == {name: str(repo / ".runs/tensorboard" / name) for name in ("exp", "sweep/lr-0.1", "sweep/lr-0.5")}
    assert not os.path.exists(view)  # removed when TensorBoard ended
    assert (repo / ".runs/tensorboard/exp").is_dir()  # and nothing of the runs' went with it


def test_names_with_commas_and_colons(repo, fake):
    write_db(repo, ["a,b", "x:y", "sweep/p-1_q-2"])  # ':' only in hand-written entries; ',' in valid names
    result = run_tb(fake, "tensorboard", ".*", env=fake["env"])
    assert result.code == 0, result.err
    assert seen(fake)["links"] == {"a,b": str(repo / ".runs/tensorboard/a,b"), "sweep/p-1_q-2": str(repo / ".runs/tensorboard/sweep/p-1_q-2")}
    assert "'x:y' is not a valid run name; left out" in result.err


def test_a_run_and_a_group_of_the_same_name_never_link_into_a_run(repo, fake):
    write_db(repo, ["a", "a/b"])
    result = run_tb(fake, "tensorboard", ".*", env=fake["env"])
    assert result.code == 0, result.err
    assert seen(fake)["links"] == {"a": str(repo / ".runs/tensorboard/a")}
    assert os.listdir(repo / ".runs/tensorboard/a") == ["b"]  # only the run's own directory


def test_exit_status_of_tensorboard_is_returned(repo, fake):
    write_db(repo, ["exp"])
    assert run_tb(fake, "tensorboard", "exp", env={**fake["env"], "FAKE_EXIT": "3"}).code == 3


def test_ctrl_c_ends_tensorboard_and_removes_the_links(repo, fake):
    write_db(repo, ["exp"])
    env = dict(os.environ, PYTHONPATH=str(ROOT), FAKE_WAIT="1", **fake["env"])
    proc = subprocess.Popen([fake["python"], "-m", "runs_manager", "tensorboard", "exp"], env=env, cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert "http://localhost:6123/" in line or "its own stdout" in line
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole group
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err.decode() and proc.returncode == 130
    assert not os.path.exists(seen(fake)["view"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGQUIT])
def test_a_signal_to_runs_alone_ends_tensorboard_too(repo, fake, signum):
    """kill -INT of the runs process only (a process manager, a script): before, runs
    waited for a TensorBoard that never heard of it."""
    write_db(repo, ["exp"])
    env = dict(os.environ, PYTHONPATH=str(ROOT), FAKE_WAIT="1", **fake["env"])
    proc = subprocess.Popen([fake["python"], "-m", "runs_manager", "tensorboard", "exp"], env=env, cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == (130 if signum == signal.SIGINT else 128 + signum) and "Traceback" not in err.decode()
    assert not os.path.exists(seen(fake)["view"])
    assert not os.path.exists(f"/proc/{seen(fake)['pid']}")  # TensorBoard ended with it


def test_a_virtualenvs_runs_called_by_path_finds_the_tensorboard_beside_it(repo, tmp_path, fake):
    """/path/to/venv/bin/runs tensorboard, the virtualenv not activated: TensorBoard is the
    one the metrics extra installed beside runs, not looked for on PATH alone."""
    write_db(repo, ["exp"])
    venv_bin = Path(fake["python"]).parent
    (venv_bin / "runs").write_text(f"#!{fake['python']}\nfrom runs_manager.__main__ import console\nconsole()\n")
    (venv_bin / "runs").chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "FAKE_RECORD": fake["env"]["FAKE_RECORD"], "HOME": str(tmp_path)}
    done = subprocess.run([str(venv_bin / "runs"), "tensorboard", "exp"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "TensorBoard on 1 run: http://localhost:6123/" in done.stdout
    assert seen(fake)["program"] == fake["program"]


def test_without_one_beside_python_the_one_on_path_is_started(runs, repo, fake, tmp_path, monkeypatch):
    write_db(repo, ["exp"])
    monkeypatch.setenv("PATH", f"{Path(fake['program']).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_RECORD", fake["env"]["FAKE_RECORD"])
    monkeypatch.setattr(sys, "executable", str(tmp_path / "elsewhere" / "python"))  # nothing beside it
    assert runs("tensorboard", "exp").code == 0
    assert seen(fake)["program"] == fake["program"]


def test_missing_tensorboard_is_a_one_line_error_saying_how_to_install_it(runs, repo, tmp_path, monkeypatch):
    write_db(repo, ["exp"])
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))  # a Python with no TensorBoard beside it
    result = runs("tensorboard", "exp")
    assert result.code == 1 and result.out == ""
    assert result.err == (f"runs: error: TensorBoard is not installed: there is no 'tensorboard' program beside "
                          f"{empty / 'python'} or on PATH; install it with 'pip install tensorboard'\n")


@pytest.mark.parametrize("argv, message", [
    (("nothing",), "no runs match 'nothing'"),
    (("e",), "no runs match 'e'"),  # whole names only
    (("[",), "invalid regular expression"),
    (("exp", "--", "--logdir", "/tmp"), "do not pass --logdir"),
    (("exp", "--", "--logdir_spec=a:/tmp"), "do not pass --logdir_spec"),
    (("bare",), "none of the runs matching 'bare' has a TensorBoard directory"),
])
def test_refusals_are_one_line_errors(runs, repo, fake, monkeypatch, argv, message):
    write_db(repo, ["exp"])
    with open(repo / ".runs/.runs.yml", "a") as f:
        f.write("bare:\n  command: 'true'\n")
    monkeypatch.setenv("FAKE_RECORD", fake["env"]["FAKE_RECORD"])
    result = runs("tensorboard", *argv)
    assert result.code == 1 and result.out == ""
    assert result.err.splitlines()[-1].startswith("runs: error: ") and result.err.count("runs: error: ") == 1
    assert message in result.err.splitlines()[-1] and "Traceback" not in result.err
    assert not fake["record"].exists()  # tensorboard never started


def tensorboard_program() -> str:
    here = Path(sys.executable).parent / "tensorboard"
    return str(here) if here.exists() else (shutil.which("tensorboard") or "")


@pytest.mark.skipif(not tensorboard_program() and os.environ.get("CI") != "true",
                    reason="TensorBoard is not installed (pip install tensorboard; the test extra has it)")
def test_real_tensorboard_shows_each_run_under_its_name(repo, tmp_path):
    assert tensorboard_program(), "under CI the test extra must have installed TensorBoard"
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    names = ["exp", "a,b", "sweep/lr-0.1"]
    write_db(repo, names + ["left-out"])
    for name in names:
        writer = EventFileWriter(str(repo / ".runs/tensorboard" / name))
        value = summary_pb2.Summary.Value(tag="loss", simple_value=0.5)
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=1, summary=summary_pb2.Summary(value=[value])))
        writer.close()
    bin_dir = Path(tensorboard_program()).parent
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{bin_dir}:{os.environ['PATH']}")
    proc = subprocess.Popen([sys.executable, "-m", "runs_manager", "tensorboard", "exp|a,b|sweep/.*", "--", "--port", "0"],
                            env=env, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        url = re.search(r"TensorBoard on 3 runs: (http://\S+)", line)
        assert url, line
        deadline = time.monotonic() + 60
        shown: list = []
        while sorted(shown) != sorted(names) and time.monotonic() < deadline:
            time.sleep(0.5)
            with urllib.request.urlopen(url.group(1) + "data/runs", timeout=10) as response:
                shown = json.loads(response.read())
        assert sorted(shown) == sorted(names)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
