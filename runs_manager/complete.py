"""The fast path behind shell completion: ``runs __complete names PREFIX [WORD...]``, and
``runs __complete metrics SHELL WORD [WORD...]`` for the tags of ``--metrics``.

The shell calls it on every Tab that completes a run name, so it imports nothing of
runs' dependencies (no PyYAML, GitPython, libtmux or tabulate; not even runs_manager.main):
it reads names straight from the SQLite index when the index describes the YAML file as
it is now, and falls back to the ordinary, slower path (which brings the index up to date)
otherwise. WORDS are the words of the command line being completed, for --runs-dir and
--db-filename. It prints matching valid names, one a line, and never an error: a broken
setup completes nothing.
"""
from __future__ import annotations

import os
import re
import sqlite3
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

RUNSRC = ".runsrc"
RACY_NS = 2_000_000_000  # as database.RACY_NS: a file this fresh has its content checked, by the slow path
SCHEMA = 4002  # as index.SCHEMA (4000 + params.RULES)
_NAME = re.compile(r"[A-Za-z0-9._+=@,-]+(/[A-Za-z0-9._+=@,-]+)*")  # a valid name: safe as a shell word
_LINE = re.compile(r"([A-Za-z_-]+)[ \t]*:(?:[ \t]+(.*))?")


class _Unsure(Exception):
    """The fast path cannot tell: take the slow one."""


def main(argv: Sequence[str]) -> int:
    if len(argv) >= 3 and argv[0] == "metrics":
        return _main_metrics(argv[1], argv[2], argv[3:])
    if len(argv) < 2 or argv[0] != "names":
        return 2
    prefix, words = argv[1], argv[2:]
    try:
        try:
            names = _fast_names(_settings(words), prefix)
        except (_Unsure, sqlite3.Error, OSError, ValueError, KeyError, TypeError):
            names = _slow_names(words, prefix)
        out = "\n".join(n for n in names if n.startswith(prefix) and _valid(n))
        if out:
            sys.stdout.write(out + "\n")
    except Exception:  # completion must never print a traceback into the user's command line
        return 1
    return 0


def _main_metrics(shell: str, word: str, words: Sequence[str]) -> int:
    """``runs __complete metrics SHELL WORD [WORD...]``: values of --metrics that begin with
    WORD, from the tags the metrics cache knows; for bash quoted as shell words (bash
    inserts them as they are; zsh and fish quote what they insert)."""
    try:
        if shell == "bash":
            import shlex

            try:
                word = "".join(shlex.split(word + ("'" if word.count("'") % 2 else ""))) if word else ""
            except ValueError:
                pass
        values = metric_values(_metric_tags(_settings(words)), word)
        if shell == "bash":
            values = [shlex.quote(v) for v in values]
        if values:
            sys.stdout.write("\n".join(values) + "\n")
    except Exception:
        return 1
    return 0


AGGREGATES = ("last", "min", "max", "mean", "step", "count", "nan")  # as metrics.AGGREGATES


def metric_values(tags: Sequence[str], word: str) -> List[str]:
    """Each way to finish ``word`` (a --metrics value, perhaps a comma list) with a tag, in
    --metrics' own quoting (``"a,b"``), or with an aggregate after a tag and ':'."""
    cut = _last_part(word)
    head, part = word[:cut], word[cut:]
    spelled = sorted(_spelled(tag) for tag in set(tags))
    found = [head + s for s in spelled if s.startswith(part)]
    for s in spelled:
        if part.startswith(s + ":"):
            found += sorted(f"{head}{s}:{a}" for a in AGGREGATES if f"{s}:{a}".startswith(part))
    return found


def _last_part(word: str) -> int:
    """Where the last comma-separated part of ``word`` begins (commas in quotes do not count)."""
    start, quoted = 0, False
    for i, c in enumerate(word):
        if c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            start = i + 1
    return start


def _spelled(tag: str) -> str:
    """``tag`` as --metrics reads it: in double quotes when it could not be read bare."""
    bare = tag and tag == tag.strip() and "," not in tag and not tag.startswith('"') and (
        tag.rpartition(":")[2] not in AGGREGATES or ":" not in tag)
    return tag if bare else '"' + tag.replace('"', '""') + '"'


def _metric_tags(settings: Tuple[str, str]) -> List[str]:
    """The scalar tags of every run the metrics cache knows, named as runs names them
    (``SUBDIR/TAG`` for a subdirectory's, ``./TAG`` for a top-level one that clashes)."""
    from urllib.parse import quote

    path = os.path.join(*settings) + ".metrics"
    if not os.path.exists(path):
        return []
    conn = sqlite3.connect("file:" + quote(os.path.abspath(path)) + "?mode=ro", uri=True, isolation_level=None)
    try:  # rtrim(path, <its characters but '/'>) is the path's directory, with its '/'
        rows = conn.execute("SELECT DISTINCT f.run, rtrim(f.path, replace(f.path, '/', '')), j.key "
                            "FROM files AS f, json_each(f.state, '$.tags') AS j").fetchall()
    finally:
        conn.close()
    runs: dict[str, tuple[set[str], set[str]]] = {}
    for run, directory, tag in rows:
        top, below = runs.setdefault(run, (set(), set()))
        sub = directory[len(run) + 1:]
        (below if sub else top).add(sub + tag)
    return [name for top, below in runs.values() for name in (*below, *("./" + t if t in below else t for t in top))]


