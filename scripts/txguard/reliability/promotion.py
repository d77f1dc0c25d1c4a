"""The `promotion` scenario: promote a new version during a stream, then roll back, with no redeploy.

The scoring function follows the `production` alias (txguard.scoring.follower, MODEL_POLL_S at
its default). The scenario publishes production's model again as a new version (same artifact
and metadata, so it passes every check, but decisions name it), promotes it a few seconds into
the stream and rolls back later, and passes only if:

- every scoring worker logged the switch (`event: model_loaded`) to the new version and back,
  each within `BOUND_S` of the registry change;
- no request failed: no 5xx in the scoring function's log for the scenario's transactions, and
  no delivery retried by enrichment;
- nothing is lost, nothing double counted (the usual checks);
- each decision names the version that made it: the `model_version` of the decision received on
  `decisions` is one the scoring function logged for that transaction, and decisions of both
  versions (and of the original again after the rollback) were made.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from txguard.local.ledger import Ledger
from txguard.reliability.checks import finish
from txguard.reliability.context import Context

BOUND_S = 30.0
PREFIX = "pro"


def promotion(ctx: Context) -> dict[str, Any]:
    """Promote a new version a few seconds into a stream, roll back later; no redeploy, no failure."""
    from txguard.registry import PRODUCTION, open_registry

    p = ctx.profile
    ledger = ctx.router.add(Ledger("promotion"))
    stack = ctx.stack
    fn = stack.functions["score"]
    location = stack.env["TXGUARD_REGISTRY"]
    before = open_registry(location).resolve(PRODUCTION)
    new = publish_same_model(location)
    marks: dict[str, Any] = {}

    def promote() -> None:
        open_registry(location).promote(new)
        marks["promote"] = time.time()

    def rollback() -> None:
        marks["rolled_back_to"] = open_registry(location).rollback()
        marks["rollback"] = time.time()

    messages = ctx.messages(PREFIX, int(p.promotion_stream_s * ctx.nominal_rate), seed=29)
    info = ctx.publish(ledger, messages, ctx.nominal_rate,
                       [(p.promote_at_s, f"promote {new}", promote),
                        (p.rollback_at_s, f"roll back to {before}", rollback)])
    result = finish(ctx, ledger, messages, {"publish_s": info["publish_s"], "promoted_version": new,
                                            "production_version": before})
    lines = _lines(fn.log_path)
    promoted = switches(lines, new, marks["promote"]) if "promote" in marks else {}
    rolled = switches(lines, before, marks["rollback"]) if "rollback" in marks else {}
    versions, server_errors = scored(lines, PREFIX)
    names = decision_versions(ledger.decisions(), versions)
    settled = marks.get("rollback", time.time()) + max(rolled.values(), default=BOUND_S) + 0.5
    workers = int(fn.env.get("WORKERS") or 1)
    result.update(switched_promote_s=promoted, switched_rollback_s=rolled, scoring_5xx=server_errors,
                  decisions_by_version=names["by_version"], decisions_not_matching=names["not_matching_scoring_log"],
                  scoring_workers=workers)
    failed = verdict(before, new, promoted, rolled, workers, server_errors, result.get("retried") or {}, names,
                     versions_after(lines, PREFIX, settled))
    if marks.get("rolled_back_to") not in (None, before):
        failed.append(f"rollback went to {marks['rolled_back_to']}, not {before}")
    result["failed_checks"] += failed
    return result


def publish_same_model(location: str) -> str:
    """Production's artifact and metadata published again as a new version; returns `vN`."""
    from txguard.registry import PRODUCTION, open_registry

    registry = open_registry(location)
    current = registry.load(PRODUCTION)
    return registry.publish(current.artifact, current.metadata).version


def _lines(log_path: Path) -> list[dict[str, Any]]:
    out = []
    for raw in log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
    return out


def _epoch(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["time"]).replace("Z", "+00:00")).timestamp()


def first_switch(lines: list[dict[str, Any]], since: float, switched: Callable[[dict[str, Any]], bool]) -> dict[int, float]:
    """{worker pid: seconds after `since`} of each worker's first line after `since` that `switched`."""
    out: dict[int, float] = {}
    for line in lines:
        if "pid" in line and switched(line):
            at = _epoch(line) - since
            if at >= -0.01 and line["pid"] not in out:
                out[line["pid"]] = round(at, 2)
    return out


