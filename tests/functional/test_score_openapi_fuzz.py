"""Property-based run of every operation in /openapi.json against the function: never a 5xx.

schemathesis generates valid and invalid bodies from the generated OpenAPI document (the
same pydantic models the code validates with) and checks status codes, no server errors and
response bodies against the document. Bounded: a few examples per operation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.scoring_fixtures import publish_tiny
from txguard.contract import names
from txguard.contract.codes import COUNTRIES, CURRENCIES
from txguard.contract.models import MAX_AMOUNT, Channel, CounterpartyFeatures, HistoryFeatures, TxType
from txguard.contract.settings import scoring_settings
from txguard.scoring.openapi import openapi_document

SOURCE = str(Path(__file__).resolve().parents[2] / "functions" / "score" / "main.py")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    registry = tmp_path_factory.mktemp("fuzz") / "registry"
    publish_tiny(registry)
    mp = pytest.MonkeyPatch()
    mp.setenv("MODEL_URI", f"{registry}@production")
    scoring_settings.cache_clear()
    yield functions_framework.create_app(target=names.SCORING_ENTRY_POINT, source=SOURCE, signature_type="http")
    mp.undo()
    scoring_settings.cache_clear()


# The document is static (built from the pydantic models, no model needed): load it directly.
schema = schemathesis.openapi.from_dict(openapi_document())


def test_the_served_document_is_the_generated_one(app: Any) -> None:
    assert app.test_client().get("/openapi.json").get_json() == openapi_document()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx(case: Any, app: Any) -> None:
    case.call_and_validate(app=app, checks=[not_a_server_error, status_code_conformance,
                                            response_schema_conformance])


# schemathesis rarely builds a fully valid transaction (ISO codes, identifiers, time bounds are
# checked beyond the JSON Schema), so valid ones with extreme values are generated here.
_finite = st.floats(min_value=0.0, max_value=1e300, allow_nan=False, allow_infinity=False)
_ident = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:\-]{0,20}\Z")


@st.composite
def valid_transactions(draw: st.DrawFn) -> dict[str, Any]:
    features = {name: draw(_finite) for name in HistoryFeatures.model_fields}
    features["amount_zscore_30d"] = draw(st.floats(-1e300, 1e300, allow_nan=False))
    ts = draw(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime.now() - timedelta(days=1),
                           timezones=st.just(UTC)))
    return {
        "transaction_id": draw(_ident), "wallet_id": draw(_ident), "counterparty_id": draw(_ident),
        "amount": draw(st.floats(min_value=1e-9, max_value=MAX_AMOUNT, allow_nan=False)),
        "currency": draw(st.sampled_from(sorted(CURRENCIES))),
        "type": draw(st.sampled_from([t.value for t in TxType])),
        "channel": draw(st.sampled_from([c.value for c in Channel])),
        "country": draw(st.sampled_from(sorted(COUNTRIES))),
        "device_id": draw(st.one_of(st.none(), _ident)),
        "timestamp": ts.isoformat(),
        "features": features,
        "counterparty": {name: draw(_finite) for name in CounterpartyFeatures.model_fields},
    }


@given(tx=valid_transactions())
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_valid_transaction_gets_a_decision(app: Any, tx: dict[str, Any]) -> None:
    resp = app.test_client().post("/score", data=json.dumps(tx), content_type="application/json")
    assert resp.status_code == 200, resp.data
    body = resp.get_json()
    assert 0.0 <= body["score"] <= 1.0 and body["outcome"] in ("allow", "review", "block")
    assert len(body["reasons"]) <= 3
