"""What the offline store learns from its Parquet files' footers, reading no row: how many
rows files hold, and which hold the newest event times (split from stores.offline)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pyarrow.parquet as pq


def file_rows(files: Iterable[object]) -> int:
    """The rows ``files`` hold (their footers' counts)."""
    return sum(pq.read_metadata(f).num_rows for f in files)


def newest_files(files: list[str], start_epoch: float, rows: int) -> list[str]:
    """The files holding the newest event times (their footers' statistics) until they hold
    ``rows`` rows at or after ``start_epoch`` (counted as whole files: an upper bound); a file
    without statistics counts as newest (read, never skipped)."""
    seen = []
    for f in files:
        md = pq.read_metadata(f)
        at = md.schema.to_arrow_schema().get_field_index("epoch")
        newest = -math.inf
        for g in range(md.num_row_groups):
            st = md.row_group(g).column(at).statistics if at >= 0 else None
            newest = max(newest, st.max if st is not None and st.has_min_max else math.inf)
        seen.append((newest, md.num_rows, f))
    seen.sort(key=lambda t: t[0], reverse=True)
    out, n = [], 0
    for newest, count, f in seen:
        if n >= rows or newest < start_epoch:
            break
        out.append(f)
        n += count
    return sorted(out)
