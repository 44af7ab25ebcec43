"""The Slurm launcher: each run's supervisor as a batch job, submitted with sbatch.

The job runs the same supervisor as a tmux run, in the directory `runs new` was called
from, so its outcome and log land in the shared runs directory. What only the scheduler
knows (queued or running) comes from one squeue call for all the runs asked about.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from runs_manager import launch, processes, runfiles, supervisor
from runs_manager.errors import RunsError
from runs_manager.launchers import Entry, Start
from runs_manager.settings import Settings

NAME = "slurm"
TIMEOUT = 30.0  # seconds for a Slurm command: a controller that does not answer is unreachable
PROGRAM_WAIT = 5.0  # seconds for a started job's supervisor to be ready for signals
STOP_WAIT = 15.0  # seconds for cancelled jobs to leave the node before their files are deleted
# Job states in which the job's processes may still run (squeue's long names).
_ACTIVE = {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}
_QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}


def _run(*argv: str, input: Optional[str] = None) -> subprocess.CompletedProcess[str]:
    """The one place Slurm's programs are run."""
    try:
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=TIMEOUT)
    except FileNotFoundError:
        raise RunsError(f"{argv[0]} is not installed: --launcher slurm needs Slurm's client programs (apt-get install slurm-client)") from None
    except subprocess.TimeoutExpired:
        raise RunsError(f"{argv[0]} did not answer within {TIMEOUT:g} s: the Slurm cluster is unreachable") from None


def _message(done: "subprocess.CompletedProcess[str]") -> str:
    lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def states(job_ids: Sequence[str]) -> Optional[Dict[str, str]]:
    """Each job's state as the scheduler knows it (absent: it no longer knows the job);
    None if the scheduler cannot be asked. One squeue call, whatever the number of jobs."""
    if not job_ids or shutil.which("squeue") is None:
        return None if job_ids else {}
    try:
        done = _run("squeue", "--noheader", "--states=all", "--format=%i %T")
    except RunsError:
        return None
    if done.returncode != 0:
        return None
    wanted = set(job_ids)
    known = dict(line.split(None, 1) for line in done.stdout.splitlines() if len(line.split()) == 2)
    return {job: known[job].strip() for job in wanted if job in known}


class SlurmLauncher:
    name = NAME

    def check(self, settings: Settings) -> None:
        if shutil.which("sbatch") is None:
            raise RunsError("sbatch is not installed: --launcher slurm needs Slurm's client programs (apt-get install slurm-client)")
        done = _run("squeue", "--noheader", "--format=%i", "--me")
        if done.returncode != 0:
            raise RunsError(f"the Slurm cluster cannot be reached: {_message(done)}")

    def start(self, run: Start, prepared: Any) -> Dict[str, Any]:
        from runs_manager.launchers.tmux import program_script

        settings = run.settings
        program = ["/bin/sh", "-c", program_script(settings, run.line, launch.Environment({}))]
        words = supervisor.argv(settings, run.name, run.started, program, keep_open=False)
        # The supervisor copies the program's output into the log itself; the job's own
        # output (Slurm's messages, a supervisor that cannot start) is appended to it too.
        script = f"#!/bin/sh\nexec {shlex.join(words)} >/dev/null\n"
        args = list(settings.sbatch_args)
        log = runfiles.log_path(settings, run.name)
        done = _run(
            "sbatch", "--parsable", f"--job-name={run.name}", f"--output={log}", "--open-mode=append",
            f"--chdir={run.directory}", "--export=ALL", *args, input=script,
        )
        if done.returncode != 0:
            raise RunsError(f"sbatch did not accept the job: {_message(done)}")
        job_id = done.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise RunsError(f"sbatch answered {done.stdout.strip()!r}, not a job id")
        return {"job_id": job_id, "sbatch_args": args}

    def alive(self, settings: Settings, runs: Sequence[Tuple[str, Entry]]) -> Dict[str, Any]:
        jobs = {name: str(entry.get("job_id")) for name, entry in runs if entry.get("job_id") is not None}
        known = states(list(jobs.values()))
        result: Dict[str, Any] = {}
        for name, _ in runs:
            if name not in jobs or known is None:
                result[name] = None
            else:
                state = known.get(jobs[name], "")
                result[name] = "pending" if state in _QUEUED else state in _ACTIVE
        return result

    def signal(self, settings: Settings, name: str, entry: Entry, signum: int) -> bool:
        """A running job's supervisor gets the signal (and passes it to the program); a
        queued job is cancelled, as it has no program yet; SIGKILL cancels the job."""
        import signal

        job = entry.get("job_id")
        if job is None:
            return False
        state = (states([str(job)]) or {}).get(str(job), "")
        if state not in _ACTIVE | _QUEUED:
            return False
        if state in _QUEUED or signum == signal.SIGKILL:
            done = _run("scancel", str(job))
        else:
            _wait_for_supervisor(runfiles.log_path(settings, name))
            done = _run("scancel", "--batch", f"--signal={signal.Signals(signum).name[3:]}", str(job))
        return done.returncode == 0

    def stop(self, settings: Settings, runs: Sequence[Tuple[str, Entry]]) -> Dict[str, Optional[str]]:
        """Cancel the runs' jobs and wait until they have left the node: their files are
        deleted next, and no late write may land in them."""
        jobs = [str(entry["job_id"]) for _, entry in runs if entry.get("job_id") is not None]
        notes: Dict[str, Optional[str]] = {name: None for name, _ in runs}
        if not jobs:
            return notes
        active = self._active(jobs)
        if active is None:
            return {name: f"the Slurm job of run '{name}' could not be checked; cancel it with scancel" for name, _ in runs}
        if active:
            _run("scancel", *active)
        deadline = time.monotonic() + STOP_WAIT
        while active and time.monotonic() < deadline:
            time.sleep(0.1)
            active = self._active(active) or []
        for name, entry in runs:
            if str(entry.get("job_id")) in active:
                notes[name] = f"Slurm job {entry['job_id']} of run '{name}' was cancelled but has not ended yet"
        return notes

    def _active(self, jobs: List[str]) -> Optional[List[str]]:
        known = states(jobs)
        return None if known is None else [job for job in jobs if known.get(job, "") in _ACTIVE | _QUEUED]

    def rename(self, old: str, new: str, entry: Entry) -> Dict[str, Any]:
        return {}  # only ended jobs are renamed: the scheduler's record of them is history


def _wait_for_supervisor(log: str) -> None:
    """A job just started runs Python's defaults until its supervisor takes the log's lock
    and its signal handlers: a SIGTERM then would end it unrecorded. Wait for the lock (a
    shared filesystem that does not report locks: wait PROGRAM_WAIT, then go ahead)."""
    deadline = time.monotonic() + PROGRAM_WAIT
    while processes.lock_holder(log) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # the lock is taken just before the handlers are set


def cancel(job_id: Any) -> None:
    """Cancel a job that `runs new` submitted but did not record (recovery)."""
    if str(job_id).isdigit() and shutil.which("scancel"):
        try:
            _run("scancel", str(job_id))
        except RunsError:
            pass
