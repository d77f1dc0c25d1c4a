"""`txguard bench ordering`: what delivering each wallet's transactions in order costs, measured.

One local stack with the push bridge (or embedded mode); every measurement runs twice, ordered
(one message per wallet in flight, a retried one holds its wallet back: production's setting)
and unordered (the bridge's per-key serialisation off, everything else equal):

- **throughput**: fixed-rate stages on the simulator's wallets (many, with its fraud bursts:
  many transactions of one wallet in a row), and the same stream folded onto a few hot wallets:
  achieved rate, end-to-end p50/p99, whether it was sustained (two stages per label, means);
- **head-of-line blocking**: the first transaction of the busiest wallet is refused on its
  first `fail_attempts` deliveries (the bridge's backoff: 1 s, then doubling). Ordered, that
  wallet's later transactions wait behind it (their delay is about the backoff sum) and every
  transaction is scored on the replay's features; unordered, they are decided at once, the
  retried one arrives after them (its decision flagged `late`) and their features differ from
  the replay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from txguard.local.ledger import percentile
from txguard.local.push import FailFirst
from txguard.local.stage import Stage, own_wallets, run_stage


@dataclass(frozen=True)
class Plan:
    rate: float = 20.0
    duration_s: float = 15.0
    hot_wallets: int = 5
    hol_rate: float = 10.0
    hol_duration_s: float = 20.0
    fail_attempts: int = 3
    drain_timeout_s: float = 60.0


def _ordering(stack: Any, on: bool) -> None:
    if stack.dispatcher is None:
        raise ValueError("the emulator's own push cannot order by key: use the push bridge or --embedded")
    stack.dispatcher.ordering = on


def _label(on: bool) -> str:
    return "ordered" if on else "unordered"


def throughput(stack: Any, plan: Plan, log: Any) -> dict[str, Any]:
    """Each shape ordered and unordered, twice, in the order ordered-unordered-unordered-ordered
    (a shared machine drifts: each label gets one early and one late stage); figures are the means."""
    from txguard.publisher import make_stream

    out: dict[str, Any] = {}
    for shape, wallets in (("many_wallets", None), ("hot_wallets", plan.hot_wallets)):
        runs: dict[str, list[dict[str, Any]]] = {"ordered": [], "unordered": []}
        for i, on in enumerate((True, False, False, True)):
            _ordering(stack, on)
            prefix = f"t{shape[0]}{i}"  # tm0..tm3, th0..th3: ids of their own
            base = make_stream(max(1, int(plan.rate * plan.duration_s)), "fraud", seed=31, id_prefix=prefix)
            messages = own_wallets(base, f"{prefix}-", wallets)
            stage = run_stage(stack, plan.rate, plan.duration_s, prefix, plan.drain_timeout_s, messages=messages)
            row = {**_figures(stage), "wallets": len({m.ordering_key for m in messages})}
            runs[_label(on)].append(row)
            log(f"{shape} {_label(on)}: {row}")
        out[shape] = {label: _mean(rows) for label, rows in runs.items()}
    _ordering(stack, True)
    return out


def _mean(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def avg(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(sum(values) / len(values), 1) if values else None

    return {"e2e_p50_ms": avg("e2e_p50_ms"), "e2e_p99_ms": avg("e2e_p99_ms"), "achieved_tps": avg("achieved_tps"),
            "lost": sum(int(r.get("lost") or 0) for r in rows), "sustained": all(r.get("sustained") for r in rows),
            "wallets": rows[0].get("wallets"), "runs": rows}


def _figures(stage: Stage) -> dict[str, Any]:
    d = stage.as_dict()
    return {k: d[k] for k in ("rate", "achieved_tps", "decided", "lost", "e2e_p50_ms", "e2e_p99_ms", "sustained")}


def head_of_line(stack: Any, plan: Plan, log: Any) -> dict[str, Any]:
    """The busiest wallet's first transaction refused `fail_attempts` times, ordered and unordered."""
    from collections import Counter

    from txguard.contract.models import TRANSACTION_ADAPTER
    from txguard.publisher import make_stream
    from txguard.reliability.history_check import check_features

    out: dict[str, Any] = {}
    for i, on in enumerate((True, False)):
        _ordering(stack, on)
        prefix = f"hl{i}"
        messages = own_wallets(make_stream(int(plan.hol_rate * plan.hol_duration_s), "fraud", seed=32,
                                           id_prefix=prefix), f"{prefix}-")
        wallet = Counter(m.ordering_key for m in messages).most_common(1)[0][0]
        first = next(m for m in messages if m.ordering_key == wallet)
        stack.dispatcher.faults = FailFirst(lambda d, data=first.data: d.data == data, plan.fail_attempts)
        try:
            stage = run_stage(stack, plan.hol_rate, plan.hol_duration_s, prefix, plan.drain_timeout_s,
                              messages=messages)
        finally:
            stack.dispatcher.faults = None
        latencies = stage.ledger.latencies() if stage.ledger is not None else {}
        txs = [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages]
        store = stack.history_store()
        try:
            features = check_features(txs, store.processed, stage.ledger.late_ids() if stage.ledger else ())
        finally:
            store.close()
        mine = [latencies[m.transaction_id] for m in messages if m.ordering_key == wallet
                and m is not first and m.transaction_id in latencies]
        others = [v for m in messages if m.ordering_key != wallet and (v := latencies.get(m.transaction_id))]
        row = {
            "wallet_transactions": len(mine) + 1,
            "failed_first_p50_ms": latencies.get(first.transaction_id),
            "wallet_later_p50_ms": percentile(mine, 50), "wallet_later_max_ms": max(mine, default=None),
            "others_p50_ms": percentile(others, 50), "others_p99_ms": percentile(others, 99),
            "late": stage.summary.get("late"), "features_differing": features.differing,
            "features_unexplained": features.unexplained, "lost": stage.summary.get("lost"),
        }
        out[_label(on)] = row
        log(f"head_of_line {_label(on)}: {row}")
    _ordering(stack, True)
    return {"fail_attempts": plan.fail_attempts, **out}


def last_line(stack: Any, plan: Plan, results: dict[str, Any]) -> str:
    return json.dumps({"mode": stack.mode, "push_mode": stack.push_mode, "rate": plan.rate, "hot_wallets": plan.hot_wallets,
                       "duration_s": plan.duration_s, **results}, separators=(",", ":"))
