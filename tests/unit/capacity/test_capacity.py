"""Capacity arithmetic (scripts/txguard/capacity/plan.py) and the CPU sampler it is fed by (scripts/txguard/bench/proc_cpu.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from txguard.bench import proc_cpu
from txguard.capacity import plan as cap

ROOT = Path(__file__).resolve().parents[3]
SIZES = (230, 310)


def test_scoring_is_sized_by_cpu_at_the_autoscaling_target() -> None:
    bench = cap.ScoringBench(rps=1000.0, p50_ms=5.0)
    s = cap.scoring_sizing(1000.0, bench, cap.FunctionProfile(concurrency=10, min_instances=1, vcpu=2.0))
    assert s.exact == pytest.approx(1000 / (1000 * 0.6))  # 1.67 busy instances at 60 % CPU
    assert (s.instances, s.binding, s.over_max) == (2, "cpu", False)
    # One vCPU per instance halves the per-instance rate (one worker per CPU).
    assert cap.scoring_sizing(1000.0, bench, cap.FunctionProfile(vcpu=1.0)).instances == 4


def test_scoring_concurrency_binds_when_requests_wait_long() -> None:
    bench = cap.ScoringBench(rps=10_000.0, p50_ms=50.0)  # fast CPU, slow answers: in flight dominates
    s = cap.scoring_sizing(1000.0, bench, cap.FunctionProfile(concurrency=10))
    assert s.binding == "concurrency"
    assert s.exact == pytest.approx(1000 * 0.050 / (10 * 0.6))


def test_enrichment_follows_littles_law_unless_its_cpu_needs_more() -> None:
    spec = cap.FunctionProfile(concurrency=10, vcpu=2.0)
    io_bound = cap.enrich_sizing(1000.0, cap.EnrichBench(p50_ms=80.0, tail_ms=200.0), spec)
    assert io_bound.exact == pytest.approx(1000 * 0.080 / (10 * 0.6))  # 80 in flight / 6 per instance
    assert (io_bound.instances, io_bound.binding) == (14, "concurrency")
    light = cap.enrich_sizing(1000.0, cap.EnrichBench(80.0, 200.0, cpu_ms=5.0), spec)
    assert light.binding == "concurrency"
    heavy = cap.enrich_sizing(1000.0, cap.EnrichBench(80.0, 200.0, cpu_ms=20.0), spec)
    assert heavy.binding == "cpu"
    assert heavy.exact == pytest.approx(1000 * 0.020 / (2 * 0.6))
    at_p99 = cap.enrich_sizing(1000.0, cap.EnrichBench(80.0, 200.0), spec, latency_ms=200.0)
    assert at_p99.instances == 34


def test_min_and_max_instances() -> None:
    bench = cap.ScoringBench(rps=1000.0, p50_ms=5.0)
    idle = cap.scoring_sizing(1.0, bench, cap.FunctionProfile(min_instances=1))
    assert (idle.instances, idle.binding) == (1, "min_instances")
    assert cap.scoring_sizing(100_000.0, bench, cap.FunctionProfile(max_instances=100)).over_max


def test_ramp_follows_the_500_50_5_rule() -> None:
    assert cap.ramp_minutes(400) == 0
    assert cap.ramp_minutes(750) == 5  # 500 -> 750 is one +50 % step
    assert cap.ramp_minutes(6000) == 35  # 500 x 1.5^7 = 8,543 >= 6,000 > 500 x 1.5^6
    assert cap.ramp_minutes(60_000) == 60


def test_costs_per_transaction_bill_busy_instances_and_minimum_pubsub_bytes() -> None:
    scoring = cap.Sizing(2, 1.5, "cpu", False)
    enrich = cap.Sizing(14, 13.0, "concurrency", False)
    spec = cap.FunctionProfile(vcpu=2.0, memory_gib=2.0)
    c = cap.per_tx_costs(1000.0, scoring, enrich, spec, spec, message_bytes=300)
    assert c["vcpu_s"] == pytest.approx((1.5 + 13.0) * 2 / 1000)
    assert c["pubsub_billable_bytes"] == cap.PUBSUB_REQUESTS_PER_TX * 1000  # small messages bill 1000 B
    assert c["usd"] == pytest.approx(sum(c["usd_per_million"].values()) / 1e6)
    firestore = 2 * 0.03 / 1e5 + 3 * 0.09 / 1e5 + 0.01 / 1e5  # reads, writes, the TTL delete
    assert c["usd_per_million"]["firestore"] == pytest.approx(firestore * 1e6)


def test_limits_at_ten_thousand_per_second() -> None:
    s, e = cap.Sizing(12, 11.0, "cpu", False), cap.Sizing(135, 134.6, "concurrency", True)
    lim = cap.limits(10_000.0, s, e, (cap.SCORING_DEFAULT, cap.ENRICH_DEFAULT), decision_bytes=310, tx_bytes=230)
    assert lim["firestore_writes_per_s"] == 30_000
    assert lim["firestore_db_guideline_share"] == pytest.approx(3.0)
    assert lim["hot_wallet_max_tx_per_s"] == 1.0
    assert lim["ordering_key_max_decisions_per_s"] == pytest.approx(1e6 / 310)
    assert lim["enrich_over_max_instances"] and lim["total_vcpu"] == (12 + 135) * 2


def test_firestore_operation_counts_match_the_store() -> None:
    """The per-transaction counts used for cost and limits are those of the code."""
    source = (ROOT / "shared" / "txguard" / "enrichment" / "history" / "firestore.py").read_text()
    enrich = source[source.index("def _enrich_once"):source.index("def record_decision")]
    # A first delivery's decision: the conditional write (its record is as its transaction left it);
    # the transaction after it runs only when another delivery changed the record meanwhile.
    decide = source[source.index("def _record_decision_at"):source.index("def _decided")]
    fallback = source[source.index("def _record_decision(self"):source.index("def counterparty_applied")]
    # Billed reads are documents: one per `ref.get(transaction=...)`, one per reference in a get_all list.
    batched = sum(len(refs.split(",")) for part in (enrich, decide)
                  for refs in re.findall(r"get_all\(\[([^\]]+)\]", part))
    reads = enrich.count(".get(transaction=") + decide.count(".get(") + batched
    writes = sum(enrich.count(f"transaction.{op}(") for op in ("set", "create", "update"))
    writes += decide.count("ref.update(")
    assert reads == cap.FIRESTORE_READS_PER_TX == 2
    assert writes == cap.FIRESTORE_WRITES_PER_TX == 3
    assert fallback.count(".get(transaction=") == 1 and fallback.count("transaction.update(") == 1
    assert enrich.count("transaction.set(wallet_ref") == cap.FIRESTORE_WALLET_WRITES_PER_TX


def test_default_specs_are_the_deployed_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    from infra import config

    class EmptyConfig:  # a stack that sets nothing: every default applies
        def __init__(self, _name: str) -> None: ...
        def get(self, _key: str) -> None: return None
        get_int = get_bool = get_float = get_object = get
        def require(self, _key: str) -> str: return "p"

    monkeypatch.setattr(pulumi, "Config", EmptyConfig)
    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    stack = config.load()
    for deployed, spec in ((stack.scoring, cap.SCORING_DEFAULT), (stack.enrich, cap.ENRICH_DEFAULT)):
        assert (deployed.concurrency, deployed.min_instances, deployed.max_instances) == (
            spec.concurrency, spec.min_instances, spec.max_instances)
        assert float(deployed.cpu) == spec.vcpu
        assert deployed.memory == f"{spec.memory_gib:g}Gi"


def test_reads_both_enrichment_summaries() -> None:
    latency = {"messages": 10, "total_ms": {"p50": 80.0, "p99": 200.0}}
    e2e = {"rate": 20, "enrich_timings_ms": {"total_ms": {"p50": 70.0, "p95": 150.0}}}
    assert cap.EnrichBench.from_json(latency) == cap.EnrichBench(80.0, 200.0)
    assert cap.EnrichBench.from_json(e2e, cpu_ms=4.0) == cap.EnrichBench(70.0, 150.0, 4.0)


def test_command_prints_a_table_then_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    score = tmp_path / "score.out"
    score.write_text("table...\n" + json.dumps({"http_rps": 1500.0, "http_p50_ms": 5.0}) + "\n")
    enrich = tmp_path / "enrich.json"
    enrich.write_text(json.dumps({"total_ms": {"p50": 80.0, "p99": 200.0}}) + "\n")
    assert cap.main(["--score", str(score), "--enrich", str(enrich), "--rates", "1000", "10000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    result = json.loads(lines[-1])
    assert [r["rate"] for r in result["rates"]] == [1000.0, 10000.0]
    assert result["rates"][1]["enrich"]["over_max"] is True  # 800 in flight / 6 > 100 instances
    assert re.match(r"10,000 \| \d+ \(cpu\)", lines[2])


def test_missing_inputs_name_the_commands_that_produce_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from txguard.capacity import inputs

    assert cap.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {inputs.MISSING}"]
    assert "txguard bench score" in err[0] and "txguard bench e2e" in err[0] and "--run-benches" in err[0]
    assert cap.main(["--score", str(tmp_path / "none.out"), "--enrich", str(tmp_path / "none.out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'none.out'}: no such file"
    # The benchmarks --run-benches runs are real commands of this CLI that parse.
    from txguard.cli.main import build_parser

    for argv in inputs.bench_commands(5, 10).values():
        assert argv[1:3] == ["-m", "txguard.cli.main"]
        build_parser().parse_args(argv[3:])


def test_proc_cpu_reads_utime_and_stime(tmp_path: Path) -> None:
    # comm may hold spaces and parentheses; fields 14/15 count from after the last ')'.
    line = "42 (gunicorn: worker (x)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0"
    assert proc_cpu.cpu_seconds(line, 100.0) == pytest.approx(3.0)
    for pid, cmd in ((7, b"functions-framework\0--target\0enrich"), (8, b"functions-framework\0--target\0score")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(cmd)
    (tmp_path / "self").mkdir()
    assert proc_cpu.matching_pids("--target enrich", tmp_path) == [7]
