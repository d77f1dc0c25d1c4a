"""The `rule_promotion` scenario: a rule set promoted and rolled back during a stream, no redeploy.

The scoring function follows the rule set alias in the same round as the model alias
(txguard.scoring.follower, MODEL_POLL_S at its default). The scenario saves a rule set of its own
(rules that fire on a good share of the stream, so a wrong set would show), promotes it a few
seconds into the stream with `txguard rules promote`'s code and rolls back later, and passes only if:

- every scoring worker logged the switch (`event: rules_loaded`) to the new set and back, each within
  `BOUND_S` of the registry change;
- no request failed: no 5xx in the scoring function's log, no delivery retried by enrichment;
- nothing is lost, nothing double counted (the usual checks);
- each decision matches the rule set active at its time: the `rule_set` it names is the one the
  scoring function logged for that transaction, and evaluating that rule set again here, on the
  transaction as it was scored (its features from the history store) and the decision's score, gives
  the same rules and the same outcome; decisions of both sets were made, and only the original one
  decides after every worker rolled back.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from txguard.contract.models import RuleSetSpec
from txguard.local.ledger import Ledger
from txguard.reliability.checks import finish
from txguard.reliability.context import Context
from txguard.reliability.promotion import BOUND_S, _lines, first_switch, named_after, scored, switch_failures

PREFIX = "rpr"
SCENARIO_RULES = RuleSetSpec(rules=[
    {"name": "reliability_big_payment", "condition": "type == 'payment' && amount > 30", "outcome": "review",
     "reason": "the rule_promotion scenario's rule"},
    {"name": "reliability_transfer", "condition": "type == 'transfer' && amount > 50", "outcome": "block",
     "reason": "the rule_promotion scenario's rule"},
])


def rule_promotion(ctx: Context) -> dict[str, Any]:
    """Promote a rule set a few seconds into a stream, roll back later; no redeploy, no failure."""
    from txguard.registry import PRODUCTION, open_registry
    from txguard.registry.rulesets import RuleSetRegistry

    p = ctx.profile
    ledger = ctx.router.add(Ledger("rule_promotion"))
    fn = ctx.stack.functions["score"]
    location = ctx.stack.env["TXGUARD_REGISTRY"]
    store = RuleSetRegistry(open_registry(location).store)
    before = store.resolve(PRODUCTION)  # the stack saves one (txguard.local.model.ensure_rules)
    new = store.publish(SCENARIO_RULES, saved_by="txguard reliability", reason="rule_promotion scenario").version
    marks: dict[str, Any] = {}

    def promote() -> None:
        RuleSetRegistry(open_registry(location).store).promote(new)
        marks["promote"] = time.time()

    def rollback() -> None:
        marks["rolled_back_to"] = RuleSetRegistry(open_registry(location).store).rollback()
        marks["rollback"] = time.time()

    messages = ctx.messages(PREFIX, int(p.promotion_stream_s * ctx.nominal_rate), seed=31)
    info = ctx.publish(ledger, messages, ctx.nominal_rate,
                       [(p.promote_at_s, f"promote rule set {new}", promote),
                        (p.rollback_at_s, f"roll back rule set to {before}", rollback)])
    result = finish(ctx, ledger, messages, {"publish_s": info["publish_s"], "promoted_rule_set": new,
                                            "production_rule_set": before})
    lines = _lines(fn.log_path)
    promoted = switches(lines, new, marks["promote"]) if "promote" in marks else {}
    rolled = switches(lines, before, marks["rollback"]) if "rollback" in marks else {}
    logged = rule_sets_logged(lines, PREFIX)
    _versions, server_errors = scored(lines, PREFIX)
    checked = recheck(ctx, ledger.decisions(), logged, location)
    settled = marks.get("rollback", time.time()) + max(rolled.values(), default=BOUND_S) + 0.5
    workers = int(fn.env.get("WORKERS") or 1)
    result.update(switched_promote_s=promoted, switched_rollback_s=rolled, scoring_5xx=server_errors,
                  decisions_by_rule_set=checked["by_rule_set"], decisions_by_rule=checked["by_rule"],
                  decisions_not_matching=checked["not_matching"], decisions_rechecked=checked["rechecked"],
                  scoring_workers=workers)
    failed = verdict(before, new, promoted, rolled, workers, server_errors, result.get("retried") or {}, checked,
                     rule_sets_after(lines, PREFIX, settled))
    if marks.get("rolled_back_to") not in (None, before):
        failed.append(f"rollback went to {marks['rolled_back_to']}, not {before}")
    result["failed_checks"] += failed
    return result


def switches(lines: list[dict[str, Any]], version: str, since: float) -> dict[int, float]:
    """{worker pid: seconds after `since`} of the first `rules_loaded` line applying `version` after `since`."""
    return first_switch(lines, since, lambda line: (line.get("event") == "rules_loaded"
                                                    and line.get("rule_set") == version and line.get("role") == "rules"))


def rule_sets_logged(lines: list[dict[str, Any]], prefix: str) -> dict[str, set[str]]:
    """transaction id -> rule sets the scoring function's request lines name for it."""
    out: dict[str, set[str]] = {}
    for line in lines:
        tid = line.get("transaction_id")
        if isinstance(tid, str) and tid.startswith(f"{prefix}-") and line.get("path") == "/score" and line.get("outcome"):
            out.setdefault(tid, set()).add(str(line.get("rule_set")))
    return out


