"""The demo stream of `txguard local up`: warm-up, paced publishing with live progress, drain, summary.

The stream is the publisher's (scripts/txguard/publisher): a simulated scenario with a fraction of
invalid messages, shifted to end now. Its transactions' labels follow them on the `labels` topic,
their delays compressed to the demo's clock (txguard.local.label_feed). It has a ledger of its
own, labels included; the warm-up runs on wallets of its own, in another ledger, and is left out.
Draining starts once the last label is published, goes on while outcomes keep arriving and stops
after `drain_timeout_s` without any: what is still missing then is `lost` (`labels_lost`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from txguard.local import feed, label_feed, report
from txguard.local.ledger import Ledger
from txguard.local.stage import run_stage

if TYPE_CHECKING:
    from txguard.local.stack import LocalStack


def warm_up(stack: LocalStack) -> None:
    if stack.options.warmup <= 0:
        return
    stack.step(f"warm-up: {stack.options.warmup} transactions on wallets of their own (not in the summary)")
    stage = run_stage(stack, 10.0, stack.options.warmup / 10.0, "warm", 30.0, wallet_prefix="warm-")
    stack.step(f"warm-up done: {stage.summary.get('decided')} decided, e2e p50 {stage.summary.get('e2e_p50_ms')} ms")


def run_stream(stack: LocalStack) -> dict[str, Any]:
    """Publish the bounded stream, drain the outputs, return the summary (last-line figures)."""
    if stack.analyst_console is not None:  # the live view's totals count this stream, not the warm-up
        stack.analyst_console.parts.stats.start_totals()
    from txguard.local.terminal import live as live_status
    from txguard.publisher import Pacer, make_stream

    o = stack.options
    messages = make_stream(o.count, o.scenario, seed=o.seed, drift=o.drift, invalid_fraction=o.invalid_fraction,
                           id_prefix=f"s{o.seed}")
    ledger = stack.ledgers.add(Ledger("stream"))
    pace = f"{stack.rate:g} tx/s" if not o.speed else f"speed x{o.speed:g}"
    plan = label_feed.demo_labels(messages, o.seed, o.label_day_s) if o.label_day_s > 0 else []
    labels = label_feed.LabelFeed(o.project, ledger, plan).start()
    stack.step(f"publishing {len(messages)} transactions ({o.scenario}, {pace}) and their {len(plan)} labels "
               f"(a day of label delay = {o.label_day_s:g} s of demo, the last {labels.last_delay_s:.1f} s after "
               "its transaction)")
    offset = [0.0]  # draining: the clock goes on from the end of publishing
    with live_status(stack.terminal) as live:  # plain lines when piped
        def tick(phase: str, elapsed_s: float) -> None:
            live.update(report.live(ledger.counts(), ledger.recent_latency_ms(), stack.mode, phase,
                                    offset[0] + elapsed_s, ledger.labels.summary()))

        try:
            published = feed.publish(o.project, ledger, messages,
                                     Pacer(rate=None if o.speed else stack.rate, speed=o.speed), tick=tick)
            offset[0] = published.seconds
            labels_done = _wait_labels(labels, tick, offset)
        finally:
            labels.stop()
        drained = feed.drain(ledger, o.drain_timeout_s, tick=tick)
    stats = published.stats
    summary: dict[str, Any] = {"mode": stack.mode, **stack.delivery_summary(), **ledger.summary(),
                               "unmatched": dict(stack.ledgers.unmatched)}
    summary.update(
        publish_rate_tps=published.rate_tps, publish_seconds=round(stats.send_seconds, 2),
        drain_seconds=round(published.seconds - stats.elapsed_s + drained.seconds, 2),
        count=o.count, rate=stack.rate, scenario=o.scenario, seed=o.seed, model_version=stack.model.get("version"),
        label_day_s=o.label_day_s, labels_planned=len(plan), labels_all_sent=labels_done,
        demo_model=stack.model.get("demo_model"),  # None when the registry already had a production model
    )
    return summary



def _wait_labels(labels: label_feed.LabelFeed, tick: feed.Tick, offset: list[float]) -> bool:
    """Until the last label is published: at most its delay after the last transaction, plus a margin."""
    started = time.monotonic()
    deadline = started + labels.last_delay_s + 30.0
    while not labels.done and time.monotonic() < deadline:
        tick("publishing labels", offset[0] + time.monotonic() - started)
        time.sleep(0.25)
    offset[0] += time.monotonic() - started
    return labels.wait(0)
