"""`runs tensorboard PATTERN [-- ARGS...]`: TensorBoard on the matching runs, each under its name.

TensorBoard is not a dependency of runs: the `tensorboard` program beside runs' own
Python (what `pip install 'runs-manager[metrics]'` installs into the same environment,
found without that environment activated), else on PATH, is started in a process group of
its own, its output relayed, and the URL it serves printed on stdout. A Ctrl-C (or any
SIGINT, SIGTERM, SIGHUP or SIGQUIT to runs) is passed on to it once, and runs ends with it. The runs are given to it as
``--logdir VIEW``: a temporary directory with one symbolic link per run, named after the
run (``sweep/lr-0.1`` is VIEW/sweep/lr-0.1), to its TensorBoard directory; TensorBoard
follows the links and names each run exactly as runs does. runs removes VIEW when
TensorBoard ends. Not ``--logdir_spec name1:dir1,name2:dir2``: TensorBoard splits that
at every ',' (which run names may hold) and a name from its directory at the first ':',
shows a run's own directory as "name/.", and turns its fast loader off for it.
"""
from __future__ import annotations

import sys

from runs_manager import flags
from runs_manager.errors import RunsError

NAME = "tensorboard"
HELP = "start TensorBoard on runs matching a pattern"
INSTALL = "pip install tensorboard"

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List

    from runs_manager.settings import Settings


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Start TensorBoard on the TensorBoard directories of the runs whose whole name matches "
        "PATTERN (a regular expression), each shown under its run name (through a temporary directory "
        "of links, given as --logdir), and print its URL. Arguments "
        "after -- go to tensorboard: runs tensorboard 'sweep/.*' -- --port 6007 --bind_all",
    )
    parser.add_argument("pattern", metavar="PATTERN", help="regular expression for whole names: 'exp1|exp2', 'sweep/.*'")
    parser.add_argument("args", metavar="TENSORBOARD-ARGS", nargs="*", help="passed to tensorboard (after --)")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: tensorboard(settings, args.pattern, args.args))


def tensorboard(settings: Settings, pattern: str, extra: List[str]) -> int:
    import os
    import shutil

    from runs_manager import names as run_names, patterns
    from runs_manager.runtime import runfiles, runs
    from runs_manager.output import printable

    for arg in extra:
        if arg.split("=", 1)[0] in ("--logdir", "--logdir_spec"):
            raise RunsError(f"runs tensorboard gives tensorboard the runs' directories itself; do not pass {arg.split('=', 1)[0]}")
    matches = patterns.matching(pattern, runs.database(settings).read(lambda index: index.names()))
    if not matches:
        raise RunsError(f"no runs match {pattern!r}")
    program = _program()
    dirs: Dict[str, str] = {}
    for name in matches:
        if not run_names.is_valid(name):
            _note(f"'{printable(name)}' is not a valid run name; left out")
            continue
        directory = os.path.abspath(runfiles.tensorboard_dir(settings, name))
        if not os.path.isdir(directory):
            _note(f"'{printable(name)}' has no TensorBoard directory ({directory}); left out")
            continue
        dirs[name] = directory
    if not dirs:
        raise RunsError(f"none of the runs matching {pattern!r} has a TensorBoard directory")
    view = _view(dirs)
    try:
        return _run([program, "--logdir", view, *extra], len(dirs))
    finally:
        shutil.rmtree(view, ignore_errors=True)  # our own temporary directory of links: never a run's files


def _program() -> str:
    """TensorBoard beside this Python (a virtualenv's bin/, not activated), else on PATH."""
    import os
    import shutil

    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "tensorboard")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    program = shutil.which("tensorboard")
    if program is None:
        raise RunsError(f"TensorBoard is not installed: there is no 'tensorboard' program beside {sys.executable} "
                        f"or on PATH; install it with '{INSTALL}'")
    return program


def _view(dirs: Dict[str, str]) -> str:
    """A temporary directory of symbolic links, VIEW/NAME -> the run's TensorBoard directory."""
    import os
    import tempfile

    view = tempfile.mkdtemp(prefix="runs-tensorboard-")
    for name, directory in dirs.items():
        link = os.path.join(view, name)
        parts = name.split("/")
        # A hand edit can leave both 'a' and 'a/b': never make a link inside a run's own directory.
        if any(os.path.islink(os.path.join(view, *parts[:i])) for i in range(1, len(parts))):
            _note(f"'{name}' is inside the group of another run of that name; left out")
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        try:
            os.symlink(directory.rstrip(os.sep), link)
        except FileExistsError:
            _note(f"'{name}' is also a group of other runs; left out")
    return view


def _run(argv: List[str], count: int) -> int:
    """Run TensorBoard until it ends, relaying its stderr and printing the URL it serves."""
    import re
    import signal
    import subprocess

    started: List[Any] = []
    received: List[int] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        if started:
            started[0].send_signal(signum)

    # Set before TensorBoard starts: a signal in between is passed on once it has.
    ending = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
    previous = {signum: signal.signal(signum, forward) for signum in ending}
    shown = False
    try:
        try:
            # A group of its own: a terminal's Ctrl-C reaches runs alone, which passes it on
            # once (twice, TensorBoard would print a traceback), as any signal sent to runs.
            proc = subprocess.Popen(argv, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise RunsError(f"cannot start {argv[0]}: {e.strerror}") from None
        started.append(proc)
        for signum in received:
            proc.send_signal(signum)
        assert proc.stderr is not None
        while True:
            line = proc.stderr.readline()
            if not line:
                break
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
            url = re.search(rb"TensorBoard .*?at (https?://\S+)", line)  # "TensorBoard 2.21.0 at http://localhost:6006/ (...)"
            if url and not shown:
                shown = True
                print(f"TensorBoard on {count} run{'s' if count != 1 else ''}: {url.group(1).decode(errors='replace')}", flush=True)
        code = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if signal.SIGINT in received:
        return 130  # ended by a Ctrl-C, as any command of runs
    return 128 - code if code < 0 else code


def _note(text: str) -> None:
    print(f"runs: {text}", file=sys.stderr)
