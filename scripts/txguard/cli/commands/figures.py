"""`txguard figures run|render|check`: the README's figures from the commands behind them.

`run` executes each figure's command (scripts/txguard/ops/figures.py), stores its last JSON line
in docs/figures.json and rewrites the README's generated blocks; `render` only rewrites them;
`check` exits 1 when they differ from docs/figures.json. `run --quick` proves the chain on small
sizes into a scratch folder and leaves the committed figures alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from txguard.ops.figures import FIGURES

    keys = ", ".join(f.key for f in FIGURES)
    parser = subparsers.add_parser("figures", help="regenerate or check the README's figures")
    sub = parser.add_subparsers(dest="figures_command", metavar="ACTION", required=True)
    p_run = sub.add_parser(
        "run", help="run the commands behind the figures, store their results, rewrite the README",
        description=f"Run each figure's command in order ({keys}), store its last JSON line with the command, "
        "date and machine in docs/figures.json and rewrite the README's generated blocks. The full run takes about "
        "two and a half hours (bench_train_scale ~80 minutes of it); run it on a quiet machine. The last line is one JSON object.")
    p_run.add_argument("--only", default="", help=f"comma-separated figures (default all: {keys})")
    p_run.add_argument("--quick", action="store_true",
                       help="small sizes, into --workdir's figures.json and README.md copy (not the committed ones)")
    p_run.add_argument("--workdir", type=Path, default=Path(".txguard/figures"),
                       help="scratch folder: outputs, registry (default .txguard/figures)")
    _paths(p_run)
    p_run.set_defaults(func=_run)
    for action, text in (("render", "rewrite the README's generated blocks from the figures file"),
                         ("check", "exit 1 if the README's generated blocks differ from the figures file")):
        p = sub.add_parser(action, help=text, description=text + ".")
        _paths(p)
        p.set_defaults(func=_render if action == "render" else _check)


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--figures", type=Path, default=None, help="figures file (default docs/figures.json)")
    parser.add_argument("--readme", type=Path, default=None, help="README to rewrite or check (default README.md)")


def _resolve(args: argparse.Namespace) -> tuple[Path, Path]:
    from txguard.ops import figures

    if getattr(args, "quick", False):
        readme = args.readme or args.workdir / "README.md"
        if not readme.exists():
            args.workdir.mkdir(parents=True, exist_ok=True)
            readme.write_text(figures.README.read_text())
        return args.figures or args.workdir / "figures.json", readme
    return args.figures or figures.FIGURES_FILE, args.readme or figures.README


def _run(args: argparse.Namespace) -> int:
    from txguard.ops import figures

    keys = [k.strip() for k in args.only.split(",") if k.strip()] or [f.key for f in figures.FIGURES]
    unknown = [k for k in keys if k not in figures.BY_KEY]
    if unknown:
        from txguard.cli.errors import usage

        raise usage(f"--only names unknown figures {unknown}", "no such figure",
                    f"choose from {', '.join(figures.BY_KEY)}")
    figures_path, readme = _resolve(args)
    stored = figures.load(figures_path)
    try:
        measured = figures.run(keys, args.quick, args.workdir.resolve(),
                               log=lambda m: print(f"figures: {m}", file=sys.stderr, flush=True))
    except RuntimeError as exc:
        from txguard.cli.errors import CliError, Exit

        raise CliError("a figure's command failed", str(exc), "rerun it alone to see its output",
                       Exit.FAILED) from None
    stored.update(measured)
    figures.save(stored, figures_path)
    readme.write_text(figures.rewrite(readme.read_text(), stored))
    print(json.dumps({"measured": sorted(measured), "figures": str(figures_path), "readme": str(readme),
                      "quick": args.quick}))
    return 0


def _render(args: argparse.Namespace) -> int:
    from txguard.ops import figures

    figures_path, readme = _resolve(args)
    readme.write_text(figures.rewrite(readme.read_text(), figures.load(figures_path)))
    print(json.dumps({"readme": str(readme), "figures": str(figures_path)}))
    return 0


def _check(args: argparse.Namespace) -> int:
    from txguard.ops import figures

    figures_path, readme = _resolve(args)
    from txguard.cli.errors import CliError, Exit, print_error

    stale = figures.stale_blocks(readme.read_text(), figures.load(figures_path))
    if stale:
        print_error(CliError(f"{readme} blocks {stale} differ from {figures_path}", "the figures moved since",
                             "run `txguard figures render`", Exit.REFUSED))
    print(json.dumps({"stale": stale, "ok": not stale}))
    return int(Exit.REFUSED) if stale else 0
