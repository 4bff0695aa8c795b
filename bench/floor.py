"""The work floor of a run (see bench/child.py): read every input file with the fastest plain reader and
render each message's final HTML once. Plain and flow runs are reported as multiples of it."""

from __future__ import annotations

import csv
import time
from pathlib import Path


def read_every_input_file(data_folder: Path) -> int:
    rows = 0
    for path in sorted(data_folder.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows += sum(1 for _ in csv.reader(handle))
        elif path.suffix in (".xlsx", ".xlsm"):
            import openpyxl

            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
            rows += sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True))
            workbook.close()
        else:
            rows += len(path.read_bytes()) > 0
    return rows


def measure_floor(config_path: str, period_label: str) -> tuple[float, int]:
    """Seconds of (reading every input file + rendering each message once), and the message count."""
    from flows.core.config import load_config
    from flows.core.period import parse_period
    from flows.gather.gather import gather_all
    from flows.plan.definitions import load_definitions
    from flows.plan.plan import plan_run
    from flows.render.report import ReportSkipped, build_report

    config = load_config(config_path)
    period = parse_period(period_label)
    definitions, problems = load_definitions(config.reports_path)
    plan = plan_run(config, definitions, period, definition_problems=problems)
    values = gather_all(config, plan)  # not timed: the floor renders from figures already at hand
    data_folders = {Path(config.base_dir) / "data"}
    started = time.perf_counter()
    for folder in data_folders:
        read_every_input_file(folder)
    messages = 0
    for instance in plan.instances:
        for definition in instance.all_definitions:
            try:
                build_report(instance, values, config, period, definition=definition, draw_charts=False)
            except ReportSkipped:
                continue
            messages += 1
    return time.perf_counter() - started, messages
