"""The Fraud Detection Handbook's baseline recipe: its feature transformations and classifiers.

Features (Handbook chapter 3.4), 15 per transaction, computed here with sorted arrays and
binary search (no pandas):
- the amount; whether the transaction is on a weekend; whether it is at night (hour <= 6);
- customer spending behaviour: number of transactions and mean amount over the last 1, 7 and
  30 days, the transaction itself included (its amount is known at T);
- terminal risk: number of transactions and fraud ratio over 1, 7 and 30 days *shifted back by
  the label delay*: at T the window is [T - delay - w, T - delay), so every label it reads was
  known before T. Data whose labels arrive later than `delay` are refused (the shift would
  then read labels nobody had yet).

Classifiers (chapters 3.5 and 5): logistic regression, a depth-2 and an unbounded decision
tree, a random forest and gradient boosting (scikit-learn's HistGradientBoosting standing in
for XGBoost), each on standardised features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from txguard.evaluation import CLASSIFIERS

DAY = 86400.0
WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30)
NIGHT_LAST_HOUR = 6
RECIPE_FEATURES: tuple[str, ...] = (
    "amount",
    "tx_during_weekend",
    "tx_during_night",
    *(f"customer_{stat}_{w}d" for w in WINDOWS_DAYS for stat in ("nb_tx", "avg_amount")),
    *(f"terminal_{stat}_{w}d" for w in WINDOWS_DAYS for stat in ("nb_tx", "risk")),
)


class _Groups:
    """Rows sorted by (group, time, row): a window of one group is a slice found by binary search
    on one float key, group * span + time, with span wider than the whole period plus any window."""

    def __init__(self, group: np.ndarray, ts: np.ndarray, max_window: float) -> None:
        self.t0 = float(ts.min()) if len(ts) else 0.0
        self.span = float(ts.max() - self.t0) + 2 * max_window + 1.0 if len(ts) else 1.0
        self.base = group.astype(np.float64) * self.span + max_window
        keys = self.base + (ts - self.t0)
        self.order = np.lexsort((np.arange(len(ts)), keys))
        self.keys = keys[self.order]
        self.position = np.empty(len(ts), dtype=np.int64)
        self.position[self.order] = np.arange(len(ts))  # where each row sits in the sorted order

    def bound(self, ts: np.ndarray, side: str) -> np.ndarray:
        """Sorted index of time `ts` within each row's own group."""
        return np.searchsorted(self.keys, self.base + (ts - self.t0), side=side)

    def window_sum(self, values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        cum = np.concatenate([[0.0], np.cumsum(values[self.order], dtype=np.float64)])
        return cum[hi] - cum[lo]


def check_label_delay(ts: np.ndarray, label_time: np.ndarray, delay_days: float) -> None:
    """Refuse data whose labels arrive later than the recipe's shift: it would read unknown labels."""
    late = np.nan_to_num(label_time - ts, nan=0.0)
    if len(late) and float(late.max()) > delay_days * DAY:
        row = int(np.argmax(late))
        raise ValueError(
            f"field 'label_time': row {row} is labelled {late[row] / DAY:.2f} days after its transaction, "
            f"later than the recipe's {delay_days:g}-day delay: its terminal risk would use unknown labels"
        )


def recipe_features(
    ts: np.ndarray,
    customer: np.ndarray,
    terminal: np.ndarray,
    amount: np.ndarray,
    is_fraud: np.ndarray,
    label_time: np.ndarray,
    delay_days: float = 7.0,
) -> np.ndarray:
    """(rows, len(RECIPE_FEATURES)) float64; customer/terminal are integer ids, ts epoch seconds (UTC)."""
    check_label_delay(ts, label_time, delay_days)
    ts = np.asarray(ts, dtype=np.float64)
    amount = np.asarray(amount, dtype=np.float64)
    fraud = np.asarray(is_fraud, dtype=np.float64)
    ones = np.ones(len(ts))
    days, seconds = np.divmod(ts, DAY)
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    columns = [amount, (weekday >= 5).astype(np.float64), (seconds // 3600 <= NIGHT_LAST_HOUR).astype(np.float64)]

    delay = delay_days * DAY
    longest = max(WINDOWS_DAYS) * DAY + delay
    cust = _Groups(np.asarray(customer), ts, longest)
    upto_self = cust.position + 1  # the transaction itself and what came before it, not after
    for w in WINDOWS_DAYS:
        lo = cust.bound(ts - w * DAY, "right")  # (T - w, T]
        n = cust.window_sum(ones, lo, upto_self)
        total = cust.window_sum(amount, lo, upto_self)
        columns += [n, np.divide(total, n, out=np.zeros_like(total), where=n > 0)]

    term = _Groups(np.asarray(terminal), ts, longest)
    hi = term.bound(ts - delay, "left")  # [T - delay - w, T - delay): labels known before T
    for w in WINDOWS_DAYS:
        lo = term.bound(ts - delay - w * DAY, "left")
        n = term.window_sum(ones, lo, hi)
        frauds = term.window_sum(fraud, lo, hi)
        columns += [n, np.divide(frauds, n, out=np.zeros_like(frauds), where=n > 0)]
    return np.column_stack(columns)


def _classifiers(seed: int) -> dict[str, Callable[[], Any]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logistic_regression": lambda: LogisticRegression(max_iter=1000, random_state=seed),
        "decision_tree_depth_2": lambda: DecisionTreeClassifier(max_depth=2, random_state=seed),
        "decision_tree": lambda: DecisionTreeClassifier(random_state=seed),
        # Chapter 5's model selection settles on depth 20 and 100 trees.
        "random_forest": lambda: RandomForestClassifier(
            n_estimators=100, max_depth=20, n_jobs=1, random_state=seed
        ),
        # XGBoost's role. Chapter 5's XGBoost learning rate of 0.3 diverges here (HistGradientBoosting
        # has no minimum leaf weight: training PR-AUC 0.15 on the default data), so 0.1, 100 trees.
        "gradient_boosting": lambda: HistGradientBoostingClassifier(
            learning_rate=0.1, max_iter=100, early_stopping=False, random_state=seed
        ),
    }


def fit_predict(
    name: str, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Fraud scores of the test rows from classifier `name` fitted on standardised training rows."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    factories = _classifiers(seed)
    if name not in factories:
        raise ValueError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIERS)}")
    model = make_pipeline(StandardScaler(), factories[name]())
    with threadpool_limits(limits=1):  # as txguard's training: one thread on a shared machine
        model.fit(X_train, y_train)
        return model.predict_proba(X_test)[:, 1]
