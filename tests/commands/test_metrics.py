"""TensorBoard scalars: `runs metrics NAME` and `runs table --metrics`, read incrementally.

Event files are written by real writers: tensorboardX (as PyTorch users write them, one
simple_value per event) and TensorBoard's own EventFileWriter with its scalar plugin's
protobuf (as tf.summary.scalar writes them, a float32 tensor), never by hand; damage is
done to real files afterwards.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboardX import SummaryWriter

from tests.conftest import ROOT, error_line

CACHE = ".runs/.runs.yml.metrics"


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    return repo


def write_db(repo: Path, entries: Dict[str, Any]) -> None:
    (repo / ".runs").mkdir(exist_ok=True)
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump(entries, sort_keys=False))


def ended(*names: str, **more: Any) -> Dict[str, Any]:
    entries = {name: {"command": "python train.py", "exit_code": 0} for name in names}
    entries.update(more)
    return entries


def tb(repo: Path, name: str) -> Path:
    path = repo / ".runs" / "tensorboard" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_scalars(logdir: Path, points: Iterable[Tuple[str, int, float]], suffix: str = "", **kwargs: Any) -> Path:
    """Points (tag, step, value) written by tensorboardX, as PyTorch's SummaryWriter writes them; the file."""
    before = set(logdir.glob("*tfevents*"))
    writer = SummaryWriter(str(logdir), filename_suffix=suffix, **kwargs)
    for tag, step, value in points:
        writer.add_scalar(tag, value, step)
    writer.close()
    (path,) = set(logdir.glob("*tfevents*")) - before
    return path


