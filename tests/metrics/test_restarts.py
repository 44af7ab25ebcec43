"""Restarts: TensorBoard's purges, read as a stream and kept in the cache (metrics/restarts.py).

The reference is TensorBoard itself: its server's event accumulator
(``plugin_event_accumulator``) reads the same run directory, and runs must show what it
shows. Event files are written by tensorboardX (``purge_step``, as PyTorch users resume),
TensorBoard's own EventFileWriter, and TensorBoard's RecordWriter for files without a
file version (old writers, hand-rolled ones).
"""
from __future__ import annotations

import sqlite3
import time
import tracemalloc
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.commands.test_metrics import CACHE, Writer, cached, ended, metrics_json, tb, write_db, write_scalars

Points = List[Tuple[str, int, float]]


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    return repo


def tensorboard_view(logdir: Path) -> Dict[str, Dict[str, Any]]:
    """Each tag's count, last step, value there, min and max, as TensorBoard's server reads the directory."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.util import tensor_util

    accumulator = pea.EventAccumulator(str(logdir), size_guidance={pea.TENSORS: 0})  # 0: keep every point
    accumulator.Reload()
    view = {}
    for tag in accumulator.Tags()["tensors"]:
        events = accumulator.Tensors(tag)
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name != "scalars" or not events:
            continue  # every point purged
        points = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events]
        top = max(step for step, _ in points)
        view[tag] = {"count": len(points), "step": top, "last": [v for s, v in points if s == top][-1],
                     "min": min(v for _, v in points), "max": max(v for _, v in points)}
    return view


def runs_view(runs: Any, name: str) -> Dict[str, Dict[str, Any]]:
    return {tag: {key: row[key] for key in ("count", "step", "last", "min", "max")}
            for tag, row in metrics_json(runs, name).items()}


def write_legacy(logdir: Path, number: int, points: Points) -> None:
    """A file without a file version (event format 1), through TensorBoard's record writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    with open(logdir / f"events.out.tfevents.{number:04d}.legacy", "wb") as f:
        writer = RecordWriter(f)
        for tag, step, value in points:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
            writer.write(event_pb2.Event(step=step, wall_time=1.0, summary=summary).SerializeToString())
        writer.flush()


def write_session(logdir: Path, number: int, purge: Optional[int], points: Points, legacy: bool) -> None:
    if legacy:
        write_legacy(logdir, number, points)
    else:
        write_scalars(logdir, points, suffix=f".{number:04d}", purge_step=purge)


SESSION = st.tuples(
    st.one_of(st.none(), st.integers(0, 8)),  # purge_step (a START), or none
    st.lists(st.tuples(st.sampled_from(["loss", "acc", "val/loss"]), st.integers(0, 10),
                       st.sampled_from([0.5, 1.0, 2.0, -3.0, 4.5])), max_size=12),
)
COUNTER = iter(range(10**6))


def one_tag(purge: Optional[int], steps: range) -> Tuple[Optional[int], Points]:
    return purge, [("loss", step, float(step)) for step in steps]


@given(sessions=st.lists(SESSION, min_size=1, max_size=6), legacy=st.booleans(), seen=st.integers(0, 6))
# The first START is no restart: points before it at steps above it stay.
@example(sessions=[one_tag(None, range(6)), one_tag(3, range(3, 4)), one_tag(5, range(5, 6))], legacy=False, seen=3)
# Old format: a step going back purges its tags only; the purging summary's step is the new last.
@example(sessions=[(None, [("loss", 5, 1.0), ("acc", 6, 1.0), ("loss", 2, 2.0), ("loss", 4, 4.5), ("acc", 3, 0.5)])],
         legacy=True, seen=0)
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_any_restarts_show_what_tensorboard_shows_first_and_after_more_files(runs, repo, sessions, legacy, seen):
    """Sessions (a restart each, with or without purge_step; or old-format files whose steps
    go back): read after the first ``seen`` files, then after all of them (the cache's kept
    result grows, or is read again when a new file restarts)."""
    name = f"r{next(COUNTER)}"
    write_db(repo, ended(name))
    logdir = tb(repo, name)
    for number, (purge, points) in enumerate(sessions):
        if number == seen:
            assert runs_view(runs, name) == tensorboard_view(logdir)
        write_session(logdir, number, purge, points, legacy)
    assert runs_view(runs, name) == tensorboard_view(logdir)


