"""`sh scripts/demo.sh`, the README's first command, end to end: its story and its time."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent


def section(out: str, command: str) -> List[str]:
    """The lines a step printed: after its '$ command' line, up to the next step."""
    lines = out.splitlines()
    start = lines.index("$ " + command) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("$ ") or lines[i].startswith("(")), len(lines))
    return lines[start:end]


def rows(lines: List[str]) -> List[Dict[str, str]]:
    """A plain table's rows, cut at the spans of its dashed line."""
    table = [line for line in lines if line.strip()]
    spans = [m.span() for m in re.finditer(r"-+", table[1])]
    cut = lambda line: [line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0]:].strip()]  # noqa: E731
    headers = cut(table[0])
    return [dict(zip(headers, cut(line))) for line in table[2:]]


@pytest.fixture
def demo_tmp() -> Path:
    path = Path(tempfile.mkdtemp(prefix="d-", dir="/tmp"))  # short: tmux's socket path must fit in 108 bytes
    yield path
    for tmux_dir in path.glob("runs-demo.*/tmux"):
        subprocess.run(["tmux", "kill-server"], env=dict(os.environ, TMUX_TMPDIR=str(tmux_dir)), capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def test_the_demo_tells_the_story_in_under_30_seconds(demo_tmp: Path) -> None:
    if not (ROOT / ".venv/bin/python").exists():
        pytest.skip("the demo runs from .venv, which scripts/test.sh makes")
    env = dict(os.environ, TMPDIR=str(demo_tmp))
    env.pop("PYTHONPATH", None)
    began = time.monotonic()
    done = subprocess.run(["sh", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    elapsed = time.monotonic() - began
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)

    launched = section(out, "runs table -c name,status,command")
    states = [row["status"] for row in rows(launched)]
    assert len(states) == 6 and states.count("running") == 2 and states.count("queued") == 4, launched
    log = "\n".join(section(out, "runs logs sw/lr-0.3_seed-1"))
    assert re.search(r"step +\d+/20 \[#+\.*\] loss", log), log  # the progress bar, as the run's terminal showed it
    after_kill = {row["name"]: row["status"] for row in rows(section(out, "runs table -c name,status,exit_code"))}
    assert after_kill["sw/lr-0.3_seed-2"] == "killed", after_kill

    compare = rows(section(out, "runs table --params --metrics loss:min,acc:max --sort -acc:max"))
    assert list(compare[0]) == ["name", "status", "lr", "seed", "loss:min", "acc:max"]
    accs = [float(row["acc:max"]) for row in compare]
    assert accs == sorted(accs, reverse=True) and len(accs) == 6
    assert compare[0]["name"] == "sw/lr-0.1_seed-2" and compare[0]["status"] == "finished"
    assert {row["name"]: row["status"] for row in compare}["sw/lr-0.3_seed-2"] == "killed"
    assert sum(row["status"] == "finished" for row in compare) == 5

    diff = section(out, "runs diff sw/lr-0.3_seed-1 sw/lr-0.03_seed-1")
    assert diff[:3] == ["Runs 'sw/lr-0.3_seed-1' and 'sw/lr-0.03_seed-1' differ:",
                        "parameters (sw/lr-0.3_seed-1 -> sw/lr-0.03_seed-1):", "  lr: 0.3 -> 0.03"], diff
    reproduce = "\n".join(section(out, "runs reproduce 'sw/lr-0.1_seed-2'"))  # the demo quotes the name it found
    assert "python train.py --lr 0.1 --seed 2" in reproduce, reproduce

    repo = re.search(r"Its repository is (\S+);", out)
    assert repo and (Path(repo.group(1)) / ".runs").is_dir()
    assert re.search(r"^    TMUX_TMPDIR='\S+/tmux' tmux kill-server; rm -rf '\S+'$", out, re.M), out
    took = int(re.search(r"The demo took (\d+) s", out).group(1))
    assert took <= 30 and elapsed <= 45, (took, elapsed)
