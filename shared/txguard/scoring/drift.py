"""Drift windows: live feature rows and scores counted into the reference bins, PSI per window.

The scoring function's observer thread (txguard.scoring.observer) feeds each scored row here, off
the response path. A window closes after `window_s` seconds or `window_rows` rows, whichever
comes first, but never with fewer than `MIN_ROWS` rows (PSI of a handful of rows is noise: its
expected value grows like bins / rows). Each closed window is one log line (`event:
drift_window`) with PSI per feature and for the score, the largest (`psi_max`, `feature_max`)
and the raw bin counts, so windows of several instances can be summed and recomputed offline
(`txguard drift --log`). The Pulumi program turns `psi_max` into a metric with an alert policy.

A change of champion closes the window: a window is always one version against its own reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from txguard.contract.logs import DRIFT_EVENT, EVENT_KEY
from txguard.registry.metadata import DriftReference
from txguard.scoring.psi import SCORE, bin_counts, psi_report, worst

MIN_ROWS = 500

Emit = Callable[[dict[str, Any]], None]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class _Window:
    """Counts of one version's traffic since `started`, in its reference's bins."""

    def __init__(self, version: str, reference: DriftReference, features: Sequence[str], started: float) -> None:
        self.version, self.reference, self.started = version, reference, started
        column = {name: j for j, name in enumerate(features)}
        # Features the reference knows and this model computes, by column; others are ignored.
        self.columns = [(name, column[name], np.asarray(bins.edges, dtype=np.float64))
                        for name, bins in reference.features.items() if name in column]
        self.score_edges = np.asarray(reference.score.edges, dtype=np.float64)
        self.counts = {name: np.zeros(len(edges) + 1, dtype=np.int64) for name, _, edges in self.columns}
        self.counts[SCORE] = np.zeros(len(self.score_edges) + 1, dtype=np.int64)
        self.rows = 0

    def add(self, x: np.ndarray, scores: np.ndarray) -> None:
        for name, j, edges in self.columns:
            self.counts[name] += bin_counts(x[:, j], edges)
        self.counts[SCORE] += bin_counts(scores, self.score_edges)
        self.rows += len(scores)

    def summary(self, ended: float) -> dict[str, Any]:
        counts = {name: c.tolist() for name, c in self.counts.items()}
        report = psi_report(self.reference, counts)
        psi_max, feature_max = worst(report)
        return {
            EVENT_KEY: DRIFT_EVENT, "model_version": self.version, "window_start": _iso(self.started),
            "window_end": _iso(ended), "rows": self.rows, "psi_max": round(psi_max, 4),
            "feature_max": feature_max, "psi_score": round(report.get(SCORE, 0.0), 4),
            "psi": {name: round(value, 4) for name, value in report.items()}, "counts": counts,
        }


class DriftMonitor:
    """One process's current window; not thread-safe (only the observer thread calls it)."""

    def __init__(self, window_s: float, window_rows: int, emit: Emit, clock: Callable[[], float] = time.time) -> None:
        self.window_s, self.window_rows, self.emit, self.clock = window_s, window_rows, emit, clock
        self.window: _Window | None = None
        self.windows_emitted = 0

    def add(self, version: str, reference: DriftReference | None, features: Sequence[str], x: np.ndarray,
            scores: np.ndarray) -> None:
        """Rows scored by `version` (whose training reference is `reference`)."""
        now = self.clock()
        if self.window is not None and self.window.version != version:
            self.close(now)  # a new champion: its rows are compared with its own reference
        if reference is None or len(scores) == 0:
            return  # a version published without a reference: nothing to compare with
        if self.window is None:
            self.window = _Window(version, reference, features, now)
        self.window.add(x, scores)
        self.tick(now)

    def tick(self, now: float | None = None) -> None:
        """Close the window if it is full, or old enough and big enough to mean something."""
        w = self.window
        if w is None:
            return
        now = self.clock() if now is None else now
        if w.rows >= self.window_rows or (now - w.started >= self.window_s and w.rows >= MIN_ROWS):
            self.close(now)

    def close(self, now: float | None = None) -> dict[str, Any] | None:
        """Emit the current window if it has at least MIN_ROWS rows; start afresh either way."""
        w, self.window = self.window, None
        if w is None or w.rows < MIN_ROWS:
            return None
        line = w.summary(self.clock() if now is None else now)
        self.windows_emitted += 1
        self.emit(line)
        return line
