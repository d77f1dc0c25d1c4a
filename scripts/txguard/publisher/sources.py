"""Streams to publish: simulated scenarios, or a replayed JSONL/CSV file.

Scenarios over `txguard.simulator` (labels kept for the summary's precision/recall):
- `normal`: legitimate traffic only;
- `fraud`: the simulator's mix (about 1% fraud, in incidents);
- `burst`: every fraud incident kept and legitimate traffic thinned around them, so about
  `BURST_FRAUD_SHARE` of the stream is fraud (a demo or alert test sees bursts, not a trickle);
- `drift`: the `fraud` mix with the simulator's drift (bigger amounts, more web, more travel).

Replayed rows may carry the simulator's `is_fraud` / `scenario` columns: they are removed
from the payload and kept as labels. Every row is checked against the contract here, with its
line number and the reason (`Outgoing.line`, `Outgoing.problem`), so the caller decides what to
do with rows the pipeline would reject: refuse the file, skip them, or publish them on purpose
(`expected_valid=False`). A replay never alters a row beyond the optional timestamp shift.
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from txguard.publisher.messages import Outgoing, corrupt, from_labelled, payload_problem, shift_to_end_at
from txguard.simulator.core import LabelledTransaction, quick_stream

# fake_shop: the fraud stream plus a new attack no model was trained on (simulator/fake_shop.py)
SCENARIOS: tuple[str, ...] = ("normal", "fraud", "burst", "drift", "fake_shop")
BURST_FRAUD_SHARE = 0.08
DRIFT = 0.6
LABEL_COLUMNS = ("is_fraud", "scenario")


def simulated(
    count: int,
    scenario: str = "fraud",
    seed: int = 0,
    drift: float | None = None,
    id_prefix: str | None = None,
    end: datetime | None = None,
) -> list[LabelledTransaction]:
    """`count` labelled transactions of a scenario, shifted so the last one is at `end` (now)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if count <= 0:
        return []
    if drift is None:
        drift = DRIFT if scenario == "drift" else 0.0
    if scenario == "normal":
        stream = (t for t in quick_stream(count * 2, seed=seed, drift=drift, id_prefix=id_prefix) if not t.is_fraud)
        items = list(islice(stream, count))
    elif scenario == "burst":
        items = _burst(count, seed, drift, id_prefix)
    else:
        attacks = ("fake_shop",) if scenario == "fake_shop" else ()
        items = list(quick_stream(count, seed=seed, drift=drift, id_prefix=id_prefix, attacks=attacks))
    return shift_to_end_at(items, end)


def _burst(count: int, seed: int, drift: float, id_prefix: str | None) -> list[LabelledTransaction]:
    """Fraud incidents at full strength (the fake_shop attack among them), legitimate traffic thinned to keep
    the stream at `count`."""
    # The simulator makes about 1% fraud: simulate ~BURST_FRAUD_SHARE / 1% times more, thin the rest.
    # With the new attack no model was trained on (simulator/fake_shop.py): the demo's rules catch it.
    raw = list(quick_stream(int(count * BURST_FRAUD_SHARE / 0.01), seed=seed, drift=drift, id_prefix=id_prefix,
                            attacks=("fake_shop",)))
    fraud = [t for t in raw if t.is_fraud]
    legit = [t for t in raw if not t.is_fraud]
    fraud = fraud[: max(1, int(count * BURST_FRAUD_SHARE))]
    rng = random.Random(seed)
    keep = sorted(rng.sample(range(len(legit)), min(len(legit), count - len(fraud))))
    picked = fraud + [legit[i] for i in keep]
    picked.sort(key=lambda t: (t.tx.timestamp, t.tx.transaction_id))
    return picked


