"""The queue without a daemon: --max-parallel and --gpus, each ending run's supervisor
starting the next queued runs, GPUs never shared, and queued runs without a snapshot of
their code (--no-snapshot) that wait for a tree (tests/test_snapshots.py: those with one)."""
from __future__ import annotations

import datetime
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml

from tests.conftest import NO_FLAGS, Result, git, status_of, wait_for, wait_status

# Records what the program saw (argv, GPU) and when it ran, beside its checkpoint path.
PROBE = """\
import json, os, sys, time
start = time.time()
time.sleep(float(sys.argv[1]))
with open(os.environ["RUNS_SAVE_PATH"] + ".json", "w") as f:
    json.dump({"argv": sys.argv[1:], "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}, f)
"""


def committed_program(repo: Path, filename: str, text: str) -> str:
    """A Python program committed into the repository (runs refuse a dirty tree); the
    command line that runs it."""
    (repo / filename).write_text(text)
    git("add", filename, cwd=repo)
    git("commit", "-qm", filename, cwd=repo)
    return f"{shlex.quote(sys.executable)} {filename}"


@pytest.fixture
def probe(repo: Path) -> str:
    return committed_program(repo, "probe.py", PROBE)


def entries(repo: Path) -> Dict[str, Any]:
    return yaml.safe_load((repo / ".runs/.runs.yml").read_text()) or {}


def seen(repo: Path, name: str) -> Dict[str, Any]:
    return json.loads((repo / ".runs/checkpoints" / f"{name}.json").read_text())


def all_ended(repo: Path, names: List[str]) -> bool:
    db = entries(repo)
    return all("ended" in db.get(name, {}) for name in names)


def overlapping(runs: List[Dict[str, Any]]) -> int:
    """The most runs that ran at the same moment."""
    events = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs], key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, change in events:
        now += change
        most = max(most, now)
    return most


def lose(repo: Path, name: str) -> None:
    """Every process of a running run dies without a word, as in a reboot: no supervisor
    records its end or starts the next queued run."""
    from runs_manager import processes

    holder = processes.lock_holder(str(repo / ".runs/logs" / f"{name}.log"))
    assert holder is not None
    assert wait_for(lambda: processes.program_group(holder)[0] == "running")
    os.killpg(processes.program_group(holder)[1], signal.SIGKILL)
    os.killpg(os.getpgid(holder), signal.SIGKILL)
    assert wait_for(lambda: status_of(name) == "lost", timeout=10)


