"""Movable names over immutable versions, for model versions (`vN`) and rule sets (`rN`) alike.

An alias is one small object, `<root>aliases/<alias>.json` holding an `AliasRecord` (its version,
the versions it pointed at before, oldest first, and who moved it last). It moves by
compare-and-swap on the generation that was read, so two movers can never both win, and keeps its
history so that a rollback needs no bookkeeping elsewhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from txguard.contract.errors import RegistryError
from txguard.registry.store import UNCHANGED, BlobStore, Generation

_ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class AliasRecord(BaseModel):
    version: str
    history: list[str] = Field(default_factory=list, description="Previous versions, oldest first")
    updated_at: datetime
    # Who moved it last when the mover says (the console: the analyst's identity); the object's
    # generations in a versioned bucket keep the earlier ones.
    updated_by: str | None = None


class Aliases:
    """The aliases under `root` of `store`. `noun` names them in messages ("alias", "rule set alias");
    `not_found` is the error a missing alias raises; `reserved` matches names that are not aliases
    (version numbers, pseudo-aliases)."""

    def __init__(self, store: BlobStore, *, root: str, noun: str, not_found: type[RegistryError],
                 reserved: re.Pattern[str]) -> None:
        self.store, self.root, self.noun, self.not_found, self.reserved = store, root, noun, not_found, reserved

    def key(self, alias: str) -> str:
        if not _ALIAS_RE.match(alias) or self.reserved.match(alias):
            raise RegistryError(f"invalid {self.noun} name {alias!r} (lowercase letters, digits, - and _)")
        return f"{self.root}aliases/{alias}.json"

    def read(self, alias: str) -> tuple[AliasRecord, Generation] | None:
        found = self.store.read(self.key(alias))
        if found is None:
            return None
        return AliasRecord.model_validate_json(found[0]), found[1]

    def read_if_changed(self, alias: str, generation: Generation | None) -> tuple[AliasRecord, Generation] | None:
        """The alias if its generation is no longer `generation`, else None (the cheap poll).

        Stores that can ask the server for a conditional read (`read_if_changed`: Cloud Storage's
        `ifGenerationNotMatch`) do; the others read the small alias object and compare. Raises
        `not_found` when the alias does not exist.
        """
        key = self.key(alias)
        conditional = getattr(self.store, "read_if_changed", None)
        if conditional is not None and generation is not None:
            found = conditional(key, generation)
            if found is UNCHANGED:
                return None
        else:
            found = self.store.read(key)
        if found is None:
            raise self.not_found(f"no {self.noun} {alias!r} in registry {self.store.location}")
        data, current = found
        if generation is not None and current == generation:
            return None
        try:
            return AliasRecord.model_validate_json(data), current
        except ValidationError as exc:
            raise RegistryError(f"corrupt {self.noun} {alias!r} in {self.store.location}: {exc}") from exc

    def all(self) -> dict[str, str]:
        """alias -> version, by name."""
        out = {}
        prefix = f"{self.root}aliases/"
        for key in self.store.list(prefix):
            if key.endswith(".json"):
                name = key.removeprefix(prefix).removesuffix(".json")
                record = self.read(name)
                if record is not None:
                    out[name] = record[0].version
        return dict(sorted(out.items()))

    def set(self, alias: str, record: AliasRecord, generation: Generation | None) -> None:
        """Compare-and-swap: raises ConcurrentUpdateError if the alias changed since `generation`."""
        self.store.replace(self.key(alias), record.model_dump_json(indent=2).encode(), generation)

    def move(self, alias: str, version: str, by: str | None = None) -> None:
        """Point `alias` at `version` (the caller checked it exists), remembering the previous target."""
        current = self.read(alias)
        history: list[str] = []
        generation: Generation | None = None
        if current is not None:
            record, generation = current
            history = list(record.history)
            if record.version != version:
                history.append(record.version)
        self.set(alias, AliasRecord(version=version, history=history, updated_at=now(), updated_by=by), generation)

    def back(self, alias: str, by: str | None = None) -> str:
        """Point `alias` back at its previous version; returns that version."""
        current = self.read(alias)
        if current is None:
            raise self.not_found(f"{self.noun} {alias!r} does not exist in {self.store.location}")
        record, generation = current
        if not record.history:
            raise RegistryError(f"{self.noun} {alias!r} has no previous version to roll back to")
        previous = record.history[-1]
        self.set(alias, AliasRecord(version=previous, history=record.history[:-1], updated_at=now(), updated_by=by),
                 generation)
        return previous


def now() -> datetime:
    return datetime.now(UTC)