def test_a_resumed_run_still_writing_is_read_on_from_the_kept_result(runs, repo, monkeypatch):
    """Two attempts, the second still writing (TensorBoard's own writer): each read after the
    first folds only the new points; a third attempt is read again, once."""
    from runs_manager.metrics import restarts

    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    write_scalars(logdir, [("loss", step, 10.0 - step) for step in range(10)], suffix=".1", purge_step=0)
    writer = Writer(logdir)  # the second attempt: resumes at step 5
    writer.add_start(5)
    for step in range(5, 8):
        writer.add("loss", step, 20.0 + step)
    writer.flush()
    read_again = []
    monkeypatch.setattr(restarts, "_read_again", lambda *a, real=restarts._read_again: read_again.append(1) or real(*a))
    assert runs_view(runs, "exp") == tensorboard_view(logdir) and len(read_again) == 1
    assert runs_view(runs, "exp")["loss"]["count"] == 8 and len(read_again) == 1  # nothing new: the kept result
    for step in range(8, 12):
        writer.add("loss", step, 20.0 + step)
    writer.flush()
    assert runs_view(runs, "exp") == tensorboard_view(logdir) and len(read_again) == 1  # grown, not read again
    assert runs_view(runs, "exp")["loss"] == {"count": 12, "step": 11, "last": 31.0, "min": 6.0, "max": 31.0}
    writer.close()
    time.sleep(1.1)  # event files are named by the second they were made in: this one sorts last
    write_scalars(logdir, [("loss", step, 40.0 + step) for step in range(3, 5)], suffix=".3", purge_step=3)
    assert runs_view(runs, "exp") == tensorboard_view(logdir) and len(read_again) == 2  # a new restart
    assert runs_view(runs, "exp")["loss"]["count"] == 5


def test_a_restart_inside_the_growing_file_is_a_purge_too(runs, repo):
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    writer = Writer(logdir)
    writer.add_start(0)
    for step in range(6):
        writer.add("loss", step, float(step))
    writer.add_start(0)  # a second START in the same file: a restart purges everything so far
    writer.add("loss", 0, 9.0)
    writer.flush()
    assert runs_view(runs, "exp") == tensorboard_view(logdir) == {
        "loss": {"count": 1, "step": 0, "last": 9.0, "min": 9.0, "max": 9.0}}
    writer.add_start(1)
    writer.add("loss", 1, 7.0)
    writer.flush()
    assert runs_view(runs, "exp") == tensorboard_view(logdir)
    assert runs_view(runs, "exp")["loss"]["count"] == 2


def kept_rows(repo: Path) -> Dict[str, Dict[str, Any]]:
    return cached(repo, "replays")


def test_the_kept_result_is_per_run_directory_and_a_damaged_one_is_read_again(runs, repo):
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    (logdir / "train").mkdir()
    write_scalars(logdir / "train", [("loss", step, 1.0 + step) for step in range(6)], suffix=".1", purge_step=0)
    write_scalars(logdir / "train", [("loss", 2, 0.5)], suffix=".2", purge_step=2)
    write_scalars(logdir, [("lr", 0, 0.25)])  # no restart here: nothing kept for it
    want = runs_view(runs, "exp")
    assert want == {"train/loss": {"count": 3, "step": 2, "last": 0.5, "min": 0.5, "max": 2.0},
                    "lr": {"count": 1, "step": 0, "last": 0.25, "min": 0.25, "max": 0.25}}
    assert list(kept_rows(repo)) == [str(logdir / "train")]
    for damage in ('{"files": 1}', "not json", '{"files": [], "rule": [null, true, 0], "tags": {"loss": [0]}}'):
        conn = sqlite3.connect(repo / CACHE)
        conn.execute("UPDATE replays SET state = ?", (damage,))
        conn.commit()
        conn.close()
        assert runs_view(runs, "exp") == want
    assert runs("delete", "exp", "-y").code == 0
    write_db(repo, ended("other"))
    write_scalars(tb(repo, "other"), [("loss", 0, 1.0)])
    assert runs("table", "--metrics", "loss").code == 0
    assert kept_rows(repo) == {}  # the deleted run's kept result is dropped with its files


