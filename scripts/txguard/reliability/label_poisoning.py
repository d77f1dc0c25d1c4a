"""The `label_poisoning` scenario: labels written to hurt, beside genuine ones; only what is believable counts.

On the running stack (the label function behind its two routes, the transaction index and the
counterparty store of the mode), the scenario publishes its transactions on counterparties of its
own (a block of them on one `burst` shop), drains, then publishes at once:

| set | what | expected |
|---|---|---|
| genuine | chargebacks of `processor:acme`, analyst verdicts of `analyst:g7`, a few reversals | applied |
| forged | analyst labels (`analyst:a1`, fraud) of made-up transactions naming the victim shop | retried, parked `unknown_transaction` |
| wrong route | analyst verdicts on the processor feed's topic, chargebacks naming an analyst, chargebacks on the console's topic | parked `source` |
| mismatched | chargebacks of real transactions naming the victim shop (or another wallet) | parked `mismatch` |
| storm | `processor:rogue`'s reversals of the genuine chargebacks, 3x its source limit | the first `limit` applied, the rest held |
| burst | `processor:burst`'s fraud chargebacks of the burst shop's transactions, its limit + 50 % | the first `limit` applied, the rest held |

It drains, then reviews what was held as an operator would (`txguard labels held`: the same
`release` and `discard`): the burst is released (its chargebacks are real), the storm discarded. It
passes only if:

- every forged, wrong-route and mismatched label is on `invalid` with its reason and kind, none
  applied, none held; no label lost or dead-lettered;
- the storm and the burst are held beyond their limits (`label_limits` names the stack's settings),
  and nothing else is held;
- the victim shop's label counters equal the offline replay of its genuine labels only (the forged and
  mismatched labels changed nothing there), and every label counter the scenario's labels touch
  equals the replay of the labels the function applied, before the review and after it (released
  ones then included): nothing double counted, nothing missing;
- the transactions pass the usual checks (txguard.reliability.checks.finish).

The stack runs the label function with `LABEL_SETTINGS` (runner.py): limits small enough to reach in a
scenario, and `LABEL_UNKNOWN_RETRY_S` short enough that the forged labels are parked within a minute.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from txguard.contract import names
from txguard.contract.models import TRANSACTION_ADAPTER, LabelEvent, LabelKind, Transaction
from txguard.local.ledger import Ledger
from txguard.publisher import Outgoing
from txguard.publisher.label_sources import from_label
from txguard.reliability.checks import finish
from txguard.reliability.context import Context
from txguard.reliability.label_scenario import compare_counters

PREFIX = "lpo"
BURST_SHOP = f"{PREFIX}-burst-shop"
# The label function's settings on the reliability stack (LabelSettings aliases). The `labels` scenario
# spreads its labels over four analysts and four processors, each far below these.
LABEL_SETTINGS = {
    "LABEL_UNKNOWN_RETRY_S": "45",
    "LABEL_LIMIT_WINDOW_S": "3600",
    "LABEL_ANALYST_SOURCE_LIMIT": "60",
    "LABEL_FEED_SOURCE_LIMIT": "120",
    "LABEL_COUNTERPARTY_FRAUD_LIMIT": "40",
}
FEED_LIMIT = int(LABEL_SETTINGS["LABEL_FEED_SOURCE_LIMIT"])
COUNTERPARTY_LIMIT = int(LABEL_SETTINGS["LABEL_COUNTERPARTY_FRAUD_LIMIT"])
STORM = 3 * FEED_LIMIT
BURST = COUNTERPARTY_LIMIT * 3 // 2
WRONG_ROUTE, MISMATCHED = 15, 20


def _label(tx: Transaction, suffix: str, kind: LabelKind, source: str, known: datetime, **extra: object) -> LabelEvent:
    return LabelEvent(label_id=f"{tx.transaction_id}:{suffix}", transaction_id=tx.transaction_id,
                      wallet_id=tx.wallet_id, counterparty_id=tx.counterparty_id, device_id=tx.device_id,
                      transaction_time=tx.timestamp, known_at=max(known, tx.timestamp), kind=kind, source=source,
                      **extra)


def _on_burst_shop(messages: list[Outgoing], count: int) -> list[Outgoing]:
    """The first `count` transactions moved to the burst shop (the rest keep their counterparties)."""
    out = []
    for n, m in enumerate(messages):
        if n < count:
            doc = json.loads(m.data)
            doc["counterparty_id"] = BURST_SHOP
            m = replace(m, data=json.dumps(doc, separators=(",", ":")).encode())
        out.append(m)
    return out


def plan(txs: list[Transaction], now: datetime, forged: int) -> dict[str, list[LabelEvent]]:
    """The scenario's label sets, by name (pure: tested without a stack)."""
    burst_txs = [tx for tx in txs if tx.counterparty_id == BURST_SHOP][:BURST]
    others = [tx for tx in txs if tx.counterparty_id != BURST_SHOP]
    at = now - timedelta(minutes=20)
    genuine: list[LabelEvent] = []
    for i, tx in enumerate(others):
        if i % 4 == 0:
            genuine.append(_label(tx, "cb", LabelKind.CHARGEBACK, "processor:acme", at + timedelta(seconds=i), is_fraud=True))
        if i % 7 == 1:
            genuine.append(_label(tx, "an", LabelKind.ANALYST, "analyst:g7", at + timedelta(seconds=i),
                                  is_fraud=i % 2 == 0))
    chargebacks = [lb for lb in genuine if lb.kind is LabelKind.CHARGEBACK]
    # The victim: the shop with the most genuine chargebacks (its features are what the forger wants up).
    victim = Counter(cb.counterparty_id for cb in chargebacks).most_common(1)[0][0]
    # The acquirer withdraws a few of its own, at other shops: the victim keeps genuine frauds to compare.
    for cb in [cb for cb in chargebacks if cb.counterparty_id != victim][:3]:
        genuine.append(cb.model_copy(update={"label_id": f"{cb.transaction_id}:rv", "kind": LabelKind.REVERSAL,
                                             "is_fraud": None, "reverses": cb.label_id,
                                             "known_at": cb.known_at + timedelta(seconds=30)}))
    template = others[0]
    forged_labels = []
    for k in range(forged):  # Attack 1: made-up transactions at the victim, as an analyst
        ghost = template.model_copy(update={"transaction_id": f"{PREFIX}-forged-{k}", "wallet_id": f"{PREFIX}-fw{k}",
                                            "counterparty_id": victim, "device_id": None})
        forged_labels.append(_label(ghost, "an", LabelKind.ANALYST, "analyst:a1", now - timedelta(minutes=5),
                                    is_fraud=True))
    wrong: list[tuple[LabelEvent, str]] = []  # (label, the topic it is published to)
    for k, tx in enumerate(others[:WRONG_ROUTE]):
        if k % 3 == 0:  # an analyst verdict on the processor feed's topic
            wrong.append((_label(tx, "wr-an", LabelKind.ANALYST, "analyst:a1", at, is_fraud=True), names.LABELS_TOPIC))
        elif k % 3 == 1:  # a chargeback claiming an analyst as its source
            wrong.append((_label(tx, "wr-cb", LabelKind.CHARGEBACK, "analyst:a1", at, is_fraud=True),
                          names.LABELS_TOPIC))
        else:  # a chargeback on the console's topic
            wrong.append((_label(tx, "wr-cb", LabelKind.CHARGEBACK, "processor:acme", at, is_fraud=True),
                          names.ANALYST_LABELS_TOPIC))
    mismatched = []
    for k, tx in enumerate([tx for tx in others if tx.counterparty_id != victim][:MISMATCHED]):
        field = {"counterparty_id": victim} if k % 4 else {"wallet_id": f"{PREFIX}-someone-else"}
        mismatched.append(_label(tx, "mm", LabelKind.CHARGEBACK, "processor:acme", at, is_fraud=True)
                          .model_copy(update=field))
    # Attack 2: one source erasing chargebacks (of other shops than the victim's, so its counters stay genuine).
    targets = [cb for cb in chargebacks if cb.counterparty_id != victim] or chargebacks
    storm = []
    for k in range(STORM):
        cb = targets[k % len(targets)]
        tx = next(t for t in others if t.transaction_id == cb.transaction_id)
        storm.append(_label(tx, f"rv-rogue-{k}", LabelKind.REVERSAL, "processor:rogue", now - timedelta(minutes=2),
                            reverses=cb.label_id))
    burst = [_label(tx, "cb-burst", LabelKind.CHARGEBACK, "processor:burst", now - timedelta(minutes=3), is_fraud=True)
             for tx in burst_txs]
    return {"genuine": genuine, "forged": forged_labels, "wrong_route": [lb for lb, _ in wrong],
            "wrong_route_topics": wrong, "mismatched": mismatched, "storm": storm, "burst": burst,
            "victim": victim}  # type: ignore[dict-item]