def switches(lines: list[dict[str, Any]], version: str, since: float) -> dict[int, float]:
    """{worker pid: seconds after `since`} of the first `model_loaded` line of `version` after `since`."""
    return first_switch(lines, since,
                        lambda line: line.get("event") == "model_loaded" and line.get("model_version") == version)


def named_after(lines: list[dict[str, Any]], prefix: str, since: float, field: str) -> Counter[str]:
    """`field` (the model version, the rule set) of the scenario's scored requests logged after `since`."""
    return Counter(str(line.get(field)) for line in lines
                   if line.get("path") == "/score" and line.get("outcome")
                   and str(line.get("transaction_id", "")).startswith(f"{prefix}-") and _epoch(line) > since)


def versions_after(lines: list[dict[str, Any]], prefix: str, since: float) -> Counter[str]:
    """Versions of the scenario's scored requests logged after `since` (epoch seconds)."""
    return named_after(lines, prefix, since, "model_version")


def scored(lines: list[dict[str, Any]], prefix: str) -> tuple[dict[str, set[str]], int]:
    """transaction id -> versions that scored it (request lines), and 5xx answers, for the scenario."""
    versions: dict[str, set[str]] = defaultdict(set)
    server_errors = 0
    for line in lines:
        tid = line.get("transaction_id")
        if not (isinstance(tid, str) and tid.startswith(f"{prefix}-")) or line.get("path") != "/score":
            continue
        if int(line.get("status", 0)) >= 500:
            server_errors += 1
        elif line.get("outcome"):
            versions[tid].add(str(line.get("model_version")))
    return versions, server_errors


def decision_versions(decisions: dict[str, list[bytes]], versions: dict[str, set[str]]) -> dict[str, Any]:
    """How the published decisions' versions compare with what the scoring function logged."""
    by_version: Counter[str] = Counter()
    unmatched = []
    for tid, copies in decisions.items():
        for raw in copies:
            version = json.loads(raw).get("model_version")
            by_version[str(version)] += 1
            if version not in versions.get(tid, set()):
                unmatched.append(tid)
    return {"by_version": dict(sorted(by_version.items())), "not_matching_scoring_log": len(unmatched),
            "examples": unmatched[:3]}


def verdict(before: str, new: str, promoted: dict[int, float], rolled_back: dict[int, float], workers: int,
            server_errors: int, retries: dict[str, int], names: dict[str, Any],
            after_rollback: Counter[str]) -> list[str]:
    """The scenario's own failed checks (empty when it passes)."""
    failed = switch_failures("", promoted, rolled_back, workers, server_errors, retries)
    if names["not_matching_scoring_log"]:
        failed.append(f"{names['not_matching_scoring_log']} decisions name a version that did not score them")
    if not names["by_version"].get(new):
        failed.append(f"no decision made by the promoted {new}")
    if not names["by_version"].get(before):
        failed.append(f"no decision made by {before}")
    if set(after_rollback) - {before}:
        failed.append(f"after every worker rolled back, requests still scored by {dict(after_rollback)}")
    return failed


def switch_failures(what: str, promoted: dict[int, float], rolled_back: dict[int, float], workers: int,
                    server_errors: int, retries: dict[str, int]) -> list[str]:
    """What a promotion scenario checks of the switch itself: every worker switched `what` ("" for the
    model) both ways within BOUND_S, and no request failed or retried meanwhile."""
    failed = []
    for label, seen in (("promote", promoted), ("rollback", rolled_back)):
        if len(seen) < workers:
            failed.append(f"{label}: {len(seen)} of {workers} scoring workers switched{what}")
        slow = {pid: s for pid, s in seen.items() if s > BOUND_S}
        if slow:
            failed.append(f"{label}: switched after more than {BOUND_S:.0f} s: {slow}")
    if server_errors:
        failed.append(f"{server_errors} scoring requests failed (5xx)")
    if retries:
        failed.append(f"enrichment retried deliveries: {retries}")
    return failed