def test_memory_holds_no_point_of_a_purged_run(runs, repo, monkeypatch):
    """100,000 points in two attempts, read in chunks of 64 KB: the first read's peak is a
    few chunks (a list of every point, as before, is about 12 MB)."""
    from runs_manager.metrics import files

    monkeypatch.setattr(files, "CHUNK", 64 << 10)
    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    writer = Writer(logdir)
    writer.add_start(0)
    for step in range(50_000):
        writer.add("loss", step, 1.0 / (step + 1))
    writer.add_start(25_000)
    for step in range(25_000, 75_000):
        writer.add("loss", step, 2.0)
    writer.close()
    tracemalloc.start()
    try:
        rows = metrics_json(runs, "exp")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows["loss"]["count"] == 75_000 and rows["loss"]["min"] == pytest.approx(1 / 25_000)
    assert peak < 2 << 20, f"peak {peak / 1e6:.1f} MB"


def write_records(path: Path, events: List[Any]) -> None:
    """Events as they are, through TensorBoard's record writer (no file version of its own)."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    with open(path, "ab") as f:
        writer = RecordWriter(f)
        for event in events:
            writer.write(event.SerializeToString())
        writer.flush()


def point(tag: str, step: int, value: float) -> Any:
    from tensorboard.compat.proto import event_pb2, summary_pb2

    return event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]))


def test_a_version_that_changes_within_a_file_is_read_as_tensorboard_reads_it(runs, repo):
    """'brain.Event:1', c@4, c@3, then 'brain.Event:2': the step going back purged c@4 (old format)."""
    from tensorboard.compat.proto import event_pb2

    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    write_records(logdir / "events.out.tfevents.1.x", [event_pb2.Event(file_version="brain.Event:1"), point("c", 4, 1.0),
                                                      point("c", 3, 2.0), event_pb2.Event(file_version="brain.Event:2")])
    assert runs_view(runs, "exp") == tensorboard_view(logdir) == {"c": {"count": 1, "step": 3, "last": 2.0, "min": 2.0, "max": 2.0}}


def test_a_restart_in_a_file_that_had_given_no_version_yet_is_seen(runs, repo):
    """The kept result's rule takes the last version any file gave: a last file with none
    yet (a 100-byte record first) must not turn a later START into no restart."""
    from tensorboard.compat.proto import event_pb2

    write_db(repo, ended("exp"))
    logdir = tb(repo, "exp")
    def start(step: int) -> Any:
        return event_pb2.Event(step=step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))

    version = event_pb2.Event(file_version="brain.Event:2")
    write_records(logdir / "events.out.tfevents.1.a", [version, start(0)] + [point("a", s, float(s)) for s in range(6)])
    write_records(logdir / "events.out.tfevents.2.a", [version, start(3)] + [point("a", s, 10.0 + s) for s in (3, 4)])
    last = logdir / "events.out.tfevents.3.a"
    write_records(last, [event_pb2.Event(step=0, tagged_run_metadata=event_pb2.TaggedRunMetadata(tag="m", run_metadata=b"x" * 100))])
    assert runs_view(runs, "exp") == tensorboard_view(logdir)
    write_records(last, [point("a", 5, 99.0), start(4), point("a", 6, 7.0)])  # START 4 orphans steps 4 and 5
    assert runs_view(runs, "exp") == tensorboard_view(logdir)
    assert runs_view(runs, "exp")["a"]["count"] == 5 and runs_view(runs, "exp")["a"]["max"] == 13.0
