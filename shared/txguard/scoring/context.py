"""One request's context: what the handler learned, for the request's log line and the observer.

The service creates it when the request arrives, the route's handler fills in what it parsed and
decided, and the service writes the log line from it once the response is ready (and hands the
scored transactions to the observer). Typed fields, so a handler cannot misspell one and the log
line reads what is there rather than probing keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from txguard.contract.models import Decision, EnrichedTransaction


@dataclass(slots=True)
class RequestContext:
    started_ns: int  # time.perf_counter_ns() when the request arrived: anchors latency and total_us
    tx: EnrichedTransaction | None = None  # POST /score: the transaction, once it validated (the log names it)
    decision: Decision | None = None  # ... and its decision, once scored
    batch: Sequence[EnrichedTransaction] | None = None  # POST /score/batch: the transactions, once scored
    decisions: list[Decision] | None = None  # ... and their decisions, in the same order
    error: str | None = None  # why the request failed (rendered as its 4xx/5xx body)

