"""Time `runs` as whole processes on databases of 100, 10,000 and 100,000 runs.

Builds each database in a throwaway git repository (entries in the format `runs new`
writes), uses a tmux server of its own, runs every command several times and prints
medians, peak memory (max RSS of the process) and the target each must meet, beside
`python -c pass`.

    python benchmarks/bench.py [--repeat 7] [--sizes 100,10000,100000]

Run it with the Python that has runs installed (for example .venv/bin/python).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ENV = dict(os.environ)


def generate(path: str, runs: int) -> None:
    """Write a database of ``runs`` entries, as `runs new` would have written them."""
    commit = "90c0ad704e54d5152d897a4e978cc7f3d1a2b3c4"
    with open(path, "w", encoding="utf-8") as f:
        f.write("# runs database: one entry per run, oldest first.\n")
        for i in range(runs):
            name = f"run{i}"
            command = f"python train.py --lr 0.{i % 97:02d} --seed {i}"
            f.write(
                f"{name}:\n"
                f"  command: {command}\n"
                f"  commit: {commit}\n"
                f"  datetime: '2026-11-{1 + i % 28:02d}T13:46:48.{i % 1000000:06d}+01:00'\n"
                f"  description: Run multiple runs to test stochasticity, seed {i}\n"
                f"  host: gpu{i % 8}\n"
                f"  launched: {command} --tb-dir .runs/tensorboard/{name}/ --save-path .runs/checkpoints/{name}\n"
                f"  tmux_session: {name}\n"
                f"  tmux_session_id: ${i}\n"
            )


def make_repo(root: str, runs: int) -> str:
    repo = os.path.join(root, f"repo-{runs}")
    os.makedirs(os.path.join(repo, ".runs"))
    with open(os.path.join(repo, "train.py"), "w") as f:
        f.write("print('training')\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "train.py"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "bench"], cwd=repo, check=True)
    with open(os.path.join(repo, ".runs", ".gitignore"), "w") as f:
        f.write("*\n")
    generate(os.path.join(repo, ".runs", ".runs.yml"), runs)
    return repo


def run_once(argv: Sequence[str], cwd: str) -> Tuple[float, float]:
    """Wall time (s) and peak memory (MB) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_maxrss / 1024


def measure(argv_for: Callable[[int], List[str]], cwd: str, repeat: int) -> Tuple[float, float]:
    times, peaks = [], []
    for i in range(repeat):
        elapsed, peak = run_once(argv_for(i), cwd)
        times.append(elapsed)
        peaks.append(peak)
    return statistics.median(times) * 1000, max(peaks)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sizes", default="100,10000,100000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    runs_bin = shutil.which("runs", path=os.path.dirname(sys.executable))
    runs = [runs_bin] if runs_bin else [sys.executable, "-m", "runs_manager"]
    python = sys.executable

    root = tempfile.mkdtemp(prefix="runs-bench-")
    ENV["TMUX_TMPDIR"] = tempfile.mkdtemp(prefix="tmx-", dir="/tmp")
    ENV.pop("TMUX", None)
    rows: List[Tuple[str, str, float, float, str, bool]] = []
    results: Dict[str, float] = {}

    def row(label: str, size: str, ms: float, peak: float, target: str, ok: bool) -> None:
        rows.append((label, size, ms, peak, target, ok))
        print(f"  {label:<34} {size:>8} {ms:8.0f} ms {peak:6.0f} MB", file=sys.stderr)

    try:
        print(f"runs: {' '.join(runs)}; results are medians of {args.repeat} runs", file=sys.stderr)
        base, base_mem = measure(lambda i: [python, "-c", "pass"], root, args.repeat)
        row("python -c pass", "", base, base_mem, "", True)
        ms, mem = measure(lambda i: runs + ["--help"], root, args.repeat)
        row("runs --help", "", ms, mem, f"<= 2.5x pass ({2.5 * base:.0f} ms)", ms <= 2.5 * base)
        read_limit = max(150.0, 6 * base)

        for size in sizes:
            label = f"{size:,}"
            repo = make_repo(root, size)
            # The one-off index build after the file appeared (the YAML is read once).
            start = time.perf_counter()
            run_once(runs + ["list"], repo)
            row("first command (builds the index)", label, (time.perf_counter() - start) * 1000, 0, "one-off", True)
            # Reads on a YAML file older than the racy window, as in daily use.
            time.sleep(2.1)
            middle = size // 2
            for name, cmd in (
                ("runs list", ["list"]),
                ("runs list --pattern P", ["list", "--pattern", f"run{middle}.*"]),
                ("runs lookup NAME KEY", ["lookup", f"run{middle}", "commit"]),
            ):
                ms, mem = measure(lambda i, cmd=cmd: runs + cmd, repo, args.repeat)
                ok = size < 100000 or (ms <= read_limit and mem <= 100)
                row(name, label, ms, mem, f"<= {read_limit:.0f} ms, 100 MB" if size == 100000 else "", ok)
            if size >= 10000:
                pattern = f"run{size // 1000 + 3}\\d\\d"  # 100 rows
                ms, mem = measure(lambda i, p=pattern: runs + ["table", "--pattern", p], repo, args.repeat)
                row("runs table --pattern P (100 rows)", label, ms, mem, "<= 400 ms" if size == 100000 else "", size < 100000 or ms <= 400)
            if size == 10000:
                ms, mem = measure(lambda i: runs + ["table"], repo, args.repeat)
                row("runs table (all 10,000 rows)", label, ms, mem, "<= 1000 ms", ms <= 1000)
            ms, mem = measure(lambda i: runs + ["new", f"bench-{i}", "true"], repo, args.repeat)
            results[f"new-{size}"] = ms
            target, ok = "<= 600 ms", ms <= 600
            if size == 100000 and "new-100" in results:
                target += f", <= 1.25x at 100 ({1.25 * results['new-100']:.0f} ms)"
                ok = ok and ms <= 1.25 * results["new-100"]
            row("runs new", label, ms, mem, target, ok)
            ms, mem = measure(lambda i, first=size // 3: runs + ["delete", f"run{first + i}", "-y"], repo, args.repeat)
            row("runs delete (one run)", label, ms, mem, "<= 1000 ms" if size == 100000 else "", size < 100000 or ms <= 1000)
    finally:
        subprocess.run(["tmux", "kill-server"], env=ENV, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(ENV["TMUX_TMPDIR"], ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    rule = f"{'=' * width}  {'=' * 8}  {'=' * 9}  {'=' * 8}  {'=' * 44}"
    print(rule)
    print(f"{'command':<{width}}  {'runs':>8}  {'median':>9}  {'peak RSS':>8}  target")
    print(rule)
    for label, size, ms, peak, target, ok in rows:
        mark = "" if not target or target == "one-off" else ("  met" if ok else "  MISSED")
        peak_text = f"{peak:5.0f} MB" if peak else ""
        print(f"{label:<{width}}  {size:>8}  {ms:6.0f} ms  {peak_text:>8}  {target}{mark}")
    print(rule)
    return 0 if all(r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
