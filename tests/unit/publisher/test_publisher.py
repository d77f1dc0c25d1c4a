"""Publisher core: streams, timestamp shift, invalid injection, pacing, the publish loop."""

from __future__ import annotations

import concurrent.futures
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from txguard.contract import names
from txguard.contract.models import TRANSACTION_ADAPTER
from txguard.publisher import Outgoing, Pacer, corrupt, from_labelled, publish_all, read_file, simulated
from txguard.publisher.messages import CORRUPTIONS, is_valid_payload, shift_to_end_at


class FakeTransport:
    """In-memory transport: records what was published; fails the keys it is told to."""

    def __init__(self, fail_keys: frozenset[str] = frozenset()) -> None:
        self.sent: list[tuple[bytes, dict[str, str], str]] = []
        self.fail_keys = fail_keys
        self.closed = False

    def publish(self, data: bytes, attributes: dict[str, str], ordering_key: str) -> concurrent.futures.Future:
        self.sent.append((data, attributes, ordering_key))
        future: concurrent.futures.Future = concurrent.futures.Future()
        if ordering_key in self.fail_keys:
            future.set_exception(RuntimeError("refused"))
        else:
            future.set_result(str(len(self.sent)))
        return future

    def close(self) -> None:
        self.closed = True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("scenario", ["normal", "fraud", "burst", "drift"])
def test_simulated_scenarios_are_valid_recent_and_ordered(scenario: str) -> None:
    end = datetime.now(UTC)
    items = simulated(300, scenario, seed=3, end=end)
    assert len(items) == 300
    stamps = [t.tx.timestamp for t in items]
    assert stamps == sorted(stamps)
    assert max(stamps) == end
    for t in items:
        TRANSACTION_ADAPTER.validate_json(t.tx.model_dump_json())  # contract accepts every one (no future)
    frauds = sum(t.is_fraud for t in items)
    if scenario == "normal":
        assert frauds == 0
    if scenario == "burst":
        assert frauds > sum(t.is_fraud for t in simulated(300, "fraud", seed=3))


def test_shift_keeps_relative_spacing() -> None:
    items = simulated(50, "fraud", seed=1)
    end = datetime(2030, 1, 1, tzinfo=UTC)
    shifted = shift_to_end_at(items, end)
    assert shifted[-1].tx.timestamp == end
    gaps = [b.tx.timestamp - a.tx.timestamp for a, b in zip(items, items[1:], strict=False)]
    shifted_gaps = [b.tx.timestamp - a.tx.timestamp for a, b in zip(shifted, shifted[1:], strict=False)]
    assert gaps == shifted_gaps
    assert [t.tx.transaction_id for t in items] == [t.tx.transaction_id for t in shifted]


def test_outgoing_is_keyed_by_wallet() -> None:
    item = simulated(1, "fraud", seed=2)[0]
    out = from_labelled(item)
    assert out.ordering_key == item.tx.wallet_id
    assert out.transaction_id == item.tx.transaction_id
    assert is_valid_payload(out.data)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_every_corruption_is_rejected_by_the_contract(kind: str) -> None:
    out = from_labelled(simulated(1, "fraud", seed=2)[0])
    bad = corrupt(out, random.Random(0), kind)
    assert not is_valid_payload(bad.data)
    assert bad.expected_valid is False and bad.transaction_id is None and bad.corruption == kind


def test_replay_jsonl_splits_labels_and_keeps_bad_rows(tmp_path: Path) -> None:
    items = simulated(5, "fraud", seed=4)
    path = tmp_path / "stream.jsonl"
    lines = [t.to_json() for t in items] + ["{not json", json.dumps({"transaction_id": "x"})]
    path.write_text("\n".join(lines) + "\n")
    out = read_file(path)
    assert len(out) == 7
    assert [o.transaction_id for o in out[:5]] == [t.tx.transaction_id for t in items]
    assert all(o.expected_valid and b"is_fraud" not in o.data for o in out[:5])
    assert [o.is_fraud for o in out[:5]] == [t.is_fraud for t in items]
    assert [o.expected_valid for o in out[5:]] == [False, False]
    assert [(o.line, o.problem) for o in out[5:]] == [
        (6, "not a JSON object"), (7, "field 'wallet_id': Field required (and 7 more)")]
    assert all(o.problem is None and o.line == i for i, o in enumerate(out[:5], 1))
    assert all(o.data == json.dumps(json.loads(o.data), separators=(",", ":")).encode() for o in out[:5])


def test_replay_reads_the_whole_file_and_injects_nothing_unless_asked(tmp_path: Path) -> None:
    from txguard.publisher import make_stream

    items = simulated(1500, "fraud", seed=4)
    path = tmp_path / "big.jsonl"
    path.write_text("".join(t.to_json() + "\n" for t in items))
    whole = make_stream(None, file=path, shift_to_now=False)
    assert len(whole) == 1500 and all(m.expected_valid for m in whole)
    assert [json.loads(m.data)["transaction_id"] for m in whole] == [t.tx.transaction_id for t in items]
    assert len(make_stream(10, file=path)) == 10
    corrupted = make_stream(None, file=path, invalid_fraction=0.5, seed=1)
    assert 500 < sum(not m.expected_valid for m in corrupted) < 1000


def test_replay_csv_names_the_missing_column_per_line(tmp_path: Path) -> None:
    items = simulated(3, "fraud", seed=6)
    rows = [{k: v for k, v in t.to_row().items() if k != "currency"} for t in items]
    path = tmp_path / "nocurrency.csv"
    with path.open("w") as fh:
        fh.write(",".join(rows[0]) + "\n")
        for r in rows:
            fh.write(",".join("" if v is None else str(v) for v in r.values()) + "\n")
    out = read_file(path)
    assert [(o.line, o.problem) for o in out] == [(n, "field 'currency': Field required") for n in (2, 3, 4)]


