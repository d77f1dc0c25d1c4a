"""Model registry: `open_registry("gs://bucket/prefix")` or a local folder, same layout and API.

Imported by the serving path: no scikit-learn here, and google-cloud-storage is imported only
when a gs:// registry is opened.
"""

from __future__ import annotations

from txguard.registry.core import LATEST, PRODUCTION, STAGING, AliasRecord, LoadedModel, Registry
from txguard.registry.store import BlobStore, GcsBlobStore, LocalBlobStore

__all__ = [
    "LATEST",
    "PRODUCTION",
    "STAGING",
    "AliasRecord",
    "BlobStore",
    "LoadedModel",
    "Registry",
    "open_registry",
    "parse_model_uri",
]


def parse_model_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/prefix@production` -> ("gs://bucket/prefix", "production"); no `@` -> production."""
    location, sep, ref = uri.rpartition("@")
    if not sep or not ref or "/" in ref:
        return uri.rstrip("/") if uri != "/" else uri, PRODUCTION
    return location.rstrip("/"), ref


def open_registry(location: str) -> Registry:
    """`gs://...` -> Cloud Storage backend; anything else is a local folder."""
    if location.startswith("gs://"):
        return Registry(GcsBlobStore(location))
    return Registry(LocalBlobStore(location))
