"""Many hosts, one runs directory (runtime/heartbeat.py): each "host" is a pair of sibling
namespaces of its own (hostname and process table, `unshare --uts --pid --mount-proc`) on
the same filesystem, with its own tmux server, so neither can see or signal the other's
processes; what one knows of the other's runs comes from the shared runs directory."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
import yaml

from tests.conftest import NO_FLAGS, ROOT, Result, wait_for

BEAT = "1"  # RUNS_HEARTBEAT: seconds between beats for these tests (stale after 3 s, a loaded machine included)


class Host:
    """A machine of its own: `runs` commands run in its namespaces, in the shared work tree."""

    def __init__(self, name: str, repo: Path, beat: str = BEAT) -> None:
        self.name, self.repo, self.beat = name, repo, beat
        self.tmux = tempfile.mkdtemp(prefix=f"runs-{name}-", dir="/tmp")
        self.unshare = subprocess.Popen(["unshare", "--uts", "--pid", "--fork", "--mount-proc", "sh", "-c",
                                         f"hostname {name} && exec sleep 3600"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: self._init() is not None, timeout=5), f"unshare did not start {name}"
        self.init = self._init()

    def _init(self) -> Any:
        try:
            children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def runs(self, *argv: str, timeout: float = 60) -> Result:
        # `cd` inside: a working directory given from outside would belong to the other
        # mount namespace, and renames between the two are cross-device.
        env = dict(os.environ, PYTHONPATH=str(ROOT), TMUX_TMPDIR=self.tmux, RUNS_HEARTBEAT=self.beat)
        done = subprocess.run(["nsenter", f"--target={self.init}", "--uts", "--pid", "--mount", "--", "sh", "-c",
                               'cd "$0" && exec "$@"', str(self.repo), sys.executable, "-m", "runs_manager", *argv],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        return Result(done.returncode, done.stdout, done.stderr)

    def status(self, name: str) -> str:
        out = self.runs("lookup", name, "status").out.strip()
        return out or "?"

    def processes(self) -> List[int]:
        """The pids (as this namespace sees them) of every process of this host."""
        ns = os.readlink(f"/proc/{self.init}/ns/pid")
        found = []
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    found.append(int(entry))
            except OSError:
                pass
        return found

    def crash(self) -> None:
        """The machine dies: every process of it at once, its runs' supervisors among them."""
        os.kill(self.init, signal.SIGKILL)
        self.unshare.wait(timeout=10)

    def close(self) -> None:
        if self.unshare.poll() is None:
            self.crash()
        shutil.rmtree(self.tmux, ignore_errors=True)