class Writer:
    """TensorBoard's own EventFileWriter, which PyTorch's SummaryWriter writes through: one
    simple_value per event, as add_scalar writes it; flush() writes everything added."""

    def __init__(self, logdir: Path, suffix: str = "") -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        before = set(logdir.glob("*tfevents*"))
        self.writer = EventFileWriter(str(logdir), filename_suffix=suffix)
        (self.path,) = map(str, set(logdir.glob("*tfevents*")) - before)

    def add(self, tag: str, step: int, value: float) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        self.writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary))

    def add_start(self, step: int) -> None:
        """A SessionLog START, as PyTorch's SummaryWriter(purge_step=step) writes it."""
        from tensorboard.compat.proto import event_pb2

        self.writer.add_event(event_pb2.Event(step=step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


WRITERS = ["tensorboardX", "tensorboard"]


def write_with(writer: str, logdir: Path, points: Iterable[Tuple[str, int, float]], suffix: str = "") -> None:
    """Points written by tensorboardX (which cleans tag names) or by TensorBoard's own writer."""
    if writer == "tensorboardX":
        write_scalars(logdir, points, suffix=suffix)
        return
    own = Writer(logdir, suffix)
    for point in points:
        own.add(*point)
    own.close()


def write_tf2_scalars(logdir: Path, points: Iterable[Tuple[str, int, float]]) -> None:
    """Scalars as tf.summary.scalar writes them: a float32 tensor of the `scalars` plugin,
    its metadata only in a tag's first value, through TensorBoard's own writer."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.scalar import summary_v2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    seen = set()
    for tag, step, value in points:
        summary = summary_v2.scalar_pb(tag, value)
        if tag in seen:
            summary.value[0].ClearField("metadata")
        seen.add(tag)
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary))
    writer.close()


def metrics_json(runs: Any, name: str) -> Dict[str, Dict[str, Any]]:
    result = runs("metrics", name, "--format", "json")
    assert result.code == 0, result.err
    return {row.pop("tag"): row for row in json.loads(result.out)}


def table_json(runs: Any, *args: str) -> List[Dict[str, Any]]:
    result = runs("table", "-c", "name", "--format", "json", *args)
    assert result.code == 0, result.err
    return list(json.loads(result.out))


def cached(repo: Path, table: str = "files") -> Dict[str, Dict[str, Any]]:
    """The cache's state of each event file (the SQLite file beside the index), or with
    ``table="replays"``, the restart rule's result kept for each run directory."""
    conn = sqlite3.connect(repo / CACHE)
    try:
        return {key: json.loads(state) for key, _, state in conn.execute(f"SELECT * FROM {table}")}
    finally:
        conn.close()


def loss_curve(n: int, start: float = 1.0) -> List[Tuple[str, int, float]]:
    return [("loss", step, start / (step + 1)) for step in range(n)]


# runs metrics -----------------------------------------------------------------------------

def test_metrics_lists_each_scalar_tag_with_its_aggregates(runs, repo):
    write_db(repo, ended("exp"))
    write_scalars(tb(repo, "exp"), loss_curve(10) + [("val/acc", step, [0.5, 0.75, 0.625][step]) for step in range(3)])
    rows = metrics_json(runs, "exp")
    assert rows == {
        "loss": {"count": 10, "step": 9, "last": 0.1, "min": 0.1, "max": 1.0, "mean": pytest.approx(0.29289682, rel=1e-6)},
        "val/acc": {"count": 3, "step": 2, "last": 0.625, "min": 0.5, "max": 0.75, "mean": 0.625},
    }
    result = runs("metrics", "exp")
    assert result.code == 0 and result.err == ""
    lines = result.out.splitlines()
    assert lines[0].split() == ["tag", "count", "step", "last", "min", "max", "mean"]
    assert lines[2].split()[:6] == ["loss", "10", "9", "0.1", "0.1", "1.0"]
    assert lines[3].split() == ["val/acc", "3", "2", "0.625", "0.5", "0.75", "0.625"]


def test_tf2_tensor_scalars_are_read_like_simple_values(runs, repo):
    write_db(repo, ended("tf2"))
    write_tf2_scalars(tb(repo, "tf2"), [("epoch_loss", step, 2.0 - step / 4) for step in range(5)])
    assert metrics_json(runs, "tf2") == {"epoch_loss": {"count": 5, "step": 4, "last": 1.0, "min": 1.0, "max": 2.0, "mean": 1.5}}


def test_images_and_histograms_are_no_scalars_and_are_named_apart(runs, repo):
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    writer = SummaryWriter(str(logdir))
    for step in range(3):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_histogram("weights", np.arange(10.0) * step, step)
        writer.add_image("sample", np.zeros((3, 4, 4)), step)
    writer.close()
    assert set(metrics_json(runs, "exp")) == {"loss"}
    result = runs("metrics", "exp")
    assert "weights" not in result.out and "sample" not in result.out
    assert result.err == "runs: note: tags without scalars: sample (image), weights (histo)\n"
    table = runs("table", "-c", "name", "--metrics", "weights")
    assert table.code == 0
    assert table.out.splitlines()[2].split() == ["exp", "_"]
    assert "no run shown has a scalar 'weights' (it holds histo, not scalars)" in table.err


def test_metrics_of_an_unknown_run_is_one_line_error(runs, repo):
    write_db(repo, ended("exp"))
    assert "no run named 'exq'; did you mean 'exp'?" in error_line(runs("metrics", "exq"))


def test_a_run_without_events_has_no_scalars(runs, repo):
    write_db(repo, ended("exp"))
    result = runs("metrics", "exp", "--format", "json")
    assert (result.code, json.loads(result.out)) == (0, [])
    result = runs("metrics", "exp")
    assert result.code == 0 and "has no scalars" in result.err


def test_non_event_files_are_left_alone(runs, repo):
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    write_scalars(logdir, loss_curve(3))
    (logdir / "notes.txt").write_text("not events\n")
    (logdir / "model.ckpt").write_bytes(os.urandom(1000))
    (logdir / "plugins").mkdir()
    (logdir / "plugins" / "projector_config.pbtxt").write_text("embeddings {}\n")
    (logdir / ".runs-starting").write_text("")
    result = runs("metrics", "exp", "--format", "json")
    assert result.code == 0 and result.err == ""
    assert [row["tag"] for row in json.loads(result.out)] == ["loss"]
    assert list(cached(repo)) == [str(next(logdir.glob("events.out.tfevents.*")))]


def test_subdirectories_are_runs_of_their_own_so_their_tags_are_prefixed(runs, repo):
    write_db(repo, ended("keras"))
    write_scalars(tb(repo, "keras") / "train", [("epoch_loss", 0, 0.5), ("epoch_loss", 1, 0.25)])
    write_scalars(tb(repo, "keras") / "validation", [("epoch_loss", 0, 0.75), ("epoch_loss", 1, 0.375)])
    rows = metrics_json(runs, "keras")
    assert {tag: row["last"] for tag, row in rows.items()} == {"train/epoch_loss": 0.25, "validation/epoch_loss": 0.375}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_top_level_tag_named_like_a_subdirectorys_keeps_its_own_name(runs, repo, writer):
    write_db(repo, ended("clash"))
    (tb(repo, "clash") / "train").mkdir()
    write_with(writer, tb(repo, "clash"), [("train/loss", 0, 9.0)])  # a top-level tag with a slash
    write_with(writer, tb(repo, "clash") / "train", [("loss", 0, 1.0), ("loss", 1, 0.5)])  # the train/ run's 'loss'
    rows = metrics_json(runs, "clash")
    assert {tag: row["last"] for tag, row in rows.items()} == {"train/loss": 0.5, "./train/loss": 9.0}
    table = table_json(runs, "--metrics", "train/loss,./train/loss")
    assert table == [{"name": "clash", "train/loss": 0.5, "./train/loss": 9.0}]


def test_hostile_tag_names_are_shown_escaped_and_exported_exactly(runs, repo):
    write_db(repo, ended("exp"))
    tag = "a\tb\nc,d:max\u2028é"  # tensorboardX would clean it; TensorBoard's writer (and PyTorch) take it as it is
    writer = Writer(tb(repo, "exp"))
    writer.add(tag, 0, 1.5)
    writer.close()
    assert metrics_json(runs, "exp") == {tag: {"count": 1, "step": 0, "last": 1.5, "min": 1.5, "max": 1.5, "mean": 1.5}}
    result = runs("metrics", "exp")
    assert result.code == 0
    assert len(result.out.splitlines()) == 3  # one line per tag, whatever its name holds
    assert "a\\tb\\nc,d:max\\u2028é" in result.out


# runs table --metrics ---------------------------------------------------------------------

def sweep(repo: Path) -> None:
    """Three ended runs with events, one without any."""
    write_db(repo, ended("a", "b", "c", "none"))
    write_scalars(tb(repo, "a"), loss_curve(4, 2.0) + [("acc", 0, 0.5), ("acc", 1, 0.875), ("acc", 2, 0.75)])
    write_scalars(tb(repo, "b"), loss_curve(2, 1.0) + [("acc", 0, 0.625)])
    write_scalars(tb(repo, "c"), loss_curve(3, 4.0))


def test_table_shows_one_column_per_metric_and_underscores_for_missing(runs, repo):
    sweep(repo)
    result = runs("table", "-c", "name", "--metrics", "loss,acc:max", "-m", "acc:step,loss:count,loss:min,acc:mean")
    assert result.code == 0 and result.err == ""
    lines = result.out.splitlines()
    assert lines[0].split() == ["name", "loss", "acc:max", "acc:step", "loss:count", "loss:min", "acc:mean"]
    assert [line.split() for line in lines[2:]] == [
        ["a", "0.5", "0.875", "2", "4", "0.5", "0.7083333"],
        ["b", "0.5", "0.625", "0", "2", "0.5", "0.625"],
        ["c", "1.3333334", "_", "_", "3", "1.3333334", "_"],
        ["none", "_", "_", "_", "_", "_", "_"],
    ]


def test_json_gives_numbers_as_numbers_and_null_for_missing(runs, repo):
    sweep(repo)
    rows = table_json(runs, "--metrics", "loss,acc:max,acc:step")
    assert rows == [
        {"name": "a", "loss": 0.5, "acc:max": 0.875, "acc:step": 2},
        {"name": "b", "loss": 0.5, "acc:max": 0.625, "acc:step": 0},
        {"name": "c", "loss": 1.3333334, "acc:max": None, "acc:step": None},
        {"name": "none", "loss": None, "acc:max": None, "acc:step": None},
    ]
    assert isinstance(rows[0]["acc:step"], int) and isinstance(rows[0]["loss"], float)


def test_csv_has_metric_columns_and_empty_cells_for_missing(runs, repo):
    sweep(repo)
    result = runs("table", "-c", "name,status", "--metrics", "acc:max", "--format", "csv")
    assert result.code == 0
    assert result.out == "name,status,acc:max\na,finished,0.875\nb,finished,0.625\nc,finished,\nnone,finished,\n"


def test_sort_by_a_metric_puts_missing_values_last_both_ways(runs, repo):
    sweep(repo)
    assert [r["name"] for r in table_json(runs, "--metrics", "acc:max", "--sort", "acc:max")] == ["b", "a", "c", "none"]
    assert [r["name"] for r in table_json(runs, "--metrics", "acc:max", "--sort", "-acc:max")] == ["a", "b", "c", "none"]
    assert [r["name"] for r in table_json(runs, "-m", "loss", "--sort", "-loss", "--sort", "name")] == ["c", "a", "b", "none"]
    result = runs("table", "-m", "loss", "--sort", "-loss:min")
    assert "unknown sort key 'loss:min' in --sort" in error_line(result)


def test_an_unknown_tag_is_an_empty_column_with_a_note(runs, repo):
    sweep(repo)
    result = runs("table", "-c", "name", "--metrics", "los")
    assert result.code == 0
    assert [line.split() for line in result.out.splitlines()[2:]] == [["a", "_"], ["b", "_"], ["c", "_"], ["none", "_"]]
    assert result.err == "runs: note: no run shown has a scalar 'los'; 'runs metrics NAME' lists a run's tags\n"


@pytest.mark.parametrize("args, message", [
    (["--metrics", ","], "--metrics needs at least one tag"),
    (["--metrics", "loss,loss"], "metric 'loss' is given twice in --metrics"),
    (["--metrics", ":max"], "--metrics needs a tag before ':max'"),
    (["-c", "name,loss", "--metrics", "loss"], "'loss' is given both in --columns and in --metrics"),
])
def test_bad_metrics_arguments_are_one_line_errors(runs, repo, args, message):
    sweep(repo)
    assert message in error_line(runs("table", *args))


def test_a_tag_named_like_an_aggregate_is_reached_with_an_explicit_aggregate(runs, repo):
    write_db(repo, ended("exp"))
    writer = Writer(tb(repo, "exp"))
    writer.add("score:max", 0, 3.0)
    writer.add("score:max", 1, 2.0)
    writer.close()
    assert table_json(runs, "--metrics", "score:max:last,score:max:max") == [
        {"name": "exp", "score:max:last": 2.0, "score:max:max": 3.0}]


def test_status_filter_and_pattern_read_only_the_runs_shown(runs, repo):
    sweep(repo)
    entries = yaml.safe_load((repo / ".runs/.runs.yml").read_text())
    entries["b"]["exit_code"] = 1
    write_db(repo, entries)
    assert table_json(runs, "--metrics", "acc:max", "--status", "failed") == [{"name": "b", "acc:max": 0.625}]
    assert table_json(runs, "--metrics", "loss", "--pattern", "c") == [{"name": "c", "loss": 1.3333334}]
    assert {os.path.basename(os.path.dirname(p)) for p in cached(repo)} == {"b", "c"}


HOSTILE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    [":", ":max", "::", ",,", "a:b:c", "loss:MAX", "-loss", "\n", "../..", "loss:max:max", "x" * 2000])


@given(tags=st.lists(HOSTILE, min_size=1, max_size=3), data=st.data(), fmt=st.sampled_from(["plain", "json", "csv", "grid"]))
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_hostile_metrics_arguments_give_a_table_or_one_line_error(runs, repo, tags, data, fmt):
    if not (repo / ".runs/tensorboard/a").exists():
        sweep(repo)
    sort = data.draw(st.sampled_from([*tags, "name", "-" + tags[0]]) | HOSTILE)
    result = runs("table", "-c", "name", *[part for tag in tags for part in ("--metrics", tag)], f"--sort={sort}", "-f", fmt)
    assert result.code in (0, 1, 2), result
    assert "Traceback" not in result.err
    if result.code != 0:
        assert result.err.count("\n") == 1 and result.err.startswith("runs: error: "), result.err
    elif fmt == "json":
        assert sorted(row["name"] for row in json.loads(result.out)) == ["a", "b", "c", "none"]
    elif fmt == "csv":
        import csv
        import io

        assert len(list(csv.reader(io.StringIO(result.out)))) == 1 + 4
    elif fmt == "plain":
        assert len(result.out.splitlines()) == 2 + 4  # one line per run, whatever the tags


# Reading incrementally ----------------------------------------------------------------------

def test_a_file_being_written_is_read_again_only_from_where_the_last_read_stopped(runs, repo):
    write_db(repo, {"live": {"command": "python train.py"}})  # no outcome: still running as far as runs knows
    writer = Writer(tb(repo, "live"))
    for step in range(5):
        writer.add("loss", step, 1.0 / (step + 1))
    writer.flush()
    path = writer.path
    assert table_json(runs, "--metrics", "loss,loss:count") == [{"name": "live", "loss": 0.2, "loss:count": 5}]
    state = cached(repo)[path]
    assert state["offset"] == os.path.getsize(path)
    first_offset = state["offset"]
    # The cache's min for the part already read is changed behind runs' back: had the next
    # read started over, it would not survive.
    conn = sqlite3.connect(repo / CACHE)
    state["tags"]["loss"][3] = -100.0
    conn.execute("UPDATE files SET state = ? WHERE path = ?", (json.dumps(state), path))
    conn.commit()
    conn.close()
    for step in range(5, 8):
        writer.add("loss", step, 1.0 / (step + 1))
    writer.flush()
    assert os.path.getsize(path) > first_offset
    rows = table_json(runs, "--metrics", "loss,loss:count,loss:min,loss:step")
    assert rows == [{"name": "live", "loss": 0.125, "loss:count": 8, "loss:min": -100.0, "loss:step": 7}]
    assert cached(repo)[path]["offset"] == os.path.getsize(path)
    writer.close()


def test_an_unchanged_file_is_not_read_again(runs, repo):
    sweep(repo)
    table_json(runs, "--metrics", "loss")
    before = cached(repo)
    mtimes = {path: os.stat(repo / CACHE).st_mtime_ns for path in before}
    assert table_json(runs, "--metrics", "loss")[0] == {"name": "a", "loss": 0.5}
    assert cached(repo) == before
    assert {path: os.stat(repo / CACHE).st_mtime_ns for path in before} == mtimes  # nothing was written


def test_a_torn_record_at_the_end_is_no_error_and_is_read_once_whole(runs, repo):
    write_db(repo, {"live": {"command": "python train.py"}})
    path = write_scalars(tb(repo, "live"), loss_curve(6))
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])  # the last record cut: a writer that has not flushed it all
    result = runs("table", "-c", "name", "--metrics", "loss:step,loss")
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines()[2].split() == ["live", "4", "0.2"]
    state = cached(repo)[str(path)]
    assert state["torn"] and state["offset"] < len(whole) - 7
    with open(path, "ab") as f:  # the writer finishes the record
        f.write(whole[-7:])
    assert table_json(runs, "--metrics", "loss:step,loss") == [{"name": "live", "loss:step": 5, "loss": pytest.approx(1 / 6)}]
    assert cached(repo)[str(path)]["offset"] == len(whole)


