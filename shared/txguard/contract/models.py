"""The contract: pydantic models of every message and request.

`Transaction` is what publishers send; `EnrichedTransaction` is a transaction plus its wallet
history and counterparty features (what the scoring function takes); `Decision` is what comes
out. `LabelEvent` is what becomes known later (a chargeback, an analyst's verdict, a reversal).
JSON Schemas of these models are exported to `schemas/` (`txguard schemas export`) and a test
fails when they drift.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from txguard.contract.codes import COUNTRIES, CURRENCIES

MAX_AMOUNT = 1_000_000.0
# A transaction may not be stamped further in the future than this (clock skew allowance).
MAX_FUTURE_SKEW = timedelta(minutes=10)
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)


class TxType(StrEnum):
    PAYMENT = "payment"
    TRANSFER = "transfer"
    WITHDRAWAL = "withdrawal"
    TOP_UP = "top_up"  # money coming into the wallet


class Channel(StrEnum):
    APP = "app"
    WEB = "web"
    POS = "pos"
    ATM = "atm"
    API = "api"


class Outcome(StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"


def _currency(value: str) -> str:
    if value not in CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency code {value!r}")
    return value


def _country(value: str) -> str:
    if value not in COUNTRIES:
        raise ValueError(f"unknown ISO 3166-1 alpha-2 country code {value!r}")
    return value


def _not_far_future(value: datetime) -> datetime:
    if value < MIN_TIMESTAMP:
        raise ValueError(f"timestamp before {MIN_TIMESTAMP.date().isoformat()}")
    if value > datetime.now(UTC) + MAX_FUTURE_SKEW:
        raise ValueError("timestamp is in the future")
    return value


# Identifiers need no escaping in JSON, CSV or a log line (batch writers rely on it).
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"
IDENTIFIER_MAX_LENGTH = 64
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=IDENTIFIER_MAX_LENGTH, pattern=IDENTIFIER_PATTERN)
]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_country)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_not_far_future)]
Amount = Annotated[float, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Transaction(_Model):
    """One wallet transaction, as a publisher puts it on the `transactions` topic."""

    transaction_id: Identifier
    wallet_id: Identifier
    counterparty_id: Identifier
    amount: Amount = Field(description=f"Amount in the currency's major unit, > 0 and <= {MAX_AMOUNT:,.0f}")
    currency: CurrencyCode
    type: TxType
    channel: Channel
    country: CountryCode
    device_id: Identifier | None = None
    timestamp: Timestamp = Field(description="When the transaction happened; timezone-aware ISO 8601")


NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class HistoryFeatures(_Model):
    """Per-wallet history as of just before the transaction (point-in-time snapshot).

    `device_changed`: the previous transaction used another device (a cash-in keyed on an agent's
    device makes the next one "changed"); `is_new_device`: this wallet never used this device in the
    history it keeps (its last 128 transactions); `devices_7d`: the distinct devices it used in the
    last 7 days. `counterparty_known_days`: days since the wallet first paid this counterparty (among
    the counterparties it keeps, its 128 most recent), 0 when it never has: a relative or the usual
    agent paid for weeks is not a payee first paid a few days ago (a mule forwarding within its ring
    or cashing out at the ring's agents, a scam's later instalments)."""

    tx_count_1h: NonNeg
    amount_sum_1h: NonNeg
    small_tx_count_1h: NonNeg
    tx_count_24h: NonNeg
    amount_sum_24h: NonNeg
    tx_count_7d: NonNeg
    amount_sum_7d: NonNeg
    amount_mean_7d: NonNeg
    seconds_since_last: NonNeg
    amount_mean_30d: NonNeg
    amount_std_30d: NonNeg
    amount_zscore_30d: Finite
    amount_ratio_30d: NonNeg
    distinct_counterparties_24h: NonNeg
    new_counterparties_24h: NonNeg
    is_new_counterparty: NonNeg
    country_changed: NonNeg
    device_changed: NonNeg
    is_new_device: NonNeg
    devices_7d: NonNeg
    inflow_sum_24h: NonNeg
    seconds_since_last_inflow: NonNeg
    outflow_to_inflow_24h: NonNeg
    wallet_age_days: NonNeg
    history_len: NonNeg
    counterparty_known_days: NonNeg


class CounterpartyFeatures(_Model):
    """What the counterparty, the device and the wallet's labels say, as of just before the transaction.

    Built from time-bucketed aggregates (see docs/counterparty.md): only buckets that ended before
    the transaction count, and fraud labels count from the bucket of the time they became known.
    `cp_*` describe the counterparty, `device_*` the device (0 without one; its 1 h window is the
    last 12 ended 5-minute slots, as the counterparty's), `in_*` what others paid the wallet itself
    (its id's cells as a counterparty: peer-to-peer transfers to it, payers new to it, known frauds
    paid to it; `in_amount_ratio_24h` this amount over what it was paid in 24 h;
    `in_minutes_since_last` minutes since the end of the latest ended 5-minute slot in which it was
    paid, 1440 when not in 24 h), `wallet_fraud_30d` the wallet's own known frauds and
    `cp_wallet_fraud_30d` the counterparty's own known frauds as a payer (the label cells of its id
    as a wallet: a mule cashing out or forwarding, once its own frauds are reported; 0 for a
    counterparty that never paid). `cp_fraud_first_days` / `cp_fraud_last_days`: days since the
    earliest / the latest known fraud at the counterparty within 30 days (0 / 31 when none): how
    long it has been reporting fraud, and whether it still does. `cp_fraud_wallets_*`: how many
    distinct wallets those frauds hit (ended days; a 64-slot estimate): many for a compromised
    counterparty, one for the frauds of one compromised wallet.
    """

    cp_tx_1h: NonNeg
    cp_amount_1h: NonNeg
    cp_tx_24h: NonNeg
    cp_new_wallets_1h: NonNeg
    cp_new_wallets_24h: NonNeg
    cp_tx_7d: NonNeg
    cp_tx_30d: NonNeg
    cp_amount_ratio_30d: NonNeg
    cp_age_days: NonNeg
    cp_fraud_1d: NonNeg
    cp_fraud_7d: NonNeg
    cp_fraud_30d: NonNeg
    cp_fraud_rate_7d: NonNeg
    cp_fraud_rate_30d: NonNeg
    cp_fraud_first_days: NonNeg
    cp_fraud_last_days: NonNeg
    cp_fraud_wallets_7d: NonNeg
    cp_fraud_wallets_30d: NonNeg
    device_tx_1h: NonNeg
    device_new_wallets_1h: NonNeg
    device_tx_24h: NonNeg
    device_new_wallets_24h: NonNeg
    device_new_wallets_7d: NonNeg
    device_age_days: NonNeg
    device_fraud_30d: NonNeg
    in_tx_1h: NonNeg
    in_amount_1h: NonNeg
    in_tx_24h: NonNeg
    in_amount_24h: NonNeg
    in_amount_ratio_24h: NonNeg
    in_new_payers_24h: NonNeg
    in_minutes_since_last: NonNeg
    in_fraud_30d: NonNeg
    wallet_fraud_30d: NonNeg
    cp_wallet_fraud_30d: NonNeg


class EnrichedTransaction(Transaction):
    """A transaction plus its wallet history and counterparty features: the scoring function's input."""

    features: HistoryFeatures
    counterparty: CounterpartyFeatures


