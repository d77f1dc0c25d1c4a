"""The demo stream of `txguard local up`: warm-up, paced publishing with live progress, drain, summary.

The stream is the publisher's (scripts/txguard/publisher): a simulated scenario with a fraction of
invalid messages, shifted to end now. Progress and the summary only count this stream's
messages; the warm-up runs on wallets of its own and is left out. Draining goes on while
outcomes keep arriving and stops after `drain_timeout_s` without any: what is still missing
then is `lost`.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from txguard.contract import names
from txguard.local import report

if TYPE_CHECKING:
    from txguard.local.stack import LocalStack


def warm_up(stack: LocalStack) -> None:
    if stack.options.warmup <= 0:
        return
    from txguard.bench import e2e as bench

    stack.step(f"warm-up: {stack.options.warmup} transactions on wallets of their own (not in the summary)")
    stage = bench.run_stage(stack, 10.0, stack.options.warmup / 10.0, "warm", 30.0, wallet_prefix="warm-")
    stack.step(f"warm-up done: {stage.summary.get('decided')} decided, e2e p50 {stage.summary.get('e2e_p50_ms')} ms")


def run_stream(stack: LocalStack) -> dict[str, Any]:
    """Publish the bounded stream, drain the outputs, return the summary (last-line figures)."""
    from txguard.cli.console import live as live_status
    from txguard.publisher import Pacer, PubSubTransport, make_stream, publish_all

    o = stack.options
    messages = make_stream(o.count, o.scenario, seed=o.seed, drift=o.drift, invalid_fraction=o.invalid_fraction,
                           id_prefix=f"s{o.seed}")
    ours = {id(m) for m in messages}  # the stream's records (the warm-up is left out)

    def select(m: Any) -> bool:
        return id(m) in ours

    transport = PubSubTransport(o.project, names.TRANSACTIONS_TOPIC, max_messages=100, max_latency_s=0.005)
    pacer = Pacer(rate=None if o.speed else stack.rate, speed=o.speed)
    result: dict[str, Any] = {}
    stop = threading.Event()  # set on the way out (Ctrl-C): the publisher thread ends too

    def publish() -> None:
        try:
            result["stats"] = publish_all(messages, transport, pacer, on_sent=stack.tracker.sent,
                                          on_done=stack.tracker.confirmed, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            result["error"] = exc

    thread = threading.Thread(target=publish, name="publisher", daemon=True)
    started = time.monotonic()
    pace = f"{stack.rate:g} tx/s" if not o.speed else f"speed x{o.speed:g}"
    stack.step(f"publishing {len(messages)} transactions ({o.scenario}, {pace})")
    last_progress, last_outcomes = time.monotonic(), -1
    try:
        with live_status(stack.console) as live:  # plain lines when piped
            thread.start()
            while True:
                publishing = thread.is_alive()
                counts = stack.tracker.counts(select)
                outcomes = counts["decided"] + counts["invalid"] + counts["dead_lettered"]
                if outcomes != last_outcomes or publishing:
                    last_progress, last_outcomes = time.monotonic(), outcomes
                live.update(report.live(counts, stack.tracker.recent_latency_ms(), stack.mode,
                                        "publishing" if publishing else "draining", time.monotonic() - started))
                # Drain while outcomes keep coming; give up after drain_timeout_s without any.
                settled = counts["pending"] == 0 and counts["published"] + counts["publish_failed"] == counts["sent"]
                if not publishing and (settled or time.monotonic() - last_progress >= o.drain_timeout_s):
                    break
                time.sleep(0.25)
    finally:
        stop.set()
    transport.close()
    if "error" in result:
        raise result["error"]
    stats = result["stats"]
    summary: dict[str, Any] = {"mode": stack.mode, **stack.tracker.summary(select)}
    summary.update(
        publish_rate_tps=round(stats.attempted / stats.send_seconds, 1) if stats.send_seconds else None,
        publish_seconds=round(stats.send_seconds, 2),
        drain_seconds=round(time.monotonic() - started - stats.elapsed_s, 2),
        count=o.count, rate=stack.rate, scenario=o.scenario, seed=o.seed, model_version=stack.model.get("version"),
        demo_model=stack.model.get("demo_model"),  # None when the registry already had a production model
    )
    if stack.pusher is not None:
        summary["push"] = {"attempts": stack.pusher.stats.attempts, "failures": stack.pusher.stats.failures,
                           "statuses": stack.pusher.stats.statuses}
    return summary

