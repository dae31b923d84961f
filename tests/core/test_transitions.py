"""Transition tables are read from text; a typo in one fails at import, not on a user's click."""

from __future__ import annotations

import pytest
from django.db import models

from core.transitions import table


class Colour(models.TextChoices):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


def test_a_table_reads_sources_and_targets():
    moves = table(Colour, "paint   red, green -> blue\n  fade  blue -> red")
    assert {name: (set(m.sources), m.target) for name, m in moves.items()} == {
        "paint": ({"red", "green"}, "blue"),
        "fade": ({"blue"}, "red"),
    }


@pytest.mark.parametrize(
    "spec",
    ["paint red -> purple", "paint purple -> red", "paint red -> blue\npaint green -> blue"],
    ids=["unknown target", "unknown source", "repeated action"],
)
def test_a_wrong_table_is_refused(spec):
    with pytest.raises(ValueError, match="bad transition"):
        table(Colour, spec)
