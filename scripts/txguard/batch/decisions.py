"""Decisions of a scored matrix as JSON lines, byte for byte what `Decision.model_dump_json` writes.

A file of decisions is written at a few hundred nanoseconds per row instead of building and
dumping one pydantic model per row: outcomes and reasons come from the same functions as
`Scorer.decide_matrix` (`outcomes`, `reasons_matrix`), the scores are serialised by pydantic-core
in one call (so floats are written exactly as the model writes them: `1e-7`, not Python's
`1e-07`), and Arrow joins the pieces of every line in one vectorised call. Identifiers need no
escaping (the contract's pattern allows none of `"` or `\\`). A test compares the bytes with the
per-row models. Serving's `Scorer` is unchanged: this is the batch twin of `decide_matrix`. A
replay in time order never decides a transaction late, so `late` is always false here.

With a rule set (the registry's production rule set, as serving applies it), each row's rules are
evaluated by the same compiled function serving runs (txguard.rules.engine), which may change
its outcome, and the line names the hits and the rule set, as `Decision` does.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pydantic_core

from txguard.contract.models import Outcome
from txguard.rules.engine import RuleSet
from txguard.rules.engine import decide as decide_outcome
from txguard.rules.vocabulary import TEXT_FIELDS
from txguard.scoring.reasons import reasons_matrix
from txguard.scoring.scorer import Scorer

_OUTCOMES = pa.array([Outcome.ALLOW.value, Outcome.REVIEW.value, Outcome.BLOCK.value])


def outcome_codes(scores: np.ndarray, review: float, block: float) -> np.ndarray:
    """0 allow, 1 review, 2 block: `scoring.scorer.outcomes` on codes."""
    return (scores >= review).astype(np.int8) + (scores >= block).astype(np.int8)


def _scores_json(scores: np.ndarray) -> pa.Array:
    if not len(scores):
        return pa.array([], pa.string())
    return pa.array(pydantic_core.to_json(scores.tolist())[1:-1].split(b","), pa.binary()).cast(pa.string())


def _reasons_json(x: np.ndarray) -> pa.Array:
    texts = [b"[]" if not r else pydantic_core.to_json(r) for r in reasons_matrix(x)]
    return pa.array(texts, pa.binary()).cast(pa.string())


def _concatenated(lines: pa.Array) -> bytes:
    """The values of a string array as one buffer (each value already ends in a newline)."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if not len(lines):
        return b""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + len(lines) + 1]
    return lines.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]


class _TextRow:
    """A row's text fields as the compiled rules read them (the transaction's attributes)."""

    __slots__ = TEXT_FIELDS

    def __init__(self, values: tuple[str | None, ...]) -> None:
        for name, value in zip(TEXT_FIELDS, values, strict=True):
            object.__setattr__(self, name, value)


def _apply_rules(rules: RuleSet, x: np.ndarray, scores: np.ndarray, codes: np.ndarray,
                 table: pa.Table) -> pa.Array:
    """Each row's rules (codes changed in place where they change the outcome); the hits as JSON."""
    n = len(codes)
    columns = [table.column(name).cast(pa.string()).to_pylist() if name in table.column_names else [None] * n
               for name in TEXT_FIELDS]
    evaluate, hits, outcomes = rules.evaluate, rules.hits, rules.outcomes
    texts = []
    for i, (row, score, values) in enumerate(zip(x.tolist(), scores.tolist(), zip(*columns, strict=True),
                                                 strict=True)):
        fired = evaluate(row, score, _TextRow(values))
        if not fired:
            texts.append(b"[]")
            continue
        codes[i] = _CODES[decide_outcome(_TABLE[codes[i]], [outcomes[j] for j in fired])]
        texts.append(pydantic_core.to_json([hits[j] for j in fired]))
    return pa.array(texts, pa.binary()).cast(pa.string())


_TABLE = (Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK)
_CODES = {o: i for i, o in enumerate(_TABLE)}


def decide(scorer: Scorer, x: np.ndarray, transaction_ids: pa.Array | pa.ChunkedArray,
           wallet_ids: pa.Array | pa.ChunkedArray, rules: RuleSet | None = None,
           table: pa.Table | None = None, scores: np.ndarray | None = None) -> tuple[bytes, Counter[str]]:
    """(JSON lines of the decisions of matrix `x`, in row order; count per outcome); `table` has the rows'
    text fields when `rules` are applied; `scores`: the scorer's scores of `x` when already computed."""
    if scores is None:
        scores = scorer.runtime.predict(x)
    if len(scores) and not (np.isfinite(scores).all() and scores.min() >= 0.0 and scores.max() <= 1.0):
        raise ValueError(f"model {scorer.version} returned scores outside [0, 1]")
    thresholds = scorer.thresholds
    codes = outcome_codes(scores, thresholds.review, thresholds.block)
    if rules is not None:
        if table is None:
            raise ValueError("rules need the rows' text fields (table)")
        hits_json: pa.Array | str = _apply_rules(rules, x, scores, codes, table)
        rule_set = pydantic_core.to_json(rules.version).decode()
    else:
        hits_json, rule_set = "[]", "null"
    outcome = _OUTCOMES.take(pa.array(codes))
    version = pydantic_core.to_json(scorer.version).decode()
    lines = pc.binary_join_element_wise(
        '{"transaction_id":"', transaction_ids, '","wallet_id":"', wallet_ids, '","score":', _scores_json(scores),
        ',"outcome":"', outcome, '","reasons":', _reasons_json(x), f',"model_version":{version},"timings":{{}},'
        '"late":false,"rules":', hits_json, f',"rule_set":{rule_set}}}\n',
        "",
    )
    counts = np.bincount(codes, minlength=3)
    tally = Counter({_OUTCOMES[i].as_py(): int(c) for i, c in enumerate(counts) if c})
    return _concatenated(lines), tally
