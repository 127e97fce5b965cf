"""DuckDB reads poe's archive straight over HTTP from `poe serve` (issue 19): its httpfs asks
the size with HEAD, then reads the Parquet footer and pages by byte range; one path goes
percent-encoded. Every query over HTTP must equal the same query on the local file.

usage: python3 .ci/duckdb_http.py <host:port> <day dir>

Runs in its own virtualenv with DuckDB 1.5.5 and the httpfs build packaged for it on PyPI
(`duckdb-extension-httpfs`): the machine has no route to DuckDB's extension repository.
"""
import glob
import os
import sys
import urllib.parse

import duckdb
import duckdb_extension_httpfs

addr, day_dir = sys.argv[1], sys.argv[2]
day = os.path.basename(os.path.normpath(day_dir))
ext = glob.glob(
    os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions", "*", "httpfs.duckdb_extension")
)
assert len(ext) == 1, ext
con = duckdb.connect()
con.sql(f"LOAD '{ext[0]}'")

QUERY = "SELECT count(*), sum(qty), sum(notional), min(epoch_us(timestamp)), max(epoch_us(timestamp)) FROM read_parquet('{}')"
files = sorted(glob.glob(os.path.join(day_dir, "trades", "*", "*.parquet")))
assert files, "no trades files"
for i, local in enumerate(files):
    rel = os.path.relpath(local, day_dir)
    # Every other file percent-encoded, as generated clients send it.
    path = urllib.parse.quote(rel, safe="") if i % 2 else rel
    url = f"http://{addr}/v1/days/{day}/files/{path}"
    over_http = con.sql(QUERY.format(url)).fetchall()
    on_disk = con.sql(QUERY.format(local)).fetchall()
    assert over_http == on_disk, (rel, over_http, on_disk)
    assert over_http[0][0] > 0, rel
    print(f"duckdb over http: {rel} ({'encoded' if i % 2 else 'plain'}): {over_http[0][0]} rows, equal to the local file")
