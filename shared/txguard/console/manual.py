"""Manual scoring: one transaction from the form, scored on the wallet's stored history as of now.

The features come from the stores' read-only views: the wallet's state in the history store
(`wallet_state`) and the counterparty, device and label aggregates in the counterparty store
(`snapshot`), through the same point-in-time code the enrichment runs (`history_features`,
`counterparty_features`), without applying the transaction, so scoring by hand never changes what
the pipeline will compute next. The scoring
function is called over HTTP like the enrichment calls it (an in-process scorer can be passed in
locally and in tests).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from txguard.contract.errors import (
    ConsoleInputError,
    ConsoleUnavailableError,
    ScoringRejectedError,
    ScoringUnavailableError,
    StoreUnavailableError,
)
from txguard.contract.models import TRANSACTION_ADAPTER, EnrichedTransaction, Transaction
from txguard.enrichment.counterparty import CounterpartyStore
from txguard.enrichment.history import HistoryStore
from txguard.enrichment.scoring_client import ScoringBackend
from txguard.features.counterparty_windows import counterparty_features
from txguard.features.wallet import history_features


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as the page shows them: where and what, no input echo."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


def preview(history: HistoryStore, counterparties: CounterpartyStore, tx: Transaction) -> EnrichedTransaction:
    """`tx` with its features as of now from the stored wallet and counterparty state; nothing is written."""
    try:
        state = history.wallet_state(tx.wallet_id)
        snapshot = counterparties.snapshot(tx)
    except StoreUnavailableError as exc:
        raise ConsoleUnavailableError(f"history or counterparty store: {exc}") from exc
    return EnrichedTransaction.model_validate({**tx.model_dump(), "features": history_features(state, tx),
                                               "counterparty": counterparty_features(snapshot, tx)})


def score_manually(history: HistoryStore, counterparties: CounterpartyStore, scorer: ScoringBackend,
                   body: bytes) -> dict[str, Any]:
    """Validate, preview, score; the answer is what the page shows."""
    try:
        tx = TRANSACTION_ADAPTER.validate_json(body)
    except ValidationError as exc:
        raise ConsoleInputError("the transaction is not valid: fix the fields named below",
                                field_errors(exc)) from exc
    enriched = preview(history, counterparties, tx)
    try:
        decision = scorer.score(enriched)
    except ScoringRejectedError as exc:
        raise ConsoleInputError(f"the scoring function refused it: {exc}") from exc
    except ScoringUnavailableError as exc:
        raise ConsoleUnavailableError(f"the scoring function is unavailable: {exc}") from exc
    return {
        "transaction": tx.model_dump(mode="json"),
        "features": enriched.features.model_dump(),
        "counterparty": enriched.counterparty.model_dump(),
        "decision": decision.model_dump(mode="json"),
    }
