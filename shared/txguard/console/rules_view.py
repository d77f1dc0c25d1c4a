"""The Rules page's work: check a rule set, backtest it, save it to `staging`, move `production`.

Every request carries the rule set as JSON (`{"rules": [...]}`). The check is the one `txguard rules
check` and the scoring function run (txguard.rules): its problems come back with the rule, line and
column, which the page shows under the condition. The backtest replays the saved backtest sample
(`BACKTEST_SAMPLE`, a .npz from `txguard rules backtest --save-sample`; `txguard local up` writes
one) through the rules and the model's recorded scores. Saving publishes a new rule set version in
the registry (who: the analyst; why: the reason typed) and points `staging` at it: the scoring
function shadows it from there. Promoting to `production` (or rolling it back) needs an approver
(txguard.console.approvers) and `confirm` repeating the alias name.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from txguard.console.approvers import Approvers
from txguard.contract.errors import (
    ConcurrentUpdateError,
    ConsoleConflictError,
    ConsoleInputError,
    ConsoleNotFoundError,
    ConsoleUnavailableError,
    RegistryError,
    RuleCheckError,
    RuleSetNotFoundError,
)
from txguard.contract.models import RULE_SET_ADAPTER, RuleSetSpec
from txguard.contract.settings import ConsoleSettings
from txguard.registry import PRODUCTION, STAGING, Registry
from txguard.registry.rulesets import RuleSetRegistry
from txguard.rules.backtest import BacktestSample, run_backtest
from txguard.rules.engine import RuleSet


def _body(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data or b"{}")
    except ValueError as exc:
        raise ConsoleInputError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ConsoleInputError("send a JSON object")
    return body


def _spec(body: dict[str, Any]) -> RuleSetSpec:
    try:
        return RULE_SET_ADAPTER.validate_python({"rules": body.get("rules")})
    except ValidationError as exc:
        raise ConsoleInputError("the rule set does not have the expected shape", [
            {"loc": ["rules", *e["loc"][1:]], "msg": e["msg"]} for e in exc.errors()]) from exc


def check(data: bytes) -> dict[str, Any]:
    """`{"ok", "problems": [{rule, field, line, column, offset, message}], "reads"}` (200 either way)."""
    try:
        spec = _spec(_body(data))
    except ConsoleInputError as exc:
        return {"ok": False, "problems": [{"rule": None, "field": ".".join(str(p) for p in e["loc"]),
                                           "message": f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"}
                                          for e in exc.errors], "reads": []}
    try:
        rules = RuleSet(spec, version="draft")
    except RuleCheckError as exc:
        return {"ok": False, "problems": exc.problems, "reads": []}
    return {"ok": True, "problems": [], "reads": sorted(rules.compiled.names)}


def _checked(body: dict[str, Any]) -> RuleSet:
    try:
        return RuleSet(_spec(body), version="draft")
    except RuleCheckError as exc:
        raise ConsoleInputError(f"the rule set has {len(exc.problems)} problem(s): check it first", [
            {"loc": ["rules", str(p.get("rule"))], "msg": str(p["message"])} for p in exc.problems]) from exc


def backtest(data: bytes, settings: ConsoleSettings) -> dict[str, Any]:
    body = _body(data)
    rules = _checked(body)
    if not settings.backtest_sample:
        raise ConsoleUnavailableError("no backtest sample is configured (BACKTEST_SAMPLE: write one with "
                                      "`txguard rules backtest --features RUN --save-sample FILE`)")
    try:
        sample = BacktestSample.load(settings.backtest_sample)
    except (OSError, ValueError, KeyError) as exc:
        raise ConsoleUnavailableError(f"backtest sample {settings.backtest_sample} unreadable: {exc}") from exc
    since = None
    if body.get("since"):
        try:
            since = datetime.fromisoformat(str(body["since"]).replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise ConsoleInputError("since: not an ISO date", [{"loc": ["since"], "msg": str(exc)}]) from exc
    try:
        report = run_backtest(rules, sample, since=since)
    except ValueError as exc:
        raise ConsoleInputError(str(exc)) from exc
    report["sample"] = {"source": sample.source, "transactions": len(sample)}
    return report


def overview(registry: Registry) -> dict[str, Any]:
    """Rule set versions newest first (who, why, rules) and the aliases with their rules."""
    store = RuleSetRegistry(registry.store)
    try:
        described = store.describe()
        aliases: dict[str, Any] = {}
        for alias, version in described["aliases"].items():  # type: ignore[union-attr]
            found = store.read_alias(alias)
            aliases[alias] = {"version": version, "history": found[0].history if found else [],
                              "rules": store.load(version).spec.model_dump(mode="json")["rules"]}
    except RegistryError as exc:
        raise ConsoleUnavailableError(f"registry {registry.location}: {exc}") from exc
    versions = list(reversed(described["versions"]))  # type: ignore[arg-type]
    return {"location": registry.location, "aliases": aliases, "versions": versions}


def save(data: bytes, registry: Registry, analyst: str) -> dict[str, Any]:
    body = _body(data)
    rules = _checked(body)
    reason = str(body.get("reason") or "").strip()
    if not reason:
        raise ConsoleInputError("say why you save it", [{"loc": ["reason"], "msg": "a reason is required"}])
    if len(reason) > 500:
        raise ConsoleInputError("reason too long", [{"loc": ["reason"], "msg": "at most 500 characters"}])
    store = RuleSetRegistry(registry.store)
    try:
        meta = store.publish(rules.spec, saved_by=analyst, reason=reason)
        store.promote(meta.version, STAGING, by=analyst)
    except ConcurrentUpdateError as exc:
        raise ConsoleConflictError(f"staging moved meanwhile: {exc}; reload and save again") from exc
    except RegistryError as exc:
        raise ConsoleUnavailableError(f"registry {registry.location}: {exc}") from exc
    return {"version": meta.version, "alias": STAGING, "saved_by": meta.saved_by, "reason": meta.reason,
            "rules": meta.rules, "sha256": meta.sha256}


def move_production(data: bytes, registry: Registry, analyst: str, approvers: Approvers) -> dict[str, Any]:
    """Promote a rule set (default: the one staging names) to production, or roll production back."""
    body = _body(data)
    action = body.get("action")
    if action not in ("promote", "rollback"):
        raise ConsoleInputError("action: promote or rollback", [{"loc": ["action"], "msg": "promote or rollback"}])
    if body.get("confirm") != PRODUCTION:
        raise ConsoleInputError("type production to confirm", [{"loc": ["confirm"], "msg": "type production"}])
    what = "promote a rule set to production" if action == "promote" else "roll back the production rule set"
    approvers.require(analyst, what)  # 403 with the reason
    store = RuleSetRegistry(registry.store)
    try:
        if action == "rollback":
            version = store.rollback(PRODUCTION, by=analyst)
        else:
            version = store.resolve(str(body.get("version") or STAGING))
            store.promote(version, PRODUCTION, by=analyst)
    except RuleSetNotFoundError as exc:
        raise ConsoleNotFoundError(str(exc)) from exc
    except ConcurrentUpdateError as exc:
        raise ConsoleConflictError(f"production moved meanwhile: {exc}; reload") from exc
    except RegistryError as exc:
        raise ConsoleInputError(str(exc)) from exc
    return {"action": action, "alias": PRODUCTION, "version": version, "by": analyst}
