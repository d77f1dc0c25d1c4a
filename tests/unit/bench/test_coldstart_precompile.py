"""The cold-start bench imports bytecode, as a deployed function does (its build runs compileall)."""

from __future__ import annotations

import importlib.util

from txguard.bench.coldstart import HELLO, precompile
from txguard.bench.procs import ROOT


def test_precompile_writes_the_bytecode_both_functions_import() -> None:
    precompile()  # compileall writes .pyc even where PYTHONDONTWRITEBYTECODE is set
    for source in (ROOT / "functions" / "score" / "main.py", ROOT / "shared" / "txguard" / "scoring" / "runtime.py",
                   ROOT / "shared" / "txguard" / "contract" / "models.py", HELLO):
        cached = importlib.util.cache_from_source(str(source))
        with open(cached, "rb") as f:
            assert f.read(4) == importlib.util.MAGIC_NUMBER, cached
