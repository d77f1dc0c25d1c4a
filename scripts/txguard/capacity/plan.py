"""Capacity at a sustained rate: instances, cost drivers per transaction, limits that bind.

Inputs are measured figures, each the last JSON line of a command anyone can rerun:
- scoring: `txguard bench score` (`http_rps`, `http_p50_ms` of one server with the deployed
  WORKERS x THREADS on the bench machine's vCPUs);
- enrichment: `python -m txguard.bench.enrich_latency <enrich.log>` or `txguard bench e2e`
  (`total_ms` in the function), plus optionally its CPU per message
  (`python -m txguard.bench.proc_cpu`, divided by the decided rate of the same window).

Model (docs/capacity.md explains it): Cloud Run adds instances to keep CPU near 60 % and
in-flight requests near 60 % of `max_instance_request_concurrency` ("About instance
autoscaling"). Scoring is CPU-bound: instances = rate / (per-instance rate x 0.6). Enrichment
waits on I/O: Little's law gives the requests in flight, rate x time in function, and
instances = in flight / (concurrency x 0.6), unless its CPU per message needs more.

    txguard capacity --score score.out --enrich e2e.out [--enrich-cpu-ms 4] [--rates 1000 10000]
                     [--counterparty cp.out]   # + Bigtable nodes (capacity/counterparty.py)
    txguard capacity --run-benches      # runs the benchmarks first (capacity/inputs.py)

Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

AUTOSCALE_TARGET = 0.6  # "About instance autoscaling" (Cloud Run): CPU and concurrency targets
MONTH_S = 30 * 24 * 3600

# Per new transaction, counted in shared/txguard/enrichment/history/firestore.py (tests/unit/capacity/test_capacity.py keeps
# the count honest): enrich_once reads processed + wallet, creates processed, sets wallet;
# record_decision updates processed, on the precondition that it is as enrich_once left it (no read;
# a record another delivery changed meanwhile takes a transaction: one read more, not counted here).
# The TTL policy deletes processed once.
FIRESTORE_READS_PER_TX = 2
FIRESTORE_WRITES_PER_TX = 3
FIRESTORE_DELETES_PER_TX = 1
FIRESTORE_WALLET_WRITES_PER_TX = 1  # the one document a hot wallet contends on

# Pub/Sub requests per transaction: publish tx, push to enrichment, publish decision (ordered by
# wallet, so one message per request), delivery of the decision to one consumer.
PUBSUB_REQUESTS_PER_TX = 4
PUBSUB_MIN_BILLABLE_BYTES = 1000  # "Pub/Sub pricing": at least 1000 bytes per publish/push/pull request

# Public guidelines and quotas (docs/capacity.md names each page).
FIRESTORE_DOC_WRITES_PER_S = 1.0  # sustained writes per document ("Quotas and limits", older editions)
FIRESTORE_DB_WRITES_PER_S = 10_000  # per database ("Quotas and limits", older editions)
FIRESTORE_SEQUENTIAL_INDEX_WRITES_PER_S = 500  # soft limit, collection with sequential indexed values
FIRESTORE_RAMP_START_OPS = 500  # "Best practices": 500 ops/s to a new collection, +50 % every 5 min
PUBSUB_ORDERING_KEY_BPS = 1_000_000  # "Pub/Sub quotas and limits": 1 MB/s per ordering key
PUBSUB_REGION_PUBLISH_BPS = 200_000_000  # same page: large regions (europe-west1, us-central1, us-east1)

# Public list prices (USD), as of 2026-11 from the pricing pages; check them before quoting.
PRICES = {
    "cloud_run_vcpu_s": 0.000024,  # Cloud Run, request-based billing, Tier 1 region
    "cloud_run_gib_s": 0.0000025,
    "cloud_run_request": 0.40 / 1e6,
    "pubsub_tib": 40.0,  # throughput, publish and delivery
    "firestore_read": 0.03 / 1e5,  # Standard edition, cheapest regional locations (multi-region ~2x)
    "firestore_write": 0.09 / 1e5,
    "firestore_delete": 0.01 / 1e5,
}


@dataclass(frozen=True)
class FunctionProfile:
    """The Cloud Run knobs capacity depends on (defaults = infra/config.py's defaults)."""

    concurrency: int = 10
    min_instances: int = 0
    max_instances: int = 100
    vcpu: float = 2.0
    memory_gib: float = 2.0


SCORING_DEFAULT = FunctionProfile(min_instances=1)
ENRICH_DEFAULT = FunctionProfile(min_instances=0)


@dataclass(frozen=True)
class ScoringBench:
    rps: float  # one server, deployed WORKERS x THREADS, loaded by wrk on the same machine
    p50_ms: float
    bench_vcpu: float = 2.0  # the bench machine's CPUs (shared with the load client)

    @classmethod
    def from_json(cls, data: dict[str, Any], bench_vcpu: float = 2.0) -> ScoringBench:
        return cls(float(data["http_rps"]), float(data["http_p50_ms"]), bench_vcpu)


@dataclass(frozen=True)
class EnrichBench:
    p50_ms: float  # time in the function per decided message
    tail_ms: float  # p99 (enrich_latency) or p95 (bench e2e): every request that slow is the worst case
    cpu_ms: float | None = None  # CPU per message, if measured

    @classmethod
    def from_json(cls, data: dict[str, Any], cpu_ms: float | None = None) -> EnrichBench:
        timings = data.get("enrich_timings_ms", data)  # bench e2e nests it; enrich_latency does not
        total = timings["total_ms"]
        return cls(float(total["p50"]), float(total.get("p99") or total.get("p95")), cpu_ms)


@dataclass(frozen=True)
class Sizing:
    instances: int
    exact: float  # unrounded instances (billing follows busy instance time, not the ceiling)
    binding: str  # what sets the count: cpu, concurrency, min_instances
    over_max: bool

    @classmethod
    def of(cls, needs: dict[str, float], spec: FunctionProfile) -> Sizing:
        binding, exact = max(needs.items(), key=lambda kv: kv[1])
        instances = max(math.ceil(exact - 1e-9), spec.min_instances)
        if exact <= spec.min_instances:
            binding = "min_instances"
        return cls(instances, exact, binding, instances > spec.max_instances)


def scoring_sizing(rate: float, bench: ScoringBench, spec: FunctionProfile) -> Sizing:
    per_instance = bench.rps * spec.vcpu / bench.bench_vcpu  # workers scale with vCPUs
    in_flight = rate * bench.p50_ms / 1000
    return Sizing.of({"cpu": rate / (per_instance * AUTOSCALE_TARGET),
                      "concurrency": in_flight / (spec.concurrency * AUTOSCALE_TARGET)}, spec)


def enrich_sizing(rate: float, bench: EnrichBench, spec: FunctionProfile, latency_ms: float | None = None) -> Sizing:
    in_flight = rate * (latency_ms if latency_ms is not None else bench.p50_ms) / 1000  # Little's law
    needs = {"concurrency": in_flight / (spec.concurrency * AUTOSCALE_TARGET)}
    if bench.cpu_ms is not None:
        needs["cpu"] = rate * bench.cpu_ms / 1000 / (spec.vcpu * AUTOSCALE_TARGET)
    return Sizing.of(needs, spec)


def per_tx_costs(rate: float, scoring: Sizing, enrich: Sizing, scoring_spec: FunctionProfile,
                 enrich_spec: FunctionProfile, message_bytes: int) -> dict[str, float]:
    """Resource use per transaction; busy instances are billed whole (request-based billing)."""
    vcpu_s = (scoring.exact * scoring_spec.vcpu + enrich.exact * enrich_spec.vcpu) / rate
    gib_s = (scoring.exact * scoring_spec.memory_gib + enrich.exact * enrich_spec.memory_gib) / rate
    pubsub_bytes = PUBSUB_REQUESTS_PER_TX * max(PUBSUB_MIN_BILLABLE_BYTES, message_bytes)
    usd = {
        "cloud_run_cpu": vcpu_s * PRICES["cloud_run_vcpu_s"],
        "cloud_run_memory": gib_s * PRICES["cloud_run_gib_s"],
        "cloud_run_requests": 2 * PRICES["cloud_run_request"],
        "pubsub": pubsub_bytes / 2**40 * PRICES["pubsub_tib"],
        "firestore": FIRESTORE_READS_PER_TX * PRICES["firestore_read"]
        + FIRESTORE_WRITES_PER_TX * PRICES["firestore_write"] + FIRESTORE_DELETES_PER_TX * PRICES["firestore_delete"],
    }
    return {"vcpu_s": vcpu_s, "gib_s": gib_s, "cloud_run_requests": 2, "pubsub_billable_bytes": pubsub_bytes,
            "firestore_reads": FIRESTORE_READS_PER_TX, "firestore_writes": FIRESTORE_WRITES_PER_TX,
            "firestore_deletes": FIRESTORE_DELETES_PER_TX, "usd_per_million": {k: v * 1e6 for k, v in usd.items()},
            "usd": sum(usd.values())}


def ramp_minutes(target_ops: float, start: float = FIRESTORE_RAMP_START_OPS) -> int:
    """Minutes the 500/50/5 rule takes from a cold collection to `target_ops` operations per second."""
    if target_ops <= start:
        return 0
    return 5 * math.ceil(math.log(target_ops / start) / math.log(1.5) - 1e-9)


def limits(rate: float, scoring: Sizing, enrich: Sizing, specs: tuple[FunctionProfile, FunctionProfile],
           decision_bytes: int, tx_bytes: int) -> dict[str, Any]:
    writes = rate * FIRESTORE_WRITES_PER_TX
    ops = rate * (FIRESTORE_READS_PER_TX + FIRESTORE_WRITES_PER_TX)
    return {
        "firestore_writes_per_s": writes,
        "firestore_db_guideline_share": writes / FIRESTORE_DB_WRITES_PER_S,
        # wallets.ts holds recent timestamps: were it indexed (Firestore's default), these writes would
        # meet the 500/s sequential-index soft limit. infra/history.py exempts it; this is the margin.
        "wallet_writes_vs_sequential_index_soft_limit_if_indexed": rate * FIRESTORE_WALLET_WRITES_PER_TX
        / FIRESTORE_SEQUENTIAL_INDEX_WRITES_PER_S,
        "ramp_minutes_from_cold": ramp_minutes(ops),
        "hot_wallet_max_tx_per_s": FIRESTORE_DOC_WRITES_PER_S / FIRESTORE_WALLET_WRITES_PER_TX,
        "ordering_key_max_decisions_per_s": PUBSUB_ORDERING_KEY_BPS / decision_bytes,
        "pubsub_publish_share_of_region_quota": rate * (tx_bytes + decision_bytes) / PUBSUB_REGION_PUBLISH_BPS,
        "scoring_over_max_instances": scoring.over_max,
        "enrich_over_max_instances": enrich.over_max,
        "total_vcpu": scoring.instances * specs[0].vcpu + enrich.instances * specs[1].vcpu,
    }


def message_sizes(sample: int = 500) -> tuple[int, int]:
    """Mean JSON bytes of a simulated transaction, and of a decision with three reasons."""
    from txguard.contract.models import Decision
    from txguard.simulator.core import quick_stream

    txs = [len(item.tx.model_dump_json()) for item in quick_stream(sample, seed=3)]
    decision = Decision(
        transaction_id="t" * 36, wallet_id="w" * 12, score=0.123456789, outcome="review",
        reasons=["amount 12.3x the wallet's 30-day mean", "4 new counterparties in 24h",
                 "money out within 5 min of a top-up"],
        model_version="v3", timings={"inference_us": 20.5, "total_us": 310.2},
    )
    return round(sum(txs) / len(txs)), len(decision.model_dump_json())


def plan(rates: list[float], scoring: ScoringBench, enrich: EnrichBench, scoring_spec: FunctionProfile = SCORING_DEFAULT,
         enrich_spec: FunctionProfile = ENRICH_DEFAULT, sizes: tuple[int, int] | None = None) -> dict[str, Any]:
    tx_bytes, decision_bytes = sizes or message_sizes()
    rows = []
    for rate in rates:
        s = scoring_sizing(rate, scoring, scoring_spec)
        e = enrich_sizing(rate, enrich, enrich_spec)
        e_tail = enrich_sizing(rate, enrich, enrich_spec, latency_ms=enrich.tail_ms)
        cost = per_tx_costs(rate, s, e, scoring_spec, enrich_spec, max(tx_bytes, decision_bytes))
        rows.append({"rate": rate, "scoring": asdict(s), "enrich": asdict(e), "enrich_at_tail": asdict(e_tail),
                     "per_tx": cost, "usd_per_month": cost["usd"] * rate * MONTH_S,
                     "limits": limits(rate, s, e, (scoring_spec, enrich_spec), decision_bytes, tx_bytes)})
    return {"inputs": {"scoring": asdict(scoring), "enrich": asdict(enrich), "scoring_spec": asdict(scoring_spec),
                       "enrich_spec": asdict(enrich_spec), "autoscale_target": AUTOSCALE_TARGET,
                       "tx_bytes": tx_bytes, "decision_bytes": decision_bytes, "prices_usd": PRICES},
            "rates": rows}


def _read_last_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    for line in reversed(path.read_text().splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line)
    raise ValueError(f"{path}: no JSON line (expected the output of txguard bench score / bench e2e)")


def render(result: dict[str, Any]) -> str:
    lines = ["rate tx/s | scoring inst (binds) | enrich inst p50 (binds) | enrich at tail | vCPU-ms/tx | "
             "Pub/Sub B/tx | Firestore r/w/d | USD/1M tx | writes/s | ramp min"]
    for r in result["rates"]:
        s, e, t, c, lim = r["scoring"], r["enrich"], r["enrich_at_tail"], r["per_tx"], r["limits"]
        lines.append(
            f"{r['rate']:,.0f} | {s['instances']} ({s['binding']}{', OVER MAX' if s['over_max'] else ''}) | "
            f"{e['instances']} ({e['binding']}{', OVER MAX' if e['over_max'] else ''}) | {t['instances']}{' OVER MAX' if t['over_max'] else ''} | "
            f"{c['vcpu_s'] * 1000:.1f} | {c['pubsub_billable_bytes']:,} | "
            f"{c['firestore_reads']}/{c['firestore_writes']}/{c['firestore_deletes']} | {c['usd'] * 1e6:,.2f} | "
            f"{lim['firestore_writes_per_s']:,.0f} | {lim['ramp_minutes_from_cold']}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--score", type=Path, default=None,
                        help="file whose last JSON line is `txguard bench score`'s")
    parser.add_argument("--enrich", type=Path, default=None,
                        help="file whose last JSON line is enrich_latency's or `txguard bench e2e`'s")
    parser.add_argument("--counterparty", type=Path, default=None,
                        help="file whose last JSON line is `txguard bench counterparty`'s: adds the Bigtable nodes")
    parser.add_argument("--counterparty-shards", type=int, default=4,
                        help="COUNTERPARTY_SHARDS of the deployment (default 4)")
    parser.add_argument("--labels-per-tx", type=float, default=0.05,
                        help="label events per transaction (default 0.05: a few percent, docs/counterparty.md)")
    parser.add_argument("--run-benches", action="store_true",
                        help="run `txguard bench score`, `bench e2e` and `bench counterparty` first for the missing inputs")
    parser.add_argument("--bench-duration", type=float, default=20.0,
                        help="seconds of load per benchmark with --run-benches (default 20)")
    parser.add_argument("--bench-rate", type=float, default=20.0,
                        help="publish rate of the e2e benchmark with --run-benches, tx/s (default 20)")
    parser.add_argument("--workdir", type=Path, default=Path(".txguard/capacity"),
                        help="where --run-benches keeps the benchmark outputs (default .txguard/capacity)")
    parser.add_argument("--enrich-cpu-ms", type=float, default=None, help="enrichment CPU per message (ms)")
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 10000.0], help="tx/s (default 1000 10000)")
    parser.add_argument("--bench-vcpu", type=float, default=2.0, help="CPUs of the bench machine (default 2)")
    for name, spec in (("scoring", SCORING_DEFAULT), ("enrich", ENRICH_DEFAULT)):
        parser.add_argument(f"--{name}-concurrency", type=int, default=spec.concurrency)
        parser.add_argument(f"--{name}-max-instances", type=int, default=spec.max_instances)
        parser.add_argument(f"--{name}-min-instances", type=int, default=spec.min_instances)
        parser.add_argument(f"--{name}-vcpu", type=float, default=spec.vcpu)
        parser.add_argument(f"--{name}-memory-gib", type=float, default=spec.memory_gib)


