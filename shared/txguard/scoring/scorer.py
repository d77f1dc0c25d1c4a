"""From enriched transactions to decisions: features -> P(fraud) -> outcome + reasons.

Knows nothing of HTTP (shared/txguard/scoring/service.py) nor of where the model came from
(shared/txguard/scoring/runtime.py). One transaction takes the runtime's single-row fast path; a batch or a
file is one matrix and one onnxruntime call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from txguard.contract.models import Decision, EnrichedTransaction, Outcome, RuleHit
from txguard.registry.metadata import Thresholds
from txguard.rules.engine import RuleSet
from txguard.scoring.reasons import reasons_for, reasons_matrix
from txguard.scoring.runtime import ModelRuntime
from txguard.scoring.vectorize import matrix_of


def outcome(score: float, thresholds: Thresholds) -> Outcome:
    """Scores at or above `block` are blocked, at or above `review` reviewed, the rest allowed."""
    if score >= thresholds.block:
        return Outcome.BLOCK
    if score >= thresholds.review:
        return Outcome.REVIEW
    return Outcome.ALLOW


def outcomes(scores: np.ndarray, thresholds: Thresholds) -> list[Outcome]:
    codes = (scores >= thresholds.review).astype(np.int8) + (scores >= thresholds.block).astype(np.int8)
    table = (Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK)
    return [table[c] for c in codes.tolist()]


def _us(ns: int) -> float:
    return round(ns / 1000.0, 1)


class Scorer:
    """The scoring core: thread-safe once built (the runtime keeps per-thread buffers)."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self.runtime = runtime
        self.version = runtime.version
        self.thresholds = runtime.metadata.thresholds

    def score(self, tx: EnrichedTransaction, started_ns: int | None = None, rules: RuleSet | None = None) -> Decision:
        """One transaction through the fast path; `started_ns` (perf_counter_ns) anchors total_us, and
        `inference_us` is the fast path's (the row built and scored: `ModelRuntime.predict_transaction`).

        `rules` (the production rule set the request read once) are applied after the model
        (txguard.rules.engine: which fired, and the outcome they make).
        """
        t1 = time.perf_counter_ns()
        t0 = started_ns if started_ns is not None else t1
        p, row = self.runtime.predict_transaction(tx)  # the row, as the model read it, for rules and reasons
        t2 = time.perf_counter_ns()
        out = outcome(p, self.thresholds)
        if rules is None:
            hits: list[RuleHit] = []
            timings = {"inference_us": _us(t2 - t1), "total_us": _us(time.perf_counter_ns() - t0)}
        else:
            out, hits = rules.apply(row, p, tx, out)
            t3 = time.perf_counter_ns()
            timings = {"inference_us": _us(t2 - t1), "rules_us": _us(t3 - t2), "total_us": _us(t3 - t0)}
        # model_validate (Rust) is both cheaper than model_construct and checks the contract.
        return Decision.model_validate({
            "transaction_id": tx.transaction_id,
            "wallet_id": tx.wallet_id,
            "score": p,
            "outcome": out,
            "reasons": reasons_for(row),
            "model_version": self.version,
            "timings": timings,
            "rules": hits,
            "rule_set": None if rules is None else rules.version,
        })

    def score_batch(self, txs: Sequence[EnrichedTransaction], started_ns: int | None = None,
                    rules: RuleSet | None = None) -> list[Decision]:
        """Decisions in input order; one onnxruntime call for the whole batch, then the rules per row."""
        t0 = started_ns if started_ns is not None else time.perf_counter_ns()
        x = matrix_of(txs)
        return self.decide_matrix(
            x, [tx.transaction_id for tx in txs], [tx.wallet_id for tx in txs], started_ns=t0,
            rules=rules, texts=txs,
        )

    def decide_matrix(
        self, x: np.ndarray, transaction_ids: Sequence[str], wallet_ids: Sequence[str],
        started_ns: int | None = None, timings: bool = True, rules: RuleSet | None = None,
        texts: Sequence[Any] | None = None,
    ) -> list[Decision]:
        """Decisions for a ready feature matrix (batch requests and `txguard score-file`).

        `timings` (of the whole matrix) are attached to every decision unless turned off (files).
        `rules` are applied row by row; `texts[i]` has row i's text fields (the transaction).
        """
        t0 = started_ns if started_ns is not None else time.perf_counter_ns()
        t1 = time.perf_counter_ns()
        scores = self.runtime.predict(x)
        t2 = time.perf_counter_ns()
        outs = outcomes(scores, self.thresholds)
        score_list = scores.tolist()
        hits: list[list[RuleHit]] = [[]] * len(outs)
        if rules is not None:
            if texts is None:
                raise ValueError("rules need the transactions' text fields (texts)")
            hits = []
            for i, (row, s, tx) in enumerate(zip(x.tolist(), score_list, texts, strict=True)):
                outs[i], fired = rules.apply(row, s, tx, outs[i])
                hits.append(fired)
        reasons = reasons_matrix(x)
        inference = _us(t2 - t1)
        total = _us(time.perf_counter_ns() - t0)
        stamp = {"inference_us": inference, "total_us": total} if timings else {}
        version = self.version
        rule_set = None if rules is None else rules.version
        validate = Decision.model_validate
        return [
            validate({"transaction_id": tid, "wallet_id": wid, "score": s, "outcome": o, "reasons": r,
                      "model_version": version, "timings": stamp, "rules": h, "rule_set": rule_set})
            for tid, wid, s, o, r, h in zip(transaction_ids, wallet_ids, score_list, outs, reasons, hits, strict=True)
        ]
