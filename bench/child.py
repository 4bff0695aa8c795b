"""One measured pipeline run in its own process: ``python -m bench.child plain|flow|floor CONFIG PERIOD``.

``floor`` is the work no implementation can skip on the same data: reading every input file once (CSV
with the csv module, workbooks with openpyxl, the rest as bytes) and rendering each message's final
HTML once from metrics gathered beforehand (untimed); nothing else (no parsing into figures, no
delivery, no records, no orchestration).

Prints one JSON line: elapsed seconds and message counts. The parent reads the peak RSS from the
kernel (wait4), so the number covers the whole process, imports included.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    mode, config_path, period_label = sys.argv[1:4]
    if mode == "floor":
        from bench.floor import measure_floor

        elapsed, messages = measure_floor(config_path, period_label)
        print(json.dumps({"elapsed": elapsed, "sent": messages, "failed": 0}))
        return
    if mode == "plain":
        from flows.core.config import load_config
        from flows.core.period import parse_period
        from flows.delivery import get_backend
        from flows.delivery.records import open_record_store
        from flows.orchestrator.run import run_plain
        from flows.orchestrator.summary import run_folder_name

        started = time.perf_counter()  # like the flow's figure, which loads the config inside the run
        config = load_config(config_path)
        period = parse_period(period_label)
        # The same work as the flow: deliver through the outbox and keep delivery records.
        run = run_folder_name(period)
        # resend: every repeat does a first-time send's work, not a re-run's skip.
        # keep_messages=False: like the flow, only outcomes are kept once a message is delivered.
        summary, _ = run_plain(config, period, backend=get_backend(config, run), records=open_record_store(config),
                               run=run, resend=True, keep_messages=False)
        elapsed = time.perf_counter() - started
    else:
        from flows.flow import run_locally, run_summary

        started = time.perf_counter()  # the run as `exec-reports run` runs it (the project's Prefect settings)
        state = run_locally(config=config_path, period=period_label, resend=True)
        elapsed = time.perf_counter() - started
        summary = run_summary(state)
    print(json.dumps({"elapsed": elapsed, "sent": len(summary["sent"]), "failed": len(summary["failed"])}))


if __name__ == "__main__":
    main()
