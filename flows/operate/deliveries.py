"""Operator view of the delivery records: ``exec-reports deliveries unknown --period P``.

Lists the messages of a period whose delivery state is unknown (a run claimed them right before the
provider call and ended without recording the outcome), each with the selector that resends exactly
it (``exec-reports run --resend --only <selector>``), and the messages another run is sending right
now. A claim whose run is no longer running is unknown at once, as the next run finds it: its process on
this machine is gone (the run's marker), or the orchestrator says the run ended (Crashed, Failed, ...);
only when neither can tell does the claim's lease decide. Reads the record store, the markers and at
most the run's state: no provider call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flows.core.config import PortfolioConfig
from flows.core.period import Period
from flows.delivery.records import (
    Record,
    RecordStore,
    RunLiveness,
    claim_is_over,
    is_unknown,
    open_record_store,
)
from flows.orchestrator.local_runs import LocalRunMarkers


@dataclass
class PeriodDeliveries:
    period: str
    backend: str
    store: str
    unknown: list[Record]
    in_flight: list[Record]
    counts: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        def row(record: Record) -> dict[str, Any]:
            return {"selector": record.key.label, "report": record.key.role, "variant": record.key.variant,
                    "tenant": record.key.tenant, "recipient": record.key.recipient, "state": record.state,
                    "run": record.run, "run_name": record.run_name, "claimed_at": record.updated_at,
                    "lease_until": record.lease_until, "reason": record.reason}

        return {"period": self.period, "backend": self.backend, "store": self.store, "counts": self.counts,
                "unknown": [row(r) for r in self.unknown], "in_flight": [row(r) for r in self.in_flight]}


def run_liveness(markers: LocalRunMarkers | None = None, orchestrator: RunLiveness | None = None) -> RunLiveness:
    """Is the run holding a claim over? True when this machine's CLI started it and its process is gone
    (killed before it could mark itself Crashed), False while that process lives; otherwise what the
    orchestrator says of the run (ended, running, or None: cannot tell, and the lease decides)."""

    def run_is_over(run_id: str) -> bool | None:
        marker = markers.find(run_id) if markers is not None else None
        if marker is not None:
            return not marker.process_is_alive()
        return orchestrator(run_id) if orchestrator is not None else None

    return run_is_over


def period_deliveries(config: PortfolioConfig, period: Period, store: RecordStore | None = None,
                      run_is_over: RunLiveness | None = None) -> PeriodDeliveries:
    store = store or open_record_store(config)
    backend = config.delivery.backend
    records = store.list(backend, period.label)
    over: dict[str, bool | None] = {}  # asked once per run, however many messages it claimed

    def ended(run_id: str) -> bool | None:
        if run_id not in over:
            over[run_id] = run_is_over(run_id) if run_is_over is not None else None
        return over[run_id]

    unknown = sorted((r for r in records if is_unknown(r, ended)), key=lambda r: r.key.label)
    in_flight = sorted((r for r in records if r.state == "sending" and not claim_is_over(r, ended)),
                       key=lambda r: r.key.label)
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    return PeriodDeliveries(period.label, backend, repr(store), unknown, in_flight, counts)


def print_unknown(deliveries: PeriodDeliveries, *, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(deliveries.as_json(), indent=2))
        return
    counts = ", ".join(f"{count} {state}" for state, count in sorted(deliveries.counts.items())) or "no records"
    print(f"exec-reports · period {deliveries.period} · {deliveries.backend} · {deliveries.store} · {counts}")
    if not deliveries.unknown:
        print("no message of this period has an unknown delivery state")
    else:
        print(f"{len(deliveries.unknown)} message(s) with an unknown delivery state (the run below started the "
              "provider call and ended, or was killed, without recording the outcome). Check the provider's sending log "
              "(SES: the configuration set's event destination, or ask the recipient); resend the ones that "
              "did not arrive:")
        rows = [("SELECTOR", "RUN", "CLAIMED AT (UTC)")]
        rows += [(r.key.label, r.run_name or r.run, r.updated_at) for r in deliveries.unknown]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        selectors = " ".join(f"--only {r.key.label}" for r in deliveries.unknown)
        print(f"\nresend all of them:\n  exec-reports run --period {deliveries.period} --delivery "
              f"{deliveries.backend} --resend {selectors}")
    if deliveries.in_flight:
        print(f"\n{len(deliveries.in_flight)} message(s) being sent right now (a live claim; not unknown):")
        for record in deliveries.in_flight:
            print(f"  {record.key.label}  by {record.who} until {record.lease_until}")
