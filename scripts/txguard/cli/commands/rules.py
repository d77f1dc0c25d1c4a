"""`txguard rules check|save|list|promote|rollback|backtest`: rules beside the model (docs/rules.md).

A rule file is JSON: `{"rules": [{"name", "condition", "outcome", "reason"}, ...]}`. `check` says
what is wrong and where (rule, line, column); `save` checks, then stores a new rule set version in
the registry (who and why recorded) and points `staging` at it (shadowed by the scoring function);
`promote` moves `production` (applied to every decision); `rollback` moves it back; `backtest`
replays a feature table through the rules and the model. Errors are one line, `error: <what>,
<why>, <what to do>`; exit 1 for bad input, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from txguard.cli.commands.registry import add_registry_argument, default_registry

EXIT_INPUT = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rules", help="check, save, promote, roll back and backtest rule sets",
                                   description=__doc__.split("\n\n")[1] if __doc__ else None)
    add_registry_argument(parser)
    sub = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    p = sub.add_parser("check", help="check a rule file: unknown names, types, rules that can never fire")
    p.add_argument("file", help="rule file (JSON)")
    p.set_defaults(func=_check)

    p = sub.add_parser("save", help="check a rule file and store it as a new rule set version (staging by default)")
    p.add_argument("file", help="rule file (JSON)")
    p.add_argument("--reason", required=True, help="why (kept with the version)")
    p.add_argument("--by", default=None, help="who saves it (default: the user name)")
    p.add_argument("--alias", default="staging", help="alias to point at it (default staging; '' for none)")
    add_registry_argument(p)
    p.set_defaults(func=_save)

    p = sub.add_parser("list", help="rule set versions, who saved them and why, and the aliases")
    add_registry_argument(p)
    p.set_defaults(func=_list)

    p = sub.add_parser("promote", help="point an alias (default production) at a rule set")
    p.add_argument("version", help="rN, or an alias whose version to take (e.g. staging)")
    p.add_argument("--alias", default="production")
    add_registry_argument(p)
    p.set_defaults(func=_promote)

    p = sub.add_parser("rollback", help="point an alias (default production) back at its previous rule set")
    p.add_argument("--alias", default="production")
    add_registry_argument(p)
    p.set_defaults(func=_rollback)

    p = sub.add_parser("backtest", help="replay a feature table through a rule file and the model",
                       description="Per rule: hits per day, precision and recall against the labels known at "
                       "--as-of, the frauds it catches that the model's threshold misses, the extra reviews per "
                       "day; then the whole set against the model alone. A table, then one JSON line.")
    p.add_argument("--rules", required=True, help="rule file (JSON), or a rule set of the registry (rN or an alias)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", help="feature table of `txguard batch run --features` (folder, file or glob; "
                                           "gs:// too)")
    source.add_argument("--sample", help="a backtest sample (.npz) saved with --save-sample (what the console reads)")
    p.add_argument("--model-uri", default=None,
                   help="model that scores the table (default: <registry>@production)")
    p.add_argument("--as-of", default=None, help="labels known at this ISO time count (default: the last transaction)")
    p.add_argument("--since", default=None,
                   help="backtest the transactions from this ISO time on (their features still use the history "
                        "before it); e.g. skip the first week of a simulated world, where every shop is new")
    p.add_argument("--picture", default=None, help="write the picture (PNG) here")
    p.add_argument("--save-sample", default=None, help="also save the scored table as a backtest sample (.npz)")
    add_registry_argument(p)
    p.set_defaults(func=_backtest)


def _fail(what: str, why: str, todo: str) -> int:
    print(f"error: {what}, {why}, {todo}", file=sys.stderr)
    return EXIT_INPUT


def _location(args: argparse.Namespace) -> str:
    return getattr(args, "registry", None) or default_registry()


def _rulesets(args: argparse.Namespace, writable: bool = False) -> Any:
    from txguard.registry import open_registry
    from txguard.registry.rulesets import RuleSetRegistry

    registry = open_registry(_location(args))
    registry.check(writable=writable)
    return RuleSetRegistry(registry.store)


def _read(path: str) -> tuple[Any, list[dict[str, object]]]:
    """(spec, problems): the file's RuleSetSpec, or why it is not one."""
    from pydantic import ValidationError

    from txguard.contract.models import RULE_SET_ADAPTER

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, [{"message": f"cannot read it ({exc.strerror or exc})"}]
    try:
        return RULE_SET_ADAPTER.validate_json(data), []
    except ValidationError as exc:
        problems: list[dict[str, object]] = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append({"field": loc, "message": f"{loc or 'file'}: {err['msg']}"})
        return None, problems


