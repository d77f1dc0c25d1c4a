"""A labelled dataset built the way the Fraud Detection Handbook's simulator is described.

Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection - Practical
Handbook*, chapter 3 ("transaction data simulator"), written here from that description:

- customers live at a point of a 100 x 100 grid, spend amounts drawn around their own mean
  (uniform in [5, 100], standard deviation half the mean) and make a Poisson number of
  transactions a day (their mean uniform in [0, 4]), at times around midday;
- terminals sit at points of the same grid; a customer only pays terminals within `radius`;
- fraud scenarios: (1) any amount above 220 is fraud; (2) each day a few terminals become
  compromised for the next 28 days and every transaction they take is fraud; (3) each day a few
  customers are compromised and, over the next 14 days, a third of their transactions are
  replaced by fraud of five times the amount.
- a fourth scenario of ours in the same spirit, card testing: stolen card details are probed
  with a burst of tiny payments (under 3) at one terminal anywhere on the grid, minutes apart,
  and often followed hours later by a cash-out at several times the customer's usual amount.
- every label (fraud or not) becomes known `label_delay_days` (7) after its transaction.

Everything is drawn with numpy from one generator seeded by `seed`: same config, same rows.
Rows are kept as columns (`HandbookData`) for the recipe and written as the JSONL that
`txguard train --data` reads (`write_jsonl`), in time order, so row i is the same in both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

DAY = 86400
LEGIT = "legit"
SCENARIOS: tuple[str, ...] = (LEGIT, "large_amount", "compromised_terminal", "compromised_customer", "card_testing")
_LARGE, _TERMINAL, _CUSTOMER, _CARD_TESTING = 1, 2, 3, 4

GRID = 100.0
LARGE_AMOUNT = 220.0
TERMINAL_COMPROMISE_DAYS = 28
CUSTOMER_COMPROMISE_DAYS = 14
CUSTOMER_FRAUD_SHARE = 1 / 3
CUSTOMER_FRAUD_MULTIPLIER = 5.0


def epoch_of(start: str) -> int:
    """A design's first instant (ISO 8601 with an offset) as epoch seconds; ValueError if it has none."""
    when = datetime.fromisoformat(start)
    if when.tzinfo is None:
        raise ValueError(f"start must be timezone-aware, got {start!r}")
    return int(when.timestamp())


def iso_utc(epoch: np.ndarray) -> list[str]:
    """Epoch seconds as ISO 8601 UTC strings (a label never given, +inf, as the epoch itself)."""
    stamps = np.datetime_as_string(np.nan_to_num(epoch, posinf=0).astype(np.int64).astype("datetime64[s]"), unit="s")
    return [s + "+00:00" for s in stamps.tolist()]


@dataclass(frozen=True)
class HandbookConfig:
    """Sizes and rates; the defaults are the Handbook's (5,000 customers, 10,000 terminals,
    2 terminals and 3 customers compromised a day) over fewer days, so a run takes seconds."""

    customers: int = 5000
    terminals: int = 10000
    days: int = 72
    seed: int = 42
    radius: float = 5.0
    start: str = "2018-04-01T00:00:00+00:00"  # the Handbook's first day
    label_delay_days: float = 7.0
    # Per day, as a share of the population: 2 of 10,000 terminals, 3 of 5,000 customers.
    terminal_compromise_rate: float = 2 / 10000
    customer_compromise_rate: float = 3 / 5000
    card_testing_rate: float = 2 / 5000

    def __post_init__(self) -> None:
        for name in ("customers", "terminals", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        epoch_of(self.start)

    @property
    def start_epoch(self) -> int:
        return epoch_of(self.start)


@dataclass
class HandbookData:
    """One row per transaction, in time order. Customer i is wallet `C{i:05d}`, terminal j is
    counterparty `T{j:05d}`; `scenario` indexes SCENARIOS."""

    ts: np.ndarray  # epoch seconds (whole seconds)
    customer: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    is_fraud: np.ndarray
    scenario: np.ndarray
    label_time: np.ndarray  # epoch seconds when the label became known
    config: HandbookConfig

    def __len__(self) -> int:
        return len(self.ts)

    def scenario_names(self) -> np.ndarray:
        return np.asarray(SCENARIOS, dtype=object)[self.scenario]

    def wallet_ids(self) -> np.ndarray:
        return np.char.add("C", np.char.zfill(self.customer.astype(str), 5)).astype(object)

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.scenario, minlength=len(SCENARIOS))
        return {name: int(n) for name, n in zip(SCENARIOS, found, strict=True)}


