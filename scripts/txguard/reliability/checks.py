"""What every scenario ends with: drain, count, compare with the replay, and list what failed.

`finish` returns one result dict (a table row): the ledger's counts (`sent`, `decided`,
`invalid`, `dead_lettered`, `redriven`, `lost`, `late`, ...), the history check
(`double_counted`, `missing`, `mismatched_wallets`), the per-transaction feature checks (wallet:
`features_differing`, `features_unexplained`; counterparty: `cp_features_differing`,
`cp_features_unexplained`, with the late updates logged and their lag), the counterparty, device
and label aggregates against the replay (`aggregate_cells_differing`), the counterparty updates
left leased (`open_leases`), what the scenario adds (`extra`), and `failed_checks`: the reasons
it does not pass (empty when it does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from txguard.contract.models import LabelEvent
from txguard.local.ledger import Ledger
from txguard.publisher import Outgoing
from txguard.reliability.context import Context


def finish(ctx: Context, ledger: Ledger, messages: list[Outgoing], extra: dict[str, Any],
           labels: Iterable[LabelEvent] = (), markers: bool = False) -> dict[str, Any]:
    """Drain, then check everything against the replay of `messages` and `labels` (the valid labels
    the scenario published; with `markers`, count the counterparty markers left behind)."""
    drain = ctx.drain(ledger)
    prefix = next((m.transaction_id.split("-", 1)[0] for m in messages if m.transaction_id), "")
    ctx.progress.phase(ledger, "checking history, features and counterparty aggregates against the replay")
    state = ctx.state(messages, ledger, labels, markers)
    history, features = state.pop("history"), state.pop("features")
    summary = ledger.summary()
    result: dict[str, Any] = {
        **summary,
        "double_counted": history.double_counted,
        "missing": history.missing,
        "mismatched_wallets": history.mismatched_wallets,
        "wallets": history.wallets,
        "features_compared": features.compared,
        "features_differing": features.differing,
        "features_explained_by_late": features.explained,
        "features_unexplained": features.unexplained,
        **state,
        "drain_s": drain.seconds,
        "redrives": drain.actions,
        "retried": ctx.retries(prefix) if prefix else {},
        **extra,
    }
    failed = []
    if summary["lost"]:
        failed.append(f"{summary['lost']} lost")
    if history.double_counted:
        failed.append(f"{history.double_counted} double counted")
    if history.missing or history.mismatched_wallets:
        failed.append(f"history differs from the replay ({history.missing} missing, "
                      f"{history.mismatched_wallets} wallets)")
    if features.unexplained:
        failed.append(f"{features.unexplained} transactions scored on features that differ from the replay "
                      "with no late transaction to explain it")
    if state["cp_features_unexplained"]:
        failed.append(f"{state['cp_features_unexplained']} transactions scored on counterparty features that differ "
                      "from the replay with no late update logged to explain it")
    if state["aggregate_cells_differing"]:
        failed.append(f"counterparty aggregates differ from the replay ({state['aggregate_cells_differing']} counters "
                      f"of {state['aggregate_entities_differing']} entities)")
    if state["open_leases"]:
        failed.append(f"{state['open_leases']} counterparty updates left leased, never recorded applied")
    if summary["decided"] != summary["transactions"]:
        failed.append(f"{summary['transactions'] - summary['decided']} transactions not decided")
    if summary["publish_failed"]:
        failed.append(f"{summary['publish_failed']} publishes failed")
    if summary["valid_on_invalid"]:
        failed.append(f"{summary['valid_on_invalid']} valid transactions on invalid")
    if summary["inconsistent_decisions"]:
        failed.append(f"{summary['inconsistent_decisions']} transactions with differing decision copies")
    result["failed_checks"] = failed + list(result.pop("extra_failed", []))
    return result
