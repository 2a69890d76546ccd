"""A terminal's directory of numbered cards for speed dial (``cards.toml``).

```toml
[cards.12]
name = "CAF agent"
address = "h323:caf-agent@192.0.2.10"   # or "192.0.2.10:1300"
notes = "family allowance, weekdays 9-17"
certificate = "CAF agent"               # optional: the CN the callee's certificate must carry
```

Numbers are positive integers (the TOML keys of ``[cards]``); ``name`` and
``address`` are required, ``notes`` and ``certificate`` optional. A missing
file, malformed TOML, a missing field or a bad number is a
:class:`DirectoryError` naming the file and the card; asking for a number that
is not there is a :class:`CardNotFound`. Immutable once loaded; thread-safe.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import CallError

__all__ = ["Card", "Directory", "DirectoryError", "CardNotFound"]


class DirectoryError(CallError):
    """``cards.toml`` cannot be read or is malformed."""


class CardNotFound(DirectoryError, KeyError):
    """No card with that number."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Card:
    """One directory entry."""

    number: int
    name: str
    address: str
    notes: str = ""
    certificate: str | None = None


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
    for name in ("name", "address", "notes", "certificate"):
        value = entry.get(name)
        if value is None:
            if name in ("name", "address"):
                raise DirectoryError(f"{source}: card {number} has no {name}")
            continue
        if not isinstance(value, str):
            raise DirectoryError(f"{source}: card {number}: {name} must be a string")
        fields[name] = value
    unknown = sorted(set(entry) - {"name", "address", "notes", "certificate"})
    if unknown:
        raise DirectoryError(f"{source}: card {number}: unknown field(s) {', '.join(unknown)}")
    return Card(number, fields["name"], fields["address"], fields.get("notes", ""), fields.get("certificate"))