def _terminals_within(cx: np.ndarray, cy: np.ndarray, tx: np.ndarray, ty: np.ndarray, radius: float):
    """CSR lists (offsets, terminal ids) of the terminals within `radius` of each customer."""
    offsets, ids = [0], []
    for lo in range(0, len(cx), 256):  # bounded memory: 256 x terminals distances at a time
        d2 = (cx[lo:lo + 256, None] - tx[None, :]) ** 2 + (cy[lo:lo + 256, None] - ty[None, :]) ** 2
        for row in d2 < radius * radius:
            near = np.flatnonzero(row)
            ids.append(near)
            offsets.append(offsets[-1] + len(near))
    return np.asarray(offsets, dtype=np.int64), np.concatenate(ids) if ids else np.zeros(0, np.int64)


def _picks_per_day(rng: np.random.Generator, population: int, rate: float, days: int) -> list[np.ndarray]:
    """Each day, a binomial number of distinct members of the population (about rate x population)."""
    return [rng.choice(population, size=min(rng.binomial(population, rate), population), replace=False)
            for _ in range(days)]


def _active(picks: list[np.ndarray], population: int, days: int, duration: int) -> np.ndarray:
    """(population, days) mask: picked on day d -> active on days [d, d + duration)."""
    active = np.zeros((population, days), dtype=bool)
    for day, members in enumerate(picks):
        active[members, day:day + duration] = True
    return active


def _card_testing(rng: np.random.Generator, cfg: HandbookConfig, mean_amount: np.ndarray):
    """Bursts of 3-8 probes (0.5-3.0) at one terminal 10 s - 5 min apart; 60 % end in a cash-out
    10 min - 3 h later at another terminal, for 2-5x the customer's mean amount."""
    ts, cust, term, amount = [], [], [], []
    for day, victims in enumerate(_picks_per_day(rng, cfg.customers, cfg.card_testing_rate, cfg.days)):
        for c in victims:
            t = day * DAY + rng.uniform(0, DAY - 4 * 3600)
            where = rng.integers(cfg.terminals)
            for _ in range(rng.integers(3, 9)):
                ts.append(t)
                cust.append(c)
                term.append(where)
                amount.append(round(rng.uniform(0.5, 3.0), 2))
                t += rng.uniform(10, 300)
            if rng.random() < 0.6:
                ts.append(t + rng.uniform(600, 3 * 3600))
                cust.append(c)
                term.append(rng.integers(cfg.terminals))
                amount.append(round(mean_amount[c] * rng.uniform(2, 5), 2))
    return (np.floor(np.asarray(ts, dtype=np.float64)).astype(np.int64), np.asarray(cust, dtype=np.int64),
            np.asarray(term, dtype=np.int64), np.asarray(amount, dtype=np.float64))


