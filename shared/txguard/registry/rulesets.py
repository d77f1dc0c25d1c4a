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
from datetime import datetime

from pydantic import BaseModel, Field, ValidationError

from txguard.contract.errors import (
    BlobExistsError,
    ChecksumMismatchError,
    ConcurrentUpdateError,
    RegistryError,
    RuleSetNotFoundError,
)
from txguard.contract.models import RULE_SET_ADAPTER, RuleSetSpec
from txguard.registry.aliases import Aliases, AliasRecord, now
from txguard.registry.core import PRODUCTION
from txguard.registry.store import BlobStore, Generation

ROOT = "rulesets/"
_VERSION_RE = re.compile(r"^r([1-9][0-9]*)$")
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
        self._aliases = Aliases(store, root=ROOT, noun="rule set alias", not_found=RuleSetNotFoundError,
                                reserved=_VERSION_RE)

    @property
    def location(self) -> str:
        return self.store.location  # type: ignore[attr-defined,no-any-return]

    @staticmethod
    def _key(version: str, name: str) -> str:
        return f"{ROOT}versions/{version}/{name}"

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
        return self._aliases.read(alias)

    def read_alias_if_changed(self, alias: str, generation: Generation | None) -> tuple[AliasRecord, Generation] | None:
        """The alias if its generation is no longer `generation`, else None; raises RuleSetNotFoundError
        when the alias does not exist (the scoring follower's cheap poll, as for models)."""
        return self._aliases.read_if_changed(alias, generation)

    def aliases(self) -> dict[str, str]:
        return self._aliases.all()

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
            meta = RuleSetMetadata(version=version, sha256=hashlib.sha256(data).hexdigest(), created_at=now(),
                                   saved_by=saved_by, reason=reason.strip(), rules=[r.name for r in spec.rules],
                                   outcomes=outcomes)
            self.store.create(self._key(version, "metadata.json"), meta.model_dump_json(indent=2).encode())
            return meta
        raise ConcurrentUpdateError(f"could not claim a rule set number in {self.location}")

    def promote(self, version: str, alias: str = PRODUCTION, by: str | None = None) -> None:
        """Point `alias` at rule set `version` (which must exist), remembering the previous target."""
        self.metadata(version)
        self._aliases.move(alias, version, by)

    def rollback(self, alias: str = PRODUCTION, by: str | None = None) -> str:
        """Point `alias` back at its previous rule set; returns that version."""
        return self._aliases.back(alias, by)

    def describe(self) -> dict[str, object]:
        aliases = self.aliases()
        by_version: dict[str, list[str]] = {}
        for name, version in aliases.items():
            by_version.setdefault(version, []).append(name)
        return {"location": self.location, "aliases": aliases,
                "versions": [{**m.model_dump(mode="json"), "aliases": by_version.get(m.version, [])}
                             for m in self.versions()]}
