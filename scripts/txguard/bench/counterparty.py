"""The counterparty store candidates on the emulators: one hot counterparty's writes and a snapshot's reads.

Two layouts, each updated exactly once per transaction, as the pipeline needs:

- **bigtable**: the store the functions use (`BigtableCounterpartyStore`): per transaction one
  CheckAndMutateRow per entity row (marker + AddToCell increments, no read of the counters), the
  check for a late update (one read of the read marks) and the marker's deletion once settled;
  plus the same without the late-update check, and plain AddToCell without markers, the layout's
  ceiling. The snapshot read is measured plain and as scoring reads it (`read_before`: the read
  marks written first), so the late-update detection's cost is a ratio within the run.
- **firestore**: the sharded, time-bucketed alternative: per transaction one Firestore transaction
  that creates the transaction's processed record and adds `Increment`s to one shard document
  of (counterparty, day) chosen by the transaction id: exactly once by atomicity, and no read
  of the shard (blind increments), so the counterparty is not locked by the wallet's reads.

Writes/s of one hot counterparty come from `threads` writers for `seconds` each; the read is
the feature snapshot of a counterparty with 30 days of history in every hour. Ratios against the
Firestore layout measured in the same run. Emulator figures say what the emulators sustain on this
machine, not what the services do: docs/counterparty.md puts them next to the published limits.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from txguard.contract.models import Transaction
from txguard.features.counterparty import (
    EntityKeys,
    day_of,
    read_days,
    transaction_increments,
)

HOT = "hot-merchant"
QUIET = "quiet-shop"  # one transaction a day: what most counterparties look like to a snapshot
START = datetime(2026, 3, 1, tzinfo=UTC)


def _tx(n: int, at: datetime, counterparty: str = HOT) -> Transaction:
    return Transaction(transaction_id=f"bench-{uuid.uuid4().hex[:12]}-{n}", wallet_id=f"w{n % 5000:05d}",
                       counterparty_id=counterparty, amount=12.5 + n % 40, currency="EUR", type="payment", channel="pos",
                       country="FR", device_id=None, timestamp=at)


def _hammer(write: Callable[[Transaction], Any], threads: int, seconds: float, at: datetime) -> dict[str, float]:
    """`threads` writers of transactions of the hot counterparty for `seconds`; writes/s and latency."""
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(10**9))

    def worker() -> None:
        nonlocal errors
        local: list[float] = []
        while time.monotonic() < stop:
            tx = _tx(next(counter), at)
            t = time.perf_counter()
            try:
                write(tx)
            except Exception:  # noqa: BLE001 - counted: the figure is what got through
                with lock:
                    errors += 1
                continue
            local.append((time.perf_counter() - t) * 1000)
        with lock:
            latencies.extend(local)

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(worker) for _ in range(threads)]:
            f.result()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"writes": len(latencies), "errors": errors, "writes_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(latencies[len(latencies) // 2], 2) if latencies else None,
            "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2) if latencies else None}


def _reads(read: Callable[[Transaction], Any], n: int, at: datetime, counterparty: str = HOT) -> dict[str, float]:
    times = []
    for i in range(n):
        tx = _tx(i, at, counterparty)
        t = time.perf_counter()
        read(tx)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"reads": n, "p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(n * 0.95)], 2)}


# -- Bigtable ----------------------------------------------------------------------------------------
def bench_bigtable(project: str, threads: int, seconds: float, shards: int, reads: int) -> dict[str, Any]:
    from google.cloud.bigtable.data import AddToCell

    from txguard.enrichment.counterparty.bigtable import (
        COUNTERS,
        BigtableCounterpartyStore,
        row_key,
        shard_of,
    )
    from txguard.enrichment.counterparty.protocol import transaction_marker
    from txguard.local.bigtable import drop_counterparty_table, ensure_counterparty_table

    table = f"bench-{uuid.uuid4().hex[:6]}"
    ensure_counterparty_table(project, table=table)
    store = BigtableCounterpartyStore(project=project, table=table, shards=shards)
    try:
        now = START + timedelta(days=31)

        def exactly_once(tx: Transaction) -> None:
            store.apply_transaction(tx, True, False)
            store.settle_transaction(tx)

        def plain(tx: Transaction) -> None:  # no marker: the ceiling of the layout (not exactly once)
            keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, None)
            day = day_of(tx.timestamp.timestamp())
            cells: dict[str, int] = {}
            for inc in transaction_increments(tx, True, False):
                cells[inc.column] = cells.get(inc.column, 0) + inc.value
            store.table.mutate_row(row_key(keys.counterparty, day, shard_of(tx.transaction_id, shards)),
                                   [AddToCell(COUNTERS, c.encode(), v, day * 86_400_000_000) for c, v in cells.items()])

        def without_late_check(tx: Transaction) -> None:  # the write path before late updates were detected
            store._apply(transaction_increments(tx, True, False), transaction_marker(tx.transaction_id),
                         shard_of(tx.transaction_id, shards))
            store.settle_transaction(tx)

        out = {"shards": shards,
               "exactly_once": _hammer(exactly_once, threads, seconds, now),
               "exactly_once_without_late_check": _hammer(without_late_check, threads, seconds, now),
               "add_to_cell_only": _hammer(plain, threads, seconds, now)}
        _history(lambda tx: store.apply_transaction(tx, True, False), now)
        out["snapshot_read"] = _reads(store.snapshot, reads, now)
        out["read_before"] = _reads(store.read_before, reads, now)  # read marks written, then the snapshot
        _history(lambda tx: store.apply_transaction(tx, True, False), now, QUIET, every=timedelta(days=1))
        out["snapshot_read_quiet"] = _reads(store.snapshot, reads, now, QUIET)
        return out
    finally:
        store.close()
        drop_counterparty_table(project, table=table)


def _history(apply: Callable[[Transaction], Any], now: datetime, counterparty: str = HOT,
             every: timedelta = timedelta(hours=1)) -> None:
    """A transaction every hour of the 31 days the snapshot reads (the worst case of a busy counterparty),
    or every `every` (a day: a quiet one, one row per day)."""
    start = now - timedelta(days=31)
    steps = int(timedelta(days=31) / every)
    txs = [_tx(h, start + every * h + timedelta(minutes=7), counterparty) for h in range(steps)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(apply, txs))


# -- Firestore, sharded and time-bucketed -------------------------------------------------------------
class FirestoreShards:
    """The alternative layout: doc `{entity}#{day}#{shard}` of `cp_shards`, a map of counters per doc."""

    def __init__(self, project: str, shards: int) -> None:
        from google.cloud import firestore

        self.firestore = firestore
        self.client = firestore.Client(project=project)
        self.prefix = uuid.uuid4().hex[:6]
        self.col = self.client.collection(f"cp_shards_{self.prefix}")
        self.processed = self.client.collection(f"cp_processed_{self.prefix}")
        self.shards = shards

    def _doc(self, entity: str, day: int, shard: int) -> Any:
        return self.col.document(f"{entity}#{day:06d}#{shard:02d}")

    def apply(self, tx: Transaction) -> None:
        """Processed record + blind increments in one transaction: exactly once, no read of the shard."""
        fs = self.firestore
        day = day_of(tx.timestamp.timestamp())
        shard = zlib.crc32(tx.transaction_id.encode()) % self.shards
        updates: dict[str, dict[str, Any]] = {}
        for inc in transaction_increments(tx, True, False):
            updates.setdefault(inc.entity, {})[inc.column] = fs.Increment(inc.value)
        proc = self.processed.document(tx.transaction_id)

        @fs.transactional
        def run(transaction: Any) -> None:
            if proc.get(transaction=transaction).exists:
                return
            transaction.create(proc, {"at": fs.SERVER_TIMESTAMP})
            for entity, fields in updates.items():
                transaction.set(self._doc(entity, day, shard), fields, merge=True)

        run(self.client.transaction(max_attempts=30))

    def snapshot(self, tx: Transaction) -> dict[int, dict[str, int]]:
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        refs = [self._doc(keys.counterparty, d, s) for d in read_days(tx.timestamp.timestamp()) for s in range(self.shards)]
        view: dict[int, dict[str, int]] = {}
        for snap in self.client.get_all(refs):
            if snap.exists:
                day = int(snap.id.split("#")[1])
                cells = view.setdefault(day, {})
                for col, value in (snap.to_dict() or {}).items():
                    cells[col] = cells.get(col, 0) + int(value)
        return view

    def close(self) -> None:
        self.client.close()


def bench_firestore(project: str, threads: int, seconds: float, shards: int, reads: int) -> dict[str, Any]:
    store = FirestoreShards(project, shards)
    try:
        now = START + timedelta(days=31)
        out = {"shards": shards, "exactly_once": _hammer(store.apply, threads, seconds, now)}
        _history(store.apply, now)
        out["snapshot_read"] = _reads(store.snapshot, reads, now)
        return out
    finally:
        store.close()


def run_bench(project: str, threads: int, seconds: float, reads: int, shard_options: tuple[int, ...],
              log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Every candidate and shard count; the Firestore layout with as many shards is the baseline."""
    report: dict[str, Any] = {"threads": threads, "seconds": seconds, "bigtable": {}, "firestore": {}}
    for shards in shard_options:
        log(f"bigtable, {shards} shard(s): {threads} writers for {seconds:g} s, then {reads} snapshot reads")
        report["bigtable"][str(shards)] = bench_bigtable(project, threads, seconds, shards, reads)
        log(f"firestore, {shards} shard(s): {threads} writers for {seconds:g} s, then {reads} snapshot reads")
        report["firestore"][str(shards)] = bench_firestore(project, threads, seconds, shards, reads)
    for shards in map(str, shard_options):
        bt, fs = report["bigtable"][shards], report["firestore"][shards]
        base = fs["exactly_once"]["writes_per_s"] or None
        unchecked = bt["exactly_once_without_late_check"]["writes_per_s"] or None
        report.setdefault("ratios", {})[shards] = {
            "bigtable_vs_firestore_writes": round(bt["exactly_once"]["writes_per_s"] / base, 2) if base else None,
            "bigtable_vs_firestore_read_p50": round(bt["snapshot_read"]["p50_ms"] / fs["snapshot_read"]["p50_ms"], 2),
            # The late-update detection: writes/s with the check over without; read p50 with the marks over without.
            "late_check_writes": round(bt["exactly_once"]["writes_per_s"] / unchecked, 2) if unchecked else None,
            "read_marks_read_p50": round(bt["read_before"]["p50_ms"] / bt["snapshot_read"]["p50_ms"], 2),
        }
    return report