def generate(cfg: HandbookConfig = HandbookConfig()) -> HandbookData:
    rng = np.random.default_rng(cfg.seed)
    n_c, n_t, days = cfg.customers, cfg.terminals, cfg.days
    # Profiles (Handbook chapter 3.2).
    cx, cy = rng.uniform(0, GRID, n_c), rng.uniform(0, GRID, n_c)
    mean_amount = rng.uniform(5, 100, n_c)
    std_amount = mean_amount / 2
    tx_per_day = rng.uniform(0, 4, n_c)
    tx_x, tx_y = rng.uniform(0, GRID, n_t), rng.uniform(0, GRID, n_t)
    offsets, near = _terminals_within(cx, cy, tx_x, tx_y, cfg.radius)
    n_near = np.diff(offsets)

    # Normal transactions: a Poisson count per customer and day, times around midday (drawn times
    # outside the day are dropped, as the Handbook does), one terminal within reach.
    per_day = rng.poisson(np.repeat(tx_per_day, days)).reshape(n_c, days)
    per_day[n_near == 0] = 0  # no terminal within reach: such a customer never pays
    cust = np.repeat(np.repeat(np.arange(n_c), days), per_day.ravel())
    day = np.repeat(np.tile(np.arange(days), n_c), per_day.ravel())
    secs = rng.normal(DAY / 2, 20000, len(cust))
    amount = rng.normal(mean_amount[cust], std_amount[cust])
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean_amount[cust[negative]])
    terminal = near[offsets[cust] + (rng.random(len(cust)) * n_near[cust]).astype(np.int64)]
    keep = (secs > 0) & (secs < DAY)
    cust, day, secs, amount, terminal = cust[keep], day[keep], secs[keep], amount[keep], terminal[keep]
    amount = np.maximum(np.round(amount, 2), 0.01)
    scenario = np.zeros(len(cust), dtype=np.int8)

    # Scenarios 1-3, in the Handbook's order (a later one names the row when several apply).
    scenario[amount > LARGE_AMOUNT] = _LARGE
    bad_terminals = _active(_picks_per_day(rng, n_t, cfg.terminal_compromise_rate, days), n_t, days,
                            TERMINAL_COMPROMISE_DAYS)
    scenario[bad_terminals[terminal, day]] = _TERMINAL
    bad_customers = _active(_picks_per_day(rng, n_c, cfg.customer_compromise_rate, days), n_c, days,
                            CUSTOMER_COMPROMISE_DAYS)
    stolen = bad_customers[cust, day] & (rng.random(len(cust)) < CUSTOMER_FRAUD_SHARE)
    amount[stolen] = np.round(amount[stolen] * CUSTOMER_FRAUD_MULTIPLIER, 2)
    scenario[stolen] = _CUSTOMER

    ct_ts, ct_cust, ct_term, ct_amount = _card_testing(rng, cfg, mean_amount)
    ts = np.concatenate([day.astype(np.int64) * DAY + secs.astype(np.int64), ct_ts]) + cfg.start_epoch
    cust = np.concatenate([cust, ct_cust])
    terminal = np.concatenate([terminal, ct_term])
    amount = np.concatenate([amount, ct_amount])
    scenario = np.concatenate([scenario, np.full(len(ct_ts), _CARD_TESTING, dtype=np.int8)])
    order = np.lexsort((terminal, cust, ts))  # time order; ties broken by customer, then terminal
    ts = ts[order]
    delay = int(round(cfg.label_delay_days * DAY))
    return HandbookData(
        ts=ts.astype(np.float64),
        customer=cust[order],
        terminal=terminal[order],
        amount=amount[order],
        is_fraud=(scenario[order] > 0).astype(np.int8),
        scenario=scenario[order],
        label_time=(ts + delay).astype(np.float64),
        config=cfg,
    )




def write_jsonl(data: HandbookData, path: str | Path) -> Path:
    """Transaction fields + is_fraud + label_time + scenario, one JSON object a line, time order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = data.config.seed
    names = data.scenario_names().tolist()
    with open(path, "w", encoding="utf-8") as out:
        rows = zip(data.customer.tolist(), data.terminal.tolist(), data.amount.tolist(), iso_utc(data.ts),
                   data.is_fraud.tolist(), iso_utc(data.label_time), names, strict=True)
        for i, (c, t, amount, when, fraud, known, scenario) in enumerate(rows):
            out.write(
                f'{{"transaction_id":"hb{seed}-{i:08d}","wallet_id":"C{c:05d}","counterparty_id":"T{t:05d}",'
                f'"amount":{amount},"currency":"EUR","type":"payment","channel":"pos","country":"FR",'
                f'"device_id":null,"timestamp":"{when}","is_fraud":{fraud},"label_time":"{known}",'
                f'"scenario":"{scenario}"}}\n'
            )
    return path


def describe(data: HandbookData) -> dict[str, object]:
    """What a report needs to say about the data: sizes, fraud share, rows per scenario."""
    params = asdict(data.config)
    return {
        **params,
        "transactions": len(data),
        "fraud": int(data.is_fraud.sum()),
        "fraud_rate": round(float(data.is_fraud.mean()), 5) if len(data) else 0.0,
        "scenarios": data.counts(),
    }
