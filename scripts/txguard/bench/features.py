"""`txguard bench features`: rows/s of building training features, the reference replay vs its twin.

Training turns every row into its model input by replaying transactions at their time and label
events when they became known. The reference is `txguard.features.timeline.replay` (through
`txguard.training.dataset.feature_rows`: per transaction, the functions the enrichment and label
functions call); datasets are built with the columnar twin
`txguard.features.timeline_columns.replay_columns`. Both run here on the same Handbook-style rows
(scripts/txguard/evaluation/handbook_data.py: customers paying terminals, four fraud kinds, each
fraud's label known `label_delay_days` later), in the same process, and must give the same rows.

Only the feature building is timed (CPU seconds of this process): turning the data into
`Transaction` objects (the reference's input) or columns (the twin's) is set-up. The reference
can run on a prefix (`reference_rows`) when the full size would take too long; the twin always
runs on all rows. On a shared machine every figure moves with the neighbours' load: compare the
ratio of one run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Log = Callable[[str], None]


def _cpu() -> float:
    return time.process_time()


def _transactions(data: Any, rows: int) -> list:
    """The first `rows` Handbook rows as validated Transactions (the reference replay's input)."""
    from txguard.contract.models import TRANSACTION_ADAPTER

    seed = data.config.seed
    stamps = np.datetime_as_string(data.ts[:rows].astype(np.int64).astype("datetime64[s]"), unit="s").tolist()
    return [
        TRANSACTION_ADAPTER.validate_python({
            "transaction_id": f"hb{seed}-{i:08d}", "wallet_id": f"C{c:05d}", "counterparty_id": f"T{t:05d}",
            "amount": a, "currency": "EUR", "type": "payment", "channel": "pos", "country": "FR",
            "device_id": None, "timestamp": when + "+00:00"})
        for i, (c, t, a, when) in enumerate(zip(data.customer[:rows].tolist(), data.terminal[:rows].tolist(),
                                                data.amount[:rows].tolist(), stamps, strict=True))
    ]


def _columns(data: Any) -> Any:
    """All Handbook rows as the twin's columns, the way `dataset.from_file` streams a file into them."""
    from txguard.features.timeline_columns import ColumnsBuilder

    builder = ColumnsBuilder()
    for ts, c, t, a in zip(data.ts.tolist(), data.customer.tolist(), data.terminal.tolist(), data.amount.tolist(),
                           strict=True):
        builder.add(ts, a, "payment", "pos", f"C{c:05d}", f"T{t:05d}", None, "FR")
    return builder.build()


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else math.inf


def feature_figures(customers: int, terminals: int, days: int, seed: int, reference_rows: int, log: Log) -> dict:
    """Rows per CPU-second of the reference replay and of the twin on the same Handbook-style rows."""
    from txguard.evaluation.handbook_data import HandbookConfig, generate
    from txguard.features.timeline import row_label_event
    from txguard.features.timeline_columns import replay_columns
    from txguard.training.dataset import feature_rows

    cfg = HandbookConfig(customers=customers, terminals=terminals, days=days, seed=seed)
    data = generate(cfg)
    n = len(data)
    ref_n = n if reference_rows <= 0 else min(reference_rows, n)
    log(f"{n:,} Handbook-style rows ({customers:,} customers, {terminals:,} terminals, {days} days); "
        f"reference on {ref_n:,}")
    txs = _transactions(data, n)
    frauds = np.flatnonzero(data.is_fraud).tolist()
    labels = [row_label_event(txs[i], float(data.label_time[i])) for i in frauds]
    del txs[ref_n:]

    log("twin (timeline_columns.replay_columns)")
    cols = _columns(data)
    start = _cpu()
    twin = replay_columns(cols, labels)
    twin_s = _cpu() - start

    log("reference (timeline.replay, row by row)")
    ref_labels = [lb for lb in labels if ref_n == n or lb.known_at.timestamp() <= data.ts[ref_n - 1]]
    start = _cpu()
    reference = [row for row, *_ in feature_rows(((tx, 0, math.nan, "") for tx in txs), ref_labels)]
    ref_s = _cpu() - start
    prefix = replay_columns(cols.take(np.arange(ref_n)), ref_labels) if ref_n < n else twin[:ref_n]
    identical = [list(r) for r in reference] == prefix.tolist()
    ref_rate, twin_rate = _rate(ref_n, ref_s), _rate(n, twin_s)
    return {
        "data": {"generator": "txguard.evaluation.handbook_data", "customers": customers, "terminals": terminals,
                 "days": days, "seed": seed, "rows": n, "labels": len(labels)},
        "reference": {"rows": ref_n, "cpu_s": round(ref_s, 3), "rows_per_cpu_s": ref_rate},
        "twin": {"rows": n, "cpu_s": round(twin_s, 3), "rows_per_cpu_s": twin_rate},
        "speedup": round(twin_rate / ref_rate, 1) if ref_rate else None,
        "identical_rows": identical,
    }
