"""The first six scenarios of `txguard reliability`: duplicates, poison, outages, bad model, burst.

Each returns one result dict (a table row, see txguard.reliability.checks.finish) with what the
scenario adds (`outage_s`, `refused`, `kept_serving`, ...) and `failed_checks`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from txguard.local.ledger import Ledger
from txguard.reliability import bad_model, outages, poison
from txguard.reliability.checks import finish
from txguard.reliability.context import Context


def duplicates(ctx: Context) -> dict[str, Any]:
    """Every transaction published twice, as two distinct Pub/Sub messages with one transaction id."""
    ledger = ctx.router.add(Ledger("duplicates"))
    base = ctx.messages("dup", ctx.profile.duplicates_tx, seed=21)
    messages = [m for m in base for _ in (0, 1)]
    info = ctx.publish(ledger, messages, ctx.nominal_rate)
    result = finish(ctx, ledger, base, {"publish_s": info["publish_s"]})
    result["identical_decisions"] = result["inconsistent_decisions"] == 0
    if result["decision_copies"] < result["decided"]:
        result["failed_checks"].append("fewer decision copies than decided transactions")
    return result


def poison_scenario(ctx: Context) -> dict[str, Any]:
    """About 5 % malformed messages of every kind among valid ones."""
    ledger = ctx.router.add(Ledger("poison"))
    messages = poison.mix(ctx.messages("poi", ctx.profile.poison_messages, seed=22), ctx.profile.poison_fraction,
                          seed=22)
    info = ctx.publish(ledger, messages, ctx.nominal_rate)
    result = finish(ctx, ledger, messages, {"publish_s": info["publish_s"]})
    failed = result["failed_checks"]
    if result["invalid"] != result["poison"]:
        failed.append(f"{result['poison'] - result['invalid']} poison messages not on invalid")
    if result["poison_decided"]:
        failed.append(f"{result['poison_decided']} poison messages decided")
    if result["invalid_without_reason"]:
        failed.append(f"{result['invalid_without_reason']} invalid messages without a reason attribute")
    kinds_sent = {m.corruption for m in messages if not m.expected_valid}
    missing_kinds = sorted(k for k in kinds_sent if k and k not in result["rejected_kinds"])
    if missing_kinds:
        failed.append("kinds not seen on invalid: " + ", ".join(missing_kinds))
    result["poison_kinds"] = len(kinds_sent)
    return result


def _outage(ctx: Context, name: str, prefix: str, seed: int, stream_s: float, at_s: float, down_s: float,
            stop: Callable[[], Any], start: Callable[[Any], None]) -> dict[str, Any]:
    ledger = ctx.router.add(Ledger(name))
    messages = ctx.messages(prefix, int(stream_s * ctx.nominal_rate), seed=seed)
    marks: dict[str, float] = {}
    state: dict[str, Any] = {}

    def down() -> None:
        marks["down"] = time.monotonic()
        state["token"] = stop()

    def up() -> None:
        start(state.get("token"))
        marks["up"] = time.monotonic()

    info = ctx.publish(ledger, messages, ctx.nominal_rate,
                       [(at_s, f"{name}: stopping", down), (at_s + down_s, f"{name}: restarting", up)])
    outage_s = round(marks["up"] - marks["down"], 1) if {"up", "down"} <= set(marks) else None
    return finish(ctx, ledger, messages, {"publish_s": info["publish_s"], "outage_s": outage_s,
                                           "timeline": info["timeline"]})


def scoring_outage(ctx: Context) -> dict[str, Any]:
    """The scoring function's process group killed mid-stream, restarted on the same port."""
    p = ctx.profile
    fn = ctx.stack.functions["score"]
    return _outage(ctx, "scoring_outage", "sco", 23, p.scoring_stream_s, p.scoring_outage_at_s, p.scoring_outage_s,
                   lambda: outages.stop_function(fn), lambda _t: outages.restart_function(fn))


