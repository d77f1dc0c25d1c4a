"""HTTP client of the scoring function: one keep-alive session, ID-token auth in Google Cloud.

Errors are split by who can fix them. Connection errors, timeouts, 5xx, 429 and the statuses that
describe the deployment rather than the message (401/403 auth, 404 wrong URL, 408) are
`ScoringUnavailableError`: retryable, Pub/Sub redelivers and finally dead-letters, so nothing is
lost while scoring is down or misconfigured. Any other 4xx means scoring read the transaction and
refused it (400/413/415/422): `ScoringRejectedError`, permanent, parked on the invalid topic.
Each call carries the delivery's trace, so the scoring function's line joins the transaction's.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Protocol

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter

from txguard.contract.errors import ScoringRejectedError, ScoringUnavailableError
from txguard.contract.models import DECISION_ADAPTER, Decision, EnrichedTransaction
from txguard.contract.settings import EnrichSettings
from txguard.contract.trace import TraceContext, current

RETRYABLE_STATUSES = frozenset({401, 403, 404, 408, 429})
TOKEN_REFRESH_MARGIN_S = 300.0  # refresh an ID token this long before it expires
EMULATOR_VARS = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


class ScoringBackend(Protocol):
    """What the pipeline and the console's manual scoring call to score: the HTTP `ScoringClient`,
    or an in-process scorer (local tools, tests)."""

    def score(self, tx: EnrichedTransaction) -> Decision:
        """The decision; an HTTP backend sends `txguard.contract.trace.current()` along."""
        ...


def use_id_token(mode: str, environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """`auto` means: in Google Cloud (K_SERVICE is set) and not against emulators."""
    if mode == "id_token":
        return True
    if mode == "none":
        return False
    return bool(environ.get("K_SERVICE")) and not any(environ.get(v) for v in EMULATOR_VARS)


def _jwt_expiry(token: str) -> float:
    """`exp` of a JWT without verifying it (we only need to know when to fetch a new one)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return float(json.loads(base64.urlsafe_b64decode(payload))["exp"])
    except (IndexError, KeyError, ValueError, TypeError):
        return time.time() + 600.0  # unknown: refresh in 10 minutes


class IdTokenSource:
    """An ID token for `audience`, cached until near expiry; thread-safe."""

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self._token: str | None = None
        self._expiry = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expiry - TOKEN_REFRESH_MARGIN_S:
                import google.auth.exceptions
                import google.auth.transport.requests
                import google.oauth2.id_token

                try:
                    token = google.oauth2.id_token.fetch_id_token(
                        google.auth.transport.requests.Request(), self.audience
                    )
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise ScoringUnavailableError(f"cannot fetch an ID token: {exc}") from exc
                self._token, self._expiry = token, _jwt_expiry(token)
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None


class ScoringClient:
    def __init__(self, url: str, timeout_s: float = 5.0, auth: str = "auto", pool_size: int = 16) -> None:
        self.url = url.rstrip("/") + "/score"
        self.timeout_s = timeout_s
        self.tokens = IdTokenSource(url.rstrip("/")) if use_id_token(auth) else None
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def from_settings(cls, settings: EnrichSettings) -> ScoringClient:
        return cls(settings.scoring_url, settings.scoring_timeout_s, settings.scoring_auth)

    def score(self, tx: EnrichedTransaction, trace: TraceContext | None = None) -> Decision:
        """`trace` (by default the current one, bound by the pipeline for the delivery) goes as
        `traceparent` and `X-Cloud-Trace-Context`: scoring logs the same trace."""
        trace = trace or current()
        headers = {"Content-Type": "application/json", **(trace.headers() if trace else {})}
        if self.tokens is not None:
            headers["Authorization"] = f"Bearer {self.tokens.token()}"
        try:
            resp = self.session.post(self.url, data=tx.model_dump_json(), headers=headers,
                                     timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise ScoringUnavailableError(f"scoring unreachable: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUSES:
            if resp.status_code == 401 and self.tokens is not None:
                self.tokens.invalidate()
            raise ScoringUnavailableError(f"scoring answered {resp.status_code}: {resp.text[:300]}")
        if resp.status_code >= 400:
            raise ScoringRejectedError(resp.status_code, resp.text[:800])
        return self._decision(resp.content)

    @staticmethod
    def _decision(body: bytes) -> Decision:
        """A `Decision`, or the first of a `BatchResponse` (either shape is accepted)."""
        try:
            return DECISION_ADAPTER.validate_json(body)
        except ValidationError as first:
            try:
                data = json.loads(body)
                if isinstance(data, dict) and isinstance(data.get("decisions"), list) and data["decisions"]:
                    return DECISION_ADAPTER.validate_python(data["decisions"][0])
            except (ValueError, ValidationError):
                pass
            # A scoring bug, not the message's fault: retry, then dead-letter for a replay.
            raise ScoringUnavailableError(f"scoring answered an invalid decision: {first}") from first

    def close(self) -> None:
        self.session.close()
