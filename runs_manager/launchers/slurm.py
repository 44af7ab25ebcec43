"""The Slurm launcher: each run's supervisor as a batch job, submitted with sbatch.

The job runs the same supervisor as a tmux run, in the directory `runs new` was called
from, so its outcome and log land in the shared runs directory. What only the scheduler
knows (queued or running) comes from one squeue call for all the runs asked about.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from runs_manager import processes
from runs_manager.runtime import launch, runfiles
from runs_manager.errors import RunsError
from runs_manager.launchers.base import Entry, Start, program_script, supervisor_argv
from runs_manager.settings import Settings

NAME = "slurm"
TIMEOUT = 30.0  # seconds for a Slurm command: a controller that does not answer is unreachable
STATUS_TIMEOUT = 5.0  # seconds for squeue asked for statuses: a table must not hang on the scheduler
FRESH_FOR = 2.0  # seconds one squeue answer serves (a command asks once, not once per run)
UNANSWERED_FOR = 60.0  # seconds a scheduler that did not answer is not asked again
PROGRAM_WAIT = 5.0  # seconds for a started job's supervisor to be ready for signals
STOP_WAIT = 15.0  # seconds for cancelled jobs to leave the node before their files are deleted
# Job states in which the job's processes may still run (squeue's long names).
_ACTIVE = {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}
_QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}


def _run(*argv: str, input: Optional[str] = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """The one place Slurm's programs are run."""
    try:
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise RunsError(f"{argv[0]} is not installed: --launcher slurm needs Slurm's client programs (apt-get install slurm-client)") from None
    except subprocess.TimeoutExpired:
        raise RunsError(f"{argv[0]} did not answer within {timeout:g} s: the Slurm cluster is unreachable") from None


def _message(done: "subprocess.CompletedProcess[str]") -> str:
    lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


# The last squeue answer (when, every job's state), by the cluster asked (SLURM_CONF names it).
_answers: Dict[Optional[str], Tuple[float, Optional[Dict[str, str]]]] = {}


def states(job_ids: Sequence[str], fresh: bool = False) -> Optional[Dict[str, str]]:
    """Each job's state as the scheduler knows it (absent: it no longer knows the job);
    None if the scheduler cannot be asked. One squeue call for all jobs, and its answer
    serves the whole command (unless ``fresh``): a table of a thousand Slurm runs waits
    for the scheduler once, and at most STATUS_TIMEOUT."""
    if not job_ids:
        return {}
    known = _every_state(set(job_ids), fresh)
    return None if known is None else {job: known[job] for job in set(job_ids) if job in known}


def _every_state(wanted: Set[str], fresh: bool) -> Optional[Dict[str, str]]:
    cluster = os.environ.get("SLURM_CONF")
    if cluster in _answers and not fresh:
        when, known = _answers[cluster]
        if known is None and time.monotonic() - when < UNANSWERED_FOR:
            return None
        if known is not None and time.monotonic() - when < FRESH_FOR and wanted <= known.keys():
            return known  # a job it does not know may have been submitted since
    known, problem = None, ""
    if shutil.which("squeue") is None:
        problem = "Slurm's squeue is not installed here"
    else:
        try:
            done = _run("squeue", "--noheader", "--states=all", "--format=%i %T", timeout=STATUS_TIMEOUT)
        except RunsError:
            problem = f"Slurm's squeue did not answer within {STATUS_TIMEOUT:g} s"
        else:
            if done.returncode != 0:
                problem = f"Slurm's squeue failed ({_message(done)})"
            else:
                known = {words[0]: words[1] for words in map(str.split, done.stdout.splitlines()) if len(words) == 2}
    if problem and cluster not in _answers:  # once per command
        print(f"runs: note: {problem}; Slurm runs without a recorded outcome show as unknown", file=sys.stderr)
    _answers[cluster] = (time.monotonic(), known)
    return known


class SlurmLauncher:
    name = NAME

    def check(self, settings: Settings) -> None:
        if shutil.which("sbatch") is None:
            raise RunsError("sbatch is not installed: --launcher slurm needs Slurm's client programs (apt-get install slurm-client)")
        done = _run("squeue", "--noheader", "--format=%i", "--me")
        if done.returncode != 0:
            raise RunsError(f"the Slurm cluster cannot be reached: {_message(done)}")

    def start(self, run: Start, prepared: Any) -> Dict[str, Any]:
        settings = run.settings
        program = ["/bin/sh", "-c", program_script(settings, run.line, launch.Environment({}))]
        words = supervisor_argv(settings, run.name, run.started, program, keep_open=False)
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
        state = (states([str(job)], fresh=True) or {}).get(str(job), "")
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
            active = self._active(active, fresh=True) or []
        for name, entry in runs:
            if str(entry.get("job_id")) in active:
                notes[name] = f"Slurm job {entry['job_id']} of run '{name}' was cancelled but has not ended yet"
        return notes

    def _active(self, jobs: List[str], fresh: bool = False) -> Optional[List[str]]:
        known = states(jobs, fresh)
        return None if known is None else [job for job in jobs if known.get(job, "") in _ACTIVE | _QUEUED]

    def rename(self, settings: Settings, old: str, new: str, entry: Entry, back: Optional[str] = None) -> Dict[str, Any]:
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