def label_poisoning(ctx: Context) -> dict[str, Any]:
    from txguard.enrichment.label_applier import discard, release
    from txguard.local.label_feed import publish_now

    ledger = ctx.router.add(Ledger("label_poisoning"))
    p = ctx.profile
    count = max(p.labels_tx, BURST + 3 * FEED_LIMIT // 2)
    messages = _on_burst_shop(ctx.messages(PREFIX, count, seed=31), BURST)  # its own wallets, shops, devices
    txs = [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages]
    info = ctx.publish(ledger, messages, ctx.nominal_rate)
    ctx.drain(ledger)  # every transaction in the index before its labels
    sets = plan(txs, datetime.now(UTC), forged=200 if p.name == "full" else 60)
    victim: str = sets["victim"]  # type: ignore[assignment]
    project = ctx.stack.options.project
    ctx.progress.phase(ledger, f"{len(sets['genuine'])} genuine labels, {len(sets['forged'])} forged, "
                               f"{len(sets['wrong_route'])} on the wrong route, {len(sets['mismatched'])} mismatched, "
                               f"a storm of {len(sets['storm'])} reversals, a burst of {len(sets['burst'])} chargebacks")
    publish_now(project, ledger, [from_label(lb) for lb in sets["genuine"]])
    ctx.drain(ledger)  # the genuine labels first: the storm then erases what they counted
    publish_now(project, ledger, [from_label(lb) for lb in sets["forged"] + sets["mismatched"]])
    for label, topic in sets["wrong_route_topics"]:  # type: ignore[misc]
        publish_now(project, ledger, [from_label(label)], topic=topic)
    publish_now(project, ledger, [from_label(lb) for lb in sets["storm"] + sets["burst"]])
    ctx.drain(ledger)

    statuses, parked = ledger.labels.statuses(), ledger.labels.invalid_kinds()
    applied_ids = {i for i, s in statuses.items() if any(x in ("applied", "unchanged", "duplicate") for x in s)}
    held_ids = {i for i, s in statuses.items() if "held" in s and i not in applied_ids}
    every = [lb for key in ("genuine", "forged", "wrong_route", "mismatched", "storm", "burst") for lb in sets[key]]
    applied = [lb for lb in every if lb.label_id in applied_ids]
    failed: list[str] = []
    ctx.progress.phase(ledger, "comparing the store's label counters with the replay of the applied labels")
    before = compare_counters(ctx.stack, applied, txs)
    genuine_at_victim = [lb for lb in sets["genuine"] if lb.counterparty_id == victim]
    victim_check = compare_counters(ctx.stack, genuine_at_victim, txs, only_counterparties=True)

    ctx.progress.phase(ledger, "review: the burst released, the storm discarded")
    store, index, review = ctx.stack.label_stores()
    quiet = logging.getLogger("txguard.reliability.review")  # the label function's log says it for real
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    storm_ids, burst_ids = {lb.label_id for lb in sets["storm"]}, {lb.label_id for lb in sets["burst"]}
    released = discarded = 0
    try:
        ours = [h for h in review.held() if h.label.transaction_id.startswith(f"{PREFIX}-")]
        for held in ours:
            if held.label.label_id in burst_ids:
                release(held, store, index, review, quiet, by="reliability")
                released += 1
            elif held.label.label_id in storm_ids:
                discard(held, review, quiet, by="reliability", why="a reversal storm from one source")
                discarded += 1
        still_held = [h.label.label_id for h in review.held() if h.label.transaction_id.startswith(f"{PREFIX}-")]
        held_in_store = {h.label.label_id for h in ours}
    finally:
        for closable in (index, review, store):
            closable.close()
    released_labels = [lb for lb in sets["burst"] if lb.label_id in held_ids]
    after = compare_counters(ctx.stack, applied + released_labels, txs)

    # The aggregates and features against the replay of what the store applied (the review included).
    result = finish(ctx, ledger, messages, {"publish_s": info["publish_s"]}, labels=applied + released_labels)
    summary = ledger.labels.summary()

    def parked_as(key: str, kind: str) -> int:
        return sum(1 for lb in sets[key] if kind in parked.get(lb.label_id, []))

    refused = {"forged": ("unknown_transaction", len(sets["forged"])),
               "wrong_route": ("source", len(sets["wrong_route"])),
               "mismatched": ("mismatch", len(sets["mismatched"]))}
    counts: dict[str, Any] = {"victim_counterparty": victim}
    for key, (kind, sent) in refused.items():
        got = parked_as(key, kind)
        counts[f"{key}_sent"], counts[f"{key}_parked"] = sent, got
        if got != sent:
            failed.append(f"{got} of {sent} {key} labels parked as {kind}")
        wrongly = sum(1 for lb in sets[key] if lb.label_id in applied_ids | held_ids)
        if wrongly:
            failed.append(f"{wrongly} {key} labels applied or held")
    for key, limit in (("storm", FEED_LIMIT), ("burst", COUNTERPARTY_LIMIT)):
        ids = {lb.label_id for lb in sets[key]}
        counts[f"{key}_sent"], counts[f"{key}_limit"] = len(ids), limit
        counts[f"{key}_applied"], counts[f"{key}_held"] = len(ids & applied_ids), len(ids & held_ids)
        if len(ids & held_ids) < len(ids) - limit or len(ids & applied_ids) > limit:
            failed.append(f"{key}: {len(ids & applied_ids)} applied and {len(ids & held_ids)} held of {len(ids)} "
                          f"(limit {limit})")
    genuine_ids = {lb.label_id for lb in sets["genuine"]}
    counts["genuine_sent"], counts["genuine_applied"] = len(genuine_ids), len(genuine_ids & applied_ids)
    if genuine_ids - applied_ids:
        failed.append(f"{len(genuine_ids - applied_ids)} genuine labels not applied")
    unexpected_held = held_ids - storm_ids - burst_ids
    if unexpected_held:
        failed.append(f"{len(unexpected_held)} labels held that are neither storm nor burst")
    if held_in_store != held_ids:
        failed.append(f"the review store holds {len(held_in_store)} labels, the label function said {len(held_ids)}")
    if still_held:
        failed.append(f"{len(still_held)} labels still held after the review")
    for name, check in (("applied", before), ("after_review", after)):
        counts[f"counters_{name}"] = check
        if check["labels_double_counted"] or check["labels_missing"]:
            failed.append(f"label counters ({name}) differ from the replay: {check['labels_double_counted']} double "
                          f"counted, {check['labels_missing']} missing")
    counts["victim_counters"] = victim_check
    if victim_check["labels_double_counted"] or victim_check["labels_missing"]:
        failed.append(f"the victim's counters differ from its genuine labels' replay "
                      f"({victim_check['labels_double_counted']} above, {victim_check['labels_missing']} below)")
    if not victim_check["label_frauds_replayed"]:
        failed.append("the victim has no genuine fraud label: nothing was compared")
    if summary["labels_lost"] or summary["labels_dead_lettered"]:
        failed.append(f"{summary['labels_lost']} labels lost, {summary['labels_dead_lettered']} dead-lettered")
    if summary["labels_invalid_without_reason"]:
        failed.append(f"{summary['labels_invalid_without_reason']} labels on invalid without a reason")
    counts.update(released=released, discarded=discarded)
    result.update(summary)
    result.update(counts)
    result["failed_checks"] = list(result.get("failed_checks", [])) + failed
    return result
