"""The `labels` scenario: label events as real feeds send them; nothing lost, nothing double counted.

On the running stack (the label function behind its push subscription, the counterparty store of
the mode: Bigtable emulator or SQLite), the scenario publishes its transactions (wallets,
counterparties and devices of its own) but a few held back, drains, then the label corpus of
txguard.reliability.label_events (duplicates, reversals, one published before its chargeback,
labels of the held-back transactions, of a transaction nobody saw, malformed ones) on each label's
route and at once the held-back transactions (their labels wait for them: retried until the
transaction is in the index), drains, publishes labels that reuse an applied label id with other
content, and drains again. It passes only if:

- every label is accounted for by the ledger: each valid one applied (the label function's log),
  each malformed, unknown or conflicting one on `invalid` with a reason, none lost or dead-lettered;
- the label counters in the store (the fraud columns of every counterparty, wallet and device the
  labels name) equal the offline replay of the same label set (txguard.features.label_ledger through a
  `CounterpartyBook`, the training path): `labels_double_counted` (store above the replay) and
  `labels_missing` (below) are both 0;
- the transactions pass the usual checks (txguard.reliability.checks.finish), their counterparty
  features and all the counters of the scenario's entities against the replay of the
  transactions *and* the labels: a label published after transactions that it should have
  counted for is a late update, logged as such.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from txguard.contract.models import TRANSACTION_ADAPTER, LabelEvent, Transaction
from txguard.local.ledger import Ledger
from txguard.reliability import label_events
from txguard.reliability.checks import finish
from txguard.reliability.context import Context

PREFIX = "lab"


def labels_scenario(ctx: Context) -> dict[str, Any]:
    """Duplicates, reversals, early labels, unknown counterparties, malformed and conflicting labels."""
    from txguard.local.label_feed import publish_now

    ledger = ctx.router.add(Ledger("labels"))
    messages = ctx.messages(PREFIX, ctx.profile.labels_tx, seed=30)  # counterparties and devices of its own
    txs = [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages]
    corpus = label_events.corpus(txs, datetime.now(UTC), PREFIX)
    first = [m for m in messages if m.transaction_id not in corpus.held_back]
    later = [m for m in messages if m.transaction_id in corpus.held_back]
    info = ctx.publish(ledger, first, ctx.nominal_rate)
    ctx.drain(ledger)
    ctx.progress.phase(ledger, f"publishing {len(corpus.first_wave)} label messages, then {len(later)} held-back "
                               "transactions (their labels are retried until they are applied)")
    publish_now(ctx.stack.options.project, ledger, corpus.first_wave)
    ctx.publish(ledger, later, ctx.nominal_rate)
    ctx.drain(ledger)
    ctx.progress.phase(ledger, f"{len(corpus.conflicts)} conflicting labels")
    publish_now(ctx.stack.options.project, ledger, corpus.conflicts)
    result = finish(ctx, ledger, messages, {"publish_s": info["publish_s"]}, labels=corpus.valid)
    ctx.progress.phase(ledger, "comparing the store's label counters with the offline replay")
    counters = compare_counters(ctx.stack, corpus.valid, txs)
    result.update(counters)
    result.update(_label_checks(result, corpus, ledger))
    return result


def fraud_columns(cells: dict[str, int]) -> dict[str, int]:
    """The label counters of a day row: known frauds per day (`df`), per hour (`hNNf`), per wallet slot (`gNN`)."""
    return {c: v for c, v in cells.items() if v and (c == "df" or (c[0] == "h" and c.endswith("f")) or c[0] == "g")}


def compare_counters(stack: Any, labels: list[LabelEvent], transactions: list[Transaction],
                     only_counterparties: bool = False) -> dict[str, int]:
    """The store's label counters of every entity the labels name (their counterparties only, with
    `only_counterparties`), against the offline replay of the labels."""
    from txguard.features.counterparty import CounterpartyBook, EntityKeys
    from txguard.features.label_ledger import apply_label

    book = CounterpartyBook()
    for label in sorted(labels, key=lambda lb: (lb.known_at, lb.label_id)):
        apply_label(book, label)
    now = datetime.now(UTC)
    probes = {(lb.wallet_id, lb.counterparty_id, lb.device_id) for lb in labels}
    store = stack.counterparty_store()
    compared = double = missing = 0
    seen: set[str] = set()
    try:
        for wallet, counterparty, device in sorted(probes, key=str):
            probe = Transaction.model_construct(transaction_id="probe", wallet_id=wallet, counterparty_id=counterparty,
                                                device_id=device, timestamp=now)
            online = store.snapshot(probe)
            keys = EntityKeys.of(wallet, counterparty, device)
            views = ((keys.counterparty, online.counterparty),) if only_counterparties else (
                (keys.counterparty, online.counterparty), (keys.wallet, online.wallet), (keys.device, online.device))
            for entity, view in views:
                if entity is None or entity in seen:
                    continue
                seen.add(entity)
                offline = book.view(entity, now.timestamp())
                for day in set(view) | set(offline):
                    got, want = fraud_columns(dict(view.get(day, {}))), fraud_columns(dict(offline.get(day, {})))
                    for column in set(got) | set(want):
                        compared += 1
                        double += max(0, got.get(column, 0) - want.get(column, 0))
                        missing += max(0, want.get(column, 0) - got.get(column, 0))
    finally:
        store.close()
    frauds = sum(v for days in book.cells.values() for cells in days.values() for c, v in cells.items() if c == "df")
    return {"label_entities": len(seen), "label_counters_compared": compared, "labels_double_counted": double,
            "labels_missing": missing, "label_frauds_replayed": frauds, "label_transactions": len(transactions)}


def _label_checks(result: dict[str, Any], corpus: label_events.Corpus, ledger: Ledger) -> dict[str, Any]:
    summary = ledger.labels.summary()
    distinct = len({lb.label_id for lb in corpus.valid})
    sent_kinds = Counter(m.corruption for m in corpus.first_wave + corpus.conflicts)
    failed = list(result.get("failed_checks", []))
    if summary["labels_lost"]:
        failed.append(f"{summary['labels_lost']} labels lost")
    if summary["labels_applied"] != distinct:
        failed.append(f"{summary['labels_applied']} of {distinct} valid labels applied")
    if summary["labels_invalid"] != corpus.malformed:
        failed.append(f"{summary['labels_invalid']} of {corpus.malformed} malformed or conflicting labels on invalid")
    if summary["labels_invalid_without_reason"]:
        failed.append(f"{summary['labels_invalid_without_reason']} labels on invalid without a reason")
    if summary["labels_held"]:
        failed.append(f"{summary['labels_held']} labels held: the scenario's sources stay below the label limits")
    if summary["labels_valid_on_invalid"]:
        failed.append(f"{summary['labels_valid_on_invalid']} valid labels on invalid")
    if summary["label_statuses"].get("duplicate", 0) < sent_kinds["duplicate"]:
        failed.append(f"{summary['label_statuses'].get('duplicate', 0)} duplicate statuses for "
                      f"{sent_kinds['duplicate']} copies sent")
    if result["labels_double_counted"] or result["labels_missing"]:
        failed.append(f"label counters differ from the replay ({result['labels_double_counted']} double counted, "
                      f"{result['labels_missing']} missing)")
    if not result["label_frauds_replayed"]:
        failed.append("the replay counts no fraud: nothing was compared")
    return {**summary, "label_kinds_sent": dict(sorted(sent_kinds.items())), "failed_checks": failed}
