"""The docs cannot drift from the code: every `runs` command line they show is accepted by
runs' own parsers, every subcommand and .runsrc key is documented, every relative link
leads to a file (and section) that exists, and every page is valid reStructuredText."""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest

from runs_manager import flags, main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.rst", ROOT / "CHANGELOG.rst", *sorted((ROOT / "docs").glob("*.rst"))]
Parse = Callable[[List[str]], object]
_INLINE = re.compile(r"``(runs (?:[^`]|`(?!`))+)``")
_OPTION = re.compile(r"--?[a-zA-Z][-a-zA-Z]*")
_LINK = re.compile(r"`[^`<]*<([^<>`]+)>`__?")
_SHELL_OPERATORS = set("|&;<>")


def command_lines(text: str) -> Iterator[Tuple[int, str, bool]]:
    """Each `runs ...` command shown, with its line number and whether it is a whole command
    line (in a literal block) rather than a mention in prose."""
    lines = text.split("\n")
    literal_indent = None
    table = False  # a literal block that is a table (a benchmark's rows): no command lines
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and stripped and indent <= literal_indent:
            literal_indent = None
        if literal_indent is not None and stripped:
            table = table or stripped.startswith("===")
            if table:
                continue
            command = stripped[2:] if stripped.startswith("$ ") else stripped
            while command.endswith("\\") and number < len(lines):
                command = command[:-1] + " " + lines[number].strip()
                number += 1
            if command.startswith("runs "):
                yield number, command, True
        else:
            for match in _INLINE.finditer(line):
                yield number, match.group(1), False
        if stripped.endswith("::"):
            literal_indent, table = indent, False


