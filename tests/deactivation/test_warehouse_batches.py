"""`query_batches`, on DuckDB and on BigQuery (the local emulator): every row of a query, in order,
as Arrow record batches no larger than asked, and a bad query is a WarehouseError."""

from __future__ import annotations

import pyarrow as pa
import pytest

from deactivation.schemas import DEACTIVATIONS
from deactivation.warehouse import WarehouseError

ROWS = 25


def test_query_batches_streams_every_row_in_order_in_bounded_batches(warehouse) -> None:
    batches = list(
        warehouse.query_batches(
            "SELECT n, CONCAT('e', CAST(n AS STRING)) AS event_id FROM UNNEST(GENERATE_ARRAY(1, @rows)) AS n "
            "WHERE n > @above ORDER BY n DESC",
            {"rows": ROWS, "above": 0},
            rows_per_batch=10,
        )
    )

    assert all(isinstance(batch, pa.RecordBatch) for batch in batches)
    assert max(batch.num_rows for batch in batches) <= 10
    events = [value for batch in batches for value in batch.column("event_id").to_pylist()]
    assert events == [f"e{n}" for n in range(ROWS, 0, -1)]


def test_query_batches_reports_a_bad_query_as_a_warehouse_error(warehouse) -> None:
    warehouse.ensure_tables([DEACTIVATIONS])
    with pytest.raises(WarehouseError):
        list(warehouse.query_batches("SELECT no_such_column FROM deactivations"))
