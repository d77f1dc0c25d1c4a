"""The models page: registry versions with their metrics and pictures, the aliases, and alias moves;
and what a version's score means, in one sentence for the analyst (`score_meaning`).

Promote and rollback go through `Registry.promote` / `Registry.rollback` (compare-and-swap on the
alias object), and only with `confirm` repeating the alias name: moving what production serves is
never one stray click. A registry that cannot be read is reported on the page, not as a crash.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from txguard.contract.errors import (
    ConcurrentUpdateError,
    ConsoleConflictError,
    ConsoleInputError,
    ConsoleNotFoundError,
    ConsoleUnavailableError,
    ModelNotFoundError,
    RegistryError,
)
from txguard.contract.models import AliasAction, AliasChange
from txguard.registry import Registry
from txguard.registry.metadata import ModelMetadata

PICTURES = "pictures/"
_PICTURE_RE = re.compile(r"^[a-z0-9_-]+\.(png|svg)$")
_VERSION_RE = re.compile(r"^v[1-9][0-9]*$")
CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def _pictures_prefix(version: str) -> str:
    return f"versions/{version}/{PICTURES}"


def overview(registry: Registry) -> dict[str, Any]:
    """Versions newest first, with thresholds, metrics, aliases, alias history and pictures."""
    try:
        described = registry.describe()
        histories = {}
        for alias in described["aliases"]:
            found = registry.read_alias(alias)
            if found is not None:
                histories[alias] = found[0].history
        versions = []
        for entry in reversed(described["versions"]):
            meta = registry.metadata(entry["version"])
            prefix = _pictures_prefix(entry["version"])
            pictures = [key.removeprefix(prefix) for key in registry.store.list(prefix)
                        if _PICTURE_RE.match(key.removeprefix(prefix))]
            versions.append({**entry, "thresholds": meta.thresholds.model_dump(), "pictures": pictures,
                             "model_type": meta.model_type, "features": len(meta.features),
                             "calibration": None if meta.calibration is None else meta.calibration.model_dump(),
                             "score_meaning": _meaning(meta)})
    except RegistryError as exc:
        raise ConsoleUnavailableError(f"registry {registry.location}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - storage client errors (auth, network) say "unavailable"
        raise ConsoleUnavailableError(f"registry {registry.location}: {type(exc).__name__}: {exc}") from exc
    return {"location": registry.location, "aliases": described["aliases"], "history": histories,
            "versions": versions}


UNCALIBRATED = ("a ranking, not a probability: this version was trained before calibration (higher is riskier; "
                "compare it with its thresholds only)")


def _meaning(meta: ModelMetadata) -> str:
    if meta.calibration is None:
        return UNCALIBRATED
    c, metrics = meta.calibration, meta.metrics
    held_out = (f" On its held-out days the mean score was {metrics['score_to_fraud_rate']:.2f}x the fraud rate, "
                f"expected calibration error {metrics['ece']:.3f}." if "ece" in metrics and "score_to_fraud_rate"
                in metrics else "")
    return ("the probability that the transaction is fraud: of transactions scored 0.8, about 8 in 10 are fraud "
            f"(calibrated: {c.method} on {c.rows:,} held-out training rows, {c.frauds:,} frauds).{held_out}")


_MEANINGS: dict[tuple[str, str], str] = {}  # a version's metadata never changes once published


def score_meaning(registry: Registry, version: str) -> str:
    """What `version`'s scores mean, for the item page; a registry that cannot be read says so."""
    key = (registry.location, version)
    if key not in _MEANINGS:
        try:
            meta = registry.metadata(version)
        except ModelNotFoundError:
            return f"unknown: version {version} is not in the registry"
        except Exception as exc:  # noqa: BLE001 - storage client errors: the page still renders
            return f"unknown now: the registry cannot be read ({type(exc).__name__})"
        _MEANINGS[key] = _meaning(meta)
    return _MEANINGS[key]


def picture(registry: Registry, version: str, name: str) -> tuple[bytes, str]:
    """The bytes and content type of one picture attached to a version."""
    match = _PICTURE_RE.match(name)
    if not _VERSION_RE.match(version) or match is None:
        raise ConsoleNotFoundError(f"no picture {name!r} for {version!r}")
    found = registry.store.read(_pictures_prefix(version) + name)
    if found is None:
        raise ConsoleNotFoundError(f"no picture {name!r} for {version}")
    return found[0], CONTENT_TYPES[match.group(1)]


def change_alias(registry: Registry, body: bytes) -> dict[str, Any]:
    """Promote or roll back an alias; returns where it points now and where it pointed before."""
    try:
        change = AliasChange.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise ConsoleInputError("the alias change is not valid: fix the fields named below", errors) from exc
    if change.confirm != change.alias:
        raise ConsoleInputError(f"type the alias name ({change.alias}) to confirm", [
            {"loc": ["confirm"], "msg": f"must be {change.alias!r} to confirm", "type": "confirmation"}])
    before = registry.aliases().get(change.alias)
    try:
        if change.action is AliasAction.PROMOTE:
            if change.version is None:
                raise ConsoleInputError("promote needs a version", [
                    {"loc": ["version"], "msg": "required to promote", "type": "missing"}])
            registry.promote(change.version, change.alias)
            now = change.version
        else:
            now = registry.rollback(change.alias)
    except ModelNotFoundError as exc:
        raise ConsoleNotFoundError(str(exc)) from exc
    except ConcurrentUpdateError as exc:
        raise ConsoleConflictError(f"{change.alias} changed meanwhile; reload and try again ({exc})") from exc
    except RegistryError as exc:
        raise ConsoleInputError(str(exc)) from exc
    return {"alias": change.alias, "action": change.action.value, "version": now, "previous": before}
