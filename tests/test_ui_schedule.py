"""Cards' permanence hours (``hours = ["tue 09:00-12:00"]``) and the screens' catalogue of texts."""

from __future__ import annotations

import datetime as dt

import pytest

from vcore.directory import Directory, DirectoryError
from vcore.ui.strings import CATALOGUE, Strings

CARD = '''[cards.3]
name = "CAF"
address = "h323:caf@192.0.2.10"
hours = {hours}
'''
TUE = dt.datetime(2026, 12, 8)  # a Tuesday


def card(hours: str) -> object:
    return Directory.parse(CARD.format(hours=hours), "cards.toml")[3]


def test_open_and_next_opening() -> None:
    c = card('["tue 09:00-12:00", "thu 14:00-17:00"]')
    assert c.is_open(TUE.replace(hour=9)) and c.is_open(TUE.replace(hour=11, minute=59))
    assert not c.is_open(TUE.replace(hour=12)) and not c.is_open(TUE.replace(hour=8, minute=59))
    assert c.next_opening(TUE.replace(hour=10)) is None  # open now
    assert c.next_opening(TUE.replace(hour=8)) == TUE.replace(hour=9)
    assert c.next_opening(TUE.replace(hour=12)) == dt.datetime(2026, 12, 10, 14, 0)
    assert c.next_opening(dt.datetime(2026, 12, 10, 17, 0)) == dt.datetime(2026, 12, 15, 9, 0)  # next week
    assert [str(o) for o in c.hours] == ["tue 09:00-12:00", "thu 14:00-17:00"]


def test_without_hours_always_open() -> None:
    c = Directory.parse('[cards.1]\nname = "A"\naddress = "192.0.2.1"\n')[1]
    assert c.is_open(TUE) and c.next_opening(TUE) is None


@pytest.mark.parametrize("hours, why", [
    ('"tue 09:00-12:00"', "must be a list"),
    ('["tuesday 09:00-12:00"]', "is not \"DAY HH:MM-HH:MM\""),
    ('["tue 9-12"]', "is not \"DAY HH:MM-HH:MM\""),
    ('["tue 25:00-26:00"]', "no such time of day"),
    ('["tue 12:00-09:00"]', "ends before it starts"),
    ('[12]', "is not \"DAY HH:MM-HH:MM\""),
])
def test_malformed_hours(hours: str, why: str) -> None:
    with pytest.raises(DirectoryError, match="cards.toml: card 3") as err:
        card(hours)
    assert why in str(err.value)


def test_catalogues_have_the_same_keys_and_fields() -> None:
    fr, en = CATALOGUE["fr"], CATALOGUE["en"]
    assert fr.keys() == en.keys()
    for key in fr:
        assert sorted(_fields(fr[key])) == sorted(_fields(en[key])), key


def _fields(text: str) -> list[str]:
    import string

    return [f for _, f, _, _ in string.Formatter().parse(text) if f]


def test_when_and_duration_said_plainly() -> None:
    fr, en = Strings("fr"), Strings("en")
    now = TUE.replace(hour=13)
    assert fr.when(TUE.replace(hour=14), now) == "aujourd'hui à 14:00"
    assert fr.when(dt.datetime(2026, 12, 9, 9, 0), now) == "demain à 09:00"
    assert fr.when(dt.datetime(2026, 12, 10, 14, 0), now) == "jeudi à 14:00"
    assert en.when(dt.datetime(2026, 12, 10, 14, 0), now) == "Thursday at 14:00"
    assert Strings.duration(65) == "1:05" and Strings.duration(3725) == "1:02:05"
    with pytest.raises(Exception, match="language 'de'"):
        Strings("de")
