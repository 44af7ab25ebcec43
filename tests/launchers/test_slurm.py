"""The Slurm launcher against a real slurmctld and slurmd on localhost."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import NO_FLAGS, ROOT, error_line, git, in_shell, run_process, status_of, wait_for, wait_status

pytestmark = pytest.mark.usefixtures("slurm")


def entry(repo: Path, name: str):
    return (yaml.safe_load((repo / ".runs/.runs.yml").read_text()) or {}).get(name)


def job_state(job_id: str) -> str:
    done = subprocess.run(["squeue", "--noheader", "--states=all", f"--jobs={job_id}", "--format=%T"], capture_output=True, text=True)
    return done.stdout.strip() or "gone"


def submit(runs, name: str, command: str, *more: str):
    result = runs("new", name, command, "--launcher", "slurm", *NO_FLAGS, *more)
    assert result.code == 0, result.err
    return result


def test_a_job_records_its_outcome_and_log(runs, repo):
    result = submit(runs, "a", "echo hello from slurm; exit 3")
    job = entry(repo, "a")["job_id"]
    assert f"Submitted run 'a' at commit " in result.out and f"as Slurm job {job}." in result.out
    wait_status("a", "failed", timeout=60)
    recorded = entry(repo, "a")
    assert recorded["launcher"] == "slurm" and recorded["exit_code"] == 3 and "ended" in recorded
    assert "hello from slurm" in (repo / ".runs/logs/a.log").read_text()
    assert runs("lookup", "a", "job_id").out == f"{job}\n"
    follow = run_process("logs", "-f", "a", timeout=30)
    assert follow.code == 0 and "hello from slurm" in follow.out


def test_the_program_gets_flags_environment_and_directory(runs, repo):
    out = repo / "seen.txt"
    (repo / ".gitignore").write_text("seen.txt\n")
    git("add", ".gitignore", cwd=repo)
    git("commit", "-qm", "ignore", cwd=repo)
    result = runs("new", "env", f"sh -c 'pwd; echo \"$RUNS_NAME\" \"$@\"' x > {out}", "--launcher=slurm")
    assert result.code == 0, result.err
    wait_status("env", "finished", timeout=60)
    code_dir = entry(repo, "env")["code_dir"]  # a job starts later: it runs in a snapshot of its code
    assert code_dir == str(repo / ".runs/code" / entry(repo, "env")["commit"][:12])
    assert out.read_text().splitlines() == [code_dir, f"env --tb-dir {repo}/.runs/tensorboard/env/ --save-path {repo}/.runs/checkpoints/env"]
    assert out.is_file()  # a plain name .gitignore lists is linked, and the file written through the link


def test_a_pending_job_runs_the_recorded_code_whatever_the_tree_does_meanwhile(runs, repo):
    from tests.test_snapshots import PROGRAM, log, make_project, sha

    make_project(repo)
    submit(runs, "later", "python3 train.py 0", "--sbatch-args", "--begin=now+4 --time=00:05:00")
    assert status_of("later") == "pending"
    (repo / "train.py").write_text(PROGRAM + "print('second commit')\n")
    git("commit", "-qam", "second", cwd=repo)
    git("checkout", "-qb", "elsewhere", cwd=repo)
    (repo / "train.py").write_text("raise SystemExit('not the recorded code')\n")
    wait_status("later", "finished", timeout=90)
    seen = log(repo, "later")
    assert seen["source"] == sha(PROGRAM) and seen["data"] == "1,2,3" and seen["origin"] == str(repo)
    assert seen["cwd"] == entry(repo, "later")["code_dir"]
    assert (repo / "outputs/later").read_text() == sha(PROGRAM)


def test_logs_follow_of_a_pending_job_waits_for_it(runs, repo):
    submit(runs, "soon", "echo from the job", "--sbatch-args", "--begin=now+3 --time=00:05:00")
    assert status_of("soon") == "pending"
    follow = run_process("logs", "-f", "soon", timeout=90)
    assert follow.code == 0 and "from the job" in follow.out, follow
    assert "is pending; waiting for it to start" in follow.err


def test_a_queued_job_is_pending_cannot_move_and_is_killed(runs, repo):
    submit(runs, "later", "echo never", "--sbatch-args", "--begin=now+600 --time=00:05:00")
    recorded = entry(repo, "later")
    assert recorded["sbatch_args"] == ["--begin=now+600", "--time=00:05:00"]
    assert status_of("later") == "pending"
    assert "pending" in runs("table").out
    assert "is pending" in error_line(runs("mv", "later", "moved"))
    killed = runs("kill", "later", "-y")
    assert killed.code == 0, killed.err
    assert status_of("later") == "killed" and entry(repo, "later")["killed"] == "runs kill (cancelled while queued)"
    assert wait_for(lambda: job_state(recorded["job_id"]) in ("CANCELLED", "gone"))
    assert "never" not in (repo / ".runs/logs/later.log").read_text()


def test_kill_of_a_running_job_is_recorded_by_its_supervisor(runs, repo):
    submit(runs, "long", "sleep 120")
    wait_status("long", "running", timeout=60)
    assert runs("kill", "long", "-y").code == 0
    recorded = entry(repo, "long")
    assert recorded["exit_code"] == 143 and recorded["killed"] == "runs kill (SIGTERM)"
    assert status_of("long") == "killed"


def test_delete_cancels_a_pending_job_first(runs, repo):
    submit(runs, "gone", "echo never", "--sbatch-args=--begin=now+600")
    job = entry(repo, "gone")["job_id"]
    assert runs("delete", "gone", "-y").code == 0
    assert job_state(job) in ("CANCELLED", "gone")
    assert entry(repo, "gone") is None and not (repo / ".runs/logs/gone.log").exists()


def test_a_job_killed_outside_runs_is_lost(runs, repo):
    submit(runs, "victim", "sleep 120")
    wait_status("victim", "running", timeout=60)
    subprocess.run(["scancel", "--signal=KILL", "--batch", entry(repo, "victim")["job_id"]], check=True)
    wait_status("victim", "lost", timeout=60)
    assert "exit_code" not in entry(repo, "victim")


def test_sbatch_rejecting_the_job_records_nothing(runs, repo):
    message = error_line(runs("new", "bad", "true", "--launcher=slurm", "--sbatch-args=--partition=nope"))
    assert "sbatch did not accept the job" in message and "partition" in message.lower()
    assert not (repo / ".runs/.runs.yml").exists() or entry(repo, "bad") is None
    assert not (repo / ".runs/tensorboard/bad").exists() and not (repo / ".runs/logs/bad.log").exists()


def test_sbatch_missing_and_cluster_unreachable_are_one_line_errors(runs, repo, tmp_path, monkeypatch, slurm):
    bare = tmp_path / "bin"
    bare.mkdir()
    for program in ("git", "tmux"):
        (bare / program).symlink_to(subprocess.run(["which", program], capture_output=True, text=True).stdout.strip())
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(bare))
    assert "sbatch is not installed" in error_line(runs("new", "x", "true", "--launcher=slurm"))
    monkeypatch.setenv("PATH", path)
    conf = tmp_path / "slurm.conf"
    text = Path(slurm).read_text().replace("SlurmctldHost=localhost", "SlurmctldHost=localhost\nSlurmctldPort=9\nMessageTimeout=1")
    conf.write_text(text)
    monkeypatch.setenv("SLURM_CONF", str(conf))
    assert "the Slurm cluster cannot be reached" in error_line(runs("new", "x", "true", "--launcher=slurm"))
    assert not (repo / ".runs").exists()


def test_reproduce_resubmits_with_the_same_sbatch_options(runs, repo, runsrc):
    runsrc({"launcher": "slurm", "sbatch-args": ["--time=00:05:00"]})
    git("add", ".runsrc", cwd=repo)
    git("commit", "-qm", "rc", cwd=repo)
    submit(runs, "r", "true", "--sbatch-args", "--nice=1 --comment='a b'")
    assert entry(repo, "r")["sbatch_args"] == ["--time=00:05:00", "--nice=1", "--comment=a b"]
    line = runs("reproduce", "r").out.splitlines()[-1]
    words = shlex.split(line)
    assert words[-2:] == ["--launcher=slurm", "--sbatch-args=--time=00:05:00 --nice=1 '--comment=a b'"]
    assert shlex.split(words[-1].split("=", 1)[1]) == entry(repo, "r")["sbatch_args"]


def test_a_runs_new_killed_after_submitting_leaves_no_job(runs, repo):
    marker = repo / "ran.txt"
    before = set(_jobs_named("crash"))
    env = {"RUNS_CRASH_AT": "new:session-started"}
    result = run_process("new", "crash", f"touch {marker}", "--launcher=slurm", *NO_FLAGS, env=env)
    assert result.code != 0
    assert runs("new", "next", "true").code == 0  # the next writer undoes the half-made run
    assert runs("list").out == "next\n"
    assert not (repo / ".runs/tensorboard/crash").exists()
    mine = {job: state for job, state in _jobs_named("crash").items() if job not in before}
    assert len(mine) == 1 and set(mine.values()) <= {"CANCELLED", "COMPLETED"}, mine
    import time

    time.sleep(2)
    assert not marker.exists()


def _jobs_named(name: str):
    done = subprocess.run(["squeue", "--noheader", "--states=all", f"--name={name}", "--format=%i %T"], capture_output=True, text=True)
    return dict(line.split() for line in done.stdout.splitlines())


def test_a_login_node_without_tmux_submits_all_the_same(runs, repo, tmp_path, monkeypatch):
    bare = tmp_path / "bin"
    bare.mkdir()
    for program in ("git", "sbatch", "squeue", "scancel", "sh", "env"):
        (bare / program).symlink_to(subprocess.run(["which", program], capture_output=True, text=True).stdout.strip())
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(bare))
    submit(runs, "no-tmux", "exit 0")  # the job gets this PATH too (--export=ALL)
    monkeypatch.setenv("PATH", path)
    wait_status("no-tmux", "finished", timeout=60)


def test_a_job_waits_behind_another_then_runs(runs, repo):
    submit(runs, "first", "sleep 60", "--sbatch-args=--exclusive")
    wait_status("first", "running", timeout=60)
    submit(runs, "second", "echo second ran", "--sbatch-args=--exclusive")
    assert status_of("second") == "pending"  # the node is taken
    assert runs("kill", "first", "-y").code == 0
    wait_status("second", "finished", timeout=60)
    assert "second ran" in (repo / ".runs/logs/second.log").read_text()


def test_delete_of_a_running_job_stops_it_before_its_files_go(runs, repo):
    submit(runs, "busy", "while true; do date >> busy.txt; sleep 0.1; done")
    wait_status("busy", "running", timeout=60)
    job = entry(repo, "busy")["job_id"]
    assert runs("delete", "busy", "-y").code == 0
    assert job_state(job) in ("CANCELLED", "COMPLETED", "gone")
    assert not (repo / ".runs/logs/busy.log").exists() and not (repo / ".runs/tensorboard/busy").exists()


def test_a_table_mixes_tmux_and_slurm_runs(runs, repo):
    assert runs("new", "local", "sleep 60", *NO_FLAGS).code == 0
    submit(runs, "remote", "exit 0")
    submit(runs, "queued", "true", "--sbatch-args=--begin=now+600")
    wait_status("remote", "finished", timeout=60)
    rows = {line.split()[0]: line.split()[1] for line in runs("table").out.splitlines()[2:]}
    assert rows == {"local": "running", "remote": "finished", "queued": "pending"}
    assert runs("list", "--status", "pending").out == "queued\n"
    assert runs("delete", ".*", "-y").code == 0


def test_many_submissions_lose_nothing(runs, repo):
    """Concurrent `runs new` processes, each submitting a job: every run recorded, once."""
    procs = [subprocess.Popen([__import__("sys").executable, "-m", "runs_manager", "new", f"many/{i}", "exit 0", "--launcher=slurm", *NO_FLAGS],
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(12)]
    assert all(proc.wait(timeout=120) == 0 for proc in procs)
    recorded = yaml.safe_load((repo / ".runs/.runs.yml").read_text())
    assert sorted(recorded) == sorted(f"many/{i}" for i in range(12))
    assert len({run["job_id"] for run in recorded.values()}) == 12
    assert wait_for(lambda: all(status_of(f"many/{i}") == "finished" for i in range(12)), timeout=120)


def test_reproduce_resubmits_with_the_same_sbatch_options_once(runs, repo, tmp_path):
    """.runsrc's sbatch-args were printed again after those .runsrc still adds: twice."""
    (repo / ".gitignore").write_text(".runsrc\n")
    git("add", ".gitignore", cwd=repo)
    git("commit", "-qm", "ignore", cwd=repo)
    (repo / ".runsrc").write_text("sbatch-args: --time=5\n")
    submit(runs, "orig", "true", "--sbatch-args=--job-name=first")
    original = entry(repo, "orig")
    assert original["sbatch_args"] == ["--time=5", "--job-name=first"]
    words = shlex.split(runs("reproduce", "orig").out.splitlines()[-1])
    done = in_shell(shlex.join(["runs", "new", "copy"] + words[3:]), tmp_path / "real-runs", cwd=repo)
    assert done.returncode == 0, done.stderr
    again = entry(repo, "copy")
    assert again["sbatch_args"] == original["sbatch_args"] and again["launcher"] == "slurm"
    assert again["launched"] == original["launched"].replace("orig", "copy")


