"""The column dtypes opskit's frames promise, written out here rather than read from opskit, so
a change to a frame's shape fails a test instead of passing silently."""

from __future__ import annotations

EVENT_DTYPES = {"ts": "datetime64[ns, UTC]", "time_nano": "int64", "type": "category",
                "action": "category", "base_action": "category", "detail": "str",
                "actor_id": "str", "name": "category", "exit_code": "Int64",
                "attributes": "object", "host": "category", "kind": "category"}
STATS_DTYPES = {"ts": "datetime64[ns, UTC]", "id": "category", "name": "category",
                "cpu_pct": "float64", "mem_used": "int64", "mem_limit": "int64",
                "mem_pct": "float64", "net_rx": "int64", "net_tx": "int64", "blk_read": "int64",
                "blk_write": "int64", "pids": "int64"}
