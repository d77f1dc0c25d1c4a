"""The replay split by family, so that it runs in many groups and still equals one replay exactly.

Which feature reads which key (`counterparty_values` computes each from ONE view of a snapshot):
the history (`HISTORY_FEATURES`) reads the wallet's own state; `cp_*` the counterparty's cells
(its transactions: count, cents, `w` = payers there for the first time; its fraud labels, also
per wallet slot); `device_*` the device's cells (its transactions, `w` = wallets new to it; its
fraud labels); `in_*` the cells of the wallet's own id as a counterparty (what others paid it);
`wallet_fraud_30d` the wallet's label cells (labels only); `cp_wallet_fraud_30d` the label cells of
the counterparty's id as a wallet (the payee's own known frauds). No feature mixes two views. The
inflow view reads counterparty cells, so its rows join the counterparty family's shards as
readers (they read, they add nothing; the rows paying that id add); the payee view reads wallet
cells, so its rows join the wallet family's shards as readers the same way. What mixes keys is
upstream: (1) the `w` counters need a mark from the wallet's history (`marks`: first payer,
first use of the device), and (2) a label's ledger (`txguard.features.label_ledger`)
is per *transaction* and turns one label into increments of its counterparty (and wallet slot),
device and wallet at once. Hence four steps, each keyed by its own entity:

1. `WalletSide`: a wallet shard (whole wallets) in time order: history values, the two marks,
   and its label events (each fraud row's `label_time`);
2. `label_increments`: labels grouped by transaction (the ledger's key), transitions in
   (known_at, label id) order through `apply_label`, each increment routed to its entity's shard;
3. `replay_family`: one family shard (whole entities, CRC-32 of the entity key): its rows in the
   single replay's order (timestamp, file, line), label increments added once known (known_at <= T),
   the features of its one view through `counterparty_values`, then the row's own increments;
4. `assemble`: the family values back onto the wallet shard's rows (by position), for scoring.

Exact because a view's cells are integer sums (increments commute), each row reads before adding
its own, labels count from known_at <= T as in the single replay, and pruning drops only days no
later read looks at. `replay_one_group` runs the four steps in one group: the single-process
path (`feature_matrix`: score-file, benchmarks) is this same code.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txguard.batch.rows import epoch_seconds, time_order
from txguard.contract.models import LabelEvent, LabelKind, TxType
from txguard.features.counterparty import (
    WINDOW_DAYS,
    CounterpartyBook,
    Entity,
    EntityKeys,
    Increment,
    Snapshot,
    day_of,
    increments_at,
    marks,
)
from txguard.features.counterparty_windows import counterparty_values
from txguard.features.label_ledger import apply_label
from txguard.features.timeline import row_label_id
from txguard.features.wallet import (
    COUNTERPARTY_FEATURES,
    HISTORY_FEATURES,
    TxPoint,
    WalletState,
    apply,
    counterparty_key,
    history_values,
)


class Family(StrEnum):
    """A view of a snapshot; its value is the kind of entity (`Entity`) whose shards replay it,
    except the inflow's, which reads counterparty cells in the counterparty's shards, and the
    payee's, which reads wallet cells in the wallet's shards."""

    COUNTERPARTY = "c"
    DEVICE = "d"
    WALLET = "w"
    INFLOW = "i"
    PAYEE = "p"


FAMILIES = tuple(Family)
_PREFIX = {Family.DEVICE: "device_", Family.WALLET: "wallet_", Family.INFLOW: "in_", Family.PAYEE: "cp_wallet_"}
_REPLAYED_IN = {Family.COUNTERPARTY: Entity.COUNTERPARTY, Family.DEVICE: Entity.DEVICE, Family.WALLET: Entity.WALLET,
                Family.INFLOW: Entity.COUNTERPARTY, Family.PAYEE: Entity.WALLET}


def _family_of(name: str) -> Family:
    return next((kind for kind, prefix in _PREFIX.items() if name.startswith(prefix)), Family.COUNTERPARTY)


# family -> its columns in COUNTERPARTY_FEATURES (the order `counterparty_values` returns)
FAMILY_COLUMNS: dict[Family, np.ndarray] = {
    kind: np.array([j for j, name in enumerate(COUNTERPARTY_FEATURES) if _family_of(name) is kind], dtype=np.int64)
    for kind in FAMILIES}
_SNAPSHOT_FIELD = {Family.COUNTERPARTY: "counterparty", Family.DEVICE: "device", Family.WALLET: "wallet",
                   Family.INFLOW: "inflow", Family.PAYEE: "payee"}
# A transaction without a device reads no device view: the values of an empty one.
_NO_DEVICE = np.array(counterparty_values(Snapshot(), 1.0, 0.0))[FAMILY_COLUMNS[Family.DEVICE]]

FamilyKey = tuple[str, int]  # (family, shard)


def shard_of(ident: str, shards: int) -> int:
    """Stable on every worker and run (CRC-32), for wallet ids, entity keys and transaction ids."""
    return zlib.crc32(ident.encode()) % shards


@dataclass
class WalletSide:
    """Step 1 on a table (rows in any order): the table in replay order, history values, marks."""

    table: pa.Table  # sorted in replay order: positions index it
    ts: np.ndarray
    history: np.ndarray  # (n, len(HISTORY_FEATURES))
    new_cp: np.ndarray  # bool: first time the wallet pays this counterparty
    new_device: np.ndarray  # bool: first time the wallet uses this device

    @classmethod
    def replay(cls, table: pa.Table) -> WalletSide:
        table = table.take(pa.array(time_order(table)))
        n = table.num_rows
        ts = epoch_seconds(table)
        times, amount = ts.tolist(), table.column("amount").to_pylist()
        wallet, cp = table.column("wallet_id").to_pylist(), table.column("counterparty_id").to_pylist()
        country, device = table.column("country").to_pylist(), table.column("device_id").to_pylist()
        inflow = pc.equal(table.column("type"), TxType.TOP_UP.value).cast(pa.int8()).to_pylist()
        cp_keys: dict[str, str] = {}
        states: dict[str, WalletState] = {}
        rows: list[tuple[float, ...]] = [()] * n
        new_cp, new_device = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        for i in range(n):
            key = cp_keys.get(cp[i])
            if key is None:
                key = cp_keys[cp[i]] = counterparty_key(cp[i])
            state = states.get(wallet[i])
            if state is None:
                state = states[wallet[i]] = WalletState()
            point = TxPoint(times[i], amount[i], key, country[i], device[i] or "", inflow[i])
            rows[i] = history_values(state, point)
            new_cp[i], new_device[i] = marks(state, point)
            apply(state, point)
        history = np.array(rows, dtype=np.float64).reshape(n, len(HISTORY_FEATURES))
        return cls(table, ts, history, new_cp, new_device)

    def label_events(self) -> list[LabelEvent]:
        """Each fraud row's `label_time` as the chargeback it stands for (`features.timeline.row_label_event`)."""
        table, ts = self.table, self.ts
        fraud = table.column("is_fraud").to_numpy(zero_copy_only=False)
        known = table.column("label_time").to_numpy(zero_copy_only=False)
        # from_file refuses a label known before its transaction; here it stands for no label
        rows = np.flatnonzero((fraud == 1) & np.isfinite(known) & (known >= ts))
        if not len(rows):
            return []
        tx_id, wallet, cp, device = (table.column(c).to_pylist() for c in (
            "transaction_id", "wallet_id", "counterparty_id", "device_id"))
        return [LabelEvent.model_construct(
            label_id=row_label_id(tx_id[i]), transaction_id=tx_id[i], wallet_id=wallet[i], counterparty_id=cp[i],
            device_id=device[i], transaction_time=datetime.fromtimestamp(ts[i], UTC),
            known_at=datetime.fromtimestamp(float(known[i]), UTC), kind=LabelKind.CHARGEBACK, is_fraud=True,
            reverses=None, source=None, note=None) for i in rows.tolist()]

    def family_rows(self, wallet_shard: int, shards: int) -> Iterator[tuple[FamilyKey, FamilyRows]]:
        """What each family shard needs of these rows: time, amount, entity, mark, position."""
        table = self.table
        micros = table.column("timestamp").cast(pa.int64()).to_numpy()
        file_index, line = table.column("file_index").to_numpy(), table.column("line").to_numpy()
        amount = table.column("amount").to_numpy()
        wallet, cp = table.column("wallet_id").to_pylist(), table.column("counterparty_id").to_pylist()
        device = table.column("device_id").to_pylist()
        entities: dict[Family, list[str | None]] = {kind: [] for kind in FAMILIES}
        for w, c, d in zip(wallet, cp, device, strict=True):
            keys = EntityKeys.of(w, c, d)
            entities[Family.COUNTERPARTY].append(keys.counterparty)
            entities[Family.DEVICE].append(keys.device)
            entities[Family.WALLET].append(keys.wallet)
            entities[Family.INFLOW].append(keys.inflow)
            entities[Family.PAYEE].append(keys.payee)
        no_mark = np.zeros(table.num_rows, dtype=bool)
        new = {Family.COUNTERPARTY: self.new_cp, Family.DEVICE: self.new_device, Family.WALLET: no_mark,
               Family.INFLOW: no_mark, Family.PAYEE: no_mark}
        for kind in FAMILIES:
            keyed = entities[kind]
            by_shard: dict[int, list[int]] = {}
            for i, entity in enumerate(keyed):
                if entity is not None:
                    by_shard.setdefault(shard_of(entity, shards), []).append(i)
            for shard, rows in sorted(by_shard.items()):
                idx = np.array(rows, dtype=np.int64)
                yield (_REPLAYED_IN[kind].value, shard), FamilyRows(
                    wallet_shard, idx, micros[idx], file_index[idx], line[idx], self.ts[idx], amount[idx],
                    [keyed[i] for i in rows], new[kind][idx], kind.value)