def test_max_parallel_runs_at_most_n_at_once_and_all_of_them(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    result = runs("new", "mp", f"{probe} 0.{{i}}", "--grid", "i=5,6,7,8,9", "--max-parallel", "2", *NO_FLAGS)
    assert result.code == 0, result.err
    assert "5 runs" in result.out and "2 started, 3 queued" in result.out
    names = [f"mp/i-{i}" for i in range(5, 10)]
    db = entries(repo)
    assert [db[name].get("queued") for name in names] == [None, None, True, True, True]
    assert status_of("mp/i-9") == "queued"
    assert not (repo / ".runs/tensorboard/mp/i-9").exists() and not (repo / ".runs/logs/mp/i-9.log").exists()
    assert wait_for(lambda: all_ended(repo, names), timeout=60)
    records = [seen(repo, name) for name in names]
    assert [r["argv"] for r in records] == [[f"0.{i}"] for i in range(5, 10)]
    assert overlapping(records) <= 2
    db = entries(repo)
    assert all(db[name]["exit_code"] == 0 and "queued" not in db[name] for name in names)
    assert all("started" in db[name] for name in names)
    # The third started when one of the first two ended (no daemon: that run's supervisor started it).
    first_end = min(datetime.datetime.fromisoformat(db[name]["ended"]).timestamp() for name in names[:2])
    assert records[2]["start"] >= first_end - 0.05  # (the program starts a moment after the supervisor records "started")
    log = (repo / ".runs/logs/mp/i-5.log").read_text() + (repo / ".runs/logs/mp/i-6.log").read_text()
    assert "[runs] started queued run 'mp/i-7'" in log


def test_gpus_give_each_run_one_gpu_and_never_two_runs_one(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    result = runs("new", "g", f"{probe} {{t}}", "--grid", "t=0.6,0.3,0.5,0.2,0.4,0.1", "--gpus", "0,1", *NO_FLAGS)
    assert result.code == 0, result.err
    assert "on GPU 0" in result.out and "on GPU 1" in result.out and "4 queued" in result.out
    names = [f"g/t-{t}" for t in ("0.6", "0.3", "0.5", "0.2", "0.4", "0.1")]
    assert wait_for(lambda: all_ended(repo, names), timeout=60)
    db = entries(repo)
    records = {name: seen(repo, name) for name in names}
    for name in names:
        assert records[name]["gpu"] == db[name]["cuda_visible_devices"] in ("0", "1")
    for gpu in ("0", "1"):
        assert overlapping([r for r in records.values() if r["gpu"] == gpu]) == 1, f"two runs shared GPU {gpu}"


def test_gpus_are_shared_by_every_queue_of_the_host(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    assert runs("new", "a", f"{probe} 1.5", "--gpus", "0", *NO_FLAGS).code == 0
    second = runs("new", "b", f"{probe} 0.1", "--gpus", "0,1", *NO_FLAGS)
    third = runs("new", "c", f"{probe} 0.1", "--gpus", "0", *NO_FLAGS)
    assert "on GPU 1" in second.out  # GPU 0 is a's
    assert "queued until a slot or GPU is free" in third.out
    assert entries(repo)["c"]["queued"] is True
    assert wait_for(lambda: all_ended(repo, ["a", "b", "c"]), timeout=30)
    assert seen(repo, "c")["start"] >= seen(repo, "a")["end"] - 0.01  # it waited for a's GPU, started by a's end
    assert entries(repo)["c"]["cuda_visible_devices"] == "0"


def test_a_finishing_run_starts_the_next_within_two_seconds(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    assert runs("new", "quick", f"{probe} {{t}}", "--grid", "t=0.2,0", "--max-parallel", "1", *NO_FLAGS).code == 0
    assert wait_for(lambda: all_ended(repo, ["quick/t-0.2", "quick/t-0"]), timeout=20)
    assert seen(repo, "quick/t-0")["start"] - seen(repo, "quick/t-0.2")["end"] < 2.0


def test_a_queued_run_waits_while_the_tree_is_elsewhere_and_resume_starts_it(
    runs: Callable[..., Result], repo: Path, probe: str
) -> None:
    # Without a snapshot (--no-snapshot) a queued run starts from the work tree as it is then.
    assert runs("new", "w", f"{probe} {{t}}", "--grid", "t=1,0", "--max-parallel", "1", "--no-snapshot", *NO_FLAGS).code == 0
    recorded = entries(repo)["w/t-0"]["commit"]
    (repo / "other.txt").write_text("x")
    git("add", "other.txt", cwd=repo)
    git("commit", "-qm", "moved on", cwd=repo)
    wait_status("w/t-1", "finished", timeout=20)
    time.sleep(0.5)
    assert status_of("w/t-0") == "queued"
    log = (repo / ".runs/logs/w/t-1.log").read_text()
    assert f"not at {recorded[:12]}" in log and "runs resume" in log

    refused = runs("resume")
    assert refused.code == 1 and f"not at {recorded[:12]}" in refused.err and "\n" not in refused.err.rstrip("\n")
    assert status_of("w/t-0") == "queued"

    git("checkout", "-q", recorded, cwd=repo)
    started = runs("resume")
    assert started.code == 0, started.err
    assert "Started queued run 'w/t-0'." in started.out
    wait_status("w/t-0", "finished", timeout=20)


def test_a_dirty_tree_holds_the_queue_of_a_clean_sweep(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    assert runs("new", "d", f"{probe} {{t}}", "--grid", "t=0.5,0", "--max-parallel", "1", "--no-snapshot", *NO_FLAGS).code == 0
    (repo / "probe.py").write_text(PROBE + "# edited\n")
    wait_status("d/t-0.5", "finished", timeout=20)
    time.sleep(0.5)
    assert status_of("d/t-0") == "queued"
    assert "uncommitted changes" in runs("resume").err
    git("checkout", "probe.py", cwd=repo)
    assert runs("resume").code == 0
    wait_status("d/t-0", "finished", timeout=20)


def test_an_allow_dirty_sweep_starts_queued_runs_from_the_same_changes(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    (repo / "probe.py").write_text(PROBE + "print('patched')\n")
    result = runs("new", "p", f"{probe} {{t}}", "--grid", "t=0.3,0", "--max-parallel", "1", "--allow-dirty", *NO_FLAGS)
    assert result.code == 0, result.err
    db = entries(repo)
    assert db["p/t-0"]["patch_sha256"] == db["p/t-0.3"]["patch_sha256"]
    assert Path(db["p/t-0"]["patch"]).is_file()  # stored when it was queued: reproduce works before it starts
    wait_status("p/t-0", "finished", timeout=20)
    assert "patched" in (repo / ".runs/logs/p/t-0.log").read_text()


def test_lost_predecessors_leave_the_queue_to_resume(runs: Callable[..., Result], repo: Path, probe: str, tmux: Any) -> None:
    assert runs("new", "l", f"{probe} {{t}}", "--grid", "t=600,0", "--max-parallel", "1", *NO_FLAGS).code == 0
    lose(repo, "l/t-600")
    assert wait_for(lambda: status_of("l/t-600") == "lost", timeout=10)
    assert status_of("l/t-0") == "queued"
    waiting = runs("resume", "nothing-matches")
    assert waiting.code == 1 and "no runs are queued among the runs matching" in waiting.err
    result = runs("resume", "l/.*")
    assert result.code == 0, result.err
    assert "Started queued run 'l/t-0'." in result.out
    wait_status("l/t-0", "finished", timeout=20)


def test_resume_says_what_the_queue_waits_for(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    assert runs("new", "r", f"{probe} {{t}}", "--grid", "t=600,0", "--max-parallel", "1", *NO_FLAGS).code == 0
    result = runs("resume")
    assert result.code == 0
    assert "1 queued run waits for running runs to end" in result.out
    assert status_of("r/t-0") == "queued"
    assert runs("kill", "r/.*", "-y").code == 0
    assert status_of("r/t-0") == "killed" and status_of("r/t-600") == "killed"
    assert runs("resume").code == 1  # nothing is queued any more: killing the sweep emptied its queue


# A queued run's own surroundings (issue 31) ---------------------------------------------

ENV_PROBE = """\
import json, os, sys, time
time.sleep(float(sys.argv[1]))
with open(os.environ["RUNS_SAVE_PATH"] + ".env.json", "w") as f:
    json.dump({k: os.environ.get(k) for k in ("FOO", "CUDA_VISIBLE_DEVICES", "RUNS_NAME")}, f)
"""


@pytest.fixture
def env_probe(repo: Path) -> str:
    return committed_program(repo, "env_probe.py", ENV_PROBE)


def saw(repo: Path, name: str) -> Dict[str, Any]:
    return json.loads((repo / ".runs/checkpoints" / f"{name}.env.json").read_text())


def test_each_sweep_runs_with_the_environment_it_was_started_from(
    runs: Callable[..., Result], repo: Path, env_probe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOO", "a")
    assert runs("new", "A", f"{env_probe} {{t}}", "--grid", "t=0.6,0.1", "--gpus", "0", *NO_FLAGS).code == 0
    stored = repo / ".runs/env/A/t-0.1"
    assert stored.is_file() and stored.stat().st_mode & 0o777 == 0o600  # it may hold credentials
    monkeypatch.setenv("FOO", "b")
    assert runs("new", "B", f"{env_probe} {{t}}", "--grid", "t=0.1,0.2", "--gpus", "0", *NO_FLAGS).code == 0
    names = ["A/t-0.6", "A/t-0.1", "B/t-0.1", "B/t-0.2"]
    assert wait_for(lambda: all_ended(repo, names), timeout=60)
    assert [saw(repo, name)["FOO"] for name in names] == ["a", "a", "b", "b"]
    assert not (repo / ".runs/env").exists() or not any((repo / ".runs/env").rglob("*t=*")), "started runs keep no environment"


def test_runs_resume_gives_queued_runs_their_own_environment_and_gpu_only(
    runs: Callable[..., Result], repo: Path, env_probe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_process

    argv = ("new", "q", f"{env_probe} {{t}}", "--grid", "t=0.1,0.2", "--max-parallel", "1", *NO_FLAGS)
    crashed = run_process(*argv, env={"RUNS_CRASH_AT": "sweep:recorded", "FOO": "mine"}, timeout=30)
    assert crashed.code == -signal.SIGKILL, crashed
    # Resumed from a process that looks like another run's (a supervisor's environment).
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setenv("RUNS_NAME", "someone-else")
    monkeypatch.setenv("FOO", "not-mine")
    assert runs("resume").code == 0
    assert wait_for(lambda: all_ended(repo, ["q/t-0.1", "q/t-0.2"]), timeout=60)
    for name in ("q/t-0.1", "q/t-0.2"):
        assert saw(repo, name) == {"FOO": "mine", "CUDA_VISIBLE_DEVICES": None, "RUNS_NAME": name}


def test_a_gpu_index_is_a_number(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    assert runs("new", "first", f"{probe} 3", "--gpus", "0", *NO_FLAGS).code == 0
    result = runs("new", "second", f"{probe} 0.1", "--gpus", "00", *NO_FLAGS)
    assert result.code == 0, result.err
    assert status_of("second") == "queued", "GPU 00 is GPU 0, which 'first' holds"


def test_a_sweeps_finished_runs_leave_no_shells(runs: Callable[..., Result], repo: Path, tmux: Any) -> None:
    """200 finished runs held 200 shells (131 MB) in their sessions: a sweep's close now,
    its output being in the logs; a single run keeps its session, as before."""
    names = [f"many/i-{i}" for i in range(200)]
    assert runs("new", "many", "true {i}", "--grid", f"i={','.join(str(i) for i in range(200))}", *NO_FLAGS).code == 0
    assert runs("new", "single", "true", *NO_FLAGS).code == 0
    assert wait_for(lambda: all_ended(repo, names + ["single"]), timeout=120)
    assert wait_for(lambda: not [s for s in tmux.sessions() if s.startswith("many/")], timeout=30), "sweep sessions stayed open"
    assert "single" in tmux.sessions()


def test_keep_sessions_always_keeps_a_sweeps_sessions(runs: Callable[..., Result], repo: Path, tmux: Any, runsrc: Any) -> None:
    runsrc({"keep-sessions": "always"})
    (repo / ".gitignore").write_text(".runsrc\n")
    git("add", ".gitignore", cwd=repo)
    git("commit", "-qm", "ignore", cwd=repo)
    assert runs("new", "kept", "true {i}", "--grid", "i=1,2,3", "--max-parallel", "1", *NO_FLAGS).code == 0
    names = ["kept/i-1", "kept/i-2", "kept/i-3"]
    assert wait_for(lambda: all_ended(repo, names), timeout=60)
    time.sleep(0.5)
    assert set(names) <= set(tmux.sessions())  # the third was started by a supervisor, as runs new was told


def test_keep_sessions_never_closes_a_single_runs_session(runs: Callable[..., Result], repo: Path, tmux: Any) -> None:
    assert runs("new", "alone", "true", "--keep-sessions", "never", *NO_FLAGS).code == 0
    assert wait_for(lambda: all_ended(repo, ["alone"]), timeout=30)
    assert wait_for(lambda: "alone" not in tmux.sessions(), timeout=10)


def test_a_gpu_stays_busy_while_an_orphaned_program_holds_it(runs: Callable[..., Result], repo: Path, probe: str) -> None:
    """`runs resume` after a supervisor died while its program lives started the next run on
    the same GPU: the program still holds it."""
    from runs_manager import processes
    from tests.test_supervisor import WRITER

    (repo.parent / "w.py").write_text(WRITER)
    assert runs("new", "holder", f"{shlex.quote(sys.executable)} {repo.parent / 'w.py'}", "--gpus", "0", *NO_FLAGS).code == 0
    wait_status("holder", "running")
    assert wait_for(lambda: b"ready" in (repo / ".runs/logs/holder.log").read_bytes())
    supervisor = processes.lock_holder(str(repo / ".runs/logs/holder.log"))
    assert supervisor is not None and wait_for(lambda: processes.program_group(supervisor)[0] == "running")
    os.kill(supervisor, signal.SIGKILL)
    wait_status("holder", "orphaned")
    assert runs("new", "next", f"{probe} 0.1", "--gpus", "0", *NO_FLAGS).code == 0
    assert runs("resume").code in (0, 1)
    assert status_of("next") == "queued", "GPU 0 was handed out while the orphaned program holds it"
    assert runs("kill", "holder", "-y", "--grace", "1").code == 0
    assert runs("resume").code == 0
    assert wait_for(lambda: all_ended(repo, ["next"]), timeout=30)
