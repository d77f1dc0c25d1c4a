"""Who is asking: the analyst behind a request.

In Google Cloud the console sits behind Identity-Aware Proxy (docs/console.md): IAP signs in the
members of the analysts group and adds a signed assertion (`X-Goog-IAP-JWT-Assertion`, ES256) to
every request. With `IAP_AUDIENCE` set, a request without a valid assertion for that audience is
refused (401) even if it reached the service some other way: the IAM grants are the first wall,
this is the second. Locally there is no IAP: the analyst's name is a cookie the page sets (two
browser profiles are two analysts), sanitised to the characters a label's `source` allows.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from txguard.contract.errors import AuthenticationError

IAP_ASSERTION_HEADER = "X-Goog-IAP-JWT-Assertion"
IAP_CERTS_URL = "https://www.gstatic.com/iap/verify/public_key"  # {key id: PEM public key}
IAP_ISSUER = "https://cloud.google.com/iap"
ANALYST_COOKIE = "txguard_analyst"
DEFAULT_ANALYST = "analyst"
CERTS_TTL_S = 3600.0
CERTS_MIN_REFETCH_S = 60.0  # an unknown key id triggers at most one fetch a minute
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@:\-]")

CertsFetcher = Callable[[], dict[str, str]]


def clean_name(raw: str | None) -> str:
    """A local analyst name: letters, digits and `_.@:-`, at most 48 characters."""
    name = _UNSAFE.sub("", (raw or "").strip())[:48]
    return name or DEFAULT_ANALYST


def fetch_iap_certs() -> dict[str, str]:
    import requests

    resp = requests.get(IAP_CERTS_URL, timeout=5)
    resp.raise_for_status()
    return dict(resp.json())


class Identity:
    """`analyst(headers, cookies)` -> the analyst's id; AuthenticationError when IAP is required and absent."""

    def __init__(self, iap_audience: str = "", fetch_certs: CertsFetcher = fetch_iap_certs) -> None:
        self.iap_audience = iap_audience
        self._fetch_certs = fetch_certs
        self._certs: dict[str, str] = {}
        self._fetched = 0.0
        self._lock = threading.Lock()

    @property
    def requires_iap(self) -> bool:
        return bool(self.iap_audience)

    def analyst(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> str:
        if not self.requires_iap:
            return clean_name(cookies.get(ANALYST_COOKIE))
        token = headers.get(IAP_ASSERTION_HEADER)
        if not token:
            raise AuthenticationError("not signed in: this console is reached through Identity-Aware Proxy only")
        claims = self.verify(token)
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            raise AuthenticationError("the IAP assertion names no user")
        return email.removeprefix("accounts.google.com:")

    def verify(self, token: str) -> Mapping[str, Any]:
        import google.auth.exceptions
        from google.auth import jwt

        try:
            claims = jwt.decode(token, certs=self._certs_for(token), audience=self.iap_audience)
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            raise AuthenticationError(f"the IAP assertion does not verify: {exc}") from exc
        if claims.get("iss") != IAP_ISSUER:
            raise AuthenticationError(f"the IAP assertion has issuer {claims.get('iss')!r}, not {IAP_ISSUER}")
        return claims

    def _certs_for(self, token: str) -> dict[str, str]:
        """IAP's public keys, cached for an hour; refetched early when a token names an unknown key
        (IAP rotates them), at most once a minute so that made-up key ids cannot flood the fetch."""
        from google.auth import jwt

        try:
            kid = jwt.decode_header(token).get("kid")  # unverified: only to pick the key
        except ValueError as exc:
            raise AuthenticationError(f"the IAP assertion is not a JWT: {exc}") from exc
        with self._lock:
            age = time.monotonic() - self._fetched
            if age > CERTS_TTL_S or (kid not in self._certs and (not self._certs or age > CERTS_MIN_REFETCH_S)):
                try:
                    self._certs = self._fetch_certs()
                except Exception as exc:  # noqa: BLE001 - cannot verify: refuse, never let through
                    raise AuthenticationError(f"cannot fetch IAP's public keys: {exc}") from exc
                self._fetched = time.monotonic()
            return dict(self._certs)
