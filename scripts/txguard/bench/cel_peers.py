"""Run by the CEL venv's interpreter (txguard.bench.rules.candidates), not by txguard: the same rules
and rows through cel-python, common-expression-language and cel-expr-python; one JSON line out.

Each runtime compiles the rules once, then per row gets the row's variables (as its API takes them)
and evaluates every rule; timings are per row (all rules), median of the rows. Results come back
so the caller checks they agree with txguard's compiler.
"""

from __future__ import annotations

import importlib
import json
import re
import statistics
import sys
import time
from typing import Any

TEXT = ("type", "channel", "country", "currency", "counterparty_id", "wallet_id", "device_id")


def timed(fn: Any, rows: list[dict[str, Any]], repeat: int) -> tuple[float, list[Any]]:
    results = [fn(row) for row in rows]  # warm-up, and the results to compare
    samples = []
    for _ in range(repeat):
        for row in rows:
            t0 = time.perf_counter_ns()
            fn(row)
            samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000, results


def main(path: str) -> None:
    with open(path) as fh:
        data = json.loads(fh.read())
    rules, rows = data["rules"], data["rows"]
    out: dict[str, Any] = {}

    # Imported by name: these live in the CEL venv only, never in the project's (pyproject declares them nowhere).
    celpy = importlib.import_module("celpy")  # cel-python
    celtypes = importlib.import_module("celpy.celtypes")

    env = celpy.Environment()
    programs = [env.program(env.compile(r)) for r in rules]

    def activation(row: dict[str, Any]) -> dict[str, Any]:
        return {k: celtypes.StringType(v) if isinstance(v, str) else celtypes.DoubleType(v) for k, v in row.items()}

    def cel_python(row: dict[str, Any]) -> list[bool]:
        act = activation(row)
        return [bool(p.evaluate(act)) for p in programs]

    us, results = timed(cel_python, rows[:20], 1)
    out["cel_python"] = {"us_per_row_p50": round(us, 1), "results": results, "rows_timed": 20}

    cel = importlib.import_module("cel")  # common-expression-language (Rust)

    compiled = [cel.compile(r) for r in rules]
    joined = cel.compile("[" + ", ".join(f"({r})" for r in rules) + "]")

    def rust_each(row: dict[str, Any]) -> list[bool]:
        ctx = cel.Context(row)
        return [bool(p.execute(ctx)) for p in compiled]

    def rust_list(row: dict[str, Any]) -> list[bool]:
        return [bool(v) for v in joined.execute(cel.Context(row))]

    us, results = timed(rust_each, rows, 3)
    out["common_expression_language"] = {"us_per_row_p50": round(us, 1), "results": results}
    us, results = timed(rust_list, rows, 3)
    out["common_expression_language_one_list"] = {"us_per_row_p50": round(us, 1), "results": results}

    gcel = importlib.import_module("cel_expr_python.cel")  # cel-expr-python (C++)

    # cel-cpp declares `type` itself (the type-of function): the variable is renamed for it alone.
    renamed = [re.sub(r"\btype\b", "tx_type", r) for r in rules]
    crows = [{("tx_type" if k == "type" else k): v for k, v in row.items()} for row in rows]
    variables = {k: (gcel.Type.STRING if k in (*TEXT, "tx_type") else gcel.Type.DOUBLE) for k in crows[0]}
    genv = gcel.NewEnv(variables=variables)
    gprograms = [genv.compile(r) for r in renamed]
    gjoined = genv.compile("[" + ", ".join(f"({r})" for r in renamed) + "]")

    def cpp_each(row: dict[str, Any]) -> list[bool]:
        return [bool(p.eval(data=row).value()) for p in gprograms]

    def cpp_list(row: dict[str, Any]) -> list[bool]:
        return [bool(v) for v in gjoined.eval(data=row).plain_value()]

    us, results = timed(cpp_each, crows, 3)
    out["cel_expr_python"] = {"us_per_row_p50": round(us, 1), "results": results}
    us, results = timed(cpp_list, crows, 3)
    out["cel_expr_python_one_list"] = {"us_per_row_p50": round(us, 1), "results": results}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
