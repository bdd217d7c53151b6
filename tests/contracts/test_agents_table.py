"""AGENTS.md's Contracts table is the one the declarations render (regenerate it with
``python -m parley.bus.contracts_doc``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.bus.contracts_doc import BEGIN, END, render

pytestmark = pytest.mark.unit

AGENTS = Path(__file__).resolve().parents[2] / "AGENTS.md"


def test_agents_md_holds_the_generated_contracts_table() -> None:
    text = AGENTS.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "AGENTS.md has one generated Contracts table"
    start = text.index(BEGIN)
    section = text[start : text.index(END, start) + len(END)] + "\n"
    assert section == render(), "AGENTS.md's Contracts table is stale: python -m parley.bus.contracts_doc"
