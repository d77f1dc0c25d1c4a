"""Same answers byte for byte: the recorded scoring corpus replayed on the code as it is now.

`tests/events/scoring_corpus.jsonl` was recorded before the request path was made cheaper
(tests/scoring_corpus.py says how and when to record it again). Every request is replayed through
functions-framework (the deployed path) and through `ScoringService.handle` (replays, benches):
status, response headers, body and the request's log line must equal the recorded ones, with only
the per-request timings and the log time masked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import scoring_corpus as corpus
from tests.scoring_fixtures import publish_tiny
from txguard.contract.settings import scoring_settings

ENTRIES = corpus.load()
REQUESTS = [e["request"] for e in ENTRIES]


def _ids() -> list[str]:
    return [f"{i:02d}-{r['method']}-{r['path'].strip('/').replace('/', '_') or 'root'}" for i, r in enumerate(REQUESTS)]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "registry"
    publish_tiny(path)
    return path


@pytest.fixture(scope="module")
def answers(registry: Path) -> Iterator[list[dict[str, Any]]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODEL_URI", f"{registry}@production")
        mp.setenv("MODEL_POLL_S", "0")
        mp.setenv("DRIFT_WINDOW_S", "0")
        yield corpus.replay_client(corpus.model_client(registry), REQUESTS)
    scoring_settings.cache_clear()


def test_the_corpus_covers_what_the_path_does() -> None:
    statuses = {e["response"]["status"] for e in ENTRIES}
    assert {200, 400, 404, 405, 413, 415, 422} <= statuses
    bodies = " ".join(e["response"].get("body", "") for e in ENTRIES)
    for outcome in ("allow", "review", "block"):
        assert f'"outcome":"{outcome}"' in bodies
    from txguard.scoring.reasons import RULES

    fired = {rule.code for rule in RULES if any(_text_of(rule, e) for e in ENTRIES)}
    assert fired == {rule.code for rule in RULES}, "every reason rule fires somewhere in the corpus"


def _text_of(rule: Any, entry: dict[str, Any]) -> bool:
    """Whether `rule` gave one of the entry's reasons (its text, numbers and plurals aside)."""
    import json
    import re

    from txguard.features.wallet import FEATURE_NAMES

    body = entry["response"].get("body", "")
    if entry["response"]["status"] != 200 or not body.startswith('{"transaction_id"'):
        return False
    reasons = json.loads(body.replace(":#", ":0"))["reasons"]  # the masked timings

    def shape(text: str) -> str:  # numbers and plurals aside
        return re.sub(r"(?<=[a-z])(s|ies)\b", "", re.sub(r"[0-9.%]+", "#", text))

    words = shape(rule.text([0.0] * len(FEATURE_NAMES)))
    return any(shape(r) == words for r in reasons)


@pytest.mark.parametrize("i", range(len(ENTRIES)), ids=_ids())
def test_functions_framework_answers_as_recorded(answers: list[dict[str, Any]], i: int) -> None:
    assert answers[i] == ENTRIES[i]["response"], REQUESTS[i]


def test_the_service_in_process_answers_as_recorded(registry: Path) -> None:
    """The same corpus through `ScoringService.handle` without a web server (header names as given)."""
    from txguard.contract.settings import ScoringSettings
    from txguard.scoring.http import BytesBody
    from txguard.scoring.service import ScoringService

    service = ScoringService.load(ScoringSettings(MODEL_URI=f"{registry}@production", MODEL_POLL_S=0,
                                                  DRIFT_WINDOW_S=0))
    try:
        for req, entry in zip(REQUESTS, ENTRIES, strict=True):
            data = corpus.body_of(req, REQUESTS)
            headers = dict(req["headers"])
            if req["ctype"] is not None:
                headers["Content-Type"] = req["ctype"]
            with corpus.captured_stdout() as out:
                resp = service.handle(req["method"], req["path"], headers, BytesBody(data or b""))
            expected = entry["response"]
            got = corpus.recorded(resp.status, {k: v for k, v in resp.headers.items() if k in corpus.RESPONSE_HEADERS},
                                  b"" if req["method"] == "HEAD" else resp.body, corpus.request_lines(out.getvalue()))
            if "body_sha256" in expected:
                assert got.get("body_sha256") == expected["body_sha256"], req["path"]
            assert got == expected, req
    finally:
        service.close()


def test_masking_keeps_everything_but_the_timings() -> None:
    raw = b'{"score":0.5,"timings":{"inference_us":3.2,"total_us":17.0},"time":"2026-01-01T00:00:00.000Z"}'
    assert corpus.mask(raw) == b'{"score":0.5,"timings":{"inference_us":#,"total_us":#},"time":"#"}'
    assert hashlib.sha256(corpus.mask(raw)).hexdigest() != hashlib.sha256(raw).hexdigest()
