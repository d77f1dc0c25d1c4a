"""The counterparty store: a Bigtable instance, the `counterparty` table, the transaction index, their
families and their GC.

The layout is docs/counterparty.md's ("Layout") and the same as
`txguard.local.bigtable.ensure_counterparty_table` creates on the emulator; both read the family
names and retention days from `txguard.contract.names`:

| family | holds | type | garbage collection |
|---|---|---|---|
| `a` | the counters (AddToCell) | aggregate, Sum of int64 | cells older than `COUNTERPARTY_RETENTION_DAYS` (35) |
| `m` | markers (exactly once) | plain | same age |
| `l` | per-transaction label ledgers | plain | 1 version or `LABEL_LEDGER_RETENTION_DAYS` (180) |
| `q` | labels per source, fraud labels per counterparty, per minute (limits) | plain | `LABEL_RATES_RETENTION_DAYS` (2) |
| `h` | labels held for review | plain | `LABEL_HELD_RETENTION_DAYS` (180) |
| `r` | read marks: the latest 5-minute slot read per row (late updates) | plain | 1 version or 35 days |

and the `transaction_index` table (family `x`: one 33-byte record per transaction, 1 version or
`TRANSACTION_INDEX_RETENTION_DAYS`, 180, counted from the transaction's time): what every label is
checked against, kept as long as a label may come while the processed records expire after 7 days.

Cells of a day row are stamped with that day (txguard.enrichment.counterparty.bigtable), so max
age drops whole days once no feature reads them: the store stays at about 35 days of rows.
Delete protection follows `forceDestroy`, as for the Firestore database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.services import child_options
from txguard.contract import names

# The column family type of the counters, as the Admin API's `Type` message in JSON: an aggregate
# that sums int64 inputs (big-endian, the encoding AddToCell and the readers use).
SUM_OF_INT64 = json.dumps({"aggregateType": {"inputType": {"int64Type": {"encoding": {"bigEndianBytes": {}}}},
                                             "sum": {}}}, separators=(",", ":"))
HOURS_PER_DAY = 24


def max_age(days: int) -> gcp.bigtable.GCPolicyMaxAgeArgs:
    return gcp.bigtable.GCPolicyMaxAgeArgs(duration=f"{days * HOURS_PER_DAY}h")


class CounterpartyStore(pulumi.ComponentResource):
    """One Bigtable instance with one cluster, the counterparty table and its GC policies."""

    def __init__(self, name: str, cfg: StackConfig, depends_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:CounterpartyStore", name, None, opts)
        store = cfg.counterparty
        child = child_options(self, depends_on)
        if store.autoscaling:
            scaling = {"autoscaling_config": gcp.bigtable.InstanceClusterAutoscalingConfigArgs(
                min_nodes=store.min_nodes or 1, max_nodes=store.max_nodes, cpu_target=store.cpu_target)}
        else:
            scaling = {"num_nodes": store.nodes}
        self.instance = gcp.bigtable.Instance(
            "counterparty",
            name=store.instance,
            project=cfg.project,
            display_name="txguard counterparty aggregates",
            clusters=[gcp.bigtable.InstanceClusterArgs(
                cluster_id=f"{store.instance}-c1", zone=store.zone, storage_type=store.storage_type, **scaling)],
            deletion_protection=not cfg.force_destroy,
            labels=cfg.labels,
            opts=child,
        )
        self.table = gcp.bigtable.Table(
            "counterparty",
            name=store.table,
            project=cfg.project,
            instance_name=self.instance.name,
            column_families=[
                gcp.bigtable.TableColumnFamilyArgs(family=names.COUNTERPARTY_COUNTERS_FAMILY, type=SUM_OF_INT64),
                gcp.bigtable.TableColumnFamilyArgs(family=names.COUNTERPARTY_MARKERS_FAMILY),
                gcp.bigtable.TableColumnFamilyArgs(family=names.COUNTERPARTY_LEDGER_FAMILY),
                gcp.bigtable.TableColumnFamilyArgs(family=names.LABEL_RATES_FAMILY),
                gcp.bigtable.TableColumnFamilyArgs(family=names.LABEL_HELD_FAMILY),
                gcp.bigtable.TableColumnFamilyArgs(family=names.COUNTERPARTY_READS_FAMILY),
            ],
            deletion_protection="UNPROTECTED" if cfg.force_destroy else "PROTECTED",
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.index_table = gcp.bigtable.Table(
            "transaction-index",
            name=store.index_table,
            project=cfg.project,
            instance_name=self.instance.name,
            column_families=[gcp.bigtable.TableColumnFamilyArgs(family=names.TRANSACTION_INDEX_FAMILY)],
            deletion_protection="UNPROTECTED" if cfg.force_destroy else "PROTECTED",
            opts=pulumi.ResourceOptions(parent=self),
        )

        def gc(family: str, table: gcp.bigtable.Table | None = None, name: str | None = None,
               **rule: object) -> gcp.bigtable.GCPolicy:
            # ABANDON: a GC policy goes with its table; deleting it first would only be refused or useless.
            return gcp.bigtable.GCPolicy(
                name or f"gc-{family}", project=cfg.project, instance_name=self.instance.name,
                table=(table or self.table).name, column_family=family, deletion_policy="ABANDON",
                opts=pulumi.ResourceOptions(parent=self), **rule)

        self.gc_policies = [
            gc(names.COUNTERPARTY_COUNTERS_FAMILY, max_age=max_age(names.COUNTERPARTY_RETENTION_DAYS)),
            gc(names.COUNTERPARTY_MARKERS_FAMILY, max_age=max_age(names.COUNTERPARTY_RETENTION_DAYS)),
            gc(names.COUNTERPARTY_LEDGER_FAMILY, mode="UNION",
               max_versions=[gcp.bigtable.GCPolicyMaxVersionArgs(number=1)],
               max_age=max_age(names.LABEL_LEDGER_RETENTION_DAYS)),
            gc(names.LABEL_RATES_FAMILY, max_age=max_age(names.LABEL_RATES_RETENTION_DAYS)),
            gc(names.LABEL_HELD_FAMILY, max_age=max_age(names.LABEL_HELD_RETENTION_DAYS)),
            gc(names.TRANSACTION_INDEX_FAMILY, self.index_table, "gc-transaction-index", mode="UNION",
               max_versions=[gcp.bigtable.GCPolicyMaxVersionArgs(number=1)],
               max_age=max_age(names.TRANSACTION_INDEX_RETENTION_DAYS)),
            gc(names.COUNTERPARTY_READS_FAMILY, mode="UNION",
               max_versions=[gcp.bigtable.GCPolicyMaxVersionArgs(number=1)],
               max_age=max_age(names.COUNTERPARTY_RETENTION_DAYS)),
        ]
        self.register_outputs({"instance": self.instance.name, "table": self.table.name,
                               "index_table": self.index_table.name})
