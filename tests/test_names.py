"""Run names: which are valid, their groups, and their tmux session names."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, strategies as st

from runs_manager import names

VALID = [
    "exp",
    "exp1",
    "sweep/lr-0.1",
    "a/b/c/d",
    "a.b",
    ".hidden",
    "..a",
    "a..",
    "x_y",
    "A-Z_0-9",
    "v1.2.3",
    "a+b=c@d,e",
    "x" * 200,
    "/".join(["y" * 200] * 4),
]

INVALID = [
    "",
    "/a",
    "a/",
    "a//b",
    ".",
    "..",
    "a/./b",
    "a/../b",
    "../a",
    "has space",
    "tab\tname",
    "new\nline",
    "é",
    "a:b",
    "a~b",
    "semi;colon",
    "quote'",
    'dq"',
    "star*",
    "q?",
    "$HOME",
    "back\\slash",
    "nul\x00",
    "br[ack]et",
    "x" * 201,
    "a/" + "x" * 201,
    "/".join(["y" * 200] * 5),  # 1004 characters
]

NAME_PART = st.text(alphabet="abcAZ09._+=@,-", min_size=1, max_size=12).filter(lambda p: p not in (".", ".."))
VALID_NAMES = st.lists(NAME_PART, min_size=1, max_size=4).map("/".join)


@pytest.mark.parametrize("name", VALID)
def test_valid_names(name):
    assert names.problem(name) is None
    assert names.is_valid(name)


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names_have_a_one_line_reason(name):
    reason = names.problem(name)
    assert isinstance(reason, str) and reason
    assert "\n" not in reason and "\x00" not in reason
    assert not names.is_valid(name)


@pytest.mark.parametrize("name, shown", [("a:b", "':'"), ("has space", "space"), ("tab\tname", "U+0009"), ("semi;colon", "';'")])
def test_reason_names_the_bad_character(name, shown):
    assert shown in names.problem(name)


def test_part_and_name_length_limits():
    assert names.is_valid("x" * names.MAX_PART)
    assert not names.is_valid("x" * (names.MAX_PART + 1))
    parts = (names.MAX_NAME + 1) // (names.MAX_PART + 1)
    longest = "/".join(["y" * names.MAX_PART] * parts)
    longest += "/" + "z" * (names.MAX_NAME - len(longest) - 1)
    assert len(longest) == names.MAX_NAME
    assert names.is_valid(longest)
    assert not names.is_valid(longest + "z")


@pytest.mark.parametrize(
    "name, groups",
    [("a", []), ("a/b", ["a"]), ("a/b/c", ["a", "a/b"]), ("sweep/lr-0.1/seed-1", ["sweep", "sweep/lr-0.1"])],
)
def test_groups(name, groups):
    assert list(names.groups(name)) == groups


@given(VALID_NAMES)
def test_generated_names_are_valid(name):
    assert names.is_valid(name)


@given(VALID_NAMES)
def test_session_name_has_no_dot_or_colon_and_can_be_inverted(name):
    session = names.session_name(name)
    assert "." not in session and ":" not in session
    assert session.replace("~", ".") == name  # '~' cannot be in a valid name, so nothing is lost


def test_session_name_is_one_to_one_over_every_short_name():
    alphabet = "a.~:/_-"
    seen = {}
    for length in range(1, 6):
        for chars in itertools.product(alphabet, repeat=length):
            name = "".join(chars)
            if not names.is_valid(name):
                continue
            session = names.session_name(name)
            assert session not in seen, f"{name!r} and {seen[session]!r} share session {session!r}"
            assert "." not in session and ":" not in session
            seen[session] = name
    assert len(seen) > 1000  # the check covered many names


@given(VALID_NAMES, VALID_NAMES)
def test_distinct_names_have_distinct_sessions(a, b):
    if a != b:
        assert names.session_name(a) != names.session_name(b)


@pytest.mark.parametrize("name", ["lr-0.1", "a.b.c", "sweep/lr-0.1", "x=1,y=2", "@home", "=exact", "+p", ".hidden", "a..b"])
def test_tmux_keeps_the_session_name_as_given(tmux, name):
    session = names.session_name(name)
    tmux.new(session)
    assert session in tmux.sessions()


def test_unique_candidates_append_the_unix_time():
    candidates = names.unique_candidates("exp", 1509804959)
    first = [next(candidates) for _ in range(4)]
    assert first == ["exp1509804959", "exp1509804959-2", "exp1509804959-3", "exp1509804959-4"]
    assert all(names.is_valid(c) for c in first)


def test_taken_name_gets_a_new_one_from_runs_new(runs, db, tmux):
    assert runs("new", "lr-0.1", "sleep 600; true").code == 0
    assert runs("new", "lr-0.1", "sleep 600; true").code == 0
    first, second = list(db())
    assert first == "lr-0.1" and second.startswith("lr-0.1") and second != first
    assert {names.session_name(first), names.session_name(second)} <= set(tmux.sessions())


def test_session_names_hold_only_what_tmux_keeps_as_it_is():
    """Another session has the run's name: NAME@PROJECT, then numbered; the project's name
    with anything tmux would rewrite or escape ('.', ':', a backslash, control characters) made '_'."""
    from itertools import islice

    from runs_manager import names

    assert list(islice(names.session_names("lr-0.1", "my\\proj.v2:\tx"), 4)) == [
        "lr-0~1", "lr-0~1@my_proj_v2__x", "lr-0~1@my_proj_v2__x-2", "lr-0~1@my_proj_v2__x-3"]
    assert list(islice(names.session_names("a", ""), 2)) == ["a", "a@runs"]
