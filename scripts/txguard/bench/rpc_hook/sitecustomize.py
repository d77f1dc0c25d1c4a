"""Started by Python in a process with this folder on PYTHONPATH: `txguard bench e2e` counts the
enrichment function's gRPC calls this way (txguard.bench.rpc_count)."""

import os

if os.environ.get("TXGUARD_RPC_COUNT_DIR"):
    try:
        from txguard.bench.rpc_count import install

        install(os.environ["TXGUARD_RPC_COUNT_DIR"])
    except Exception as exc:  # noqa: BLE001 - a count missing must not stop the function
        print(f"txguard rpc count not installed: {exc}", flush=True)
