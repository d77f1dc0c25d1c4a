"""`txguard late-updates`: the late lines the enrichment logs, and the decisions they missed, on SQLite stores.

Two wallets pay one counterparty; the earlier transaction is delivered after three later ones of the
other wallet (its delivery was held back by a failure): it is logged late, and `decisions` lists
the later ones within the window, `--recompute` marks those whose counterparty features now differ.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.enrich_fakes import FakeOutbox, FakeScorer, event_data, make_tx
from txguard.cli.main import main
from txguard.contract.logs import JsonFormatter
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.enrichment.pipeline import Enricher
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.features.counterparty import Entity, entity_key
from txguard.ops.late_updates import decisions_in_window, parse, read_lines

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    db = tmp_path / "h.sqlite3"
    history, counterparties = SqliteHistoryStore(db), SqliteCounterpartyStore(db)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(f"late-cli-{id(stream)}")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    enricher = Enricher(history, FakeScorer(), FakeOutbox(), counterparties, SqliteTransactionIndex(db), log)

    def tx(minutes: float, wallet: str, counterparty: str = "shop") -> object:
        return make_tx(0, wallet=wallet, counterparty_id=counterparty, device_id=None,
                       timestamp=T0 + timedelta(minutes=minutes), transaction_id=f"{wallet}-{minutes}")

    held = tx(2, "w-held")
    later = [tx(8, "w-b"), tx(20, "w-b"), tx(40, "w-b"), tx(50, "w-c", counterparty="elsewhere")]
    for i, t in enumerate([*later, held]):
        enricher.handle(event_data(t, f"m{i}"))
    history.close()
    counterparties.close()
    log_path = tmp_path / "enrich.log"
    log_path.write_text(stream.getvalue())
    monkeypatch.setenv("HISTORY_STORE", "sqlite")
    monkeypatch.setenv("COUNTERPARTY_STORE", "sqlite")
    monkeypatch.setenv("SQLITE_PATH", str(db))
    return {"log": log_path, "db": db, "held": held, "later": later}


def test_the_late_line_names_the_window_of_missed_reads(run: dict) -> None:
    (line,) = read_lines([run["log"]])
    assert (line.kind, line.entity_id, line.transaction_id) == ("counterparty", "shop", run["held"].transaction_id)
    assert line.entity == entity_key(Entity.COUNTERPARTY, "shop")
    assert line.visible_from == (T0 + timedelta(minutes=5)).timestamp()
    assert line.read_through == (T0 + timedelta(minutes=45)).timestamp()  # w-b's read at 10:40, its slot's end
    assert read_lines([run["log"]], prefix="other") == []
    # A Cloud Logging export keeps the fields under jsonPayload and the time on the entry.
    entry = json.loads(next(raw for raw in run["log"].read_text().splitlines() if "\"event\":\"late_update\"" in raw))
    exported = {"jsonPayload": {k: v for k, v in entry.items() if k != "time"}, "timestamp": entry["time"]}
    assert parse(exported) == line


def test_decisions_in_the_window_and_which_ones_missed_it(run: dict) -> None:
    (line,) = read_lines([run["log"]])
    history, counterparties = SqliteHistoryStore(run["db"]), SqliteCounterpartyStore(run["db"])
    try:
        plain = decisions_in_window(history, line)
        recomputed = decisions_in_window(history, line, counterparties)
    finally:
        history.close()
        counterparties.close()
    shop = [t.transaction_id for t in run["later"] if t.counterparty_id == "shop"]
    assert [a.transaction_id for a in plain] == shop  # w-c paid elsewhere: not at this counterparty
    assert all(a.missed is None and a.outcome for a in plain)
    assert {a.transaction_id: a.missed for a in recomputed} == dict.fromkeys(shop, True)


def test_the_cli_lists_the_late_updates_and_the_decisions(run: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["late-updates", "list", str(run["log"])]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["late_updates"] == 1 and summary["by_entity"] == {"counterparty": 1}
    assert main(["late-updates", "decisions", str(run["log"]), "--recompute"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["windows"], summary["decisions"], summary["missed"]) == (1, 3, 3)
    # The same window by hand: only the read at 10:08 (10:05 to 10:10).
    assert main(["late-updates", "decisions", "--counterparty", "shop", "--from", "2026-03-02T10:05:00Z",
                 "--to", "2026-03-02T10:10:00Z"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["decisions"], summary["missed"]) == (1, None)
    assert main(["late-updates", "decisions", "--counterparty", "shop"]) == 2  # a window needs --from and --to
