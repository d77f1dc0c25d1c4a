"""What a rule may name: the model's features, the transaction's text fields and the score.

Numbers are the features by their names in `FEATURE_NAMES` (the model's input row, so a rule
reads the same values the model does) and `score` (the calibrated probability of fraud). Text
fields are read from the transaction. Each name has a domain (the values it can take), which is
what lets the check refuse a rule that can never fire (`amount < 0`, `type == "paymnt"`).
"""

from __future__ import annotations

from dataclasses import dataclass

from txguard.contract.codes import COUNTRIES, CURRENCIES
from txguard.contract.models import MAX_AMOUNT, Channel, CounterpartyFeatures, HistoryFeatures, TxType
from txguard.features.wallet import FEATURE_NAMES

NUMBER = "number"
TEXT = "text"
BOOL = "bool"
LIST = "list"

SCORE = "score"


@dataclass(frozen=True)
class Name:
    name: str
    kind: str  # NUMBER or TEXT
    low: float = float("-inf")  # NUMBER: the closed range the value lies in
    high: float = float("inf")
    values: frozenset[str] | None = None  # TEXT: the only values it can take (None: any string)
    index: int = -1  # NUMBER: position in the model's input row (-1 for `score`)
    help: str = ""


# Text fields of the transaction a rule may test, in the order the compiled function reads them.
TEXT_FIELDS: tuple[str, ...] = ("type", "channel", "country", "currency", "counterparty_id", "wallet_id", "device_id")

_FLAGS = {"is_transfer", "is_withdrawal", "is_top_up", "has_device", "is_new_counterparty", "country_changed",
          "device_changed", "is_new_device"}
_RANGES: dict[str, tuple[float, float]] = {
    "amount": (0.0, MAX_AMOUNT),
    "channel_code": (0.0, float(len(Channel) - 1)),
    "hour_of_day": (0.0, 23.0),
    "day_of_week": (0.0, 6.0),
    "amount_zscore_30d": (float("-inf"), float("inf")),
}
_NON_NEGATIVE = set(HistoryFeatures.model_fields) | set(CounterpartyFeatures.model_fields) | {"amount_log"}


def _number(name: str, index: int) -> Name:
    if name in _FLAGS:
        return Name(name, NUMBER, 0.0, 1.0, index=index, help="0 or 1")
    if name in _RANGES:
        low, high = _RANGES[name]
        return Name(name, NUMBER, low, high, index=index)
    if name in _NON_NEGATIVE:
        return Name(name, NUMBER, 0.0, float("inf"), index=index)
    return Name(name, NUMBER, index=index)


NAMES: dict[str, Name] = {name: _number(name, i) for i, name in enumerate(FEATURE_NAMES)}
NAMES[SCORE] = Name(SCORE, NUMBER, 0.0, 1.0, help="the model's calibrated probability of fraud")
NAMES.update({
    "type": Name("type", TEXT, values=frozenset(t.value for t in TxType)),
    "channel": Name("channel", TEXT, values=frozenset(c.value for c in Channel)),
    "country": Name("country", TEXT, values=frozenset(COUNTRIES)),
    "currency": Name("currency", TEXT, values=frozenset(CURRENCIES)),
    "counterparty_id": Name("counterparty_id", TEXT),
    "wallet_id": Name("wallet_id", TEXT),
    "device_id": Name("device_id", TEXT, help='"" when the transaction has no device'),
})
assert set(TEXT_FIELDS) == {n for n, v in NAMES.items() if v.kind == TEXT}