def rule_sets_after(lines: list[dict[str, Any]], prefix: str, since: float) -> Counter[str]:
    return named_after(lines, prefix, since, "rule_set")


def recheck(ctx: Context, decisions: dict[str, list[bytes]], logged: dict[str, set[str]],
            location: str) -> dict[str, Any]:
    """Every decision against the rule set it names, evaluated again on the transaction as it was scored."""
    from txguard.registry import open_registry
    from txguard.registry.rulesets import RuleSetRegistry
    from txguard.rules.engine import RuleSet
    from txguard.scoring.loading import open_scorer
    from txguard.scoring.scorer import outcome
    from txguard.scoring.vectorize import row_of

    registry = open_registry(location)
    rule_sets: dict[str, RuleSet] = {}
    thresholds: dict[str, Any] = {}
    store = ctx.stack.history_store()
    by_rule_set: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    unmatched: list[str] = []
    rechecked = 0
    try:
        for tid, copies in decisions.items():
            for raw in copies:
                doc = json.loads(raw)
                named = doc.get("rule_set")
                by_rule_set[str(named)] += 1
                by_rule.update(h["rule"] for h in doc.get("rules") or ())
                if str(named) not in logged.get(tid, set()):
                    unmatched.append(tid)
                    continue
                if named is None:
                    continue
                if named not in rule_sets:
                    loaded = RuleSetRegistry(registry.store).load(named)
                    rule_sets[named] = RuleSet(loaded.spec, named)
                version = doc["model_version"]
                if version not in thresholds:
                    thresholds[version] = open_scorer(f"{location}@{version}").thresholds
                tx = store.enriched(tid)
                if tx is None:
                    continue
                model_outcome = outcome(doc["score"], thresholds[version])
                out, hits = rule_sets[named].apply(row_of(tx), doc["score"], tx, model_outcome)
                rechecked += 1
                if [h.rule for h in hits] != [h["rule"] for h in doc.get("rules") or ()] or out.value != doc["outcome"]:
                    unmatched.append(tid)
    finally:
        store.close()
    return {"by_rule_set": dict(sorted(by_rule_set.items())), "by_rule": dict(sorted(by_rule.items())),
            "not_matching": len(unmatched), "examples": unmatched[:3], "rechecked": rechecked}


def verdict(before: str, new: str, promoted: dict[int, float], rolled_back: dict[int, float], workers: int,
            server_errors: int, retries: dict[str, int], checked: dict[str, Any],
            after_rollback: Counter[str]) -> list[str]:
    failed = switch_failures(" rule set", promoted, rolled_back, workers, server_errors, retries)
    if checked["not_matching"]:
        failed.append(f"{checked['not_matching']} decisions do not match the rule set they name "
                      f"(e.g. {checked['examples']})")
    if not checked["by_rule_set"].get(new):
        failed.append(f"no decision made with the promoted rule set {new}")
    if not checked["by_rule_set"].get(before):
        failed.append(f"no decision made with {before}")
    if set(after_rollback) - {before}:
        failed.append(f"after every worker rolled back, requests still decided with {dict(after_rollback)}")
    return failed