def _spec(args: argparse.Namespace, name: str) -> FunctionProfile:
    return FunctionProfile(getattr(args, f"{name}_concurrency"), getattr(args, f"{name}_min_instances"),
                        getattr(args, f"{name}_max_instances"), getattr(args, f"{name}_vcpu"),
                        getattr(args, f"{name}_memory_gib"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m txguard.capacity.plan", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    import sys

    from txguard.capacity import inputs

    if args.score is None or args.enrich is None or (args.run_benches and args.counterparty is None):
        if not args.run_benches:
            print(f"error: {inputs.MISSING}", file=sys.stderr)
            return 2
        missing = [name for name, given in (("score", args.score), ("enrich", args.enrich),
                                            ("counterparty", args.counterparty)) if given is None]
        ran = inputs.run_benches(args.workdir, args.bench_duration, args.bench_rate, only=missing,
                                 log=lambda m: print(m, file=sys.stderr, flush=True))
        args.score, args.enrich = args.score or ran.get("score"), args.enrich or ran.get("enrich")
        args.counterparty = args.counterparty or ran.get("counterparty")
    try:
        scoring = ScoringBench.from_json(_read_last_json(args.score), args.bench_vcpu)
        enrich = EnrichBench.from_json(_read_last_json(args.enrich), args.enrich_cpu_ms)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc if isinstance(exc, ValueError) else f'missing field {exc} in the benchmark line'}",
              file=sys.stderr)
        return 2
    result = plan(args.rates, scoring, enrich, _spec(args, "scoring"), _spec(args, "enrich"))
    print(render(result))
    if args.counterparty is not None:
        from txguard.capacity import counterparty

        try:
            store = counterparty.CounterpartyBench.from_json(_read_last_json(args.counterparty))
        except (ValueError, KeyError) as exc:
            print(f"error: {args.counterparty}: {exc if isinstance(exc, ValueError) else f'missing field {exc}'} "
                  "(expected the output of txguard bench counterparty)", file=sys.stderr)
            return 2
        result["counterparty"] = counterparty.plan(args.rates, store, args.counterparty_shards, args.labels_per_tx)
        print(counterparty.render(result["counterparty"]))
    print(json.dumps(result, default=float), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