class LabelKind(StrEnum):
    CHARGEBACK = "chargeback"  # the payer's bank disputed it: days to weeks after the transaction
    ANALYST = "analyst"  # a reviewer's verdict on a reviewed decision: hours after
    REVERSAL = "reversal"  # withdraws an earlier label (`reverses`), e.g. a chargeback the merchant won


Note = Annotated[str, StringConstraints(max_length=500)]


class LabelEvent(_Model):
    """What became known about a transaction after it was decided, on the `labels` topic.

    A label names the transaction and its wallet, counterparty and device so that it can be
    applied without looking the transaction up (it may be older than any retained record).
    `known_at` is when the label became known: features count it only from then on. A reversal
    withdraws the label `reverses` names (of the same transaction); it carries no verdict.
    """

    label_id: Identifier
    transaction_id: Identifier
    wallet_id: Identifier
    counterparty_id: Identifier
    device_id: Identifier | None = None
    transaction_time: Timestamp = Field(description="The transaction's timestamp")
    known_at: Timestamp = Field(description="When the label became known; not before transaction_time")
    kind: LabelKind
    is_fraud: bool | None = Field(None, validate_default=True,
                                  description="The verdict; required unless kind is reversal")
    reverses: Identifier | None = Field(None, validate_default=True,
                                        description="label_id withdrawn by a reversal (reversal only)")
    source: Identifier | None = Field(None, description="Who said so: a bank, an analyst id, a system")
    note: Note | None = None

    # Field validators (not one model validator) so that an error names its field.
    @field_validator("known_at")
    @classmethod
    def _not_before_the_transaction(cls, value: datetime, info: ValidationInfo) -> datetime:
        when = info.data.get("transaction_time")
        if when is not None and value < when:
            raise ValueError("is before transaction_time (a label cannot be known before its transaction)")
        return value

    @field_validator("is_fraud")
    @classmethod
    def _verdict_unless_reversal(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        kind = info.data.get("kind")
        if kind is LabelKind.REVERSAL and value is not None:
            raise ValueError("must be absent when kind is reversal (a reversal withdraws a verdict)")
        if kind is not None and kind is not LabelKind.REVERSAL and value is None:
            raise ValueError(f"required when kind is {kind.value}")
        return value

    @field_validator("reverses")
    @classmethod
    def _reversal_names_a_label(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind is LabelKind.REVERSAL:
            if value is None:
                raise ValueError("required when kind is reversal (the label_id it withdraws)")
            if value == info.data.get("label_id"):
                raise ValueError("a label cannot reverse itself")
        elif kind is not None and value is not None:
            raise ValueError(f"only a reversal names a label to withdraw (kind is {kind.value})")
        return value


# Rules beside the model (docs/rules.md) ------------------------------------------------------------
RULE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
RuleName = Annotated[str, StringConstraints(pattern=RULE_NAME_PATTERN)]
MAX_RULES = 200
MAX_CONDITION_LENGTH = 2000


class RuleSpec(_Model):
    """One rule as an analyst writes it: a condition in the rule language, an outcome and a reason."""

    name: RuleName = Field(description="Unique in its set: lowercase letters, digits and _ (it names the rule in "
                                        "decisions, logs and backtests)")
    condition: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONDITION_LENGTH)] = Field(
        description="A CEL expression over the transaction's fields, its features (by their names in "
                    "FEATURE_NAMES) and `score`, e.g. `amount > 500 && is_new_counterparty == 1 && cp_age_days < 1`")
    outcome: Outcome
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] = Field(
        description="What the decision says when the rule fires")


