"""A terminal's directory of numbered cards for speed dial (``cards.toml``).

```toml
[cards.12]
name = "CAF agent"
address = "h323:caf-agent@192.0.2.10"   # or "192.0.2.10:1300"
notes = "family allowance, weekdays 9-17"
certificate = "CAF agent"               # optional: the CN the callee's certificate must carry
hours = ["tue 09:00-12:00", "thu 14:00-17:00"]   # optional: the permanence hours (local time)
```

Numbers are positive integers (the TOML keys of ``[cards]``); ``name`` and
``address`` are required, ``notes``, ``certificate`` and ``hours`` optional
(``hours``: ``"DAY HH:MM-HH:MM"`` with DAY ``mon``..``sun``; a card without
hours is always open; :meth:`Card.is_open` and :meth:`Card.next_opening` take
the time as an argument). A missing
file, malformed TOML, a missing field or a bad number is a
:class:`DirectoryError` naming the file and the card; asking for a number that
is not there is a :class:`CardNotFound`. Immutable once loaded; thread-safe.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import CallError

__all__ = ["Card", "Directory", "DirectoryError", "CardNotFound", "Opening", "DAYS"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_HOURS = re.compile(r"^\s*([a-z]{3})\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class DirectoryError(CallError):
    """``cards.toml`` cannot be read or is malformed."""


class CardNotFound(DirectoryError, KeyError):
    """No card with that number."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, order=True)
class Opening:
    """One weekly opening: ``day`` (0 = Monday), ``start``/``end`` in minutes since midnight (``end`` > ``start``)."""

    day: int
    start: int
    end: int

    def __str__(self) -> str:
        return (f"{DAYS[self.day]} {self.start // 60:02d}:{self.start % 60:02d}-"
                f"{self.end // 60:02d}:{self.end % 60:02d}")


@dataclass(frozen=True)
class Card:
    """One directory entry; ``hours``: its weekly openings (empty: always open)."""

    number: int
    name: str
    address: str
    notes: str = ""
    certificate: str | None = None
    hours: tuple[Opening, ...] = ()

    def is_open(self, now: dt.datetime) -> bool:
        """Whether the service is open at ``now`` (local wall-clock time; a card without hours always is)."""
        if not self.hours:
            return True
        minute = now.hour * 60 + now.minute
        return any(o.day == now.weekday() and o.start <= minute < o.end for o in self.hours)

    def next_opening(self, now: dt.datetime) -> dt.datetime | None:
        """When it opens next after ``now`` (same tzinfo as ``now``); None if open now or without hours."""
        if not self.hours or self.is_open(now):
            return None
        day0 = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for ahead in range(8):
            day = day0 + dt.timedelta(days=ahead)
            for o in sorted(self.hours):
                at = day + dt.timedelta(minutes=o.start)
                if o.day == day.weekday() and at > now:
                    return at
        return None  # pragma: no cover - a non-empty weekly schedule always opens within a week


class Directory:
    """Numbered cards: ``directory[12]`` -> :class:`Card`."""

    def __init__(self, cards: Mapping[int, Card], source: str = "<memory>") -> None:
        self._cards = dict(sorted(cards.items()))
        self.source = source

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Directory:
        """Read ``cards.toml``; raises :class:`DirectoryError` with the reason."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise DirectoryError(f"cannot read directory {p}: {exc.strerror or exc}") from None
        return cls.parse(text, str(p))

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> Directory:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DirectoryError(f"{source}: not valid TOML: {exc}") from None
        return cls.from_table(data.get("cards", {}), source)

    @classmethod
    def from_table(cls, table: Any, source: str = "<table>") -> Directory:
        """The cards of a parsed ``[cards]`` TOML table (``{"12": {"name": ..., "address": ...}}``)."""
        if not isinstance(table, dict):
            raise DirectoryError(f"{source}: [cards] must be a table of numbered cards")
        cards: dict[int, Card] = {}
        for key, entry in table.items():
            cards_key = _number(key, source)
            cards[cards_key] = _card(cards_key, entry, source)
        return cls(cards, source)

    def __getitem__(self, number: int) -> Card:
        try:
            return self._cards[number]
        except KeyError:
            known = ", ".join(str(n) for n in self._cards) or "none"
            raise CardNotFound(f"no card {number} in {self.source} (cards: {known})") from None

    def __contains__(self, number: object) -> bool:
        return number in self._cards

    def __iter__(self) -> Iterator[Card]:
        return iter(self._cards.values())

    def __len__(self) -> int:
        return len(self._cards)

    def __repr__(self) -> str:
        return f"<Directory {self.source}: {len(self._cards)} cards>"


def _number(key: str, source: str) -> int:
    try:
        number = int(key)
    except ValueError:
        raise DirectoryError(f"{source}: card {key!r} is not a number") from None
    if number <= 0:
        raise DirectoryError(f"{source}: card {key!r} must be a positive number")
    return number


def _card(number: int, entry: Any, source: str) -> Card:
    if not isinstance(entry, dict):
        raise DirectoryError(f"{source}: card {number} must be a table")
    fields: dict[str, str] = {}
    hours = _hours(number, entry.get("hours", []), source)
    for name in ("name", "address", "notes", "certificate"):
        value = entry.get(name)
        if value is None:
            if name in ("name", "address"):
                raise DirectoryError(f"{source}: card {number} has no {name}")
            continue
        if not isinstance(value, str):
            raise DirectoryError(f"{source}: card {number}: {name} must be a string")
        fields[name] = value
    unknown = sorted(set(entry) - {"name", "address", "notes", "certificate", "hours"})
    if unknown:
        raise DirectoryError(f"{source}: card {number}: unknown field(s) {', '.join(unknown)}")
    return Card(number, fields["name"], fields["address"], fields.get("notes", ""), fields.get("certificate"),
                hours)


def _hours(number: int, value: Any, source: str) -> tuple[Opening, ...]:
    """``["tue 09:00-12:00", ...]`` -> openings; :class:`DirectoryError` naming the card and the bad entry."""
    if not isinstance(value, list):
        raise DirectoryError(f"{source}: card {number}: hours must be a list like [\"tue 09:00-12:00\"]")
    out: list[Opening] = []
    for item in value:
        m = _HOURS.match(item.lower()) if isinstance(item, str) else None
        if m is None or m.group(1) not in DAYS:
            raise DirectoryError(f"{source}: card {number}: hours entry {item!r} is not "
                                 f"\"DAY HH:MM-HH:MM\" (DAY: {', '.join(DAYS)})")
        h1, m1, h2, m2 = (int(g) for g in m.group(2, 3, 4, 5))
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise DirectoryError(f"{source}: card {number}: hours entry {item!r}: no such time of day")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            raise DirectoryError(f"{source}: card {number}: hours entry {item!r} ends before it starts")
        out.append(Opening(DAYS.index(m.group(1)), start, end))
    return tuple(sorted(out))
