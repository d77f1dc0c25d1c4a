"""The models page: registry versions with their metrics and pictures, the aliases, and alias moves;
and what a version's score means, in one sentence for the analyst (`score_meaning`).

Promote and rollback go through `Registry.promote` / `Registry.rollback` (compare-and-swap on the
alias object, which records who moved it), and only with `confirm` repeating the alias name: moving
what production serves is never one stray click. Moving `production` also needs an approver
(txguard.console.approvers), and no version is promoted whose quality gate failed or was never run
(`quality_gate` in its metadata). A registry that cannot be read is reported on the page, not as a
crash. Pictures are PNG only: an SVG can carry script, and the registry is written by more hands
than the console's.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from txguard.console.approvers import Approvers
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
_PICTURE_RE = re.compile(r"^[a-z0-9_-]+\.png$")
_VERSION_RE = re.compile(r"^v[1-9][0-9]*$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
                             "score_meaning": _meaning(meta), "gate": gate_summary(meta)})
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


def picture(registry: Registry, version: str, name: str) -> bytes:
    """The bytes of one PNG picture attached to a version (anything else, SVG included, is not served)."""
    if not _VERSION_RE.match(version) or _PICTURE_RE.match(name) is None:
        raise ConsoleNotFoundError(f"no picture {name!r} for {version!r} (pictures are PNG)")
    found = registry.store.read(_pictures_prefix(version) + name)
    if found is None:
        raise ConsoleNotFoundError(f"no picture {name!r} for {version}")
    if not found[0].startswith(PNG_MAGIC):
        raise ConsoleNotFoundError(f"{name} of {version} is not a PNG image: not served")
    return found[0]


def gate_summary(meta: ModelMetadata) -> dict[str, Any]:
    """The quality-gate result of a version: `passed` True, False, or None when none is recorded."""
    gate = meta.quality_gate
    if gate is None:
        return {"passed": None, "reasons": [], "text": "no quality-gate result recorded (published without "
                                                           "`txguard train`)"}
    if gate.passed:
        against = f", PR-AUC checked against {gate.compared_with}" if gate.compared_with else ""
        return {"passed": True, "reasons": [], "text": f"passed{against}"}
    return {"passed": False, "reasons": list(gate.reasons), "text": "failed: " + "; ".join(gate.reasons)}


def _promotable(registry: Registry, version: str) -> dict[str, Any]:
    """The gate summary of a version that may be promoted; refuses one whose gate failed or is unknown."""
    try:
        meta = registry.metadata(version)
    except ModelNotFoundError as exc:
        raise ConsoleNotFoundError(str(exc)) from exc
    gate = gate_summary(meta)
    if gate["passed"] is not True:
        raise ConsoleConflictError(f"{version} cannot be promoted from the console: its quality gate {gate['text']}")
    return gate


def _gate_of(registry: Registry, version: str | None) -> dict[str, Any] | None:
    """For the log line of a rollback: the gate of the version it goes back to (never refuses)."""
    if version is None:
        return None
    try:
        return gate_summary(registry.metadata(version))
    except RegistryError:
        return None


def change_alias(registry: Registry, body: bytes, analyst: str, approvers: Approvers) -> dict[str, Any]:
    """Promote or roll back an alias as `analyst`; returns where it points now, where it pointed
    before, who moved it and the quality-gate result of the version it now serves."""
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
            approvers.require_for_alias(analyst, change.alias, f"promote {change.version} to {change.alias}")
            gate = _promotable(registry, change.version)
            registry.promote(change.version, change.alias, by=analyst)
            now = change.version
        else:
            approvers.require_for_alias(analyst, change.alias, f"roll {change.alias} back")
            now = registry.rollback(change.alias, by=analyst)
            gate = _gate_of(registry, now)
    except ModelNotFoundError as exc:
        raise ConsoleNotFoundError(str(exc)) from exc
    except ConcurrentUpdateError as exc:
        raise ConsoleConflictError(f"{change.alias} changed meanwhile; reload and try again ({exc})") from exc
    except RegistryError as exc:
        raise ConsoleInputError(str(exc)) from exc
    return {"alias": change.alias, "action": change.action.value, "version": now, "previous": before,
            "by": analyst, "gate": gate}
