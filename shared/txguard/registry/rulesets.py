"""Rule sets versioned like models, in the same registry, next to the model versions.

Layout (identical locally and in Cloud Storage, beside `versions/` and `aliases/`):

    <prefix>/rulesets/versions/rN/ruleset.json    the rule set (RuleSetSpec JSON), written once
    <prefix>/rulesets/versions/rN/metadata.json   RuleSetMetadata: SHA-256, who saved it and why
    <prefix>/rulesets/aliases/<alias>.json        {"version": "rN", "history": [...], "updated_at": ...}

The same rules as model versions: a publisher claims rN with a "must not exist" precondition,
metadata is written last, aliases move by compare-and-swap and keep their history for rollback.
The registry checks a rule set's structure (the contract's `RuleSetSpec`) and its checksum; what
its conditions mean is checked by `txguard.rules` before it is saved and again before a scoring
instance applies it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from txguard.contract.errors import (
    BlobExistsError,
    ChecksumMismatchError,
    ConcurrentUpdateError,
    RegistryError,
    RuleSetNotFoundError,
)
from txguard.contract.models import RULE_SET_ADAPTER, RuleSetSpec
from txguard.registry.core import PRODUCTION, AliasRecord
from txguard.registry.store import UNCHANGED, BlobStore, Generation

ROOT = "rulesets/"
_VERSION_RE = re.compile(r"^r([1-9][0-9]*)$")
_ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_MAX_PUBLISH_ATTEMPTS = 50


def rule_set_number(version: str) -> int | None:
    m = _VERSION_RE.match(version)
    return int(m.group(1)) if m else None


class RuleSetMetadata(BaseModel):
    version: str = ""  # assigned by the registry
    sha256: str = ""  # of ruleset.json, assigned by the registry
    created_at: datetime
    saved_by: str = Field(description="Who saved it: an analyst's identity, or the CLI user")
    reason: str = Field(description="Why it was saved")
    rules: list[str] = Field(default_factory=list, description="The rules' names, in order")
    outcomes: dict[str, int] = Field(default_factory=dict, description="How many rules of each outcome")


class LoadedRuleSet(BaseModel):
    metadata: RuleSetMetadata
    data: bytes
    spec: RuleSetSpec


class RuleSetRegistry:
    def __init__(self, store: BlobStore) -> None:
        self.store = store

    @property
    def location(self) -> str:
        return self.store.location  # type: ignore[attr-defined,no-any-return]

    @staticmethod
    def _key(version: str, name: str) -> str:
        return f"{ROOT}versions/{version}/{name}"

    @staticmethod
    def _alias_key(alias: str) -> str:
        if not _ALIAS_RE.match(alias) or _VERSION_RE.match(alias):
            raise RegistryError(f"invalid rule set alias name {alias!r} (lowercase letters, digits, - and _)")
        return f"{ROOT}aliases/{alias}.json"

    # Reading -----------------------------------------------------------------------------------
    def _numbers(self) -> list[int]:
        found = set()
        for key in self.store.list(f"{ROOT}versions/"):
            parts = key.removeprefix(ROOT).split("/")
            if len(parts) >= 3 and (n := rule_set_number(parts[1])) is not None:
                found.add(n)
        return sorted(found)

    def metadata(self, version: str) -> RuleSetMetadata:
        found = self.store.read(self._key(version, "metadata.json")) if rule_set_number(version) else None
        if found is None:
            raise RuleSetNotFoundError(f"rule set {version!r} not found in registry {self.location}")
        try:
            return RuleSetMetadata.model_validate_json(found[0])
        except ValidationError as exc:
            raise RegistryError(f"corrupt metadata for rule set {version} in {self.location}: {exc}") from exc

    def versions(self) -> list[RuleSetMetadata]:
        out = []
        for n in self._numbers():
            try:
                out.append(self.metadata(f"r{n}"))
            except RuleSetNotFoundError:
                continue  # being published: its metadata is written last
        return out

    def read_alias(self, alias: str) -> tuple[AliasRecord, Generation] | None:
        found = self.store.read(self._alias_key(alias))
        if found is None:
            return None
        return AliasRecord.model_validate_json(found[0]), found[1]

    def read_alias_if_changed(self, alias: str, generation: Generation | None) -> tuple[AliasRecord, Generation] | None:
        """The alias if its generation is no longer `generation`, else None; raises RuleSetNotFoundError
        when the alias does not exist (the scoring follower's cheap poll, as for models)."""
        key = self._alias_key(alias)
        conditional = getattr(self.store, "read_if_changed", None)
        if conditional is not None and generation is not None:
            found = conditional(key, generation)
            if found is UNCHANGED:
                return None
        else:
            found = self.store.read(key)
        if found is None:
            raise RuleSetNotFoundError(f"no rule set alias {alias!r} in registry {self.location}")
        data, current = found
        if generation is not None and current == generation:
            return None
        try:
            return AliasRecord.model_validate_json(data), current
        except ValidationError as exc:
            raise RegistryError(f"corrupt rule set alias {alias!r} in {self.location}: {exc}") from exc

    def aliases(self) -> dict[str, str]:
        out = {}
        for key in self.store.list(f"{ROOT}aliases/"):
            if key.endswith(".json"):
                name = key.removeprefix(f"{ROOT}aliases/").removesuffix(".json")
                record = self.read_alias(name)
                if record is not None:
                    out[name] = record[0].version
        return dict(sorted(out.items()))

    def resolve(self, ref: str) -> str:
        """An alias or rN -> rN (which exists)."""
        if rule_set_number(ref):
            self.metadata(ref)
            return ref
        record = self.read_alias(ref)
        if record is None:
            known = ", ".join(self.aliases()) or "none"
            raise RuleSetNotFoundError(f"no rule set alias or version {ref!r} in registry {self.location} "
                                       f"(aliases: {known})")
        return record[0].version

    def load(self, ref: str = PRODUCTION) -> LoadedRuleSet:
        """Resolve `ref`, read the rule set and refuse it unless its SHA-256 matches the metadata."""
        version = ref if rule_set_number(ref) else self.resolve(ref)
        meta = self.metadata(version)
        found = self.store.read(self._key(version, "ruleset.json"))
        if found is None:
            raise RuleSetNotFoundError(f"rule set {version} in {self.location} has metadata but no ruleset.json")
        data = found[0]
        digest = hashlib.sha256(data).hexdigest()
        if digest != meta.sha256:
            raise ChecksumMismatchError(f"rule set {version} in {self.location} has SHA-256 {digest[:12]}..., "
                                        f"metadata records {meta.sha256[:12]}...: refusing to load it")
        try:
            spec = RULE_SET_ADAPTER.validate_json(data)
        except ValidationError as exc:
            raise RegistryError(f"rule set {version} in {self.location} is not a rule set: {exc}") from exc
        return LoadedRuleSet(metadata=meta, data=data, spec=spec)

    # Writing -----------------------------------------------------------------------------------
    def publish(self, spec: RuleSetSpec, saved_by: str, reason: str) -> RuleSetMetadata:
        """Store a new immutable rule set; the registry assigns rN and the SHA-256."""
        if not reason.strip():
            raise RegistryError("saving a rule set needs a reason (--reason): the registry keeps why it changed")
        data = spec.model_dump_json(indent=2).encode()
        used = self._numbers()
        number = (used[-1] if used else 0) + 1
        outcomes: dict[str, int] = {}
        for rule in spec.rules:
            outcomes[rule.outcome.value] = outcomes.get(rule.outcome.value, 0) + 1
        for _ in range(_MAX_PUBLISH_ATTEMPTS):
            version = f"r{number}"
            try:
                self.store.create(self._key(version, "ruleset.json"), data)
            except BlobExistsError:
                number += 1
                continue
            meta = RuleSetMetadata(version=version, sha256=hashlib.sha256(data).hexdigest(), created_at=_now(),
                                   saved_by=saved_by, reason=reason.strip(), rules=[r.name for r in spec.rules],
                                   outcomes=outcomes)
            self.store.create(self._key(version, "metadata.json"), meta.model_dump_json(indent=2).encode())
            return meta
        raise ConcurrentUpdateError(f"could not claim a rule set number in {self.location}")

    def promote(self, version: str, alias: str = PRODUCTION) -> None:
        """Point `alias` at rule set `version` (which must exist), remembering the previous target."""
        self.metadata(version)
        current = self.read_alias(alias)
        history: list[str] = []
        generation: Generation | None = None
        if current is not None:
            record, generation = current
            history = list(record.history)
            if record.version != version:
                history.append(record.version)
        self._set(alias, AliasRecord(version=version, history=history, updated_at=_now()), generation)

    def rollback(self, alias: str = PRODUCTION) -> str:
        """Point `alias` back at its previous rule set; returns that version."""
        current = self.read_alias(alias)
        if current is None:
            raise RuleSetNotFoundError(f"rule set alias {alias!r} does not exist in {self.location}")
        record, generation = current
        if not record.history:
            raise RegistryError(f"rule set alias {alias!r} has no previous version to roll back to")
        previous = record.history[-1]
        self._set(alias, AliasRecord(version=previous, history=record.history[:-1], updated_at=_now()), generation)
        return previous

    def _set(self, alias: str, record: AliasRecord, generation: Generation | None) -> None:
        self.store.replace(self._alias_key(alias), record.model_dump_json(indent=2).encode(), generation)

    def describe(self) -> dict[str, object]:
        aliases = self.aliases()
        by_version: dict[str, list[str]] = {}
        for name, version in aliases.items():
            by_version.setdefault(version, []).append(name)
        return {"location": self.location, "aliases": aliases,
                "versions": [{**m.model_dump(mode="json"), "aliases": by_version.get(m.version, [])}
                             for m in self.versions()]}


def _now() -> datetime:
    return datetime.now(UTC)
