"""Work done after the answer, never on its path: drift windows and shadow scores, on a sample.

A request draws one random number and, for a sampled transaction only, appends (transaction,
decision, draw) to a bounded deque: ~0.1 us, no lock of ours. A daemon thread per process drains
the deque every `INTERVAL_S` in chunks of `CHUNK` rows: one feature matrix per chunk; the rows
whose draw is under `DRIFT_SAMPLE_RATE` are counted into the drift window of the champion that
answered, and, when shadow scoring is on, those under `SHADOW_SAMPLE_RATE` are scored by the
challenger in one onnxruntime call and logged one line per transaction (`event: shadow_score`:
both versions, scores and outcomes), which `txguard compare` joins with the labels.

Why a sample and rare wake-ups: the thread shares the GIL with the request threads. What it costs
the p99 is the share of time it holds the GIL (a request that needs it meanwhile waits), and every
wake-up of a thread that wants the GIL from a busy worker is a forced switch. Measured with
`txguard bench shadow` on a quiet machine, an observer that woke every 50 ms and looked at every
transaction cost 17 % of the throughput and +56 % at p99; a 10 % sample and a few wake-ups a
second keep its share of the GIL around a percent. PSI needs hundreds of rows per window, not
every row, and the comparison of two models needs labelled traffic, not all of it.

The `staging` rule set runs here too, in shadow (docs/rules.md): a `RULES_SHADOW_RATE` share of
transactions (all, by default: a rule set costs a few microseconds a row) is evaluated with it and
one `rules_shadow` line is logged for each transaction where a staging rule fired or the would-be
outcome differs from the one returned: hits per rule and the outcomes it would change, never
returned to the caller.

If the thread falls behind, the deque drops the oldest observations (counted in the next drift
line as `dropped`): a monitor must never grow the memory of the function it watches.
"""

from __future__ import annotations

import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from txguard.contract.logs import EVENT_KEY, RULES_SHADOW_EVENT, SHADOW_EVENT, get_logger
from txguard.contract.models import Decision, EnrichedTransaction
from txguard.contract.settings import ScoringSettings
from txguard.rules.engine import RuleSet
from txguard.scoring.drift import DriftMonitor
from txguard.scoring.request_log import INFO, RequestLog
from txguard.scoring.scorer import Scorer, outcome, outcomes
from txguard.scoring.state import ServingState
from txguard.scoring.vectorize import matrix_of

INTERVAL_S = 0.25
CHUNK = 64  # rows per feature matrix and per challenger call; the GIL is handed back between chunks
QUEUE_MAX = 50_000

Observation = tuple[EnrichedTransaction, Decision, float]  # the draw decides drift and shadow