def test_a_requeued_job_records_each_attempt(runs, repo, tmp_path):
    """A job the scheduler requeues (preemption, a node failure; here `scontrol requeue`)
    runs its program again: while it does, the run is running, not killed; the new attempt
    records its own start and outcome, and the first one's is kept under ``attempts``."""
    count, go = tmp_path / "count", tmp_path / "go"
    program = (f"echo attempt >> {count}; n=$(wc -l < {count}); echo attempt $n; "
               f"if [ $n -ge 2 ]; then while [ ! -e {go} ]; do sleep 0.1; done; exit 0; fi; sleep 120")
    submit(runs, "pre", program)
    assert wait_for(lambda: count.exists(), timeout=60)  # the program runs (squeue says RUNNING sooner)
    wait_status("pre", "running", timeout=10)
    job = entry(repo, "pre")["job_id"]
    subprocess.run(["scontrol", "requeue", job], check=True)
    assert wait_for(lambda: "exit_code" in entry(repo, "pre"), timeout=60), "the first attempt's end was not recorded"
    assert wait_for(lambda: job_state(job) == "PENDING", timeout=60), job_state(job)
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True)  # requeued jobs wait 2 minutes
    assert wait_for(lambda: count.exists() and len(count.read_text().splitlines()) == 2, timeout=60)
    wait_status("pre", "running", timeout=30)
    during = entry(repo, "pre")
    assert "exit_code" not in during and during["restarts"] == 1, during
    first = during["attempts"][0]
    assert first["exit_code"] == 143 and first["killed"] == "requeued by Slurm" and "ended" in first
    assert during["restarted"] >= first["ended"]
    assert runs("list", "--status", "running").out == "pre\n"
    go.touch()
    wait_status("pre", "finished", timeout=60)
    done = entry(repo, "pre")
    assert done["exit_code"] == 0 and done["ended"] > done["restarted"] and done["attempts"] == [first]
    log = (repo / ".runs/logs/pre.log").read_text()
    assert "attempt 1" in log and "attempt 2" in log


