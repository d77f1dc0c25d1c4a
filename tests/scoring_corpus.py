"""A recorded corpus of scoring requests and the exact responses and log lines they got.

The scoring function's answers must not change when its request path is made cheaper: the same
bytes out for the same bytes in. `tests/events/scoring_corpus.jsonl` holds requests (valid
transactions of every outcome, every reason rule firing alone and several at once, values beyond
float32, optional fields absent, batches, and every kind of bad request) with the status, headers,
body and request log line recorded before a change to that path; `test_scoring_corpus.py` replays
them through functions-framework and through `ScoringService.handle` and compares byte for byte.
Only what is measured anew per request is masked: the timings (`inference_us`, `total_us`,
`latency_ms`) and the log line's `time`.

The model is the tiny test model (trained in process, deterministic: seed, one thread), so nothing
binary is committed. Record again only when an answer is *meant* to change, and say why in the commit:

    .venv/bin/python -m tests.scoring_corpus   # rewrites tests/events/scoring_corpus.jsonl
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "events" / "scoring_corpus.jsonl"
JSON_CT = "application/json"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
LARGE = 4096  # bodies longer than this are recorded as their SHA-256 (the OpenAPI document)

# Values measured anew on every request: masked before comparing (the number, never the key).
_VOLATILE = re.compile(rb'"(inference_us|total_us|latency_ms)":(-?[0-9.eE+-]+|null)')
_TIME = re.compile(rb'"time":"[^"]*"')


def mask(raw: bytes) -> bytes:
    return _TIME.sub(b'"time":"#"', _VOLATILE.sub(rb'"\1":#', raw))


# Requests ----------------------------------------------------------------------------------------
def _fire(base: dict[str, Any], **features: float) -> dict[str, Any]:
    """`base` with some history/counterparty features set (each name found in either group)."""
    doc = json.loads(json.dumps(base))
    for name, value in features.items():
        group = "features" if name in doc["features"] else "counterparty"
        doc[group][name] = value
    return doc


def _compact(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


def build_requests() -> list[dict[str, Any]]:
    """The corpus's requests, built once from the simulator and by hand (then stored, not rebuilt)."""
    from tests.scoring_fixtures import enriched_transactions, tiny_metadata, tiny_model
    from txguard.scoring.loading import scorer_of

    txs = enriched_transactions()
    scorer = scorer_of(tiny_model()[1], tiny_metadata())
    by_outcome: dict[str, list[Any]] = {"allow": [], "review": [], "block": []}
    for tx in txs:
        by_outcome[scorer.score(tx).outcome.value].append(tx)
    # Every block, a spread of reviews and allows (the simulator's own feature values and floats).
    picked = by_outcome["block"] + by_outcome["review"][::10] + by_outcome["allow"][::60]
    singles = [tx.model_dump_json() for tx in picked]

    base = json.loads(by_outcome["allow"][0].model_dump_json())
    quiet = {"tx_count_1h": 0.0, "small_tx_count_1h": 0.0, "new_counterparties_24h": 0.0, "device_changed": 0.0,
             "country_changed": 0.0, "amount_ratio_30d": 1.0, "seconds_since_last": 3600.0,
             "wallet_age_days": 30.0, "history_len": 10.0, "inflow_sum_24h": 0.0, "outflow_to_inflow_24h": 0.0,
             "seconds_since_last_inflow": 86400.0, "cp_fraud_30d": 0.0, "cp_new_wallets_1h": 0.0,
             "device_fraud_30d": 0.0, "device_new_wallets_24h": 0.0, "wallet_fraud_30d": 0.0, "is_new_device": 0.0,
             "device_new_wallets_1h": 0.0, "in_new_payers_24h": 0.0, "in_fraud_30d": 0.0}
    calm = _fire({**base, "type": "payment"}, **quiet)
    fire = [  # each reason rule alone, at and past its threshold
        {"amount_ratio_30d": 4.0}, {"amount_ratio_30d": 12.345},
        {"new_counterparties_24h": 4.0}, {"new_counterparties_24h": 1.0, "history_len": 0.0},
        {"tx_count_1h": 5.0}, {"small_tx_count_1h": 3.0}, {"small_tx_count_1h": 1.0},
        {"seconds_since_last_inflow": 600.0, "inflow_sum_24h": 50.0},
        {"seconds_since_last_inflow": 0.0, "inflow_sum_24h": 50.0},
        {"outflow_to_inflow_24h": 0.9, "inflow_sum_24h": 50.0}, {"outflow_to_inflow_24h": 250.0, "inflow_sum_24h": 1.0},
        {"device_changed": 1.0}, {"country_changed": 1.0}, {"seconds_since_last": 10.0},
        {"seconds_since_last": 0.0}, {"wallet_age_days": 0.5}, {"wallet_age_days": 0.0, "history_len": 1.0},
        {"cp_fraud_30d": 2.0}, {"cp_fraud_30d": 1.0}, {"cp_new_wallets_1h": 5.0}, {"device_fraud_30d": 1.0},
        {"device_new_wallets_24h": 3.0}, {"device_new_wallets_24h": 1.0}, {"wallet_fraud_30d": 1.0},
        {"is_new_device": 1.0}, {"device_new_wallets_1h": 3.0}, {"device_new_wallets_1h": 2.0},
        {"in_new_payers_24h": 5.0}, {"in_new_payers_24h": 4.0}, {"in_fraud_30d": 1.0},
        # several at once: ranking by deviation, ties kept in rule order, at most three
        {"tx_count_1h": 10.0, "new_counterparties_24h": 8.0, "amount_ratio_30d": 8.0, "device_changed": 1.0},
        {"device_changed": 1.0, "country_changed": 1.0, "device_fraud_30d": 1.0, "wallet_fraud_30d": 1.0,
         "cp_fraud_30d": 2.0, "small_tx_count_1h": 3.0},
        {"tx_count_1h": 5.0, "new_counterparties_24h": 4.0, "amount_ratio_30d": 4.0, "cp_new_wallets_1h": 5.0},
    ]
    singles += [_compact(_fire(calm, **f)) for f in fire]
    withdrawal = {**calm, "type": "withdrawal", "channel": "atm"}
    top_up = {**calm, "type": "top_up", "channel": "web"}
    singles += [_compact(withdrawal), _compact(top_up),
                _compact(_fire(top_up, seconds_since_last_inflow=0.0, inflow_sum_24h=50.0))]
    # Edge values: float32 range, optional device absent / null, timestamps with offsets and fractions.
    no_device = {k: v for k, v in calm.items() if k != "device_id"}
    singles += [
        _compact(_fire(calm, amount_sum_7d=1e39, amount_sum_24h=3.5e38)),  # beyond float32: inf, as the matrix path
        _compact(_fire({**calm, "amount": 1_000_000.0}, amount_ratio_30d=1e6)),
        _compact({**calm, "amount": 1e-9}),
        _compact(no_device), _compact({**calm, "device_id": None}),
        _compact({**calm, "timestamp": "2026-03-01T23:59:59.999999+05:30"}),
        _compact({**calm, "timestamp": "2026-03-01T00:00:00Z", "amount": 12}),
        json.dumps(calm, indent=2),  # whitespace in the body
    ]
    requests: list[dict[str, Any]] = []

    def add(**req: Any) -> None:
        requests.append({"method": "POST", "path": "/score", "ctype": JSON_CT, "headers": {}, **req})

    for i, body in enumerate(singles):
        headers = {}
        if i % 5 == 1:
            headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
        elif i % 5 == 2:
            headers = {"X-Cloud-Trace-Context": f"{TRACE_ID}/{1000 + i};o=1"}
        elif i % 5 == 3:
            headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-00",
                       "X-Cloud-Trace-Context": f"{TRACE_ID}/5;o=1"}
        add(body=body, headers=headers)
    n = len(singles)
    add(path="/score/batch", batch_of=list(range(n)))
    add(path="/score/batch", batch_of=[n - 1, 0, 3, 3, 2], headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
    add(path="/score/batch", batch_of=[5])
    # Bad requests: every status the routes and the transport give.
    bad = json.loads(singles[0])
    bad["amount"], bad["currency"] = -5, "XXX"
    del bad["features"]["tx_count_1h"]
    extra = {**json.loads(singles[1]), "surprise": 1}
    nan = singles[2].replace('"amount":', '"amount":NaN,"x":', 1)
    future = {**json.loads(singles[3]), "timestamp": "2999-01-01T00:00:00Z"}
    for body in ("{not json", "", "[1, 2]", "null", _compact(bad), _compact(extra), nan, _compact(future),
                 '{"transactions": []}'):
        add(body=body)
    add(body_bytes_hex=b'{"transaction_id": "\xff\xfe"}'.hex())
    add(body=singles[0], ctype="text/plain")
    add(body=singles[0], ctype=None)
    add(body=singles[0], ctype="application/merge-patch+json")
    add(body=singles[0], ctype="application/json; charset=utf-8")
    add(path="/score/batch", body='{"transactions": []}')
    add(path="/score/batch", batch_of=[0] * 1001)  # over MAX_BATCH
    add(body_repeat=["x", 4 * 1024 * 1024 + 1])  # over MAX_BODY_BYTES
    add(path="/score/", body=singles[0])
    for method, path in (("GET", "/score"), ("PUT", "/health"), ("GET", "/nope"), ("POST", "/"),
                         ("GET", "/health"), ("HEAD", "/health"), ("GET", "/openapi.json"), ("DELETE", "/model")):
        add(method=method, path=path, body=None, ctype=None)
    return requests


def body_of(req: dict[str, Any], requests: list[dict[str, Any]]) -> bytes | None:
    """The request's body bytes (batches are built from the corpus's single bodies, joined)."""
    if "batch_of" in req:
        return b'{"transactions":[' + b",".join(requests[i]["body"].encode() for i in req["batch_of"]) + b"]}"
    if "body_bytes_hex" in req:
        return bytes.fromhex(req["body_bytes_hex"])
    if "body_repeat" in req:
        text, count = req["body_repeat"]
        return text.encode() * count
    return None if req.get("body") is None else req["body"].encode()


# Replaying ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def captured_stdout() -> Iterator[io.StringIO]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        yield out


def request_lines(text: str) -> list[str]:
    """The request log lines (logger txguard.score) in captured stdout."""
    return [line for line in text.splitlines() if line.startswith("{") and '"logger":"txguard.score"' in line]


def recorded(status: int, headers: dict[str, str], body: bytes, log: list[str]) -> dict[str, Any]:
    masked = mask(body)
    out: dict[str, Any] = {"status": status, "headers": headers}
    if len(masked) > LARGE:
        out["body_sha256"] = hashlib.sha256(masked).hexdigest()
    else:
        out["body"] = masked.decode("utf-8", errors="backslashreplace")
    out["log"] = [mask(line.encode()).decode() for line in log]
    return out


RESPONSE_HEADERS = ("Content-Type", "Allow")


def replay_client(client: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each request through a functions-framework test client, with what it answered and logged."""
    out = []
    for req in requests:
        kwargs: dict[str, Any] = {"method": req["method"], "headers": req["headers"]}
        data = body_of(req, requests)
        if data is not None:
            kwargs["data"] = data
        if req["ctype"] is not None:
            kwargs["content_type"] = req["ctype"]
        with captured_stdout() as stdout:
            resp = client.open(req["path"], **kwargs)
        headers = {k: resp.headers[k] for k in RESPONSE_HEADERS if k in resp.headers}
        out.append(recorded(resp.status_code, headers, resp.data, request_lines(stdout.getvalue())))
    return out


def model_client(registry: Path) -> Any:
    """The scoring function in process (a fresh import of functions/score/main.py), on `registry`."""
    import functions_framework

    from txguard.contract import names
    from txguard.contract.settings import scoring_settings

    scoring_settings.cache_clear()
    app = functions_framework.create_app(target=names.SCORING_ENTRY_POINT,
                                         source=str(ROOT / "functions" / "score" / "main.py"), signature_type="http")
    return app.test_client()


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


def record() -> Path:
    """Build the requests, replay them on the code as it is, write the corpus."""
    import os
    import tempfile

    from tests.scoring_fixtures import publish_tiny

    requests = build_requests()
    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "registry"
        publish_tiny(registry)
        env = {"MODEL_URI": f"{registry}@production", "MODEL_POLL_S": "0", "DRIFT_WINDOW_S": "0"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            answers = replay_client(model_client(registry), requests)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    CORPUS.write_text("".join(json.dumps({"request": req, "response": ans}, separators=(",", ":")) + "\n"
                              for req, ans in zip(requests, answers, strict=True)))
    return CORPUS


if __name__ == "__main__":
    path = record()
    print(f"{path.relative_to(ROOT)}: {sum(1 for _ in load())} requests, {path.stat().st_size:,} bytes")
