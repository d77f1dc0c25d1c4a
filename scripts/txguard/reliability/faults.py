"""Deliveries that fail mid-stream: enrichment workers killed, and a share of deliveries failed at random.

Both run with the production subscription settings (the push bridge: ordering by wallet, retry
policy, dead-letter policy) and pass only if nothing is lost, nothing is applied twice, and every
transaction was scored on the features the offline replay gives it, or the difference is
explained by a transaction flagged `late` (txguard.reliability.checks). With ordering there is
no late transaction to explain anything: a retried delivery holds its wallet's later ones back.
"""

from __future__ import annotations

from typing import Any

from txguard.local.ledger import Ledger
from txguard.local.push import FaultPlan
from txguard.reliability import outages
from txguard.reliability.checks import finish
from txguard.reliability.context import Context


def worker_kill(ctx: Context) -> dict[str, Any]:
    """SIGKILL the enrichment function's gunicorn workers several times while a stream goes through."""
    p = ctx.profile
    ledger = ctx.router.add(Ledger("worker_kill"))
    messages = ctx.messages("kil", int(p.kill_stream_s * ctx.nominal_rate), seed=27)
    fn = ctx.stack.functions["enrich"]
    kills: list[dict[str, Any]] = []
    events = [(at, f"SIGKILL the enrichment workers ({i + 1}/{len(p.kill_at_s)})",
               lambda: kills.append(outages.kill_workers(fn))) for i, at in enumerate(p.kill_at_s)]
    info = ctx.publish(ledger, messages, ctx.nominal_rate, events)
    failed = [f"kill {i + 1}: no worker killed or none came back" for i, k in enumerate(kills)
              if not k["killed"] or not k["replaced_by"]]
    return finish(ctx, ledger, messages, {
        "publish_s": info["publish_s"], "kills": len(kills), "workers_killed": sum(len(k["killed"]) for k in kills),
        "ordering": ctx.ordering, "extra_failed": failed})


def flaky_delivery(ctx: Context) -> dict[str, Any]:
    """A share of deliveries fails at random: refused before the function, or processed and unanswered."""
    p = ctx.profile
    if not ctx.can_inject_faults:
        return {"skipped": "the emulator's own push cannot fail deliveries on purpose (use --push bridge)",
                "failed_checks": []}
    ledger = ctx.router.add(Ledger("flaky_delivery"))
    messages = ctx.messages("fla", int(p.flaky_stream_s * ctx.nominal_rate), seed=28)
    plan = FaultPlan(p.flaky_share, seed=28)
    injected_before = int(ctx.push_stats().get("injected") or 0)
    ctx.set_faults(plan)
    try:
        info = ctx.publish(ledger, messages, ctx.nominal_rate)
        result = finish(ctx, ledger, messages, {"publish_s": info["publish_s"], "fault_share": p.flaky_share,
                                                "ordering": ctx.ordering})
    finally:
        ctx.set_faults(None)
    result["failed_deliveries"] = int(ctx.push_stats().get("injected") or 0) - injected_before
    if not result["failed_deliveries"]:
        result["failed_checks"].append("no delivery was failed")
    return result