def words(command: str) -> List[str]:
    """The command's words up to the first shell operator (a pipe, a redirection, ...)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: List[str] = []
    for word in lexer:
        if set(word) <= _SHELL_OPERATORS:
            break
        out.append(word)
    return out


def problem(command: str, whole: bool, parse: Parse, parser_for: Callable[[str], argparse.ArgumentParser]) -> str:
    """What is wrong with a documented command line ('' when nothing is)."""
    argv = words(command)[1:]
    if not argv or argv[0] in ("__complete", "...") or argv[0].isupper():
        return ""
    name = argv[0]
    if name.startswith("-"):
        return "" if name in ("--help", "-h", "--version") else f"runs has no option {name}"
    if name not in main.COMMANDS:
        return f"runs has no command {name!r}"
    if whole and "..." not in command and "[" not in command:
        try:
            parse(argv)
        except main.UsageError as e:
            return str(e)
        except SystemExit as e:  # --help
            return "" if e.code == 0 else f"exit status {e.code}"
        return ""
    return _unknown_option(argv[1:], parser_for(name))


def _unknown_option(args: List[str], parser: argparse.ArgumentParser) -> str:
    """The first option in a mention of a command (``runs new NAME [--grid KEY=V1,V2]``) that
    its parser lacks ('' when none): the mention is not a whole command line to parse."""
    known = parser._option_string_actions
    skip = 0
    for word in args:
        word = word.strip("[]")
        if skip:
            skip -= 1
            continue
        if word == "--":
            break
        if not _OPTION.fullmatch(word.split("=")[0]):
            continue
        action = known.get(word.split("=")[0])
        if action is None:
            return f"{parser.prog} has no option {word.split('=')[0]}"
        if "=" not in word:
            skip = action.nargs if isinstance(action.nargs, int) else (0 if action.nargs == 0 else 1)
    return ""


def problems(text: str, parse: Parse, parser_for: Callable[[str], argparse.ArgumentParser]) -> List[str]:
    found = []
    for number, command, whole in command_lines(text):
        wrong = problem(command, whole, parse, parser_for)
        if wrong:
            found.append(f"line {number}: {command}: {wrong}")
    return found


def _quiet_parse(argv: List[str]) -> object:
    return main.parse(argv)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_line_shown_is_accepted_by_the_parser(page: Path) -> None:
    text = page.read_text()
    assert problems(text, _quiet_parse, main.command_parser) == []


def _renamed(old: str, new: str) -> Callable[[str], argparse.ArgumentParser]:
    """Parsers as they would be if a flag were renamed in the code."""

    def parser_for(name: str) -> argparse.ArgumentParser:
        parser = main.command_parser(name)
        action = parser._option_string_actions.pop(old, None)
        if action is not None:
            action.option_strings = [new if s == old else s for s in action.option_strings]
            parser._option_string_actions[new] = action
        return parser

    return parser_for


def test_renaming_a_documented_flag_in_the_code_fails_the_check() -> None:
    parser_for = _renamed("--max-parallel", "--parallel")

    def parse(argv: List[str]) -> object:
        return parser_for(argv[0]).parse_args(flags.joined_pairs(argv[1:]))

    texts = {page.name: page.read_text() for page in PAGES}
    found = [wrong for text in texts.values() for wrong in problems(text, parse, parser_for)]
    assert found and all("--max-parallel" in wrong for wrong in found)
    # Both kinds of line are checked: whole command lines and mentions in prose.
    assert problems("Run::\n\n    runs new a 'x' --max-parallel 2\n", parse, parser_for)
    assert problems("See ``runs new NAME COMMAND [--max-parallel N]``.", parse, parser_for)
    assert not problems("See ``runs new NAME COMMAND [--max-parallel N]``.", _quiet_parse, main.command_parser)


def test_the_command_lines_are_found() -> None:
    readme = list(command_lines((ROOT / "README.rst").read_text()))
    assert sum(whole for _, _, whole in readme) >= 10 and sum(not whole for _, _, whole in readme) >= 5
    assert "runs table --params --metrics loss:min,acc:max --sort -acc:max" in [command for _, command, _ in readme]


def test_wrong_command_lines_are_found() -> None:
    def check(text: str) -> List[str]:
        return problems(text, _quiet_parse, main.command_parser)

    assert check("::\n\n    $ runs new a 'python x.py' --descripton=y\n")  # a misspelt flag
    assert check("::\n\n    runs lookup\n")  # a missing argument
    assert check("::\n\n    runs frobnicate x\n")  # no such command
    assert check("A ``runs table --colums name`` in prose.")
    assert not check("::\n\n    runs table -f json | python -c 'import sys'   # a pipe\n")
    assert not check("::\n\n    runs new a 'python x.py' \\\n        --grid lr=1,2\n")  # a continued line


def _documented_names(text: str) -> set:
    return set(re.findall(r"^``runs ([a-z]+)", text, re.M))


def test_every_subcommand_is_documented() -> None:
    readme = (ROOT / "README.rst").read_text()
    reference = (ROOT / "docs" / "commands.rst").read_text()
    for name in main.COMMANDS:
        assert re.search(rf"^``{name}``\s", readme, re.M), f"README.rst's list of subcommands lacks {name}"
    assert _documented_names(reference) == set(main.COMMANDS)


def test_every_runsrc_key_is_documented_with_its_flag() -> None:
    text = (ROOT / "docs" / "configuration.rst").read_text()
    all_options = {option for name in main.COMMANDS for option in main.command_parser(name)._option_string_actions}
    for key in flags.KEYS:
        match = re.search(rf"^``{key}`` \(default [^;]+; flag ``(--[-a-z]+)", text, re.M)
        assert match, f"docs/configuration.rst does not document {key} with its default and flag"
        assert match.group(1) in all_options, f"{key}'s flag {match.group(1)} is no option of runs"
    assert set(re.findall(r"^``([-a-z]+)`` \(default", text, re.M)) == set(flags.KEYS)
    example = (ROOT / ".runsrc.example").read_text()
    assert set(re.findall(r"^([-a-z]+):", example, re.M)) == set(flags.KEYS)


def _anchors(page: Path) -> set:
    lines = page.read_text().split("\n")
    titles = [lines[i - 1].strip() for i in range(1, len(lines))
              if re.fullmatch(r"([-=~^])\1{2,}", lines[i]) and lines[i - 1].strip()
              and not re.fullmatch(r"([-=~^])\1{2,}", lines[i - 1].strip())]
    return {re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") for title in titles}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_leads_to_a_file_and_section_that_exist(page: Path) -> None:
    for target in _LINK.findall(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve()
        assert linked.is_file(), f"{page.name} links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(linked), f"{page.name} links to {target}: {path} has no such section"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_page_is_valid_restructuredtext(page: Path) -> None:
    import docutils.core as docutils_core  # the test extra installs it

    messages: List[str] = []

    class Collect:
        def write(self, text: str) -> None:
            messages.append(text)

    docutils_core.publish_doctree(page.read_text(), source_path=str(page),
                                  settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": Collect()})
    assert messages == []


def test_the_readme_is_a_front_door() -> None:
    text = (ROOT / "README.rst").read_text()
    assert len(text.split("\n")) <= 250
    first_screens = text.split("\n")[:150]
    for needed in ("Install", "sh scripts/demo.sh", "sh scripts/test.sh", "Quick start"):
        assert any(needed in line for line in first_screens), needed
    assert "Read more" in text


def test_the_version_is_written_once() -> None:
    import runs_manager

    assert runs_manager.__version__ not in (ROOT / "setup.py").read_text()
    changelog = (ROOT / "CHANGELOG.rst").read_text()
    assert re.search(rf"^{re.escape(runs_manager.__version__)} ", changelog, re.M), "CHANGELOG.rst lacks the current version"
