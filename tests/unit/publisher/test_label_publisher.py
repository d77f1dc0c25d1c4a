"""`txguard label` and its reader: every row checked against the contract before anything is published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.cli.main import main as cli
from txguard.publisher.label_sources import parse_labels, read_labels, simulated_labels
from txguard.simulator.core import Simulation


def write_labels(path: Path, n: int = 6) -> list[dict]:
    sim = Simulation(days=20, wallets=200, seed=5)
    rows = [json.loads(lb.model_dump_json()) for lb in list(sim.label_events())[:n]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_a_file_with_bad_rows_is_refused_with_their_line_numbers(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "labels.jsonl"
    rows = write_labels(src)
    lines = src.read_text().splitlines()
    lines[1] = json.dumps({**rows[1], "known_at": "2000-01-01T00:00:00Z"})  # before its transaction
    lines[3] = json.dumps({**rows[3], "kind": "rumour"})
    lines[4] = "{not json"
    src.write_text("\n".join(lines) + "\n")
    messages = read_labels(src)
    assert [m.line for m in messages if m.problem] == [2, 4, 5]
    assert cli(["label", "--file", str(src)]) == 1
    captured = capsys.readouterr()
    assert "labels.jsonl: line 2: field 'known_at': Value error, is before transaction_time" in captured.err
    assert "line 4: field 'kind'" in captured.err and "line 5: not a JSON object" in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["rejected_lines"] == [2, 4, 5] and summary["published"] == 0
    with pytest.raises(ValueError, match="line 2"):
        parse_labels(src)


def test_csv_labels_read_like_jsonl(tmp_path: Path) -> None:
    rows = write_labels(tmp_path / "labels.jsonl")
    header = list(rows[0])
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(",".join(header) + "\n" + "".join(
        ",".join("" if r[k] is None else str(r[k]).lower() if isinstance(r[k], bool) else str(r[k]) for k in header)
        + "\n" for r in rows))
    assert parse_labels(csv_path) == parse_labels(tmp_path / "labels.jsonl")


def test_simulated_labels_are_the_simulation_labels_known_by_then() -> None:
    from datetime import UTC, datetime

    until = datetime(2026, 1, 20, tzinfo=UTC)
    labels = simulated_labels(20, 200, 5, datetime(2026, 1, 1, tzinfo=UTC), until)
    assert labels and all(m.problem is None and m.event_time <= until.timestamp() for m in labels)
    assert [m.event_time for m in labels] == sorted(m.event_time for m in labels)