@dataclass
class FamilyRows:
    """One wallet shard's rows for one family shard (arrays in the wallet shard's replay order)."""

    wallet_shard: int
    position: np.ndarray  # row in the wallet shard's sorted table
    micros: np.ndarray
    file_index: np.ndarray
    line: np.ndarray
    ts: np.ndarray
    amount: np.ndarray
    entity: list[str]
    new: np.ndarray
    family: str = Family.COUNTERPARTY.value  # the view these rows read (`Family`)


@dataclass
class FamilyLabels:
    """Label increments of one family shard's entities, each with the time it became known."""

    known_at: list[float]
    increments: list[list[Increment]]


@dataclass
class FamilyValues:
    """A family's features of some rows of one wallet shard."""

    family: str
    position: np.ndarray
    values: np.ndarray  # (len(position), len(FAMILY_COLUMNS[family]))


def label_increments(labels: Iterable[LabelEvent], shards: int) -> Iterator[tuple[FamilyKey, FamilyLabels]]:
    """Step 2, on every label of some transactions: the ledger's transitions in the single replay's
    order (known_at, label id), through `apply_label`; each increment to its entity's family shard."""
    book = CounterpartyBook()  # holds the ledgers; its cells are not read
    out: dict[FamilyKey, FamilyLabels] = {}
    for label in sorted(labels, key=lambda lb: (lb.known_at, lb.label_id)):
        outcome = apply_label(book, label)
        if outcome.duplicate:
            continue
        at = label.known_at.timestamp()
        routed: dict[FamilyKey, list[Increment]] = {}
        for inc in outcome.increments:
            routed.setdefault((inc.entity[0], shard_of(inc.entity, shards)), []).append(inc)
        for key, incs in routed.items():
            part = out.setdefault(key, FamilyLabels([], []))
            part.known_at.append(at)
            part.increments.append(incs)
    yield from out.items()