class RuleSetSpec(_Model):
    """A rule set as saved: its rules in order (precedence: block > review > allow, docs/rules.md)."""

    rules: list[RuleSpec] = Field(max_length=MAX_RULES)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, value: list[RuleSpec]) -> list[RuleSpec]:
        seen: set[str] = set()
        for rule in value:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
        return value


class RuleHit(_Model):
    """A rule that fired on a transaction: its name, outcome and reason."""

    rule: str
    outcome: Outcome
    reason: str


class Decision(_Model):
    transaction_id: Identifier
    wallet_id: Identifier
    score: float = Field(ge=0.0, le=1.0, description=(
        "The probability that the transaction is fraud, calibrated on held-out days of the model version's "
        "training period (a version trained before calibration gives a ranking score: /model says which)"))
    outcome: Outcome
    reasons: list[str] = Field(default_factory=list, max_length=5)
    model_version: str
    timings: dict[str, float] = Field(
        default_factory=dict, description="Per-stage timings (keys end in _us or _ms)"
    )
    late: bool = Field(
        False,
        description="The transaction arrived after a later transaction of its wallet had been decided "
        "(out-of-order publishing, or a redrive from the dead-letter topic): its own features are exact, "
        "but that later transaction was scored without it",
    )
    rules: list[RuleHit] = Field(default_factory=list, description=(
        "The rules of the production rule set that fired, in the set's order; the outcome is the most severe "
        "of theirs and the model's, or allow when only allow rules fired (docs/rules.md)"))
    rule_set: str | None = Field(None, description="The rule set version applied (rN), null when none is")


MAX_BATCH = 1000


class BatchRequest(_Model):
    transactions: list[EnrichedTransaction] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResponse(_Model):
    decisions: list[Decision]
    model_version: str


# The analyst console's requests (docs/console.md) ------------------------------------------------
class Verdict(StrEnum):
    FRAUD = "fraud"
    LEGITIMATE = "legitimate"


class ReviewRequest(_Model):
    """An analyst's verdict on a claimed review item; it becomes a label event on `labels`."""

    verdict: Verdict
    note: Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)] = ""


class AliasAction(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class AliasChange(_Model):
    """Move a registry alias from the console; `confirm` must repeat the alias name."""

    action: AliasAction
    alias: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    version: Annotated[str, StringConstraints(pattern=r"^v[1-9][0-9]*$")] | None = Field(
        None, description="The version to promote (promote only)")
    confirm: str = Field(description="The alias name again: a change of serving model is never one click")


# Adapters built once (validate_json on bytes is the fast path).
TRANSACTION_ADAPTER: TypeAdapter[Transaction] = TypeAdapter(Transaction)
ENRICHED_ADAPTER: TypeAdapter[EnrichedTransaction] = TypeAdapter(EnrichedTransaction)
DECISION_ADAPTER: TypeAdapter[Decision] = TypeAdapter(Decision)
BATCH_ADAPTER: TypeAdapter[BatchRequest] = TypeAdapter(BatchRequest)
LABEL_ADAPTER: TypeAdapter[LabelEvent] = TypeAdapter(LabelEvent)

RULE_SET_ADAPTER: TypeAdapter[RuleSetSpec] = TypeAdapter(RuleSetSpec)

CONTRACT_MODELS: dict[str, type[BaseModel]] = {
    "Transaction": Transaction,
    "EnrichedTransaction": EnrichedTransaction,
    "Decision": Decision,
    "BatchRequest": BatchRequest,
    "BatchResponse": BatchResponse,
    "LabelEvent": LabelEvent,
    "ReviewRequest": ReviewRequest,
    "AliasChange": AliasChange,
    "RuleSetSpec": RuleSetSpec,
}
