"""A stage: a paced stream through a running local stack, drained, with its backlog sampled.

`txguard bench e2e` searches its ceiling with stages, `bench ordering` runs one under push
failures, `local up` warms the stack up with one, and the reliability scenarios put their streams
on wallets of their own the same way (`own_wallets`). A stage is *sustained* when the backlog stops
growing: over the second half of the window its slope is below `SLOPE_TOLERANCE` of the rate, and
everything drains afterwards (nothing lost).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from txguard.local import feed
from txguard.local.ledger import Ledger

SLOPE_TOLERANCE = 0.1  # backlog may grow by at most 10% of the offered rate (tx/s per s)


def slope(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope (per second) of (time, backlog) samples; 0 for fewer than two."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mb = sum(b for _, b in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 0.0 if var == 0 else sum((t - mt) * (b - mb) for t, b in samples) / var


@dataclass
class Stage:
    rate: float
    duration_s: float
    prefix: str
    samples: list[tuple[float, int]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    achieved_tps: float = 0.0
    drain_s: float = 0.0
    ledger: Ledger | None = None
    cpu: dict[str, Any] = field(default_factory=dict)  # txguard bench e2e: CPU by part (bench/cpu_split.py)
    ops: dict[str, Any] = field(default_factory=dict)  # txguard bench e2e: gRPC calls per message (bench/rpc_count.py)

    @property
    def backlog_slope(self) -> float:
        half = self.duration_s / 2
        return slope([(t, b) for t, b in self.samples if t >= half])

    @property
    def sustained(self) -> bool:
        return (self.summary.get("lost") == 0 and self.summary.get("publish_failed") == 0
                and self.backlog_slope <= SLOPE_TOLERANCE * self.rate)

    def as_dict(self) -> dict[str, Any]:
        s = self.summary
        return {
            "rate": self.rate, "achieved_tps": round(self.achieved_tps, 1), "published": s.get("published"),
            "decided": s.get("decided"), "lost": s.get("lost"), "e2e_p50_ms": s.get("e2e_p50_ms"),
            "e2e_p99_ms": s.get("e2e_p99_ms"), "backlog_slope_per_s": round(self.backlog_slope, 2),
            "max_backlog": max((b for _, b in self.samples), default=0), "drain_s": round(self.drain_s, 1),
            "sustained": self.sustained, **({"cpu": self.cpu} if self.cpu else {}),
            **({"ops_per_msg": self.ops} if self.ops else {}),
        }


def own_wallets(messages: list[Any], prefix: str, wallets: int | None = None) -> list[Any]:
    """The same messages on wallets of their own (`prefix` + wallet id): a warm-up must not add
    history to the wallets the measured stream uses. `wallets`: fold them onto that many (hot) wallets."""
    from dataclasses import replace

    out = []
    for m in messages:
        doc = json.loads(m.data)
        wallet = doc["wallet_id"] if wallets is None else f"hot{zlib.crc32(doc['wallet_id'].encode()) % wallets}"
        doc["wallet_id"] = f"{prefix}{wallet}"
        out.append(replace(m, data=json.dumps(doc, separators=(",", ":")).encode(), ordering_key=doc["wallet_id"]))
    return out


def run_stage(stack: Any, rate: float, duration_s: float, prefix: str, drain_timeout_s: float,
              seed: int = 1, wallet_prefix: str | None = None, messages: list[Any] | None = None) -> Stage:
    """Publish `rate` tx/s for `duration_s` (transaction ids start with `prefix`), then drain.

    `messages`: the stage's own stream instead of the simulator's (ids must start with `prefix`)."""
    from txguard.publisher import Pacer, make_stream

    stage = Stage(rate, duration_s, prefix)
    if messages is None:
        messages = make_stream(max(1, int(rate * duration_s)), "fraud", seed=seed, id_prefix=prefix)
    if wallet_prefix:
        messages = own_wallets(messages, wallet_prefix)
    ledger = stack.ledgers.add(Ledger(prefix))
    published = feed.publish(stack.options.project, ledger, messages, Pacer(rate=rate),
                             tick=lambda _phase, elapsed: stage.samples.append((elapsed, ledger.pending())))
    stats = published.stats
    stage.achieved_tps = stats.attempted / stats.send_seconds if stats.send_seconds else 0.0
    stage.drain_s = feed.drain(ledger, drain_timeout_s).seconds
    stage.summary = ledger.summary()
    stage.ledger = ledger
    return stage