@pytest.fixture
def hosts(repo: Path) -> Iterator[Callable[..., Host]]:
    probe = subprocess.run(["unshare", "--uts", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"unshare is not permitted here: {probe.stderr.strip()}")
        pytest.skip(f"unshare is not permitted here: {probe.stderr.strip()}")
    made: List[Host] = []

    def make(name: str, beat: str = BEAT) -> Host:
        made.append(Host(name, repo, beat))
        return made[-1]

    yield make
    for host in made:
        host.close()


def entries(repo: Path) -> Any:
    return yaml.safe_load((repo / ".runs/.runs.yml").read_text()) or {}


def test_another_hosts_runs_are_running_finished_and_lost(hosts: Callable[[str], Host], repo: Path) -> None:
    a, b = hosts("hosta"), hosts("hostb")
    assert b.runs("new", "long", "sleep 60", *NO_FLAGS).code == 0
    assert b.runs("new", "quick", "true", *NO_FLAGS).code == 0
    assert entries(repo)["long"]["host"] == "hostb"
    assert wait_for(lambda: a.status("quick") == "finished", timeout=20)
    assert a.status("long") == "running"
    time.sleep(4 * float(BEAT))
    assert a.status("long") == "running", "a beating supervisor must stay running"
    assert (repo / ".runs/live/long").is_file() and not (repo / ".runs/live/quick").exists()
    listing = a.runs("list", "--status", "running").out.split()
    assert listing == ["long"]
    b.crash()
    assert wait_for(lambda: a.status("long") == "lost", timeout=5 * float(BEAT) + 5)


def test_runs_recorded_without_a_heartbeat_stay_unknown(hosts: Callable[[str], Host], repo: Path) -> None:
    a, b = hosts("hosta"), hosts("hostb")
    assert b.runs("new", "old", "sleep 30", *NO_FLAGS).code == 0
    assert wait_for(lambda: (repo / ".runs/live/old").is_file())
    b.crash()
    (repo / ".runs/live/old").unlink()  # as an older runs, which kept none, left it
    assert a.status("old") == "unknown"


def test_the_readers_clock_does_not_matter(hosts: Callable[[str], Host], repo: Path, runs: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    b = hosts("hostb")
    assert b.runs("new", "long", "sleep 60", *NO_FLAGS).code == 0
    monkeypatch.setenv("RUNS_HEARTBEAT", BEAT)
    assert runs("lookup", "long", "status").out.strip() == "running"  # beating from before it was recorded
    real = time.time
    for skew in (3600.0, -3600.0):  # this host's clock an hour ahead, then an hour behind
        monkeypatch.setattr(time, "time", lambda skew=skew: real() + skew)
        result = runs("lookup", "long", "status")
        assert result.out.strip() == "running", result
    monkeypatch.setattr(time, "time", real)
    b.crash()
    assert wait_for(lambda: runs("lookup", "long", "status").out.strip() == "lost", timeout=5 * float(BEAT) + 5)


def test_commands_from_two_hosts_at_once_lose_nothing(hosts: Callable[[str], Host], repo: Path) -> None:
    a, b = hosts("hosta"), hosts("hostb")
    names = [f"{host.name}-{i}" for host in (a, b) for i in range(25)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda name: (a if name.startswith("hosta") else b).runs("new", name, "true", *NO_FLAGS), names))
    assert all(result.code == 0 for result in results), [r.err for r in results if r.code]
    db = entries(repo)
    assert set(db) == set(names)
    assert all(db[name]["host"] == name.split("-")[0] for name in names)
    assert wait_for(lambda: all(a.status(name) == "finished" for name in names[::6]), timeout=30)


def test_kill_of_another_hosts_run_is_done_by_its_supervisor(hosts: Callable[[str], Host], repo: Path) -> None:
    a, b = hosts("hosta"), hosts("hostb")
    assert b.runs("new", "long", "sleep 60", *NO_FLAGS).code == 0
    assert wait_for(lambda: a.status("long") == "running", timeout=10)
    refused = a.runs("delete", "long", "--yes")
    assert refused.code == 1 and "running on hostb" in refused.err and "runs kill long" in refused.err
    killed = a.runs("kill", "long", "--yes")
    assert killed.code == 0, killed.err
    assert "'long' was killed on hostb." in killed.out
    entry = entries(repo)["long"]
    assert entry["exit_code"] == 143 and entry["killed"] == "runs kill (SIGTERM)"
    assert b.status("long") == "killed" and a.status("long") == "killed"
    assert a.runs("delete", "long", "--yes").code == 0


def test_a_kill_no_supervisor_answers_says_so(hosts: Callable[..., Host], repo: Path) -> None:
    # Beats of 2 s: the heartbeat stays fresh (6 s) while the kill asks and waits.
    a, b = hosts("hosta", beat="2"), hosts("hostb", beat="2")
    assert b.runs("new", "frozen", "sleep 60", *NO_FLAGS).code == 0
    assert wait_for(lambda: a.status("frozen") == "running", timeout=10)
    for pid in b.processes():  # the whole machine hangs: its supervisor answers nothing
        os.kill(pid, signal.SIGSTOP)
    killed = a.runs("kill", "frozen", "--yes", "--grace", "0.2", timeout=60)
    assert killed.code == 1 and "asked hostb to stop 'frozen'; no answer yet" in killed.err, killed
    assert "was killed on" not in killed.out
    forced = a.runs("delete", "frozen", "--yes", "--force")
    assert forced.code == 0, forced.err
    assert "frozen" not in entries(repo)
