"""The text of the YAML database: entries round-trip exactly, byte ranges are right, chunked
parsing agrees with parsing the file whole, and long names survive append and splice."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from runs_manager.store import yamlfile
from runs_manager.store.database import Database
from runs_manager.errors import RunsError

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

# Strings YAML is known to be touchy about: implicit types, indicators, line breaks of all
# kinds, control characters, a BOM, astral characters, spaces at either end.
TRICKY = [
    "1e3", "1.5", "0x1F", "0o17", "012", "+1", "-.inf", ".nan", "yes", "No", "on", "OFF", "y", "n", "true", "null",
    "Null", "~", "", "2020-01-01", "2020-01-01 10:00:00", "2001-12-14t21:59:43.10-05:00", "12:30:00", "=", "<<",
    "- a", "? x", ": y", "#c", "a #b", "a: b", "'q'", '"d"', "\u2028", "\u2029", "\x85", "\ufeff", "\ufeffx",
    " lead", "trail ", " ", "\n", "\n\n", "a\n", "\na", "a\n\nb", "a \nb", "a\n b", "\t", "a\tb", "\r", "\r\n", "...",
    "---", "--- a", "%x", "@", "`", "!t", "!!str", "&a", "*a", "|", ">", "|-\n a", "{}", "[]", "[a, b]", "{a: 1}",
    "\x00", "\x07", "\x1b[31m", "\x7f", "\x9f", "\U0001F600", "\ufffe", "\uffff", "\U0010ffff", "\\", "\\n",
    'say "hi"\n', "it's", "%YAML 1.1", "a\u2028b", "a\x85b",
]
tricky = st.sampled_from(TRICKY)
text_values = st.one_of(
    st.text(),
    tricky,
    st.lists(st.one_of(tricky, st.text(max_size=4)), max_size=6).map("".join),
)
# Names as `runs new` allows them (ASCII letters, digits, ._+=@,- and '/'), sometimes long.
name_chars = st.sampled_from("abcxyz019._+=@,-")
short_names = st.text(name_chars, min_size=1, max_size=12).filter(lambda n: n not in (".", ".."))
long_names = st.integers(129, 400).map(lambda n: "L" + "x" * (n - 1))
names = st.one_of(short_names, short_names, long_names)


def entry_of(command: str, description: str) -> Dict[str, Any]:
    return {
        "command": command,
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "datetime": "2024-05-01T12:00:00+02:00",
        "description": description,
        "host": "box",
    }


# Round trip -------------------------------------------------------------------------------


@FAST
@given(command=text_values, description=text_values)
def test_dump_entry_load_one_round_trip_is_exact(command: str, description: str) -> None:
    entry = entry_of(command, description)
    blob = yamlfile.dump_entry("run", entry)
    assert yamlfile.load_one(blob) == ("run", entry)
    # What the rest of the world reads from the file is the same thing.
    assert yaml.safe_load(blob.decode("utf-8")) == {"run": entry}
    # One whole entry, ready to append: starts the line with its name, ends with a newline.
    assert blob.endswith(b"\n")
    assert blob.startswith(b"run:")


@FAST
@given(name=st.one_of(names, text_values.filter(bool)), value=text_values)
def test_round_trip_for_names_and_nested_values(name: str, value: str) -> None:
    entry = {"command": value, "tags": [value, 1, None], "params": {"lr": value, "n": 3}, "empty": {}}
    blob = yamlfile.dump_entry(name, entry)
    assert yamlfile.load_one(blob) == (name, entry)
    assert yaml.safe_load(blob.decode("utf-8")) == {name: entry}


def test_tricky_values_round_trip_through_the_database_file(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.yml")
    db = Database(path)
    expected = {}
    for i, value in enumerate(TRICKY):
        expected[f"run{i}"] = entry_of(value, value[::-1])
        with db.writing() as txn:
            txn.add(f"run{i}", expected[f"run{i}"])
    with open(path, encoding="utf-8") as f:
        assert yaml.safe_load(f) == expected
    os.unlink(path + ".index")
    with db.reading() as index:
        assert dict(index.entries()) == expected


def test_load_one_refuses_what_is_not_exactly_one_entry() -> None:
    one = yamlfile.dump_entry("a", {"command": "x"})
    two = one + yamlfile.dump_entry("b", {"command": "y"})
    assert yamlfile.load_one(one) == ("a", {"command": "x"})
    assert yamlfile.load_one(two) is None
    assert yamlfile.load_one(b"  " + one) is None  # indented: would not start its own line
    assert yamlfile.load_one(b"{a: {command: x}}\n") is None  # flow style cannot be appended
    assert yamlfile.load_one(b"a: [\n") is None


# Byte ranges ------------------------------------------------------------------------------


@st.composite
def database_files(draw: Any) -> Tuple[bytes, Dict[str, Any]]:
    """A simple database file, as runs writes it or a person edits it, and what it holds."""
    header = draw(st.sampled_from(["", yamlfile_header(), "# only a comment\n\n", "---\n", "%YAML 1.1\n---\n# c\n"]))
    run_names = draw(st.lists(names, min_size=0, max_size=8, unique=True))
    pieces, expected = [header.encode()], {}
    for name in run_names:
        entry = entry_of(draw(text_values), draw(text_values))
        if draw(st.booleans()):
            del entry["host"]
        expected[name] = entry
        blob = yamlfile.dump_entry(name, entry)
        if draw(st.booleans()) and not blob.startswith(b"? "):
            # Hand formatting: a comment on the key line, four-space indentation.
            first, rest = blob.split(b"\n", 1)
            blob = first + b"  # hand-written\n" + b"".join(
                b"  " + line + b"\n" if line.startswith(b"  ") else line + b"\n" for line in rest.splitlines()
            )
        pieces.append(blob)
        pieces.append(draw(st.sampled_from([b"", b"\n", b"# between\n", b"  # indented comment\n", b"\n# x\n\n"])))
    return b"".join(pieces), expected


def yamlfile_header() -> str:
    from runs_manager.store.database import HEADER

    return HEADER.decode()


@FAST
@given(database_files())
def test_byte_ranges_partition_the_file_and_each_range_is_its_entry(generated: Tuple[bytes, Dict[str, Any]]) -> None:
    data, expected = generated
    parser = yamlfile.Parser(data)
    runs = list(parser.runs())
    assert parser.simple or not expected  # '---' alone is a null document: rewritten, not appended to
    assert [name for name, _, _, _ in runs] == list(expected)
    assert parser.header + sum(length for _, _, length, _ in runs) == len(data)
    pos = parser.header
    lines = data.split(b"\n")
    for name, entry, length, line in runs:
        assert entry == expected[name]
        piece = data[pos : pos + length]
        assert yamlfile.load_one(piece) == (name, entry)  # each range stands alone
        # The range starts at its key's line, or at the comment lines directly above it.
        first_line = data.count(b"\n", 0, pos)
        assert first_line <= line
        assert all(comment.startswith(b"#") for comment in lines[first_line:line])
        assert piece.split(b"\n")[line - first_line] == lines[line]
        pos += length


@FAST
@given(database_files(), st.data())
def test_splicing_out_any_ranges_leaves_exactly_the_other_runs(generated: Tuple[bytes, Dict[str, Any]], data: Any) -> None:
    text, expected = generated
    parser = yamlfile.Parser(text)
    runs = list(parser.runs())
    doomed = data.draw(st.sets(st.sampled_from(list(expected)))) if expected else set()
    pieces, pos = [text[: parser.header]], parser.header
    for name, _, length, _ in runs:
        if name not in doomed:
            pieces.append(text[pos : pos + length])
        pos += length
    left = yaml.safe_load(b"".join(pieces).decode("utf-8")) or {}
    assert left == {name: entry for name, entry in expected.items() if name not in doomed}


def run_list(data: bytes, chunked: bool) -> Tuple[List[Any], int, bool]:
    parser = yamlfile.Parser(data)
    runs = list(parser.runs(chunked))
    return runs, parser.header, parser.simple


@FAST
@given(database_files(), st.integers(2, 4))
def test_chunked_parse_gives_the_same_result_as_a_whole_parse(generated: Tuple[bytes, Dict[str, Any]], chunk: int) -> None:
    data, _ = generated
    whole = run_list(data, chunked=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(yamlfile, "CHUNK_ENTRIES", chunk)
        assert run_list(data, chunked=True) == whole
        _, all_runs = yamlfile.parse_all(data)
    assert all_runs == whole[0]


@pytest.mark.parametrize(
    "header", [b"", b"# comment\n", b"---\n", b"%YAML 1.1\n---\n"], ids=["none", "comment", "document-start", "directive"]
)
def test_chunks_of_one_entry_give_the_same_result_as_a_whole_parse(monkeypatch: pytest.MonkeyPatch, header: bytes) -> None:
    """With one entry per chunk the first chunk is the header alone; a '---' there is the
    start of the document, not a null document, so the file is as simple as parsed whole."""
    data = header + b"a:\n  command: x\nb:\n  command: y\n"
    whole = run_list(data, chunked=False)
    assert whole[2] is True
    monkeypatch.setattr(yamlfile, "CHUNK_ENTRIES", 1)
    assert run_list(data, chunked=True) == whole


def many_runs(n: int) -> bytes:
    return b"".join(yamlfile.dump_entry(f"run{i}", {"command": f"python x.py {i}", "n": i}) for i in range(n))


@pytest.mark.parametrize(
    "data",
    [
        # An anchor in one chunk used in the next: the chunk alone does not parse.
        b"a: &base\n  command: x\nb:\n  <<: *base\n  d: 1\nc:\n  <<: *base\n",
        # A quoted scalar that runs on at column 0 (PyYAML allows it).
        b'a:\n  d: "one\nb: two"\nc:\n  d: 3\n',
        # A flow mapping over several lines with keys at column 0.
        b"{a: {command: x},\nb: {command: y},\nc: {command: z}}\n",
        many_runs(7) + b"# trailing comment\n",
    ],
    ids=["anchor-across-chunks", "quoted-over-lines", "flow-over-lines", "plain"],
)
@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunked_parse_falls_back_to_whole_where_needed(monkeypatch: pytest.MonkeyPatch, data: bytes, chunk: int) -> None:
    expected = yaml.safe_load(data.decode())
    monkeypatch.setattr(yamlfile, "CHUNK_ENTRIES", chunk)
    parser, runs = yamlfile.parse_all(data)
    assert {name: entry for name, entry, _, _ in runs} == expected
    assert [name for name, _, _, _ in runs] == list(expected)


@pytest.mark.parametrize("chunk", [1, 2, 2000])
def test_a_document_end_in_the_middle_is_rejected_chunked_as_whole(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """'...' ends the only document the file may hold: what follows makes the file invalid
    for every YAML reader, so a chunked parse must not accept it either."""
    data = many_runs(3) + b"...\n" + yamlfile.dump_entry("later", {"command": "y"})
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(data.decode())
    with pytest.raises(yamlfile.ParseError):
        list(yamlfile.Parser(data).runs(chunked=False))
    monkeypatch.setattr(yamlfile, "CHUNK_ENTRIES", chunk)
    with pytest.raises(yamlfile.ParseError):
        yamlfile.parse_all(data)


def test_a_document_end_before_a_chunk_boundary_is_an_error_for_the_database(tmp_path: Path) -> None:
    """The same at the real chunk size: a file of a few thousand runs with '...' just before
    the run where a chunk starts (say, two database files pasted together)."""
    assert yamlfile.CHUNK_ENTRIES == 2000
    data = many_runs(1999) + b"...\n" + b"".join(
        yamlfile.dump_entry(f"more{i}", {"command": "y"}) for i in range(5)
    )
    with pytest.raises(yaml.YAMLError):
        yaml.load(data, Loader=yaml.CSafeLoader)
    path = tmp_path / "runs.yml"
    path.write_bytes(data)
    with pytest.raises(RunsError) as caught:
        with Database(str(path)).reading() as index:
            index.names()
    assert str(path) in str(caught.value)
    assert path.read_bytes() == data


def test_duplicate_names_in_different_chunks_are_reported_with_their_line(monkeypatch: pytest.MonkeyPatch) -> None:
    data = many_runs(10) + yamlfile.dump_entry("run2", {"command": "again"})
    line = data.count(b"\n", 0, data.rindex(b"run2:"))
    for chunk in (1, 3, 2000):
        monkeypatch.setattr(yamlfile, "CHUNK_ENTRIES", chunk)
        with pytest.raises(yamlfile.ParseError) as caught:
            yamlfile.parse_all(data)
        assert caught.value.line == line
        assert "run2" in caught.value.message


# Files that cannot be spliced are recognised -----------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"{a: {command: x}, b: {command: y}}\n",
        b"a: &base\n  command: x\nb:\n  <<: *base\n",
        b"a:\n  command: &c x\nb:\n  command: *c\n",
        b"a:\n  command: x\n...\n",
        b"a:\r\n  command: x\r\nb:\r\n  command: y\r\n",
        b"null\n",
        b"~\n",
        b"{}\n",
        b"a:\n  d: 'x\xe2\x80\xa8y'\nb:\n  d: z\n",
    ],
    ids=["flow", "merge-key", "alias", "document-end", "crlf", "null", "tilde", "empty-flow", "u2028"],
)
def test_files_that_cannot_be_spliced_are_not_simple(data: bytes) -> None:
    parser, runs = yamlfile.parse_all(data)
    assert not parser.simple


@pytest.mark.parametrize(
    "text",
    [
        "a:\n  d: 'x\u2028y'\nb: {}",
        "a:\n  d: 'x\u2028y'\nb: {}\n",
        "a:\n  d: \"x\u2029y\"\nb:\n  d: z",
        "a:\n  d: 'x\x85y'\nb:\n  d: z",
    ],
    ids=["ls-no-final-newline", "ls", "ps-no-final-newline", "nel-no-final-newline"],
)
def test_raw_unicode_line_breaks_in_a_hand_edited_file(tmp_path: Path, text: str) -> None:
    """U+2028, U+2029 and U+0085 written raw by an editor: YAML counts them as line breaks;
    the file must still read as yaml.safe_load reads it (no crash)."""
    expected = yaml.safe_load(text)
    parser, runs = yamlfile.parse_all(text.encode("utf-8"))
    assert {name: entry for name, entry, _, _ in runs} == expected
    path = tmp_path / "runs.yml"
    path.write_text(text, encoding="utf-8")
    with Database(str(path)).reading() as index:
        assert dict(index.entries()) == expected
    with Database(str(path)).writing() as txn:
        txn.add("new", {"command": "n"})
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == {**expected, "new": {"command": "n"}}


# Long names ------------------------------------------------------------------------------


def test_names_over_128_characters_work_with_append_and_splice(tmp_path: Path) -> None:
    path = tmp_path / "runs.yml"
    db = Database(str(path))
    long1, long2 = "sweep/" + "a" * 150, "b" * 200 + "/x." + "c" * 190
    order = ["short1", long1, "short2", long2, "short3"]
    expected = {name: {"command": f"python train.py --name {name}", "description": f"about {name[:5]}"} for name in order}
    previous = b""
    for name in order:
        with db.writing() as txn:
            txn.add(name, expected[name])
        data = path.read_bytes()
        assert data.startswith(previous), "adding a run must append, not rewrite"
        previous = data
    assert b"\n? " + long1.encode() + b"\n" in data  # an explicit key: the case being tested
    assert yaml.safe_load(data.decode()) == expected
    parser, runs = yamlfile.parse_all(data)
    assert parser.simple
    assert parser.header + sum(length for _, _, length, _ in runs) == len(data)

    blocks = {name: yamlfile.dump_entry(name, expected[name]) for name in order}
    with db.writing() as txn:
        txn.remove([long1, "short3"])
    left = path.read_bytes()
    assert left == data[: len(data) - sum(len(b) for b in blocks.values())] + blocks["short1"] + blocks["short2"] + blocks[long2]
    assert yaml.safe_load(left.decode()) == {n: expected[n] for n in ("short1", "short2", long2)}
    with db.writing() as txn:
        txn.remove([long2])
        txn.add(long1, expected[long1])
    os.unlink(str(path) + ".index")  # read the file itself, not what the index remembers
    with db.reading() as index:
        assert index.names() == ["short1", "short2", long1]
        assert index.entry(long1) == expected[long1]
