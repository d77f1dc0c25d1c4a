"""Bigtable nodes and cost of the counterparty store at a sustained rate (docs/capacity.md).

Input: the last JSON line of `txguard bench counterparty` (the Bigtable emulator, the store the
functions use): exactly-once writes/s and plain AddToCell writes/s of one hot counterparty, and
the latency of a feature snapshot of a busy counterparty (a transaction every hour of 31 days)
and of a quiet one (one a day), per shard count.

The emulator has no nodes, so the model calibrates it against Google's published per-node figure
("Bigtable: Understand performance", SSD: up to 14,000 writes of 1 KB rows per second per node):
the emulator's plain AddToCell rate measured in the same run says how fast it is compared with a
node, and every other operation is converted to node time with that ratio:

- a conditional row mutation (CheckAndMutateRow: marker + increments) costs
  `add_to_cell_only / exactly_once` plain writes, as measured;
- a snapshot costs its measured emulator time (interpolated to the deployed shard count), times
  the same ratio: the emulator serves from memory, like a node's block cache for hot rows, and
  the measured time includes the Python client's decoding, which makes it an upper bound;
- per transaction (txguard.enrichment.counterparty.bigtable): one snapshot, one CheckAndMutateRow
  and one marker deletion per entity row written (the counterparty, and the device when the
  transaction has one); per label, one ledger read, one conditional ledger write and up to three
  conditional increment rows (counterparty, wallet, device).

Nodes = node-seconds per second / `cpu_target` (Bigtable's guidance: keep a single cluster's CPU at
or below 70 % for latency). The bounds are "every snapshot is of a busy counterparty" and "every
snapshot is of a quiet one"; real traffic is in between, hence autoscaling.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

NODE_WRITES_PER_S = 14_000  # SSD, 1 KB rows ("Bigtable: Understand performance", typical workloads)
NODE_READS_PER_S = 17_000  # same page; quoted next to the model, not used by it
CPU_TARGET = 0.6  # infra/config.py's bigtableCpuTarget default; Google recommends <= 70 % (single cluster)
PRICES = {  # USD list prices, as of 2026-11 ("Bigtable pricing", us-central1; other regions cost more)
    "node_hour": 0.65,
    "ssd_gib_month": 0.17,
}
MONTH_HOURS = 730
# Storage: docs/counterparty.md "Sizing": ~1 M active entities a day at 10k tx/s x 31 days x ~1.5 KB.
STORAGE_GIB_PER_KTPS = 5.0


@dataclass(frozen=True)
class CounterpartyBench:
    exactly_once_wps: float  # CheckAndMutateRow + marker deletion, per transaction (1 shard)
    add_only_wps: float  # plain AddToCell, same writers: the emulator's speed
    busy_read_ms: dict[int, float]  # shards -> snapshot p50 of a busy counterparty
    quiet_read_ms: dict[int, float]  # shards -> snapshot p50 of a quiet one

    @classmethod
    def from_json(cls, report: dict[str, Any]) -> CounterpartyBench:
        bigtable = report["bigtable"]
        one = bigtable[min(bigtable, key=int)]
        busy = {int(n): float(r["snapshot_read"]["p50_ms"]) for n, r in bigtable.items()}
        quiet = {int(n): float(r["snapshot_read_quiet"]["p50_ms"]) for n, r in bigtable.items()
                 if "snapshot_read_quiet" in r}
        return cls(float(one["exactly_once"]["writes_per_s"]), float(one["add_to_cell_only"]["writes_per_s"]),
                   busy, quiet)

    @property
    def conditional_cost(self) -> float:
        """Plain writes one exactly-once transaction update costs (it is a conditional write plus a delete)."""
        return self.add_only_wps / self.exactly_once_wps

    @property
    def emulator_vs_node(self) -> float:
        """The emulator's plain write rate as a fraction of one node's."""
        return self.add_only_wps / NODE_WRITES_PER_S


def interpolate(points: dict[int, float], x: int) -> float:
    """Linear in the shard count through the two measured points nearest to `x` (rows read grow with it)."""
    if not points:
        raise ValueError("no snapshot measurement")
    if len(points) == 1:
        return next(iter(points.values()))
    (x0, y0), (x1, y1) = sorted(sorted(points.items(), key=lambda p: (abs(p[0] - x), p[0]))[:2])
    return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))


@dataclass(frozen=True)
class StoreSizing:
    node_ms_per_tx_busy: float
    node_ms_per_tx_quiet: float | None
    nodes_busy: int
    nodes_quiet: int | None
    usd_per_month_busy: float
    storage_gib: float


def sizing(rate: float, bench: CounterpartyBench, shards: int, device_share: float, labels_per_tx: float,
           cpu_target: float = CPU_TARGET) -> StoreSizing:
    """Nodes for `rate` tx/s with snapshots of busy counterparties only, and of quiet ones only."""
    node_ms_per_write = 1000 / NODE_WRITES_PER_S
    rows = 1 + device_share  # entity rows a transaction writes
    # An exactly-once update (CheckAndMutateRow, then the marker's deletion) per row, as measured.
    writes = rows * bench.conditional_cost * node_ms_per_write
    labels = labels_per_tx * (1 + 4 * bench.conditional_cost) * node_ms_per_write  # ledger read + 4 conditional rows

    def per_tx(read_ms: float) -> float:
        return writes + labels + read_ms * bench.emulator_vs_node

    busy = per_tx(interpolate(bench.busy_read_ms, shards))
    quiet = per_tx(interpolate(bench.quiet_read_ms, shards)) if bench.quiet_read_ms else None

    def nodes(ms: float) -> int:
        return max(1, math.ceil(rate * ms / 1000 / cpu_target - 1e-9))

    storage = STORAGE_GIB_PER_KTPS * rate / 1000
    n_busy = nodes(busy)
    cost = n_busy * PRICES["node_hour"] * MONTH_HOURS + storage * PRICES["ssd_gib_month"]
    return StoreSizing(round(busy, 3), None if quiet is None else round(quiet, 3), n_busy,
                       None if quiet is None else nodes(quiet), round(cost, 0), storage)


def device_share(sample: int = 2000) -> float:
    """Share of simulated transactions with a device (a second entity row to write and read)."""
    from txguard.simulator.core import quick_stream

    items = list(quick_stream(sample, seed=3))
    return round(sum(1 for i in items if i.tx.device_id) / len(items), 3)


def plan(rates: list[float], bench: CounterpartyBench, shards: int, labels_per_tx: float,
         share: float | None = None) -> dict[str, Any]:
    share = device_share() if share is None else share
    rows = {f"{rate:g}": asdict(sizing(rate, bench, shards, share, labels_per_tx)) for rate in rates}
    return {"inputs": {**asdict(bench), "conditional_cost": round(bench.conditional_cost, 2),
                       "emulator_vs_node": round(bench.emulator_vs_node, 3), "shards": shards,
                       "device_share": share, "labels_per_tx": labels_per_tx, "cpu_target": CPU_TARGET,
                       "node_writes_per_s": NODE_WRITES_PER_S, "prices_usd": PRICES},
            "rates": rows}


def render(result: dict[str, Any]) -> str:
    i = result["inputs"]
    lines = [f"counterparty store (Bigtable SSD, {i['shards']} shards, CPU target {i['cpu_target']:.0%}; "
             f"emulator = {i['emulator_vs_node']:.2f} node, conditional write = {i['conditional_cost']:.2f} plain)",
             "rate tx/s | node-ms/tx busy | nodes busy | node-ms/tx quiet | nodes quiet | USD/month (busy) | storage GiB"]
    for rate, r in result["rates"].items():
        quiet_ms = "-" if r["node_ms_per_tx_quiet"] is None else f"{r['node_ms_per_tx_quiet']:.3f}"
        lines.append(f"{float(rate):,.0f} | {r['node_ms_per_tx_busy']:.3f} | {r['nodes_busy']} | {quiet_ms} | "
                     f"{r['nodes_quiet'] if r['nodes_quiet'] is not None else '-'} | "
                     f"{r['usd_per_month_busy']:,.0f} | {r['storage_gib']:g}")
    return "\n".join(lines)
