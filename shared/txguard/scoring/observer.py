"""Work done after the answer, never on its path: drift windows and shadow scores.

A request only appends (transaction, decision) to a bounded deque (~0.1 us, no lock taken by
us). A daemon thread per process drains it every `INTERVAL_S` in chunks of `CHUNK` rows: one
feature matrix per chunk, counted into the drift window of the champion that answered, and,
when shadow scoring is on, a sampled part scored by the challenger in one onnxruntime call and
logged one line per transaction (`event: shadow_score`: both versions, scores and outcomes), which
`txguard compare` joins with the labels.

The thread shares the GIL with the request threads, so it works when the worker is idle: while a
request is being answered it waits (up to MAX_DEFER_S), and it sleeps between chunks. A request
that arrives mid-chunk waits at most one chunk (~0.25 ms), never a whole switch interval (5 ms),
which is what a plain background loop would cost the p99.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from txguard.contract.logs import EVENT_KEY, SHADOW_EVENT
from txguard.contract.models import Decision, EnrichedTransaction
from txguard.scoring.drift import DriftMonitor
from txguard.scoring.request_log import RequestLog
from txguard.scoring.scorer import Scorer, outcomes
from txguard.scoring.vectorize import matrix_of

if TYPE_CHECKING:
    from txguard.scoring.service import ScoringService

INTERVAL_S = 0.05
CHUNK = 16  # ~0.25 ms of work: the longest a request arriving mid-chunk waits for the GIL
GAP_S = 0.0002  # pause between chunks
IDLE_WAIT_S = 0.002  # while a request is being answered, look again this much later...
MAX_DEFER_S = 0.1  # ...but process a chunk at least this often
QUEUE_MAX = 50_000


class Observer:
    def __init__(self, service: ScoringService) -> None:
        settings = service.settings
        self.service = service
        self.shadow = settings.shadow_enabled
        self.sample_rate = settings.shadow_sample_rate
        self.queue: deque[tuple[EnrichedTransaction, Decision]] = deque(maxlen=QUEUE_MAX)
        self.drift_log = RequestLog(settings.log_level, logger="txguard.score.drift")
        self.shadow_log = RequestLog(settings.log_level, logger="txguard.score.shadow")
        self.drift = (DriftMonitor(settings.drift_window_s, settings.drift_window_rows, self._emit_drift)
                      if settings.drift_window_s > 0 else None)
        self.rng = random.Random()
        self.seen = 0
        self.dropped = 0
        self.shadow_scored = 0
        self._deadline = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.drift is not None or self.shadow

    # Request side (hot path: appends only) ----------------------------------------------------
    def observe(self, tx: EnrichedTransaction, decision: Decision) -> None:
        self.queue.append((tx, decision))

    def observe_many(self, txs: Sequence[EnrichedTransaction], decisions: Sequence[Decision]) -> None:
        self.queue.extend(zip(txs, decisions, strict=False))

    # Background side --------------------------------------------------------------------------
    def drain(self, force: bool = False) -> int:
        """Process what is queued, chunk by chunk, in the worker's idle moments; returns the rows done.

        While a request is being answered (`service.busy()`) the thread waits for a gap, but never
        more than MAX_DEFER_S: a worker that is never idle still gets its drift counted, one chunk
        at a time, and otherwise drops the oldest observations rather than slowing its answers.
        `force` (close, tools) processes everything at once.
        """
        done = 0
        queue = self.queue
        if len(queue) == queue.maxlen:
            self.dropped += 1  # at least one was pushed out; exact counts would cost the hot path a lock
        while queue:
            if not force and self.service.busy() and time.monotonic() < self._deadline:
                time.sleep(IDLE_WAIT_S)
                continue
            chunk = []
            try:
                for _ in range(CHUNK):
                    chunk.append(queue.popleft())
            except IndexError:
                pass
            self._process(chunk)
            done += len(chunk)
            self._deadline = time.monotonic() + MAX_DEFER_S
            if not force:
                time.sleep(GAP_S)  # a real sleep: the GIL is free for a request arriving now
        if self.drift is not None:
            self.drift.tick()
        return done

    def _process(self, chunk: list[tuple[EnrichedTransaction, Decision]]) -> None:
        self.seen += len(chunk)
        champion = self.service.scorer
        if champion is None:
            return
        # Decisions made by a version swapped out since are left out: one window, one version.
        mine = [(tx, d) for tx, d in chunk if d.model_version == champion.version]
        if not mine:
            return
        x = matrix_of([tx for tx, _ in mine])
        if self.drift is not None:
            meta = champion.runtime.metadata
            scores = np.fromiter((d.score for _, d in mine), dtype=np.float64, count=len(mine))
            self.drift.add(champion.version, meta.drift_reference, meta.features, x, scores)
        challenger = self.service.challenger
        if self.shadow and challenger is not None and challenger.version != champion.version:
            self._shadow(challenger, x, mine)

    def _shadow(self, challenger: Scorer, x: np.ndarray, rows: list[tuple[EnrichedTransaction, Decision]]) -> None:
        rate = self.sample_rate
        keep = [i for i in range(len(rows)) if rate >= 1.0 or self.rng.random() < rate]
        if not keep:
            return
        scores = challenger.runtime.predict(x[keep])
        outs = outcomes(scores, challenger.thresholds)
        lines = []
        for i, score, out in zip(keep, scores.tolist(), outs, strict=True):
            tx, d = rows[i]
            lines.append((f"shadow {tx.transaction_id}: {d.outcome.value} -> {out.value}", {
                EVENT_KEY: SHADOW_EVENT, "transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id,
                "model_version": d.model_version, "score": d.score, "outcome": d.outcome.value,
                "challenger_version": challenger.version, "challenger_score": score,
                "challenger_outcome": out.value,
            }))
        self.shadow_log.emit_many("INFO", lines)
        self.shadow_scored += len(keep)

    def _emit_drift(self, line: dict[str, Any]) -> None:
        line["dropped"] = self.dropped
        self.drift_log.emit("INFO", f"drift window of {line['model_version']}: psi_max {line['psi_max']} "
                                    f"({line['feature_max']}) over {line['rows']} rows", line)

    def close(self) -> None:
        """Stop the thread, process what is queued and emit the last window (tools, tests, shutdown)."""
        self.stop()
        self.drain(force=True)
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
            from txguard.contract.logs import get_logger

            get_logger("score").exception("observer round failed")
        del observer
