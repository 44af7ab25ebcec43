"""Code snapshots (runtime/snapshots.py): a run that starts later runs exactly the code it
recorded, reads the work tree's data through links, and shares one snapshot with every run
of its commit and patch; delete frees it; a crash or a full disk leaves nothing half-made."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml

from tests.conftest import NO_FLAGS, Result, committed_repo, git, run_process, wait_for, wait_status

# Prints a hash of its own source, the ignored data file it reads and where it ran; writes
# into outputs/ (ignored, not there yet when the run is recorded).
PROGRAM = """\
import hashlib, os, sys, time
time.sleep(float(sys.argv[1]))
source = hashlib.sha256(open(__file__, "rb").read()).hexdigest()
os.makedirs("outputs", exist_ok=True)
with open(os.path.join("outputs", os.environ["RUNS_NAME"].replace("/", "_")), "w") as f:
    f.write(source)
print("source", source)
print("data", open("data/train.csv").read().strip())
print("cwd", os.getcwd())
print("origin", os.environ.get("RUNS_SOURCE_DIR"))
"""


def sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def project(repo: Path) -> Path:
    return make_project(repo)


def make_project(repo: Path) -> Path:
    """train.py committed; data/ and outputs/ ignored, data/train.csv there."""
    (repo / "train.py").write_text(PROGRAM)
    (repo / ".gitignore").write_text("data/\noutputs/\n")
    (repo / "data").mkdir()
    (repo / "data/train.csv").write_text("1,2,3\n")
    git("add", "train.py", ".gitignore", cwd=repo)
    git("commit", "-qm", "train", cwd=repo)
    return repo


def entries(repo: Path) -> Dict[str, Any]:
    return yaml.safe_load((repo / ".runs/.runs.yml").read_text()) or {}


def log(repo: Path, name: str) -> Dict[str, str]:
    lines = (repo / ".runs/logs" / f"{name}.log").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines if " " in line and line.split(" ", 1)[0] in ("source", "data", "cwd", "origin"))


def ended(repo: Path, names: List[str]) -> bool:
    db = entries(repo)
    return all("ended" in db.get(name, {}) for name in names)


def snapshots(repo: Path) -> List[str]:
    code = repo / ".runs/code"
    return sorted(os.listdir(code)) if code.is_dir() else []


def test_queued_runs_run_the_recorded_code_whatever_the_tree_does_meanwhile(runs: Callable[..., Result], project: Path) -> None:
    python = sys.executable
    result = runs("new", "sw", f"{python} train.py {{t}}", "--grid", "t=1,0,0.0", "--max-parallel", "1", *NO_FLAGS)
    assert result.code == 0, result.err
    recorded = PROGRAM
    commit = git("rev-parse", "HEAD", cwd=project).strip()
    # The user goes on: commits an edit, switches to another branch with other code, edits it.
    (project / "train.py").write_text(PROGRAM + "print('second commit')\n")
    git("commit", "-qam", "second", cwd=project)
    git("checkout", "-qb", "elsewhere", cwd=project)
    (project / "train.py").write_text("raise SystemExit('not the recorded code')\n")
    git("commit", "-qam", "other branch", cwd=project)
    (project / "train.py").write_text("raise SystemExit('uncommitted')\n")

    names = ["sw/t-1", "sw/t-0", "sw/t-0.0"]
    assert wait_for(lambda: ended(project, names), timeout=40)
    db = entries(project)
    root = project / ".runs/code" / commit[:12]
    for name in names:
        assert db[name]["exit_code"] == 0, (project / ".runs/logs" / f"{name}.log").read_text()
        assert db[name]["code_dir"] == str(root)
        seen = log(project, name)
        assert seen["source"] == sha(recorded) and seen["data"] == "1,2,3"
        assert seen["cwd"] == str(root) and seen["origin"] == str(project)
        # outputs/ did not exist when the run was recorded: written into the work tree's.
        assert (project / "outputs" / name.replace("/", "_")).read_text() == sha(recorded)
    assert snapshots(project) == [commit[:12]]
    assert runs("lookup", "sw/t-0", "code_dir").out.strip() == str(root)
    assert (project / "train.py").read_text() == "raise SystemExit('uncommitted')\n"  # the work tree is the user's


def test_a_snapshot_is_read_only_code_with_links_to_what_git_ignores(runs: Callable[..., Result], project: Path) -> None:
    (project / ".venv").mkdir()
    (project / ".gitignore").write_text("data/\noutputs/\n.venv/\nwandb\n")
    git("commit", "-qam", "ignore more", cwd=project)
    result = runs("new", "one", f"{sys.executable} train.py 0", "--snapshot", *NO_FLAGS)
    assert result.code == 0, result.err
    root = Path(entries(project)["one"]["code_dir"])
    assert stat.S_IMODE(os.lstat(root / "train.py").st_mode) & 0o222 == 0
    assert stat.S_IMODE(os.lstat(root).st_mode) & 0o222 == 0
    assert (root / "train.py").read_text() == PROGRAM
    links = {name: os.readlink(root / name) for name in os.listdir(root) if os.path.islink(root / name)}
    assert links == {name: str(project / name) for name in ("data", ".venv", ".runs", "wandb")} | {"outputs": f"{project}/outputs/"}
    wait_status("one", "finished", timeout=20)


def test_a_sweep_shares_one_snapshot_and_delete_frees_it_with_its_last_run(runs: Callable[..., Result], project: Path) -> None:
    values = ",".join(str(i) for i in range(20))
    result = runs("new", "many", f"{sys.executable} train.py 0 # {{i}}", "--grid", f"i={values}", "--max-parallel", "4", *NO_FLAGS)
    assert result.code == 0, result.err
    names = [f"many/i-{i}" for i in range(20)]
    assert wait_for(lambda: ended(project, names), timeout=90)
    assert len(snapshots(project)) == 1
    assert len({entries(project)[name]["code_dir"] for name in names}) == 1
    # A run of another sweep at the same commit shares it too, and keeps it.
    assert runs("new", "later", f"{sys.executable} train.py 0", "--max-parallel", "1", *NO_FLAGS).code == 0
    assert len(snapshots(project)) == 1
    assert runs("delete", "many/.*", "--yes").code == 0
    assert len(snapshots(project)) == 1, "a snapshot another run uses was deleted"
    wait_status("later", "finished", timeout=20)
    assert runs("delete", "later", "--yes").code == 0
    assert snapshots(project) == []
    assert not (project / ".runs/.trash").exists()


def test_an_allow_dirty_run_gets_a_snapshot_of_its_commit_and_patch(runs: Callable[..., Result], project: Path) -> None:
    patched = PROGRAM + "print('patched')\n"
    (project / "train.py").write_text(patched)
    (project / "new_module.py").write_text("X = 1\n")  # untracked: in the patch too
    result = runs("new", "dirty", f"{sys.executable} train.py 0.5", "--max-parallel", "1", "--allow-dirty", *NO_FLAGS)
    assert result.code == 0, result.err
    entry = entries(project)["dirty"]
    root = Path(entry["code_dir"])
    commit = git("rev-parse", "HEAD", cwd=project).strip()
    assert root.name == f"{commit[:12]}-{entry['patch_sha256'][:12]}"
    assert (root / "new_module.py").read_text() == "X = 1\n"
    git("checkout", "train.py", cwd=project)
    wait_status("dirty", "finished", timeout=20)
    assert log(project, "dirty")["source"] == sha(patched)


def test_snapshot_auto_leaves_runs_that_start_at_once_in_place(runs: Callable[..., Result], project: Path, runsrc: Any) -> None:
    assert runs("new", "here", f"{sys.executable} train.py 0", *NO_FLAGS).code == 0
    assert "code_dir" not in entries(project)["here"]
    runsrc({"snapshot": "never"})
    git("add", ".runsrc", cwd=project)
    git("commit", "-qm", "runsrc", cwd=project)
    assert runs("new", "queued", f"{sys.executable} train.py 0", "--max-parallel", "1", *NO_FLAGS).code == 0
    assert "code_dir" not in entries(project)["queued"]
    wait_status("here", "finished", timeout=20)
    assert log(project, "here")["cwd"] == str(project) and log(project, "here")["origin"] == str(project)
    assert snapshots(project) == []
    wrong = runs("new", "x", "true", "--snapshot=sometimes")
    assert wrong.code == 2 and "--snapshot" in wrong.err


def test_a_run_from_a_subdirectory_starts_in_its_counterpart(runs: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "src").mkdir()
    (project / "src/show.py").write_text("import os\nprint('cwd', os.getcwd())\n")
    git("add", "src", cwd=project)
    git("commit", "-qm", "src", cwd=project)
    monkeypatch.chdir(project / "src")
    result = runs("new", "sub", f"{sys.executable} show.py", "--snapshot", "--runs-dir", "../.runs", *NO_FLAGS)
    assert result.code == 0, result.err
    assert wait_for(lambda: ended(project, ["sub"]), timeout=20)
    root = Path(entries(project)["sub"]["code_dir"])
    assert log(project, "sub")["cwd"] == str(root / "src")
    (project / "empty").mkdir()
    monkeypatch.chdir(project / "empty")
    refused = runs("new", "nowhere", "true", "--snapshot", "--runs-dir", "../.runs", *NO_FLAGS)
    assert refused.code == 1 and "tracks no file" in refused.err
    assert "nowhere" not in entries(project)


def test_a_crash_while_making_a_snapshot_leaves_nothing_the_next_command_keeps(project: Path, runs: Callable[..., Result]) -> None:
    crashed = run_process("new", "c", "true", "--snapshot", *NO_FLAGS, env={"RUNS_CRASH_AT": "snapshot:made"})
    assert crashed.code == -signal.SIGKILL, crashed
    leftovers = [name for name in os.listdir(project / ".runs/code") if name.startswith(".making-")]
    assert leftovers and not (project / ".runs/.runs.yml").exists() or "c" not in entries(project)
    result = runs("new", "d", f"{sys.executable} train.py 0", "--snapshot", *NO_FLAGS)
    assert result.code == 0, result.err
    assert [name for name in os.listdir(project / ".runs/code") if name.startswith(".")] == []
    assert "c" not in entries(project)
    wait_status("d", "finished", timeout=20)


def test_two_sweeps_at_once_share_one_whole_snapshot(project: Path) -> None:
    argv = [sys.executable, "-m", "runs_manager", "new"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    procs = [subprocess.Popen([*argv, name, f"{sys.executable} train.py 0 # {{i}}", "--grid", "i=1,2", "--max-parallel", "1",
                               *NO_FLAGS], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    names = ["a/i-1", "a/i-2", "b/i-1", "b/i-2"]
    assert wait_for(lambda: ended(project, names), timeout=40)
    assert len(snapshots(project)) == 1
    assert all(entries(project)[name]["exit_code"] == 0 for name in names)


def test_a_full_disk_while_making_a_snapshot_records_nothing(runs: Callable[..., Result], project: Path, small_runs_dir: Any) -> None:
    (project / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # more than the 2 MB runs directory holds
    git("add", "big.bin", cwd=project)
    git("commit", "-qm", "big", cwd=project)
    result = runs("new", "full", "true", "--snapshot", *NO_FLAGS)
    assert result.code == 1 and result.err.startswith("runs: error:") and "\n" not in result.err.rstrip("\n")
    assert "Traceback" not in result.err
    code = project / ".runs/code"
    assert not code.exists() or os.listdir(code) == []
    db = project / ".runs/.runs.yml"
    assert not db.exists() or "full" not in entries(project)


def test_submodules_are_checked_out_at_their_recorded_commit(
    runs: Callable[..., Result], project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = committed_repo(tmp_path / "library", {"lib.py": "VERSION = 1\n"})
    git("-c", "protocol.file.allow=always", "submodule", "-q", "add", str(library), "lib", cwd=project)
    git("commit", "-qm", "with lib", cwd=project)
    # The user moves the submodule's work tree on; the recorded commit is what the snapshot has.
    (project / "lib/lib.py").write_text("VERSION = 2\n")
    result = runs("new", "sub", "true", "--snapshot", "--allow-dirty", *NO_FLAGS)
    assert result.code == 0, result.err
    root = Path(entries(project)["sub"]["code_dir"])
    assert (root / "lib/lib.py").read_text() == "VERSION = 1\n"
    # A clone without the submodule checked out: its directory stays empty, and runs says so.
    clone = tmp_path / "clone"
    git("clone", "-q", str(project), str(clone))
    monkeypatch.chdir(clone)
    result = runs("new", "bare", "true", "--snapshot", *NO_FLAGS)
    assert result.code == 0, result.err
    assert "submodule lib at commit" in result.err and "is not checked out here" in result.err
    assert os.listdir(Path(entries(clone)["bare"]["code_dir"]) / "lib") == []


def test_mv_keeps_the_snapshot_and_reproduce_prints_the_commit(runs: Callable[..., Result], project: Path) -> None:
    assert runs("new", "old", f"{sys.executable} train.py 0", "--snapshot", *NO_FLAGS).code == 0
    wait_status("old", "finished", timeout=20)
    code_dir = entries(project)["old"]["code_dir"]
    assert runs("mv", "old", "group/new").code == 0
    assert entries(project)["group/new"]["code_dir"] == code_dir and os.path.isdir(code_dir)
    commit = entries(project)["group/new"]["commit"]
    printed = runs("reproduce", "group/new").out
    assert f"git checkout {commit}" in printed and code_dir not in printed
    # A hand-edited code_dir that is not a snapshot of this runs directory is never deleted.
    db = project / ".runs/.runs.yml"
    elsewhere = project.parent / "precious"
    elsewhere.mkdir()
    db.write_text(db.read_text().replace(code_dir, str(elsewhere)))
    assert runs("delete", "group/new", "--yes").code == 0
    assert elsewhere.is_dir() and os.path.isdir(code_dir)  # the orphaned snapshot is only space