def replay_family(family: str, rows: list[FamilyRows], labels: list[FamilyLabels]) -> Iterator[tuple[int, FamilyValues]]:
    """Step 3: one family shard replayed in the single replay's order; values keyed by wallet shard.
    `family` is the kind of entity of the shard; its rows may read different views of those
    entities (a counterparty shard: the counterparty's own rows, which add, and inflow readers; a
    wallet shard: the wallet's own rows and payee readers, which add nothing)."""
    kind = Entity(family)
    rows = [r for r in rows if len(r.position)]
    if not rows:
        return
    micros, file_index, line = (np.concatenate([getattr(r, a) for r in rows]) for a in ("micros", "file_index", "line"))
    ts, amount = np.concatenate([r.ts for r in rows]).tolist(), np.concatenate([r.amount for r in rows]).tolist()
    new = np.concatenate([r.new for r in rows]).tolist()
    entity = [e for r in rows for e in r.entity]
    view = [Family(r.family) for r in rows for _ in range(len(r.position))]
    pending = sorted((at, k, j) for k, part in enumerate(labels) for j, at in enumerate(part.known_at))
    next_label = 0
    book = CounterpartyBook()
    pruned_day = None
    n = len(ts)
    out: list[tuple[float, ...]] = [()] * n
    for i in np.lexsort((line, file_index, micros)).tolist():
        t = ts[i]
        while next_label < len(pending) and pending[next_label][0] <= t:
            _, k, j = pending[next_label]
            book.add(labels[k].increments[j])
            next_label += 1
        day = day_of(t)
        if day != pruned_day:
            book.prune(day - WINDOW_DAYS - 1)
            pruned_day = day
        reads = view[i]
        values = counterparty_values(Snapshot(**{_SNAPSHOT_FIELD[reads]: book.view(entity[i], t)}), amount[i], t)
        out[i] = tuple(values[j] for j in FAMILY_COLUMNS[reads])
        if reads in (Family.COUNTERPARTY, Family.DEVICE):  # wallet views hold labels only; readers add nothing
            keys = (EntityKeys(entity[i], "", None) if kind is Entity.COUNTERPARTY
                    else EntityKeys("", "", entity[i]))
            book.add(inc for inc in increments_at(keys, t, amount[i], new[i], new[i]) if inc.entity == entity[i])
    start = 0
    for r in rows:
        end = start + len(r.position)
        width = len(FAMILY_COLUMNS[Family(r.family)])
        yield r.wallet_shard, FamilyValues(r.family, r.position,
                                           np.array(out[start:end], dtype=np.float64).reshape(end - start, width))
        start = end


