"""cards.toml: lookup, clear errors, and a call by card number."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vcore.directory import CardNotFound, Directory, DirectoryError

from .call_helpers import T, make_pki, run, terminal

CARDS = """
[cards.12]
name = "CAF agent"
address = "h323:caf-agent@192.0.2.10"
notes = "family allowance, weekdays 9-17"
certificate = "CAF agent"

[cards.3]
name = "Town hall"
address = "192.0.2.11:1300"
"""


def test_lookup(tmp_path: Path) -> None:
    path = tmp_path / "cards.toml"
    path.write_text(CARDS)
    d = Directory.load(path)
    assert len(d) == 2 and 12 in d and [c.number for c in d] == [3, 12]
    card = d[12]
    assert (card.name, card.address, card.notes, card.certificate) == (
        "CAF agent", "h323:caf-agent@192.0.2.10", "family allowance, weekdays 9-17", "CAF agent")
    assert d[3].notes == "" and d[3].certificate is None
    with pytest.raises(CardNotFound, match=r"no card 7 in .*cards.toml \(cards: 3, 12\)"):
        d[7]


@pytest.mark.parametrize("text, message", [
    ("[cards.12\nname = 1", "not valid TOML"),
    ('[cards.x]\nname = "a"\naddress = "b"', "card 'x' is not a number"),
    ('[cards.0]\nname = "a"\naddress = "b"', "must be a positive number"),
    ('[cards.4]\nname = "a"', "card 4 has no address"),
    ('[cards.4]\nname = 5\naddress = "b"', "card 4: name must be a string"),
    ('[cards.4]\nname = "a"\naddress = "b"\nphone = "c"', "unknown field"),
    ('cards = 5', "must be a table"),
])
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(DirectoryError, match=message):
        Directory.parse(text, "cards.toml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="cannot read directory"):
        Directory.load(tmp_path / "nope.toml")


def test_call_by_card(tmp_path: Path) -> None:
    base = make_pki(tmp_path / "pki")

    async def scenario() -> None:
        async with terminal(base, "CAF agent", auto_answer=True) as agent:
            cards = tmp_path / "cards.toml"
            cards.write_text(f'[cards.12]\nname = "CAF agent"\naddress = "h323:caf-agent@{agent.address}"\n'
                             'certificate = "CAF agent"\n')
            async with terminal(base, "Murat kiosk", listen=False, directory=cards) as kiosk:
                call = await kiosk.call(card=12)
                await asyncio.wait_for(call.connected, T)
                assert call.peer == "CAF agent"
                await call.hangup()
                with pytest.raises(CardNotFound):
                    await kiosk.call(card=13)

    run(scenario())
