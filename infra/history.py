"""The Firestore (native mode) database behind the enrichment history store, and its TTL policy."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.services import child_options
from txguard.contract import names
from txguard.features.wallet import WalletState

TTL_FIELD = "expires_at"

# Fields of the two collections that nothing queries: the enrichment reads documents by id only.
# Firestore indexes every field by default; each index entry is one more write per update, and the
# wallet's `ts` array always holds "now" (a sequential indexed value, capped near 500 writes/s per
# collection). Exempting them keeps one wallet update one document write. A map field's exemption
# covers its subfields (`counterparties.<id>`).
WALLET_FIELDS: tuple[str, ...] = tuple(WalletState().to_dict())
PROCESSED_FIELDS: tuple[str, ...] = ("wallet_id", "fingerprint", "transaction", "features", "late", "counterparty", "decision",
                                     "entities", "event_time")
# The one query on processed records (`txguard late-updates decisions`: the decisions at an entity within a
# window of event times, HistoryStore.processed_at) is served by one composite index; the single-field
# indexes of its two fields stay exempted (a composite index does not need them).
ENTITY_TIME_INDEX: tuple[tuple[str, str], ...] = (("entities", "CONTAINS"), ("event_time", "ASCENDING"))


class HistoryDatabase(pulumi.ComponentResource):
    """Delete protection is on unless `forceDestroy` (dev): the history is what the features come from.

    The TTL policy lets Firestore delete processed-transaction markers (idempotency records) once
    `expires_at` has passed; the enrichment function writes that field `processedTtlDays` ahead.
    The field is also excluded from single-field indexes: a monotonically increasing indexed
    timestamp is a write hotspot, and nothing queries it. So are all the other fields of both
    collections (`WALLET_FIELDS`, `PROCESSED_FIELDS`): documents are read by id, except for one query
    served by one composite index (`ENTITY_TIME_INDEX`: the decisions at a counterparty, device or
    wallet within a window of event times, to find those a late counterparty update missed). Its
    entries start with the entity, so only one counterparty's own records are sequential in it.
    """

    def __init__(self, name: str, cfg: StackConfig, depends_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:HistoryDatabase", name, None, opts)
        child = child_options(self, depends_on)
        self.database = gcp.firestore.Database(
            "history",
            name=cfg.firestore_database,
            project=cfg.project,
            location_id=cfg.firestore_location,
            type="FIRESTORE_NATIVE",
            delete_protection_state="DELETE_PROTECTION_DISABLED" if cfg.force_destroy
            else "DELETE_PROTECTION_ENABLED",
            deletion_policy="DELETE" if cfg.force_destroy else "ABANDON",
            opts=child,
        )
        self.ttl_field = None
        if cfg.ttl_policy:
            self.ttl_field = gcp.firestore.Field(
                "processed-ttl",
                project=cfg.project,
                database=self.database.name,
                collection=names.PROCESSED_COLLECTION,
                field=TTL_FIELD,
                ttl_config=gcp.firestore.FieldTtlConfigArgs(),
                index_config=gcp.firestore.FieldIndexConfigArgs(indexes=[]),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.index_exemptions = [
            gcp.firestore.Field(
                f"no-index-{collection.replace('_', '-')}-{field_name.replace('_', '-')}",
                project=cfg.project,
                database=self.database.name,
                collection=collection,
                field=field_name,
                index_config=gcp.firestore.FieldIndexConfigArgs(indexes=[]),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for collection, fields in ((names.WALLETS_COLLECTION, WALLET_FIELDS),
                                       (names.PROCESSED_COLLECTION, PROCESSED_FIELDS))
            for field_name in fields
        ]
        self.entity_time_index = gcp.firestore.Index(
            "processed-by-entity-and-time",
            project=cfg.project,
            database=self.database.name,
            collection=names.PROCESSED_COLLECTION,
            query_scope="COLLECTION",
            fields=[gcp.firestore.IndexFieldArgs(field_path=path, array_config=mode)
                    if mode == "CONTAINS" else gcp.firestore.IndexFieldArgs(field_path=path, order=mode)
                    for path, mode in ENTITY_TIME_INDEX],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"database": self.database.name})