def _rows(path: Path) -> Iterator[tuple[int, dict[str, object] | bytes]]:
    """(line, row) from a JSONL or CSV file; a JSONL line that is not a JSON object comes back as bytes."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                yield reader.line_num, _from_csv(row)
        return
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                yield number, line.rstrip(b"\r\n")
                continue
            yield number, doc if isinstance(doc, dict) else line.rstrip(b"\r\n")


def _from_csv(row: dict[str, str]) -> dict[str, object]:
    doc: dict[str, object] = {}
    for key, value in row.items():
        if key is None or value is None or value == "":
            continue
        doc[key] = value
    if "amount" in doc:
        with contextlib.suppress(ValueError):  # left as text if not a number: the pipeline rejects it
            doc["amount"] = float(doc["amount"])  # type: ignore[arg-type]
    return doc


def _timestamp(doc: dict[str, object]) -> datetime | None:
    try:
        ts = datetime.fromisoformat(str(doc["timestamp"]))
    except (KeyError, ValueError):
        return None
    return ts if ts.tzinfo else None


def read_file(path: str | Path, count: int | None = None, shift_to_now: bool = False) -> list[Outgoing]:
    """Messages replayed from a JSONL or CSV file: every row (or the first `count`), each checked.

    Labels are split off, timestamps optionally shifted so the last one is now; a row the contract
    rejects comes back with `expected_valid=False`, its line and the reason.
    """
    rows = list(islice(_rows(Path(path)), count))
    offset = timedelta(0)
    if shift_to_now:
        stamps = [ts for _, d in rows if isinstance(d, dict) and (ts := _timestamp(d)) is not None]
        if stamps:
            offset = datetime.now(UTC) - max(stamps)
    out: list[Outgoing] = []
    for line, doc in rows:
        if isinstance(doc, bytes):
            out.append(Outgoing(doc, "", 0.0, corruption="file", expected_valid=False, line=line,
                                problem="not a JSON object"))
            continue
        labels = {k: doc.pop(k) for k in LABEL_COLUMNS if k in doc}
        ts = _timestamp(doc)
        if ts is not None and offset:
            doc["timestamp"] = (ts + offset).isoformat()
        data = json.dumps(doc, separators=(",", ":"), default=str).encode()
        problem = payload_problem(data)
        valid = problem is None
        out.append(
            Outgoing(
                data=data,
                ordering_key=str(doc.get("wallet_id", "")) if valid else "",
                event_time=(ts + offset).timestamp() if ts is not None else 0.0,
                transaction_id=str(doc["transaction_id"]) if valid else None,
                is_fraud=int(labels["is_fraud"]) if "is_fraud" in labels and valid else None,  # type: ignore[arg-type]
                scenario=str(labels["scenario"]) if "scenario" in labels and valid else None,
                corruption=None if valid else "file",
                expected_valid=valid,
                line=line,
                problem=problem,
            )
        )
    return out


def labelled_messages(items: list[LabelledTransaction]) -> list[Outgoing]:
    return [from_labelled(t) for t in items]


def make_stream(
    count: int | None,
    scenario: str = "fraud",
    seed: int = 0,
    drift: float | None = None,
    invalid_fraction: float = 0.0,
    file: str | Path | None = None,
    shift_to_now: bool = True,
    id_prefix: str | None = None,
) -> list[Outgoing]:
    """The messages of one publishing run: a scenario (or a file) with a fraction made invalid.

    `count` None means the whole file (a simulated stream needs a count). Injecting invalid
    messages is opt-in (`invalid_fraction` > 0), for a file as for a scenario.
    """
    if not 0.0 <= invalid_fraction < 1.0:
        raise ValueError("invalid_fraction must be in [0, 1)")
    if file is not None:
        messages = read_file(file, count=count, shift_to_now=shift_to_now)
    else:
        if count is None:
            raise ValueError("a simulated stream needs a count")
        items = simulated(count, scenario, seed=seed, drift=drift, id_prefix=id_prefix)
        messages = labelled_messages(items)
    if invalid_fraction > 0:
        rng = random.Random(seed + 1)
        messages = [corrupt(m, rng) if m.expected_valid and rng.random() < invalid_fraction else m for m in messages]
    return messages