def _valid(name: str) -> bool:
    """As names.is_valid (not imported: it is not needed otherwise): such a name is a shell word."""
    return len(name) <= 1000 and bool(_NAME.fullmatch(name)) and not {".", ".."} & set(name.split("/"))


def _given(words: Sequence[str]) -> dict[str, str]:
    """--runs-dir and --db-filename as given on the command line being completed."""
    given = {}
    for i, word in enumerate(words):
        for key in ("runs-dir", "db-filename"):
            if word == "--" + key and i + 1 < len(words):
                given[key] = words[i + 1]
            elif word.startswith(f"--{key}="):
                given[key] = word.split("=", 1)[1]
    return given


def _settings(words: Sequence[str]) -> Tuple[str, str]:
    """(runs-dir, db-filename) as Settings.load would decide them, read without PyYAML."""
    from runs_manager.settings import find_project  # light: flags and errors, no PyYAML

    found = find_project(os.getcwd())
    project = os.path.relpath(found) if found is not None and found != os.path.abspath(os.getcwd()) else ""
    values = {"runs-dir": ".runs/", "db-filename": ".runs.yml"}
    values.update({k: v for k, v in read_runsrc(os.path.join(project, RUNSRC)).items() if v is not None})
    values["runs-dir"] = os.path.join(project, os.path.expanduser(values["runs-dir"]))  # the project's, as Settings.load
    values.update({k: v for k, v in _given(words).items() if v})
    return os.path.expanduser(values["runs-dir"]), os.path.expanduser(values["db-filename"])


def read_runsrc(path: str) -> dict[str, Optional[str]]:
    """runs-dir and db-filename of a .runsrc of simple ``key: value`` lines (None: the
    default). Anything YAML might read otherwise (quotes with escapes, flow or block
    values, more documents) raises _Unsure."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    found: dict[str, Optional[str]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t-":  # part of the value above
            if current is not None:
                raise _Unsure
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise _Unsure
        current = match.group(1).replace("_", "-")
        if current not in ("runs-dir", "db-filename"):
            current = None
            continue
        if current in found:
            raise _Unsure  # given twice: an error the slow path reports
        found[current] = _scalar(match.group(2) or "")
        if found[current] is not None:
            current = None  # a plain value on its line; an empty one may continue below
    return found


def _scalar(raw: str) -> Optional[str]:
    value = re.sub(r"[ \t]+#.*", "", raw).strip()
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    if value[0] == "'" and value[-1] == "'" and len(value) >= 2 and "'" not in value[1:-1]:
        return value[1:-1] or None
    if value[0] == '"' and value[-1] == '"' and len(value) >= 2 and not set('"\\') & set(value[1:-1]):
        return value[1:-1] or None
    if value[0] in "'\"[]{}&*!|>%@`,?:" or ": " in value or value.endswith(":"):
        raise _Unsure
    return value


def _fast_names(settings: Tuple[str, str], prefix: str) -> List[str]:
    runs_dir, db_filename = settings
    db = os.path.join(runs_dir, db_filename)
    index = db + ".index"
    if not os.path.lexists(db):
        return []
    if os.path.lexists(db + ".pending"):
        raise _Unsure  # a change may have died half-way: the slow path finishes or undoes it
    from urllib.parse import quote

    conn = sqlite3.connect("file:" + quote(os.path.abspath(index)) + "?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
            raise _Unsure
        import json

        state = json.loads(conn.execute("SELECT json FROM state").fetchone()[0])
        st = os.stat(db)
        if (state["ino"], state["size"], state["mtime_ns"], state["ctime_ns"]) != (
            st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
        ) or st.st_mtime_ns + RACY_NS >= os.stat(index).st_mtime_ns:
            raise _Unsure
        rows = conn.execute(
            "SELECT name FROM runs WHERE name >= ? AND name < ? ORDER BY name", (prefix, prefix + "\U0010ffff")
        )
        return [name for (name,) in rows]
    finally:
        conn.close()


def _slow_names(words: Sequence[str], prefix: str) -> List[str]:
    """The ordinary way, through Settings and the Database (which may rebuild the index)."""
    from runs_manager.runtime import runs
    from runs_manager.settings import Settings

    settings = Settings.load(_given(words))
    return [n for n in runs.database(settings).read(lambda index: index.names()) if n.startswith(prefix)]