def test_a_truncated_file_of_an_ended_run_is_named_once_and_the_table_prints(runs, repo):
    sweep(repo)
    path = next((repo / ".runs/tensorboard/a").glob("events.out.tfevents.*"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # mid-record: the last acc (0.75, step 2) is lost
    result = runs("table", "-c", "name", "--metrics", "acc:max,acc:step")
    assert result.code == 0
    assert result.out.splitlines()[2].split() == ["a", "0.875", "1"]
    assert result.err.count(str(path)) == 1
    assert result.err.startswith("runs: warning: ") and "incomplete record" in result.err
    assert len(result.out.splitlines()) == 2 + 4


def test_a_corrupt_file_is_named_once_and_what_precedes_the_damage_counts(runs, repo):
    sweep(repo)
    path = next((repo / ".runs/tensorboard/a").glob("events.out.tfevents.*"))
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF  # inside one of the last records
    path.write_bytes(bytes(data))
    garbage = repo / ".runs/tensorboard/b/events.out.tfevents.123.host"
    garbage.write_bytes(os.urandom(5000))
    for _ in range(2):  # cached or read: the same table, the same warnings
        result = runs("table", "-c", "name", "--metrics", "loss:count,acc:count", "--format", "json")
        assert result.code == 0
        rows = json.loads(result.out)
        assert rows[0]["loss:count"] == 4 and rows[0]["acc:count"] < 3
        assert rows[1] == {"name": "b", "loss:count": 2, "acc:count": 1}
        warnings = result.err.splitlines()
        assert len(warnings) == 2, result.err
        assert all(w.startswith("runs: warning: ") and "is damaged" in w for w in warnings)
        assert result.err.count(str(path)) == 1 and result.err.count(str(garbage)) == 1
        assert "Traceback" not in result.err


def test_a_file_replaced_or_shrunk_is_read_again_from_the_start(runs, repo):
    write_db(repo, ended("exp"))
    path = write_scalars(tb(repo, "exp"), loss_curve(8))
    assert table_json(runs, "--metrics", "loss:count")[0]["loss:count"] == 8
    # The same name, written anew (another inode), with fewer points.
    path.unlink()
    other = write_scalars(tb(repo, "exp"), [("loss", 0, 7.0), ("loss", 1, 6.0)])
    os.replace(other, path)
    assert table_json(runs, "--metrics", "loss:count,loss:max") == [{"name": "exp", "loss:count": 2, "loss:max": 7.0}]
    # Cut in place (same inode, shorter): also from the start.
    data = path.read_bytes()
    with open(path, "r+b") as f:
        f.truncate(len(data) - 1)
    ino = os.stat(path).st_ino
    assert cached(repo)[str(path)]["ino"] == ino
    assert table_json(runs, "--metrics", "loss:count,loss:max") == [{"name": "exp", "loss:count": 1, "loss:max": 7.0}]


def test_the_cache_forgets_the_files_of_runs_that_are_gone(runs, repo):
    sweep(repo)
    table_json(runs, "--metrics", "loss")
    assert len(cached(repo)) == 3
    entries = yaml.safe_load((repo / ".runs/.runs.yml").read_text())
    del entries["a"]  # as if deleted or renamed: its directory is no run's now
    write_db(repo, entries)
    table_json(runs, "--metrics", "loss", "--pattern", "b")  # a part of the runs: nothing is forgotten
    assert len(cached(repo)) == 3
    assert [r["name"] for r in table_json(runs, "--metrics", "loss")] == ["b", "c", "none"]
    assert sorted(os.path.basename(os.path.dirname(p)) for p in cached(repo)) == ["b", "c"]


def test_a_damaged_cache_is_rebuilt(runs, repo):
    sweep(repo)
    (repo / CACHE).write_bytes(b"not sqlite at all" * 100)
    assert table_json(runs, "--metrics", "loss")[2] == {"name": "c", "loss": 1.3333334}
    assert len(cached(repo)) == 3


# Restarts ---------------------------------------------------------------------------------

def test_a_restart_without_a_purge_shows_every_point_and_the_largest_step_is_last(runs, repo):
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    write_scalars(logdir, [("loss", step, 10.0 - step) for step in range(10)], suffix=".1")
    # Restarted from a checkpoint at step 5, without purge_step: TensorBoard shows both attempts.
    write_scalars(logdir, [("loss", step, 20.0 + step) for step in range(5, 8)], suffix=".2")
    assert metrics_json(runs, "exp")["loss"] == {"count": 13, "step": 9, "last": 1.0, "min": 1.0, "max": 27.0,
                                                 "mean": pytest.approx((55 + 60 + 18) / 13)}


def test_a_later_step_written_again_is_won_by_the_newer_point(runs, repo):
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    write_scalars(logdir, [("loss", 0, 3.0), ("loss", 1, 2.0)], suffix=".1")
    write_scalars(logdir, [("loss", 1, 1.5)], suffix=".2")
    assert metrics_json(runs, "exp")["loss"]["last"] == 1.5


def test_a_restart_with_purge_step_drops_the_orphaned_points_as_tensorboard_does(runs, repo):
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    # Both attempts record a SessionLog START (PyTorch's and tensorboardX's purge_step); the
    # second, at step 5, orphans the first attempt's steps 5 to 9.
    write_scalars(logdir, [("loss", step, 10.0 - step) for step in range(10)] + [("acc", 9, 0.9)], suffix=".1", purge_step=0)
    write_scalars(logdir, [("loss", step, 20.0 + step) for step in range(5, 8)], suffix=".2", purge_step=5)
    rows = metrics_json(runs, "exp")
    assert rows["loss"] == {"count": 8, "step": 7, "last": 27.0, "min": 6.0, "max": 27.0,
                            "mean": pytest.approx((10 + 9 + 8 + 7 + 6 + 25 + 26 + 27) / 8)}
    assert "acc" not in rows  # its only point, at step 9, was orphaned too
    assert table_json(runs, "--metrics", "loss,loss:max") == [{"name": "exp", "loss": 27.0, "loss:max": 27.0}]


def test_a_first_start_is_no_restart_so_one_purge_step_purges_nothing(runs, repo):
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    write_scalars(logdir, [("loss", step, 10.0 - step) for step in range(10)], suffix=".1")
    # The run directory's only START: TensorBoard's accumulator takes it for the start of a session.
    write_scalars(logdir, [("loss", step, 20.0 + step) for step in range(5, 8)], suffix=".2", purge_step=5)
    assert metrics_json(runs, "exp")["loss"]["count"] == 13


# Installation and imports -----------------------------------------------------------------

def run_without(module: str, *argv: str) -> subprocess.CompletedProcess:
    """`runs ARGV` in a process where ``module`` cannot be imported (as if not installed)."""
    code = (f"import sys; sys.modules[{module!r}] = None; sys.argv = ['runs', *{list(argv)!r}]\n"
            "from runs_manager.__main__ import console; console()")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.mark.parametrize("module", ["tensorboard", "crc32c"])
def test_without_the_reader_installed_metrics_are_a_one_line_error(repo, module):
    sweep(repo)
    for argv in (["table", "--metrics", "loss"], ["metrics", "a"]):
        done = run_without(module, *argv)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr == (f"runs: error: reading TensorBoard events needs {module}: "
                               "pip install 'runs-manager[metrics]'\n")
    assert run_without(module, "table").returncode == 0


def test_nothing_but_the_metrics_path_imports_tensorboard(repo):
    sweep(repo)
    code = ("import sys; from runs_manager.main import main; main(sys.argv[1:]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorboard', 'crc32c', 'google') "
            "or m == 'runs_manager.metrics'))")

    def imported(*argv: str) -> List[str]:
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout.splitlines()[-1].replace("'", '"')))

    assert imported("table") == []
    assert imported("list") == []
    with_metrics = imported("table", "--metrics", "loss")
    assert "runs_manager.metrics" in with_metrics and "tensorboard.compat.proto.event_pb2" in with_metrics
    # Read once, cached: a table of unchanged files imports no TensorBoard at all.
    assert [m for m in imported("table", "--metrics", "loss") if m.startswith("tensorboard")] == []



