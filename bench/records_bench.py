"""Cost of delivery records on the local store (issue 17: "well under a millisecond each").

Each message costs what ``deliver_once`` does to its record: one read (is it sent already?), the claim
written right before the provider call and the outcome written right after. Measured without a provider
call, over fresh keys (a first-time send), wall and CPU time per message and per store operation.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path


def measure(messages: int = 500, repeats: int = 3, root: Path | None = None, backend: str = "outbox") -> dict:
    """``backend``: "outbox" (no fsync) or "ses" (each claim fsynced before the provider call)."""
    from flows.delivery.records import DeliveryKey, LocalRecordStore, Record, timestamp_now

    walls, cpus = [], []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory(prefix="exec-reports-records-", dir=root) as folder:
            store = LocalRecordStore(Path(folder))
            keys = [DeliveryKey("2026-W47", f"tenant-{n % 100}", "gm", "", f"gm{n}@tenant.example")
                    for n in range(messages)]
            store.get(backend, keys[0])  # opening the store is per run, not per record
            wall, cpu = time.perf_counter(), time.process_time()
            for key in keys:
                current = store.get(backend, key)
                claim = Record(key, "sending", backend, f"run-{repeat}", timestamp_now(), lease_until=timestamp_now())
                version = store.write(claim, current.version if current else None)
                store.write(Record(key, "sent", backend, f"run-{repeat}", timestamp_now(), location="x.eml"), version)
            walls.append((time.perf_counter() - wall) / messages * 1000)
            cpus.append((time.process_time() - cpu) / messages * 1000)
    return {"backend": backend, "messages": messages, "repeats": repeats, "wall_ms_per_message": statistics.median(walls),
            "cpu_ms_per_message": statistics.median(cpus),
            "wall_ms_per_operation": statistics.median(walls) / 3, "cpu_ms_per_operation": statistics.median(cpus) / 3}


def measure_both(messages: int = 500, repeats: int = 3) -> dict:
    return {"outbox": measure(messages, repeats, backend="outbox"), "ses": measure(messages, repeats, backend="ses")}


def result_rows(results: dict) -> list[str]:
    outbox, ses = results["outbox"], results["ses"]
    ok = outbox["wall_ms_per_message"] < 1
    return [f"| 7 | delivery records, local store ({outbox['messages']} messages: read, claim, outcome) | outbox: "
            f"{outbox['wall_ms_per_message']:.3f} ms wall / {outbox['cpu_ms_per_message']:.3f} ms CPU per message "
            f"({outbox['wall_ms_per_operation']:.3f} ms per operation); SES (claim fsynced before the call): "
            f"{ses['wall_ms_per_message']:.3f} ms wall / {ses['cpu_ms_per_message']:.3f} ms CPU per message | "
            f"well under 1 ms per record | {'met' if ok else 'MISSED'} |"]


if __name__ == "__main__":
    import json

    print(json.dumps(measure_both(), indent=1))