def _checked(path: str) -> tuple[Any, list[dict[str, object]]]:
    from txguard.contract.errors import RuleCheckError
    from txguard.rules.engine import RuleSet

    spec, problems = _read(path)
    if spec is None:
        return None, problems
    try:
        return RuleSet(spec, version="file"), []
    except RuleCheckError as exc:
        return None, exc.problems


def _print_problems(path: str, problems: list[dict[str, object]]) -> None:
    for p in problems:
        where = f"{path}: rule {p['rule']}, line {p['line']} column {p['column']}" if "line" in p else path
        print(f"{where}: {p['message']}", file=sys.stderr)


def _check(args: argparse.Namespace) -> int:
    rules, problems = _checked(args.file)
    if rules is None:
        _print_problems(args.file, problems)
        print(json.dumps({"file": args.file, "ok": False, "problems": problems}))
        return _fail(f"rule file {args.file} refused", f"{len(problems)} problem(s) above",
                     "fix them and run `txguard rules check` again")
    print(json.dumps({"file": args.file, "ok": True, "rules": list(rules.names),
                      "reads": sorted(rules.compiled.names)}))
    return 0


def _save(args: argparse.Namespace) -> int:
    rules, problems = _checked(args.file)
    if rules is None:
        _print_problems(args.file, problems)
        return _fail(f"rule file {args.file} not saved", f"{len(problems)} problem(s) above",
                     "fix them (`txguard rules check` lists them) and save again")
    store = _rulesets(args, writable=True)
    meta = store.publish(rules.spec, saved_by=args.by or getpass.getuser(), reason=args.reason)
    if args.alias:
        store.promote(meta.version, alias=args.alias)
    print(json.dumps({"version": meta.version, "alias": args.alias or None, "sha256": meta.sha256,
                      "saved_by": meta.saved_by, "reason": meta.reason, "rules": meta.rules,
                      "location": store.location}))
    return 0


def _list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from txguard.local.terminal import make_terminal

    info = _rulesets(args).describe()
    table = Table(title=f"Rule sets in {info['location']}")
    for col in ("version", "created", "aliases", "rules", "saved by", "reason"):
        table.add_column(col)
    for v in info["versions"]:
        table.add_row(v["version"], v["created_at"][:19], ",".join(v["aliases"]), str(len(v["rules"])),
                      v["saved_by"], v["reason"])
    make_terminal(stderr=True).print(table)
    print(json.dumps(info, sort_keys=True, default=str))
    return 0