def assemble(n: int, parts: Iterable[FamilyValues], has_device: np.ndarray) -> np.ndarray:
    """Step 4: (n, len(COUNTERPARTY_FEATURES)) of one wallet shard from its family values; every row
    must have come back from every family it belongs to (a miss is a bug, not a zero)."""
    out = np.empty((n, len(COUNTERPARTY_FEATURES)), dtype=np.float64)
    seen = {kind: np.zeros(n, dtype=np.int64) for kind in FAMILIES}
    for part in parts:
        kind = Family(part.family)
        out[np.ix_(part.position, FAMILY_COLUMNS[kind])] = part.values
        np.add.at(seen[kind], part.position, 1)
    out[np.ix_(np.flatnonzero(~has_device), FAMILY_COLUMNS[Family.DEVICE])] = _NO_DEVICE
    expected = {kind: np.ones(n, dtype=np.int64) for kind in FAMILIES}
    expected[Family.DEVICE] = has_device.astype(np.int64)
    for kind in FAMILIES:
        if not np.array_equal(seen[kind], expected[kind]):
            raise RuntimeError(f"family {kind.name.lower()}: {int((seen[kind] != expected[kind]).sum())} rows "
                               "did not come back exactly once from the family replay")
    return out


def has_device(table: pa.Table) -> np.ndarray:
    return pc.is_valid(table.column("device_id")).to_numpy(zero_copy_only=False)


def replay_one_group(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The four steps in one group: (history, counterparty) features of every row, in input order."""
    order = time_order(table)
    side = WalletSide.replay(table)  # sorts by the same order
    rows: dict[FamilyKey, list[FamilyRows]] = {}
    for key, part in side.family_rows(0, 1):
        rows.setdefault(key, []).append(part)
    labels = dict(label_increments(side.label_events(), 1))
    parts = [v for (family, shard), r in rows.items()
             for _, v in replay_family(family, r, [labels[(family, shard)]] if (family, shard) in labels else [])]
    n = table.num_rows
    history = np.empty((n, len(HISTORY_FEATURES)), dtype=np.float64)
    counterparty = np.empty((n, len(COUNTERPARTY_FEATURES)), dtype=np.float64)
    history[order] = side.history
    counterparty[order] = assemble(n, parts, has_device(side.table))
    return history, counterparty