def test_publish_refuses_a_file_with_rejected_rows_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from txguard.cli.main import main as cli

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens: a publish would fail
    items = simulated(4, "fraud", seed=7)
    path = tmp_path / "mixed.jsonl"
    path.write_text(items[0].to_json() + "\n" + json.dumps({"transaction_id": "x"}) + "\n"
                    + "".join(t.to_json() + "\n" for t in items[1:]))
    assert cli(["publish", "--file", str(path)]) == 1  # input: nothing published
    out = capsys.readouterr()
    assert f"{path}: line 2: field 'wallet_id': Field required" in out.err
    assert "nothing published" in out.err
    last = json.loads(out.out.strip().splitlines()[-1])
    assert {k: last[k] for k in ("file", "rows", "rejected", "rejected_lines", "published", "exit_code")} == {
        "file": str(path), "rows": 5, "rejected": 1, "rejected_lines": [2], "published": 0, "exit_code": 1}
    assert cli(["publish", "--skip-invalid"]) == 2  # applies to --file only
    assert "--file only" in capsys.readouterr().err


def test_replay_csv_and_shift_to_now(tmp_path: Path) -> None:
    old = datetime(2024, 3, 1, tzinfo=UTC)
    items = simulated(4, "fraud", seed=5, end=old)
    path = tmp_path / "stream.csv"
    rows = [t.to_row() for t in items]
    with path.open("w") as fh:
        fh.write(",".join(rows[0]) + "\n")
        for r in rows:
            fh.write(",".join("" if v is None else str(v) for v in r.values()) + "\n")
    out = read_file(path, count=3, shift_to_now=True)
    assert len(out) == 3 and all(o.expected_valid for o in out)
    latest = max(o.event_time for o in out)
    assert abs(latest - datetime.now(UTC).timestamp()) < 3 * 86400
    assert json.loads(out[0].data)["amount"] == pytest.approx(items[0].tx.amount)


def test_pacer_rate_spaces_sends_evenly() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=10, clock=clock, sleep=clock.sleep)
    for i in range(5):
        pacer.wait(i, 0.0)
    assert clock.now == pytest.approx(100.4)


def test_pacer_speed_follows_event_spacing() -> None:
    clock = FakeClock()
    pacer = Pacer(speed=60, clock=clock, sleep=clock.sleep)
    for i, t in enumerate([0.0, 60.0, 60.0, 600.0]):
        pacer.wait(i, 1000.0 + t)
    assert clock.now == pytest.approx(110.0)


def test_pacer_refuses_rate_and_speed() -> None:
    with pytest.raises(ValueError):
        Pacer(rate=1, speed=2)


def test_publish_all_counts_and_stamps() -> None:
    items = [from_labelled(t) for t in simulated(20, "fraud", seed=6)]
    items[3] = corrupt(items[3], random.Random(1))
    transport = FakeTransport(fail_keys=frozenset({items[0].ordering_key}))
    sent: list[tuple[Outgoing, int]] = []
    stats = publish_all(items, transport, on_sent=lambda m, at: sent.append((m, at)))
    failed = sum(1 for m in items if m.ordering_key == items[0].ordering_key)
    assert stats.attempted == 20 and stats.failed == failed and stats.published == 20 - failed
    assert stats.invalid_injected == 1
    assert [m for m, _ in sent] == items
    for (_, attrs, _), (msg, at) in zip(transport.sent, sent, strict=True):
        assert attrs[names.ATTR_PUBLISHED_AT] == str(at)
        assert attrs.get(names.ATTR_TRANSACTION_ID) == msg.transaction_id


def test_publish_all_stops_on_duration() -> None:
    items = [from_labelled(t) for t in simulated(50, "fraud", seed=6)]
    stats = publish_all(items, FakeTransport(), duration_s=0.0)
    assert stats.attempted == 0


def test_timestamps_never_in_the_future() -> None:
    items = simulated(100, "burst", seed=8)
    assert max(t.tx.timestamp for t in items) <= datetime.now(UTC) + timedelta(seconds=1)


def test_cli_scenarios_match_the_core() -> None:
    from txguard.cli.commands import publish
    from txguard.publisher import SCENARIOS

    assert publish.SCENARIOS == SCENARIOS


def test_decision_line_shows_outcome_score_and_latency() -> None:
    from txguard.local.report import format_decision

    body = json.dumps({"transaction_id": "t1", "wallet_id": "w9", "score": 0.5, "outcome": "review",
                       "reasons": ["new_device"], "model_version": "v2"}).encode()
    line = format_decision(body, {names.ATTR_PUBLISHED_AT: "1000"}, now_ms=1250)
    assert "REVIEW" in line and "0.500" in line and "wallet=w9" in line and "e2e=250ms" in line
    assert "new_device" in line
    assert "?" in format_decision(b"not json", {}, now_ms=0)


def test_decision_latency_is_measured_when_the_decision_was_published_not_pulled() -> None:
    from datetime import datetime

    from txguard.cli.commands.decisions import _epoch_ms
    from txguard.local.report import format_decision

    body = json.dumps({"transaction_id": "t1", "wallet_id": "w9", "score": 0.9, "outcome": "block",
                       "model_version": "v2"}).encode()
    # Published at t=1000 ms, decided at 1120 ms, pulled a minute later: e2e stays 120 ms.
    line = format_decision(body, {names.ATTR_PUBLISHED_AT: "1000"}, decided_at_ms=1120, now_ms=61_120)
    assert "e2e=120ms" in line and "waited=60000ms" in line
    assert _epoch_ms(datetime.fromtimestamp(1.5, UTC)) == 1500
    assert _epoch_ms(None) is None