def _promote(args: argparse.Namespace) -> int:
    store = _rulesets(args)
    version = store.resolve(args.version)
    store.promote(version, alias=args.alias)
    print(json.dumps({"alias": args.alias, "version": version, "location": store.location}))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    store = _rulesets(args)
    version = store.rollback(alias=args.alias)
    print(json.dumps({"alias": args.alias, "version": version, "location": store.location}))
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from datetime import datetime

    from txguard.rules.backtest import BacktestSample, run_backtest

    rules = _rules_for_backtest(args)
    if rules is None:
        return EXIT_INPUT
    if args.sample:
        try:
            sample = BacktestSample.load(args.sample)
        except (OSError, ValueError, KeyError) as exc:
            return _fail(f"backtest sample {args.sample} unreadable", str(exc),
                         "save one with `txguard rules backtest --features RUN --save-sample FILE`")
    else:
        from txguard.batch.backtest_input import read_feature_table, sample_of
        from txguard.scoring.loading import open_scorer

        table = read_feature_table(args.features)
        scorer = open_scorer(args.model_uri or f"{_location(args)}@production")
        sample = sample_of(table, scorer, args.features)
        if args.save_sample:
            sample.save(args.save_sample)
    def when(text: str | None) -> float | None:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None

    try:
        report = run_backtest(rules, sample, when(args.as_of), since=when(args.since))
    except ValueError as exc:
        return _fail("backtest not run", str(exc), "see docs/rules.md")
    _print_table(report)
    if args.picture:
        from txguard.batch.backtest_picture import render

        Path(args.picture).write_bytes(render(report))
        print(f"wrote {args.picture}", file=sys.stderr)
    compact = {k: v for k, v in report.items() if k != "days_list"}
    compact["rules"] = [{k: v for k, v in r.items() if k != "hits_by_day"} for r in report["rules"]]
    print(json.dumps(compact, sort_keys=True))
    return 0


def _rules_for_backtest(args: argparse.Namespace) -> Any:
    from txguard.rules.engine import RuleSet

    if Path(args.rules).exists() or args.rules.endswith(".json"):
        rules, problems = _checked(args.rules)
        if rules is None:
            _print_problems(args.rules, problems)
            _fail(f"rule file {args.rules} refused", f"{len(problems)} problem(s) above", "fix them and run again")
        return rules
    loaded = _rulesets(args).load(args.rules)
    return RuleSet(loaded.spec, loaded.metadata.version)


def _print_table(report: dict[str, Any]) -> None:
    from rich.table import Table

    from txguard.local.terminal import make_terminal

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    table = Table(title=f"Backtest of {report['rule_set']} beside model {report['model_version']}: "
                        f"{report['transactions']:,} transactions, {report['first_day']}..{report['last_day']}, "
                        f"{report['frauds_known']} frauds known at {report['as_of']}")
    for col in ("rule", "outcome", "hits", "hits/day", "precision", "recall", "frauds the model missed",
                "extra reviews/day", "model flags overruled (legit/fraud)"):
        table.add_column(col, justify="left" if col in ("rule", "outcome") else "right")
    for r in report["rules"]:
        if r["outcome"] == "allow":  # an allowlist: what it lets through is what counts
            table.add_row(r["rule"], r["outcome"], f"{r['hits']:,}", f"{r['hits_per_day']:.1f}", "", "", "", "",
                          f"{r['legit_allowed']:,} / {r['frauds_allowed']:,}")
            continue
        table.add_row(r["rule"], r["outcome"], f"{r['hits']:,}", f"{r['hits_per_day']:.1f}", pct(r["precision"]),
                      pct(r["recall"]), f"{r['caught_model_missed']:,}", f"{r['extra_reviews_per_day']:.1f}", "")
    m, w = report["model"], report["with_rules"]
    table.add_row("[b]model alone[/]", "review+", f"{m['flagged']:,}", f"{m['flagged_per_day']:.1f}",
                  pct(m["precision"]), pct(m["recall"]), "", "", "")
    table.add_row("[b]model + rules[/]", "review+", f"{w['flagged']:,}", f"{w['flagged_per_day']:.1f}",
                  pct(w["precision"]), pct(w["recall"]), f"{report['caught_model_missed']:,}",
                  f"{report['extra_reviews_per_day']:.1f}", "")
    terminal = make_terminal(stderr=True)
    terminal.print(table)
    by = report.get("by_scenario")
    if by:
        scen = Table(title="Frauds by scenario: caught by the model alone, and with the rules")
        for col in ("scenario", "frauds", "model", "with rules", "rules that fired"):
            scen.add_column(col)
        for name, s in by.items():
            scen.add_row(name, str(s["frauds"]), str(s["model"]), str(s["with_rules"]),
                         ", ".join(f"{k} {v}" for k, v in s["rules"].items()))
        terminal.print(scen)
