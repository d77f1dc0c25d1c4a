"""A model registry over a blob store: immutable numbered versions plus movable aliases.

Layout (identical locally and in Cloud Storage):

    <prefix>/versions/vN/model.onnx      the artifact, written once
    <prefix>/versions/vN/metadata.json   ModelMetadata (with the artifact's SHA-256)
    <prefix>/aliases/<alias>.json        {"version": "vN", "history": [...], "updated_at": ...}

A publisher claims vN by creating its artifact with a "must not exist" precondition, so two
publishers can never take the same number; metadata is written last, so a version is only
listed once complete. Aliases are swapped with compare-and-swap on the generation that was read,
and keep their previous versions so `rollback` needs no bookkeeping elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from txguard.contract.errors import (
    BlobExistsError,
    ChecksumMismatchError,
    ConcurrentUpdateError,
    ModelNotFoundError,
    RegistryError,
)
from txguard.registry.aliases import Aliases, AliasRecord
from txguard.registry.metadata import ARTIFACT_NAME, ModelMetadata
from txguard.registry.store import BlobStore, Generation

PRODUCTION = "production"
STAGING = "staging"
LATEST = "latest"  # pseudo-alias: the highest published version
_VERSION_RE = re.compile(r"^v([1-9][0-9]*)$")
_ATTACHMENT_RE = re.compile(r"^[a-z0-9_-]+/[a-z0-9_.-]+$")  # e.g. pictures/curves.png
_MAX_PUBLISH_ATTEMPTS = 50


def version_number(version: str) -> int | None:
    m = _VERSION_RE.match(version)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class LoadedModel:
    metadata: ModelMetadata
    artifact: bytes


class Registry:
    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._aliases = Aliases(store, root="", noun="alias", not_found=ModelNotFoundError,
                                reserved=re.compile(rf"^({LATEST}|v[1-9][0-9]*)$"))

    @property
    def location(self) -> str:
        return self.store.location

    # Keys --------------------------------------------------------------------------------------
    @staticmethod
    def _meta_key(version: str) -> str:
        return f"versions/{version}/metadata.json"

    @staticmethod
    def _artifact_key(version: str, name: str = ARTIFACT_NAME) -> str:
        return f"versions/{version}/{name}"

    # Reading -----------------------------------------------------------------------------------
    def _used_numbers(self) -> list[int]:
        numbers = set()
        for key in self.store.list("versions/"):
            parts = key.split("/")
            if len(parts) >= 3 and (n := version_number(parts[1])) is not None:
                numbers.add(n)
        return sorted(numbers)

    def metadata(self, version: str) -> ModelMetadata:
        found = self.store.read(self._meta_key(version)) if version_number(version) else None
        if found is None:
            raise ModelNotFoundError(f"model version {version!r} not found in registry {self.location}")
        try:
            return ModelMetadata.model_validate_json(found[0])
        except ValidationError as exc:
            raise RegistryError(f"corrupt metadata for {version} in {self.location}: {exc}") from exc

    def versions(self) -> list[ModelMetadata]:
        out = []
        for key in self.store.list("versions/"):
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == "metadata.json" and version_number(parts[1]):
                out.append(self.metadata(parts[1]))
        return sorted(out, key=lambda m: version_number(m.version) or 0)

    def read_alias(self, alias: str) -> tuple[AliasRecord, Generation] | None:
        return self._aliases.read(alias)

    def read_alias_if_changed(self, alias: str, generation: Generation | None) -> tuple[AliasRecord, Generation] | None:
        """The alias if its generation is no longer `generation`, else None (the cheap poll); raises
        ModelNotFoundError when the alias does not exist."""
        return self._aliases.read_if_changed(alias, generation)

    def aliases(self) -> dict[str, str]:
        return self._aliases.all()

    def resolve(self, ref: str) -> str:
        """An alias, `latest` or `vN` -> `vN` (which exists)."""
        if version_number(ref):
            self.metadata(ref)
            return ref
        if ref == LATEST:
            versions = self.versions()
            if not versions:
                raise ModelNotFoundError(f"registry {self.location} has no model versions")
            return versions[-1].version
        try:
            record = self.read_alias(ref)
        except RegistryError:
            record = None
        if record is None:
            known = ", ".join(self.aliases()) or "none"
            raise ModelNotFoundError(
                f"no model alias or version {ref!r} in registry {self.location} (aliases: {known})"
            )
        return record[0].version

    def load(self, ref: str = PRODUCTION) -> LoadedModel:
        """Resolve `ref`, read the artifact and refuse it unless its SHA-256 matches the metadata."""
        version = ref if version_number(ref) else self.resolve(ref)  # vN: its metadata read says it exists
        meta = self.metadata(version)
        found = self.store.read(self._artifact_key(version, meta.artifact))
        if found is None:
            raise ModelNotFoundError(
                f"model {version} in {self.location} has metadata but its artifact "
                f"{self._artifact_key(version, meta.artifact)} is missing"
            )
        artifact = found[0]
        digest = hashlib.sha256(artifact).hexdigest()
        if digest != meta.sha256:
            raise ChecksumMismatchError(
                f"artifact of {version} in {self.location} has SHA-256 {digest[:12]}..., "
                f"metadata records {meta.sha256[:12]}...: refusing to load it"
            )
        return LoadedModel(metadata=meta, artifact=artifact)

    def check(self, writable: bool = False) -> None:
        """Refuse a location that is not a registry, before any long work uses it.

        Listing it proves the credentials, the bucket and the permission to list; then a reader
        needs a registry there (a typo'd path is not an empty registry), while a writer may start
        one in an empty place but never inside something else.
        """
        keys = self.store.list("")
        if any(k.startswith(("versions/", "aliases/", "rulesets/")) for k in keys):  # rule sets alone: a registry too
            return
        if keys:
            raise RegistryError(
                f"{self.location} is not a model registry, it holds files but no versions/ or aliases/, "
                "give the registry's own folder or gs:// prefix")
        if not writable:
            raise RegistryError(
                f"no model registry at {self.location}, nothing is there, check the path (a typo?) or create "
                f"one with `txguard train --registry {self.location}`")

    # Writing -----------------------------------------------------------------------------------
    def publish(self, artifact: bytes, metadata: ModelMetadata) -> ModelMetadata:
        """Store a new immutable version; the registry assigns `vN` and the artifact's SHA-256."""
        if not artifact:
            raise RegistryError("refusing to publish an empty artifact")
        used = self._used_numbers()
        number = (used[-1] if used else 0) + 1
        for _ in range(_MAX_PUBLISH_ATTEMPTS):
            version = f"v{number}"
            try:
                self.store.create(self._artifact_key(version, metadata.artifact), artifact)
            except BlobExistsError:
                number += 1  # another publisher claimed it: take the next number
                continue
            final = metadata.model_copy(
                update={"version": version, "sha256": hashlib.sha256(artifact).hexdigest()}
            )
            self.store.create(self._meta_key(version), final.model_dump_json(indent=2).encode())
            return final
        raise ConcurrentUpdateError(f"could not claim a version number in {self.location}")

    def attach(self, version: str, name: str, data: bytes) -> str:
        """Store a file next to a published version (its pictures); returns its key. Written once."""
        if not _ATTACHMENT_RE.match(name):
            raise RegistryError(f"invalid attachment name {name!r}")
        self.metadata(version)  # must exist
        key = self._artifact_key(version, name)
        self.store.create(key, data)
        return key

    def set_alias(self, alias: str, record: AliasRecord, generation: Generation | None) -> None:
        """Compare-and-swap: raises ConcurrentUpdateError if the alias changed since `generation`."""
        self._aliases.set(alias, record, generation)

    def promote(self, version: str, alias: str = PRODUCTION, by: str | None = None) -> None:
        """Point `alias` at `version` (which must exist), remembering the previous target; `by`: who."""
        version = self.resolve(version) if version == LATEST else version
        self.metadata(version)  # must exist
        self._aliases.move(alias, version, by)

    def rollback(self, alias: str = PRODUCTION, by: str | None = None) -> str:
        """Point `alias` back at its previous version; returns that version. `by`: who."""
        return self._aliases.back(alias, by)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary for the CLI."""
        aliases = self.aliases()
        by_version: dict[str, list[str]] = {}
        for name, version in aliases.items():
            by_version.setdefault(version, []).append(name)
        return {
            "location": self.location,
            "aliases": aliases,
            "versions": [
                {
                    "version": m.version,
                    "created_at": m.created_at.isoformat(),
                    "aliases": by_version.get(m.version, []),
                    "metrics": m.metrics,
                    "git_commit": m.git_commit,
                    "sha256": m.sha256,
                }
                for m in self.versions()
            ],
        }
