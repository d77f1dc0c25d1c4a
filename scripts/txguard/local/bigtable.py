"""Create the counterparty table and the transaction index on the Bigtable emulator (tests, the local
stack, benchmarks).

The families and their garbage collection come from `txguard.contract.names`, the same values the
Pulumi program declares in the cloud (infra/counterparty.py, docs/counterparty.md).
"""

from __future__ import annotations

from google.api_core import exceptions as gexc

from txguard.contract import names

DAY_SECONDS = 24 * 3600


def ensure_counterparty_table(project: str, instance: str = names.BIGTABLE_INSTANCE,
                              table: str = names.COUNTERPARTY_TABLE) -> bool:
    """Create the table if missing (BIGTABLE_EMULATOR_HOST or ADC); True when created."""
    from google.cloud.bigtable_admin_v2.types import ColumnFamily, GcRule, Table, Type

    int64 = Type(int64_type=Type.Int64())
    counters_age = {"seconds": names.COUNTERPARTY_RETENTION_DAYS * DAY_SECONDS}
    families = {
        names.COUNTERPARTY_COUNTERS_FAMILY: ColumnFamily(
            gc_rule=GcRule(max_age=counters_age),
            value_type=Type(aggregate_type=Type.Aggregate(input_type=int64, sum=Type.Aggregate.Sum()))),
        names.COUNTERPARTY_MARKERS_FAMILY: ColumnFamily(gc_rule=GcRule(max_age=counters_age)),
        names.COUNTERPARTY_LEDGER_FAMILY: ColumnFamily(gc_rule=GcRule(union=GcRule.Union(rules=[
            GcRule(max_num_versions=1),
            GcRule(max_age={"seconds": names.LABEL_LEDGER_RETENTION_DAYS * DAY_SECONDS})]))),
        names.LABEL_RATES_FAMILY: ColumnFamily(gc_rule=GcRule(
            max_age={"seconds": names.LABEL_RATES_RETENTION_DAYS * DAY_SECONDS})),
        names.LABEL_HELD_FAMILY: ColumnFamily(gc_rule=GcRule(
            max_age={"seconds": names.LABEL_HELD_RETENTION_DAYS * DAY_SECONDS})),
        names.COUNTERPARTY_READS_FAMILY: ColumnFamily(gc_rule=GcRule(union=GcRule.Union(rules=[
            GcRule(max_num_versions=1), GcRule(max_age=counters_age)]))),
    }
    return _create(project, instance, table, Table(column_families=families))


def ensure_transaction_index(project: str, instance: str = names.BIGTABLE_INSTANCE,
                             table: str = names.TRANSACTION_INDEX_TABLE) -> bool:
    """The transaction index table (one family, one version kept TRANSACTION_INDEX_RETENTION_DAYS)."""
    from google.cloud.bigtable_admin_v2.types import ColumnFamily, GcRule, Table

    family = ColumnFamily(gc_rule=GcRule(union=GcRule.Union(rules=[
        GcRule(max_num_versions=1),
        GcRule(max_age={"seconds": names.TRANSACTION_INDEX_RETENTION_DAYS * DAY_SECONDS})])))
    return _create(project, instance, table, Table(column_families={names.TRANSACTION_INDEX_FAMILY: family}))


def ensure_tables(project: str, instance: str = names.BIGTABLE_INSTANCE) -> None:
    """Every table the functions use: the counterparty table and the transaction index."""
    ensure_counterparty_table(project, instance)
    ensure_transaction_index(project, instance)


def _create(project: str, instance: str, table: str, spec: object) -> bool:
    client, admin = _admin(project)
    try:
        admin.create_table(parent=f"projects/{project}/instances/{instance}", table_id=table, table=spec)
        return True
    except gexc.AlreadyExists:
        return False
    finally:
        client.close()


def drop_tables(project: str, instance: str = names.BIGTABLE_INSTANCE) -> None:
    """Drop what `ensure_tables` created."""
    drop_counterparty_table(project, instance)
    drop_counterparty_table(project, instance, names.TRANSACTION_INDEX_TABLE)


def drop_counterparty_table(project: str, instance: str = names.BIGTABLE_INSTANCE,
                            table: str = names.COUNTERPARTY_TABLE) -> None:
    client, admin = _admin(project)
    try:
        admin.delete_table(name=f"projects/{project}/instances/{instance}/tables/{table}")
    except gexc.NotFound:
        pass
    finally:
        client.close()


def _admin(project: str):  # noqa: ANN202 - (Client, its table admin client)
    """The classic client knows BIGTABLE_EMULATOR_HOST (no credentials needed); its admin client is
    the generated one."""
    import warnings

    from google.cloud import bigtable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Connecting to Bigtable emulator at ..."
        client = bigtable.Client(project=project, admin=True)
    return client, client.table_admin_client