def test_a_scheduler_that_does_not_answer_costs_one_short_wait(runs, repo, tmp_path, monkeypatch, slurm):
    """squeue hangs (a controller that accepts connections and never answers): `runs table`
    waits once, briefly, and shows what is recorded, the rest unknown, with a note."""
    import socket
    import time

    submit(runs, "done", "exit 0")
    wait_status("done", "finished", timeout=60)
    submit(runs, "waiting", "true", "--sbatch-args=--begin=now+600")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepted by the kernel, never answered
    conf = tmp_path / "slurm.conf"
    port = silent.getsockname()[1]
    conf.write_text(Path(slurm).read_text().replace("SlurmctldHost=localhost", f"SlurmctldHost=localhost\nSlurmctldPort={port}\nMessageTimeout=60"))
    monkeypatch.setenv("SLURM_CONF", str(conf))
    try:
        started = time.monotonic()
        table = runs("table")
        took = time.monotonic() - started
    finally:
        silent.close()
    assert table.code == 0, table.err
    rows = {line.split()[0]: line.split()[1] for line in table.out.splitlines()[2:]}
    assert rows == {"done": "finished", "waiting": "unknown"}
    assert "runs: note: Slurm's squeue did not answer" in table.err and table.err.count("\n") == 1, table.err
    from runs_manager.launchers import slurm as slurm_launcher

    assert took < 2 * slurm_launcher.STATUS_TIMEOUT, f"{took:.1f} s: squeue was asked more than once"
    monkeypatch.setenv("SLURM_CONF", slurm)
    assert runs("kill", "waiting", "-y").code == 0
