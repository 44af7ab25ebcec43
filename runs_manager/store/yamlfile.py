"""The text of the YAML database: parsing it, and the text of one entry.

The file is a block mapping from run name to entry. It is parsed in chunks of entries
(split where a line starts a new top-level key), which bounds memory and allows progress
reports, and every entry gets its byte range, so that adding a run appends text and
deleting one splices it out. A file that does not split cleanly (anchors shared between
entries, flow style, a stray document marker ...) is parsed whole and marked not
``simple``: it is then rewritten whole on the next change.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import yaml

from runs_manager.store import aliases

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Entry = Dict[str, Any]
# name, entry, byte length of its range (None when the file is not simple), line (0-based)
Run = Tuple[str, Entry, Optional[int], int]

CHUNK_ENTRIES = 2000
MAX_VALUES = 100_000  # values in one entry once its aliases are expanded
_SPLIT = re.compile(rb"^[^#\-\[\]{},?:%&*!|>@`'\".\s]", re.M)
# Appending after a document end, or after a second document, would change the meaning.
_DOCUMENT_END = re.compile(rb"^\.\.\.(?:[ \t]|$)", re.M)
_LATER_DOCUMENT = re.compile(rb"^(?:---(?:[ \t]|$)|%)", re.M)
# Only double quotes keep these exact (YAML folds line breaks other than \n, and other
# styles cannot hold control characters).
_NEEDS_DOUBLE_QUOTES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


class ParseError(Exception):
    def __init__(self, line: Optional[int], message: str) -> None:
        super().__init__(message)
        self.line = line  # 0-based, None when unknown
        self.message = message


class _Loader(_BaseLoader):  # type: ignore[misc]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        # PyYAML keeps the last of two equal keys without a word; a hand edit that
        # duplicates a field must be reported, not silently lose a value.
        seen: Dict[Tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise ParseError(
                        key_node.start_mark.line,
                        f"key '{key_node.value}' appears twice in one mapping (also at line {seen[key] + 1})",
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True  # every entry stands alone, so it can be spliced out on its own


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if _NEEDS_DOUBLE_QUOTES.search(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)


def dump_entry(name: str, entry: Entry) -> bytes:
    """The text of one entry, ready to append to a simple database file."""
    text = yaml.dump(
        {name: entry},
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1 << 30,  # one line per field: easy to read, grep and edit
    )
    return text.encode("utf-8")


def exact_text(name: str, entry: Entry) -> Optional[bytes]:
    """The text of one entry, or None if YAML would not give back exactly this entry."""
    blob = dump_entry(name, entry)
    return blob if load_one(blob) == (name, entry) else None


def dump_all(runs: List[Tuple[str, Entry]]) -> bytes:
    return b"".join(dump_entry(name, entry) for name, entry in runs)


class Parser:
    """Parses a whole database file; ``header`` and ``simple`` are known once ``runs`` is exhausted."""

    def __init__(self, data: bytes, progress: Callable[[int], None] = lambda done: None) -> None:
        self.data = data
        self.progress = progress
        self.header = len(data)
        # A second document, or the end of the first, may fall at a chunk boundary and make
        # two halves valid on their own: such a file is parsed whole (and then rejected).
        self.splittable = not has_document_markers(data, after_first_key=True)
        # Carriage returns and a byte-order mark would put byte ranges off: such a file is
        # rewritten (in canonical form) on its next change.
        self.simple = b"\r" not in data and not data.startswith(b"\xef\xbb\xbf") and self.splittable

    def runs(self, chunked: bool = True) -> Iterator[Run]:
        """Every run in file order. With ``chunked``, raises Unsplittable where the file
        needs to be parsed whole."""
        bounds = self._bounds() if chunked and self.splittable else [0, len(self.data)]
        seen: Dict[str, int] = {}
        line = 0
        for i, (start, stop) in enumerate(zip(bounds, bounds[1:])):
            raw = self.data[start:stop]
            try:
                chunk = _Chunk(raw, first_line=line)
            except ParseError:
                if len(bounds) > 2:
                    raise Unsplittable from None
                raise
            if i > 0 and chunk.runs and chunk.starts[0] != 0:
                raise Unsplittable
            if i == 0:
                self.header = chunk.starts[0] if chunk.runs else len(raw)
            self.simple = self.simple and chunk.simple
            for (name, entry, run_line), length in zip(chunk.runs, chunk.lengths()):
                if name in seen:
                    raise ParseError(run_line, f"run '{name}' appears twice (also at line {seen[name] + 1})")
                seen[name] = run_line
                yield name, entry, length, run_line
            line += raw.count(b"\n")
            self.progress(stop)

    def _bounds(self) -> List[int]:
        bounds = [0]
        for count, match in enumerate(_SPLIT.finditer(self.data), 1):
            if count % CHUNK_ENTRIES == 0:
                bounds.append(with_comments_above(self.data, match.start(), floor=bounds[-1]))
        bounds.append(len(self.data))
        return bounds


def has_document_markers(data: bytes, after_first_key: bool) -> bool:
    """Whether ``data`` has a document end (``...``), or a document start or directive
    (after its first key, with ``after_first_key``; anywhere otherwise)."""
    first = _SPLIT.search(data) if after_first_key else None
    start = first.start() if first else (len(data) if after_first_key else 0)
    return bool(_DOCUMENT_END.search(data) or _LATER_DOCUMENT.search(data, start))


def with_comments_above(data: bytes, start: int, floor: int) -> int:
    """Move a line start back over the comment lines directly above it (not below ``floor``):
    a comment written just above a run belongs to that run."""
    while start > floor:
        previous = max(data.rfind(b"\n", floor, start - 1) + 1, floor)
        if not data.startswith(b"#", previous):
            break
        start = previous
    return start


class Unsplittable(Exception):
    """The file cannot be read chunk by chunk; parse it whole."""


def parse_all(data: bytes, progress: Callable[[int], None] = lambda done: None) -> Tuple[Parser, List[Run]]:
    """Parse ``data`` completely (for the callers that need the list, not a stream)."""
    parser = Parser(data, progress)
    try:
        return parser, list(parser.runs())
    except Unsplittable:
        parser = Parser(data, progress)
        runs = list(parser.runs(chunked=False))
        parser.simple = False
        return parser, runs


class _Chunk:
    """A run of whole entries, parsed on its own."""

    def __init__(self, raw: bytes, first_line: int) -> None:
        self.raw = raw
        self.runs: List[Tuple[str, Entry, int]] = []
        self.starts: List[int] = []
        self.simple = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ParseError(first_line + raw.count(b"\n", 0, e.start), "the file is not UTF-8 text") from None
        if not raw.isascii() and any(c in text for c in "\x85\u2028\u2029"):
            self.simple = False  # YAML counts these as line breaks; byte ranges would be off
        self.text = text
        loader = _Loader(text)
        try:
            self._load(loader, first_line)
        except ParseError as e:
            e.line = None if e.line is None else e.line + first_line
            raise
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            raise ParseError(
                None if mark is None else mark.line + first_line, " ".join(str(e.problem or e).split())
            ) from None
        except yaml.YAMLError as e:
            raise ParseError(None, " ".join(str(e).split())) from None
        except RecursionError:
            raise ParseError(first_line, "values are nested too deeply") from None
        finally:
            loader.dispose()

    def _load(self, loader: Any, first_line: int) -> None:
        root = loader.get_single_node()
        if root is None:
            return
        if isinstance(root, yaml.ScalarNode) and loader.construct_object(root) is None:
            # An explicit 'null' or '~' holds no runs, but nothing can be appended to it.
            self.simple = root.value == ""
            return
        if not isinstance(root, yaml.MappingNode):
            raise ParseError(root.start_mark.line, "the database must be a mapping from run names to entries")
        if root.flow_style:
            self.simple = False
        marks = []
        any_alias = "*" in self.text  # an alias is written '*name': without one, nothing expands
        for key_node, value_node in root.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ParseError(key_node.start_mark.line, "a run name must be a string, not a list or mapping")
            name = key_node.value
            if any_alias and "*" in self.text[value_node.start_mark.index : value_node.end_mark.index]:
                if aliases.expands_past(value_node, MAX_VALUES):
                    raise ParseError(key_node.start_mark.line,
                                     f"the entry of run '{name}' expands to more than {MAX_VALUES:,} values "
                                     "through its aliases (*name): write the values out, or remove the aliases")
            entry = loader.construct_object(value_node, deep=True)
            if entry is None:
                entry = {}
            if not isinstance(entry, dict):
                raise ParseError(
                    key_node.start_mark.line,
                    f"the entry of run '{name}' must be a mapping of fields, not {type(entry).__name__}",
                )
            marks.append(key_node.start_mark)
            self.runs.append((name, entry, first_line + key_node.start_mark.line))
        key_lines = self._line_starts(marks)
        for mark, start in zip(marks, key_lines):
            # A key starts its line, or follows '? ' (the emitter's form for names over 128 characters).
            if mark.column != 0 and not (mark.column == 2 and self.raw[start : start + 2] == b"? "):
                self.simple = False
        floors = [0] + [start + 1 for start in key_lines[:-1]]
        self.starts = [with_comments_above(self.raw, start, floor) for start, floor in zip(key_lines, floors)]
        if self.simple:
            self.simple = not aliases.shares_nodes(self.raw, self.starts, root.value)

    def _line_starts(self, marks: List[Any]) -> List[int]:
        """Byte offsets of the lines the keys are on (marks count characters)."""
        if self.raw.isascii():
            return [mark.index - mark.column for mark in marks]
        starts, chars, offset = [], 0, 0
        for mark in marks:
            line_start = mark.index - mark.column
            offset += len(self.text[chars:line_start].encode("utf-8"))
            chars = line_start
            starts.append(offset)
        return starts

    def lengths(self) -> List[Optional[int]]:
        ends = self.starts[1:] + [len(self.raw)]
        return [end - start for start, end in zip(self.starts, ends)]


def load_one(data: bytes) -> Optional[Tuple[str, Entry]]:
    """The single run in ``data``, or None if ``data`` is not exactly one whole entry."""
    try:
        chunk = _Chunk(data, first_line=0)
    except ParseError:
        return None
    if len(chunk.runs) != 1 or not chunk.simple or chunk.starts[0] != 0:
        return None
    name, entry, _ = chunk.runs[0]
    return name, entry
