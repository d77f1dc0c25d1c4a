"""`txguard bench counterparty`: the counterparty store candidates on the emulators (docs/counterparty.md).

Writes/s of one hot counterparty (exactly once) and the latency of a feature snapshot, for the
Bigtable layout the functions use and the sharded Firestore layout it was chosen over, with the
same writers in the same run. Starts the Bigtable and Firestore emulators in their own process
groups (unless BIGTABLE_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST point at running ones) and
stops them. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os

from txguard.cli.commands._group import command_group


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = command_group(subparsers, "bench", "benchmarks (scoring function, local pipeline end to end)")
    p = bench.add_parser(
        "counterparty",
        help="counterparty store on the emulators: Bigtable vs sharded Firestore, one hot counterparty",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    p.add_argument("--threads", type=int, default=16, help="concurrent writers (default 16)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of writes per candidate (default 10)")
    p.add_argument("--reads", type=int, default=200, help="snapshot reads per candidate (default 200)")
    p.add_argument("--shards", default="1,8", help="shard counts to compare, comma-separated (default 1,8)")
    p.add_argument("--project", default="txguard-bench", help="emulator project (default txguard-bench)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from txguard.bench.counterparty import run_bench
    from txguard.cli.errors import CliError, Exit, usage
    from txguard.local import emulators
    from txguard.local.terminal import make_terminal

    terminal = make_terminal(stderr=True)
    try:
        shards = tuple(int(s) for s in args.shards.split(",") if s.strip())
    except ValueError:
        raise usage(f"--shards {args.shards}", "it takes positive integers", "give e.g. 1,8") from None
    if not shards or min(shards) < 1:
        raise usage(f"--shards {args.shards}", "it takes positive integers", "give e.g. 1,8")
    with ExitStack() as stack:
        for name, start in (("BIGTABLE_EMULATOR_HOST", emulators.start_bigtable),
                            ("FIRESTORE_EMULATOR_HOST", lambda: emulators.start_firestore(args.project))):
            if os.environ.get(name):
                continue
            if not emulators.gcloud_available():
                raise CliError(f"no {name.split('_')[0].title()} emulator", f"{name} is not set and gcloud (with "
                               "Java) is not on the PATH", f"install the gcloud emulators or set {name}", Exit.SETUP)
            emu = start()
            stack.callback(emu.stop)
            os.environ[name] = emu.env_value
            terminal.print(f"started the {emu.name} emulator on {emu.host}")
        report = run_bench(args.project, args.threads, args.seconds, args.reads, shards, log=terminal.print)
    for n, r in report["ratios"].items():
        bt, fs = report["bigtable"][n], report["firestore"][n]
        terminal.print(f"{n} shard(s): bigtable {bt['exactly_once']['writes_per_s']} writes/s "
                       f"(AddToCell alone {bt['add_to_cell_only']['writes_per_s']}), firestore "
                       f"{fs['exactly_once']['writes_per_s']}: {r['bigtable_vs_firestore_writes']}x; snapshot p50 "
                       f"{bt['snapshot_read']['p50_ms']} ms vs {fs['snapshot_read']['p50_ms']} ms (bigtable, quiet "
                       f"counterparty: {bt['snapshot_read_quiet']['p50_ms']} ms); late-update detection: "
                       f"{bt['exactly_once_without_late_check']['writes_per_s']} writes/s without the check "
                       f"({r['late_check_writes']}x with it), snapshot p50 with the read marks "
                       f"{bt['read_before']['p50_ms']} ms ({r['read_marks_read_p50']}x)")
    print(json.dumps(report))
    return 0