class Observer:
    def __init__(self, state: ServingState, settings: ScoringSettings) -> None:
        self.state = state
        self.shadow = settings.shadow_enabled
        self.drift = (DriftMonitor(settings.drift_window_s, settings.drift_window_rows, self._emit_drift)
                      if settings.drift_window_s > 0 else None)
        self.drift_rate = settings.drift_sample_rate if self.drift is not None else 0.0
        self.shadow_rate = settings.shadow_sample_rate if self.shadow else 0.0
        self.keep = max(self.drift_rate, self.shadow_rate)  # a transaction drawn above both is not queued
        self.rules_rate = settings.rules_shadow_rate if settings.rules_alias else 0.0
        self.rules_keep = max(self.keep, self.rules_rate)  # ... while a staging rule set is shadowed
        self.rules_log = RequestLog(settings.log_level, logger="txguard.score.rules")
        self.rules_shadowed = 0
        self._draw = random.Random().random
        self.queue: deque[Observation] = deque(maxlen=QUEUE_MAX)
        self.drift_log = RequestLog(settings.log_level, logger="txguard.score.drift")
        self.shadow_log = RequestLog(settings.log_level, logger="txguard.score.shadow")
        self.seen = 0
        self.dropped = 0
        self.shadow_scored = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.rules_keep > 0

    # Request side (hot path: one draw, and an append for a sampled transaction) ----------------
    def observe(self, tx: EnrichedTransaction, decision: Decision) -> None:
        u = self._draw()
        if u < (self.keep if self.state.staging_rules is None else self.rules_keep):
            self.queue.append((tx, decision, u))

    def observe_many(self, txs: Sequence[EnrichedTransaction], decisions: Sequence[Decision]) -> None:
        draw, keep = self._draw, (self.keep if self.state.staging_rules is None else self.rules_keep)
        self.queue.extend((tx, d, u) for tx, d in zip(txs, decisions, strict=False) if (u := draw()) < keep)

    # Background side --------------------------------------------------------------------------
    def drain(self) -> int:
        """Process what is queued, chunk by chunk (the GIL handed back between chunks); rows done."""
        done = 0
        queue = self.queue
        if len(queue) == queue.maxlen:
            self.dropped += 1  # at least one was pushed out; exact counts would cost the hot path a lock
        while queue:
            chunk = []
            try:
                for _ in range(CHUNK):
                    chunk.append(queue.popleft())
            except IndexError:
                pass
            self._process(chunk)
            done += len(chunk)
            time.sleep(0)
        if self.drift is not None:
            self.drift.tick()
        return done

    def _process(self, chunk: list[Observation]) -> None:
        self.seen += len(chunk)
        champion = self.state.champion
        if champion is None:
            return
        # Decisions made by a version swapped out since are left out: one window, one version.
        mine = [row for row in chunk if row[1].model_version == champion.version]
        if not mine:
            return
        x = matrix_of([tx for tx, _, _ in mine])
        draws = np.fromiter((u for _, _, u in mine), dtype=np.float64, count=len(mine))
        staging = self.state.staging_rules
        if staging is not None and self.rules_rate > 0:
            self._shadow_rules(staging, champion, x, mine, draws)
        if self.drift is not None:
            counted = draws < self.drift_rate
            if counted.any():
                meta = champion.runtime.metadata
                scores = np.fromiter((d.score for _, d, _ in mine), dtype=np.float64, count=len(mine))
                self.drift.add(champion.version, meta.drift_reference, meta.features, x[counted], scores[counted])
        challenger = self.state.challenger
        if self.shadow and challenger is not None and challenger.version != champion.version:
            keep = np.flatnonzero(draws < self.shadow_rate)
            if len(keep):
                self._shadow(challenger, x[keep], [mine[i] for i in keep])

    def _shadow(self, challenger: Scorer, x: np.ndarray, rows: list[Observation]) -> None:
        scores = challenger.runtime.predict(x)
        outs = outcomes(scores, challenger.thresholds)
        lines = []
        for (tx, d, _), score, out in zip(rows, scores.tolist(), outs, strict=True):
            lines.append((f"shadow {tx.transaction_id}: {d.outcome.value} -> {out.value}", {
                EVENT_KEY: SHADOW_EVENT, "transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id,
                "model_version": d.model_version, "score": d.score, "outcome": d.outcome.value,
                "challenger_version": challenger.version, "challenger_score": score,
                "challenger_outcome": out.value,
            }))
        self.shadow_log.emit_many(INFO, lines)
        self.shadow_scored += len(rows)

    def _shadow_rules(self, staging: RuleSet, champion: Scorer, x: np.ndarray, rows: list[Observation],
                      draws: np.ndarray) -> None:
        """The staging rule set's would-be decisions: a line where a rule fired or the outcome differs."""
        lines = []
        thresholds = champion.thresholds
        for i in np.flatnonzero(draws < self.rules_rate).tolist():
            tx, d, _ = rows[i]
            would, hits = staging.apply(x[i].tolist(), d.score, tx, outcome(d.score, thresholds))
            self.rules_shadowed += 1
            if not hits and would is d.outcome:
                continue
            lines.append((f"rules shadow {tx.transaction_id}: {d.outcome.value} -> {would.value}", {
                EVENT_KEY: RULES_SHADOW_EVENT, "transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id,
                "model_version": d.model_version, "score": d.score, "outcome": d.outcome.value,
                "rule_set": d.rule_set, "rules": [h.rule for h in d.rules],
                "staging_rule_set": staging.version, "staging_outcome": would.value,
                "staging_rules": [h.rule for h in hits],
            }))
        if lines:
            self.rules_log.emit_many(INFO, lines)

    def _emit_drift(self, line: dict[str, Any]) -> None:
        line["dropped"] = self.dropped
        line["sample_rate"] = self.drift_rate
        self.drift_log.emit(INFO, f"drift window of {line['model_version']}: psi_max {line['psi_max']} "
                                    f"({line['feature_max']}) over {line['rows']} rows", line)

    def close(self) -> None:
        """Stop the thread, process what is queued and emit the last window (tools, tests, shutdown)."""
        self.stop()
        self.drain()
        if self.drift is not None:
            self.drift.close()

    # Thread -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_loop, args=(weakref.ref(self), self._stop),
                                        name="txguard-observer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def _loop(ref: weakref.ref[Observer], stop: threading.Event) -> None:
    while not stop.wait(INTERVAL_S):
        observer: Any = ref()
        if observer is None:
            return
        try:
            observer.drain()
        except Exception:  # never let a monitoring bug end monitoring silently
            get_logger("score").exception("observer round failed")
        del observer
