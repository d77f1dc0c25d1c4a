"""Counterparty state under failures: a hot counterparty while workers die, and the store frozen.

Per-wallet order keeps every wallet's history exact; nothing orders the updates other wallets make
to a counterparty. Both scenarios pass only if the counterparty, device and wallet-label aggregates
end equal to the offline replay (nothing lost, nothing added twice), no counterparty update is left
leased, and every transaction scored on counterparty features that differ from the replay is
explained by an update logged late (txguard.reliability.counterparty_check):

- `counterparty_hot`: 30 % of the stream goes to one counterparty (of the scenario's own) while the
  enrichment workers are SIGKILLed several times: the transactions in flight in a killed worker
  are applied to that counterparty tens of seconds later, after many reads of it;
- `counterparty_outage`: the Bigtable emulator is frozen (SIGSTOP on its process group) for 30 s
  mid-stream, then resumed: reads and applies time out, deliveries are retried (503), the lease of
  an update that may be half applied is handed back, and nothing is acked unprocessed.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from typing import Any

from txguard.local.ledger import Ledger
from txguard.publisher import Outgoing
from txguard.reliability import outages
from txguard.reliability.checks import finish
from txguard.reliability.context import Context

HOT_COUNTERPARTY = "busy-shop"


def hot_counterparty(messages: list[Outgoing], share: float, prefix: str) -> tuple[list[Outgoing], int]:
    """`share` of the transactions moved to one counterparty `prefix` + HOT_COUNTERPARTY (chosen by a
    hash of the transaction id: the same ones every run); returns the messages and how many moved."""
    out, moved = [], 0
    for m in messages:
        if m.expected_valid and m.transaction_id and zlib.crc32(m.transaction_id.encode()) % 1000 < share * 1000:
            doc = json.loads(m.data)
            doc["counterparty_id"] = f"{prefix}{HOT_COUNTERPARTY}"
            m = replace(m, data=json.dumps(doc, separators=(",", ":")).encode())
            moved += 1
        out.append(m)
    return out, moved


def counterparty_hot(ctx: Context) -> dict[str, Any]:
    """One counterparty takes 30 % of the traffic while the enrichment workers are killed."""
    p = ctx.profile
    ledger = ctx.router.add(Ledger("counterparty_hot"))
    messages, moved = hot_counterparty(ctx.messages("hot", int(p.hot_stream_s * ctx.nominal_rate), seed=31),
                                       p.hot_share, "hot-")
    fn = ctx.stack.functions["enrich"]
    kills: list[dict[str, Any]] = []
    events = [(at, f"SIGKILL the enrichment workers ({i + 1}/{len(p.hot_kill_at_s)})",
               lambda: kills.append(outages.kill_workers(fn))) for i, at in enumerate(p.hot_kill_at_s)]
    info = ctx.publish(ledger, messages, ctx.nominal_rate, events)
    failed = [f"kill {i + 1}: no worker killed or none came back" for i, k in enumerate(kills)
              if not k["killed"] or not k["replaced_by"]]
    return finish(ctx, ledger, messages, {
        "publish_s": info["publish_s"], "hot_share": p.hot_share, "hot_transactions": moved, "kills": len(kills),
        "workers_killed": sum(len(k["killed"]) for k in kills), "ordering": ctx.ordering, "extra_failed": failed})


def counterparty_outage(ctx: Context) -> dict[str, Any]:
    """The Bigtable emulator frozen mid-stream (SIGSTOP), then resumed with its data."""
    p = ctx.profile
    if ctx.mode != "emulators":
        return {"skipped": "embedded mode has no Bigtable emulator (SQLite counterparty store)", "failed_checks": []}
    ledger = ctx.router.add(Ledger("counterparty_outage"))
    messages = ctx.messages("cpo", int(p.cp_outage_stream_s * ctx.nominal_rate), seed=32)
    # Bounded whatever happens: resumed on schedule, by the timer (a few seconds later) if the
    # schedule is missed, and in `finally`; the stack's close resumes it before stopping it.
    freeze = outages.Freeze(ctx.stack.emulators["bigtable"].proc, max_s=p.cp_outage_s + 5)
    ctx.stack.on_close(freeze.resume)
    events = [(p.cp_outage_at_s, "freezing the Bigtable emulator (SIGSTOP on its process group)", freeze.stop),
              (p.cp_outage_at_s + p.cp_outage_s, "resuming the Bigtable emulator (SIGCONT)", freeze.resume)]
    try:
        info = ctx.publish(ledger, messages, ctx.nominal_rate, events)
    finally:
        freeze.resume()
    result = finish(ctx, ledger, messages, {"publish_s": info["publish_s"], "outage_s": freeze.frozen_s,
                                            "timeline": info["timeline"]}, markers=True)
    if not any(k == "StoreUnavailableError" for k in result["retried"]):
        result["failed_checks"].append("no delivery was retried for the counterparty store: the freeze did not bite")
    return result
