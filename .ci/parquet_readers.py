"""Real readers on poe's Parquet: pyarrow and DuckDB open the golden bundle, see the documented
types (decimals, UTC timestamps, dictionary strings), and DuckDB's per-rollup notional equals
the figure `poe audit --json` recomputed from the AIR integers.

usage: python3 .ci/parquet_readers.py <day dir> <audit json>
"""
import decimal
import glob
import json
import os
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

day_dir, audit_json = sys.argv[1], sys.argv[2]
audit = json.load(open(audit_json))
assert audit["passed"], "the audit itself failed"

utc_us = pa.timestamp("us", tz="UTC")
dict8 = pa.dictionary(pa.int8(), pa.string())
dict32 = pa.dictionary(pa.int32(), pa.string())
expected = {
    "day": pa.date32(),
    "rollup": pa.string(),
    "batch_seq": pa.uint64(),
    "op_kind": dict8,
    "timestamp": utc_us,
    "instrument": dict32,
    "expiry": utc_us,
    "strike": pa.decimal128(19, 2),
    "option_type": dict8,
    "qty": pa.decimal128(19, 4),
    "price": pa.decimal128(19, 2),
    "amount": pa.decimal128(19, 6),
    "buyer_fee": pa.decimal128(19, 6),
    "notional": pa.decimal128(38, 6),
    "air_x": pa.uint64(),
}
parts = sorted(glob.glob(os.path.join(day_dir, "trades", "rollup=*", "part-*.parquet")))
assert parts, "no trades files"
rows = 0
for path in parts:
    f = pq.ParquetFile(path)
    meta = {k.decode(): v.decode() for k, v in f.metadata.metadata.items()}
    assert meta["poe.day"] == audit["day"], meta
    assert f.metadata.row_group(0).column(0).statistics is not None, "no statistics"
    assert f.metadata.row_group(0).column(0).has_offset_index, "no page index"
    assert f.metadata.row_group(0).column(0).compression == "ZSTD"
    t = pq.read_table(path)
    for name, typ in expected.items():
        got = t.schema.field(name).type
        assert got == typ, f"{path}: {name} is {got}, expected {typ}"
    trades = t.filter(pa.compute.equal(t["op_kind"].cast(pa.string()), "trade"))
    # notional is exactly qty x price (contracts x per-contract price).
    for q, p, n in zip(trades["qty"].to_pylist()[:50], trades["price"].to_pylist()[:50],
                       trades["notional"].to_pylist()[:50]):
        assert q * p == n, (q, p, n)
    ts = t["timestamp"].to_pylist()[0]
    assert ts.tzinfo is not None and ts.utcoffset().total_seconds() == 0
    rows += t.num_rows

st = pq.read_table(os.path.join(day_dir, "statements.parquet"))
assert st.schema.field("accepted_at").type == utc_us
assert sum(st["n_ops"].to_pylist()) == rows, "statements and trades disagree on the row count"

con = duckdb.connect()
got = dict(con.execute(
    "SELECT rollup, SUM(notional) FROM read_parquet(?, hive_partitioning = false) "
    "WHERE op_kind = 'trade' GROUP BY rollup ORDER BY rollup",
    [os.path.join(day_dir, "trades", "*", "*.parquet")],
).fetchall())
want = {r["rollup"]: decimal.Decimal(r["notional"]) for r in audit["rollups"]}
assert got == want, f"duckdb {got} != poe {want}"
kinds = con.execute(
    "SELECT typeof(price), typeof(timestamp), typeof(instrument) FROM read_parquet(?) LIMIT 1",
    [parts[0]],
).fetchone()
assert kinds[0] == "DECIMAL(19,2)" and kinds[1] == "TIMESTAMP WITH TIME ZONE", kinds
print(f"pyarrow {pa.__version__} and duckdb {duckdb.__version__}: {len(parts)} trades files, "
      f"{rows} rows, types as documented; per-rollup notional equals poe's: {want}")
