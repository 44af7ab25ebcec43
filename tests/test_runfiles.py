"""Which files are a run's: delete, mv and new's collision checks touch exactly those.

A run owns its TensorBoard directory, its save path, log and patch, and the checkpoint
files its save path wrote beside itself (P.ckpt*, P[-N].index, .meta, .data-*). A path
that is another run's or a group's own is never a shorter run's checkpoint file.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from runs_manager import names as run_names
from runs_manager.main import main
from tests.commands.test_delete import tree

FINISHED = {"command": "true", "exit_code": 0, "datetime": "2026-12-01T10:00:00+00:00"}


def write_runs(root: Path, names: List[str]) -> None:
    db = root / ".runs/.runs.yml"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text(yaml.safe_dump({name: dict(FINISHED) for name in names}, sort_keys=False))


def listed(root: Path) -> List[str]:
    return list(yaml.safe_load((root / ".runs/.runs.yml").read_text()) or {})


def run_files(name: str) -> List[str]:
    """What a TensorFlow-style program of run ``name`` writes, relative to the runs directory."""
    return [
        f"tensorboard/{name}/events.out.tfevents.1",
        f"logs/{name}.log",
        f"patches/{name}.patch",
        f"state/{name}",
        f"env/{name}",
        f"checkpoints/{name}/model.pt",  # the save path used as a directory
        f"checkpoints/{name}.ckpt-1.index",
        f"checkpoints/{name}-100.index",
        f"checkpoints/{name}.data-00000-of-00001",
        f"checkpoints/{name}.meta",
    ]


def plant(root: Path, names: List[str]) -> Dict[str, str]:
    """Write every run's files (a file where another's directory must go is skipped, as a
    real program would fail there); returns each written path's writer."""
    writer = {}
    for name in names:
        for rel in run_files(name):
            path = root / ".runs" / rel
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    path.write_text(f"{rel} of {name}\n")
                    writer[rel] = name
    return writer


_SUFFIX = re.compile(r"(?:\.ckpt.*|(?:-\d+)?\.(?:index|meta|data-\d+-of-\d+))?")


def claimant(rel: str, names: List[str]) -> str:
    """The test's own statement of the rule: a path inside a run's own directory is that
    run's; else the longest run whose save path could have written it."""
    for name in names:
        for own in (f"tensorboard/{name}", f"checkpoints/{name}", f"logs/{name}.log", f"patches/{name}.patch", f"state/{name}", f"env/{name}"):
            if rel == own or rel.startswith(own + "/"):
                return name
    ckpt = rel[len("checkpoints/"):]
    fits = [name for name in names if ckpt.startswith(name) and _SUFFIX.fullmatch(ckpt[len(name):])]
    return max(fits, key=len)


@contextlib.contextmanager
def project(names: List[str]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        before = os.getcwd()
        os.chdir(tmp)
        try:
            write_runs(Path(tmp), names)
            yield Path(tmp)
        finally:
            os.chdir(before)


def files_of_others(root: Path, writer: Dict[str, str], names: List[str], name: str) -> Dict[str, str]:
    return {rel: (root / ".runs" / rel).read_text() for rel in writer if claimant(rel, names) != name}


# Findings of the hostile pass -----------------------------------------------------------


@pytest.mark.parametrize("group", ["x.ckpt", "x.ckpt2", "x.ckpt-resume", "x-1.index", "x.meta"])
def test_a_groups_directory_is_not_a_shorter_runs_checkpoint(runs, group):
    names = ["x", f"{group}/y"]
    with project(names) as root:
        precious = root / ".runs/checkpoints" / group / "y"
        precious.parent.mkdir(parents=True)
        precious.write_text("precious\n")
        (root / ".runs/checkpoints/x.ckpt-1.index").write_text("x's own\n")
        result = runs("delete", "x", "-y")
        assert result.code == 0, result.err
        assert precious.read_text() == "precious\n"
        assert not (root / ".runs/checkpoints/x.ckpt-1.index").exists()
        assert listed(root) == [f"{group}/y"]


def test_mv_leaves_a_groups_directory_where_it_is(runs):
    with project(["x", "x.ckpt/y"]) as root:
        precious = root / ".runs/checkpoints/x.ckpt/y"
        precious.parent.mkdir(parents=True)
        precious.write_text("precious\n")
        result = runs("mv", "x", "z")
        assert result.code == 0, result.err
        assert precious.read_text() == "precious\n"
        assert not (root / ".runs/checkpoints/z.ckpt").exists()
        assert listed(root) == ["z", "x.ckpt/y"]


def test_a_groups_directory_does_not_make_a_shorter_name_taken(runs, repo):
    assert runs("new", "x.ckpt/y", "true").code == 0
    result = runs("new", "x", "true")
    assert result.code == 0, result.err
    assert "taken" not in result.out


# The property ---------------------------------------------------------------------------

CANDIDATES = [
    "x", "x.ckpt", "x.ckpt-1", "x-1", "x.ckpt2", "x-1.index", "x.meta", "x.data-00000-of-00001",
    "x.ckpt/y", "x.ckpt-1/y", "x-1.index/y", "x.ckpt2/z", "x.ckpt-resume/a", "g/x", "g/x.ckpt", "g/x.ckpt-2/y", "exp",
    "exp-1", "exp.ckpt-1/b", "x.log", "x.log/y", "x.patch/y", "g/x.log/z",
]


@st.composite
def run_sets(draw: st.DrawFn) -> Tuple[List[str], str]:
    chosen: List[str] = []
    for name in draw(st.lists(st.sampled_from(CANDIDATES), min_size=2, max_size=7, unique=True)):
        if run_names.group_conflict(name, chosen.__contains__, lambda g: next((n for n in chosen if n.startswith(g + "/")), None)) is None:
            chosen.append(name)
    return chosen, draw(st.sampled_from(chosen))


@given(run_sets(), st.sampled_from(["delete", "mv"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_operation_on_one_run_changes_a_byte_of_anothers_files(capsys, case, operation):
    names, name = case
    with project(names) as root:
        writer = plant(root, names)
        others = files_of_others(root, writer, names, name)
        own = [rel for rel in writer if claimant(rel, names) == name]
        argv = ["delete", name, "-y"] if operation == "delete" else ["mv", name, "moved/there"]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 0, err
        after = tree(root / ".runs")
        for rel, text in others.items():
            assert after.get(rel) == text, f"{operation} {name} changed {rel} (of {claimant(rel, names)}) among {names}"
        for rel in own:
            assert rel not in after, f"{operation} {name} left {rel} among {names}"
        kept = [other for other in names if other != name]
        assert listed(root) == (kept if operation == "delete" else [n if n != name else "moved/there" for n in names])
        if operation == "mv":
            for rel in own:
                moved = rel.replace(name, "moved/there", 1)
                assert after.get(moved) == f"{rel} of {writer[rel]}\n", f"mv {name} did not move {rel} among {names}"