@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: the files are read in this process")
def test_much_to_read_is_read_by_one_process_per_core_with_the_same_result(runs, repo, monkeypatch):
    from runs_manager.metrics import files as metric_files

    sweep(repo)
    serial = table_json(runs, "--metrics", "loss,acc:max,loss:count")
    (repo / CACHE).unlink()
    monkeypatch.setattr(metric_files, "PARALLEL_BYTES", 0)  # any amount is "much" here
    assert table_json(runs, "--metrics", "loss,acc:max,loss:count") == serial
    assert len(cached(repo)) == 3 and all(s["offset"] == s["size"] for s in cached(repo).values())


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (1, 0, 2, 3), (3, 2, 1, 0), (2, 3, 0, 1)])
@pytest.mark.parametrize("split", [False, True])  # one event file, or two merged
@pytest.mark.parametrize("writer", WRITERS)
def test_nan_is_counted_apart_whatever_its_place(runs, repo, order, split, writer):
    """loss [nan, 1, 0.5, 2] in any order, in one file or two: min 0.5, max 2, mean of the
    three numbers, loss:nan 1; and a run whose best is NaN sorts after every number."""
    values = [float("nan"), 1.0, 0.5, 2.0]
    points = [("loss", step, values[i]) for step, i in enumerate(order)]
    write_db(repo, {"r": ended("r"), "diverged": ended("diverged"), "fine": ended("fine")})
    if split:
        write_with(writer, tb(repo, "r"), points[:2], suffix=".a")
        write_with(writer, tb(repo, "r"), points[2:], suffix=".b")
    else:
        write_with(writer, tb(repo, "r"), points)
    write_with(writer, tb(repo, "diverged"), [("loss", 0, float("nan"))])
    write_with(writer, tb(repo, "fine"), [("loss", 0, 3.0)])
    got = metrics_json(runs, "r")["loss"]
    assert (got["min"], got["max"], got["count"], got["nan"]) == (0.5, 2.0, 4, 1)
    assert abs(got["mean"] - 3.5 / 3) < 1e-6
    rows = table_json(runs, "--metrics", "loss:min,loss:nan", "--sort", "-loss:min")
    assert [row["name"] for row in rows] == ["fine", "r", "diverged"]  # NaN last, whichever direction
    assert rows[2]["loss:min"] == "NaN" and rows[2]["loss:nan"] == 1
    assert [row["name"] for row in table_json(runs, "--metrics", "loss:min", "--sort", "loss:min")] == ["r", "fine", "diverged"]