def store_outage(ctx: Context) -> dict[str, Any]:
    """The Firestore emulator stopped mid-stream and restarted on the same port with its data."""
    p = ctx.profile
    if ctx.mode != "emulators":
        return {"skipped": "embedded mode has no Firestore emulator (SQLite history)", "failed_checks": []}
    export_dir = Path(ctx.stack.workdir) / "firestore-export"
    return _outage(ctx, "store_outage", "sto", 24, p.store_stream_s, p.store_outage_at_s, p.store_outage_s,
                   lambda: outages.stop_firestore(ctx.stack, export_dir),
                   lambda snapshot: outages.restart_firestore(ctx.stack, snapshot))


def bad_model_scenario(ctx: Context) -> dict[str, Any]:
    """Broken registry versions: fresh functions refuse them; the running one keeps serving."""
    from txguard.local import processes

    ledger = ctx.router.add(Ledger("bad_model"))
    stack = ctx.stack
    running = stack.functions["score"]
    registry = stack.env["TXGUARD_REGISTRY"]
    production = stack.model["version"]
    refused: dict[str, Any] = {}
    failed: list[str] = []

    def probe_fresh() -> None:
        for kind in bad_model.BROKEN_KINDS:
            version = bad_model.publish_broken(registry, kind)
            fresh = processes.scoring_process(Path(stack.workdir) / f"bad-model-{kind}",
                                              {**running.env, "MODEL_URI": f"{registry}@{version}"})
            stack.on_close(fresh.stop)
            try:
                fresh.spawn().wait_ready("/health", ready_ok=(503, 200))
                status, body = bad_model.http_json("GET", fresh.url + "/health")
                score_status, _ = bad_model.http_json("POST", fresh.url + "/score", bad_model.sample_enriched_body())
                logs = bad_model.critical_lines(fresh.log_path)
            finally:
                fresh.stop()
            refused[kind] = {"version": version, "health": status, "score": score_status,
                             "reason": body.get("reason"), "log": logs[0] if logs else None}
            if status != 503 or score_status != 503 or not body.get("reason") or not logs:
                failed.append(f"{kind}: fresh function not refusing (health {status}, score {score_status})")

    messages = ctx.messages("bad", ctx.profile.bad_model_tx, seed=25)
    info = ctx.publish(ledger, messages, ctx.nominal_rate, [(0.5, "bad model: fresh functions", probe_fresh)])
    health_status, health = bad_model.http_json("GET", running.url + "/health")
    score_status, scored = bad_model.http_json("POST", running.url + "/score", bad_model.sample_enriched_body())
    kept = (health_status == 200 and health.get("model_version") == production and score_status == 200
            and scored.get("model_version") == production)
    if not kept:
        failed.append(f"running function: health {health_status}, score {score_status}")
    result = finish(ctx, ledger, messages, {
        "publish_s": info["publish_s"], "refused": all(
            v["health"] == 503 and v["score"] == 503 for v in refused.values()) and len(refused) == 2,
        "kept_serving": kept, "running_model_version": health.get("model_version"), "broken": refused,
        "extra_failed": failed,
    })
    return result


def burst(ctx: Context) -> dict[str, Any]:
    """10x the nominal rate for a few seconds: the backlog drains, nothing is lost."""
    p = ctx.profile
    ledger = ctx.router.add(Ledger("burst"))
    rate = ctx.nominal_rate * p.burst_factor
    messages = ctx.messages("bur", int(rate * p.burst_s), seed=26)
    info = ctx.publish(ledger, messages, rate)
    backlog = ledger.pending()
    result = finish(ctx, ledger, messages, {"publish_s": info["publish_s"],
                                             "publish_rate_tps": info["publish_rate_tps"], "burst_rate": rate})
    result["backlog_at_end_of_burst"] = backlog
    result["drain_tps"] = round(backlog / result["drain_s"], 1) if result["drain_s"] else None
    return result
