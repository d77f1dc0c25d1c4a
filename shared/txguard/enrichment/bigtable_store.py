"""What every Bigtable-backed enrichment store shares: opening its table and what "unavailable" means.

The counterparty store, the transaction index and the label review each hold one table of one
`BigtableDataClient`. A store given a client (so that several stores share one connection pool)
leaves it open on `close`; a store that opened its own client closes it. Every operation sets the
same timeout, and any of `UNAVAILABLE` becomes a `StoreUnavailableError` (retried by the delivery's
caller) through `unavailable`.
"""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud.bigtable.data import BigtableDataClient
from google.cloud.bigtable.data import exceptions as btexc

from txguard.contract.errors import StoreUnavailableError

UNAVAILABLE = (gexc.GoogleAPIError, btexc.MutationsExceptionGroup, btexc.RetryExceptionGroup)


def unavailable(exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(f"bigtable: {type(exc).__name__}: {exc}")


class BigtableStore:
    def __init__(self, client: BigtableDataClient | None, *, project: str | None, instance: str, table: str,
                 timeout_s: float) -> None:
        self._own_client = client is None
        self.client = client or BigtableDataClient(project=project)
        self.table = self.client.get_table(instance, table, default_operation_timeout=timeout_s,
                                           default_read_rows_operation_timeout=timeout_s,
                                           default_mutate_rows_operation_timeout=timeout_s)

    def close(self) -> None:
        if self._own_client:
            self.client.close()