def test_any_tag_can_be_asked_for_in_quotes(runs, repo):
    write_db(repo, ended("exp"))
    writer = Writer(tb(repo, "exp"))
    for i, tag in enumerate(["a,b", " x ", "", 'q"t', "plain"]):
        writer.add(tag, 0, float(i))
        writer.add(tag, 1, float(i) + 10)
    writer.close()
    wanted = '"a,b":max, " x ",""  ,"q""t":min,plain'
    rows = table_json(runs, "--metrics", wanted)
    assert rows == [{"name": "exp", '"a,b":max': 10.0, '" x "': 11.0, '""': 12.0, '"q""t":min': 3.0, "plain": 14.0}]
    for bad, message in (('"open', "not closed"), ('"a"b', "after a quoted tag")):
        result = runs("table", "--metrics", bad)
        assert result.code == 1 and message in result.err and "Traceback" not in result.err


def test_runs_metrics_never_cuts_a_tag_name(runs, repo):
    """The tag is what --metrics must be given: shown whole at any column width."""
    tag = "validation/per_class_accuracy/long_tail_classes_top5"
    write_db(repo, ended("exp"))
    write_scalars(tb(repo, "exp"), [(tag, 0, 0.5)])
    for width in ([], ["--column-width", "10"]):
        result = runs("metrics", "exp", *width)
        assert result.code == 0 and tag in result.out
