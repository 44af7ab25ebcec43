"""runs' own renderer of tabulate's "simple" table (the default format) gives tabulate's text exactly."""
from __future__ import annotations


import tabulate
from hypothesis import given, settings
from hypothesis import strategies as st

from runs_manager.output import as_text
from runs_manager.tabular import simple_table

CELL = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12) | st.sampled_from(["", " ", "_", "1", "True", "-", "  a  "])


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(st.lists(CELL, min_size=n, max_size=n),
                                                     st.lists(st.lists(CELL, min_size=n, max_size=n), max_size=6))))
def test_simple_table_is_tabulates(table: tuple) -> None:
    headers, rows = table
    assert simple_table(rows, headers) == tabulate.tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def test_a_table_without_rows() -> None:
    assert simple_table([], ["name", "lr"]) == "name    lr\n------  ----"


def test_numbers_are_written_as_json_writes_them() -> None:
    import json

    for value in (0.1, 1e-07, 1e22, -0.0, 3, -12, 10**30, True, None, float("nan"), float("inf")):
        assert as_text(value) == json.dumps(value)
