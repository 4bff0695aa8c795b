"""Runs this machine's CLI started: one marker file per flow run in progress, so a run whose process
was killed (SIGKILL, power loss) is found by the next command, marked Crashed and alerted on, and
never stays Running forever. The flow writes the marker; the CLI clears it and finds the orphans."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

# Set by the CLI for the run it starts: the folder the run writes its marker into.
LOCAL_RUN_MARKERS_ENV = "EXEC_REPORTS_LOCAL_RUN_MARKERS"


def _process_start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: a pid reused later has another one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class LocalRun:
    flow_run_id: str
    pid: int
    process_start: str | None

    def process_is_alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return self.process_start is None or _process_start_ticks(self.pid) == self.process_start


class LocalRunMarkers:
    """One small file per flow run that a CLI process on this machine is executing.

    The run writes its marker when it starts and the CLI removes it when the run returns. A marker whose
    process is gone belongs to a run that was killed (SIGKILL, power loss): the next command marks that
    run Crashed in Prefect and sends its alert, so no run stays Running forever."""

    def __init__(self, folder: Path):
        self.folder = folder

    def mark(self, flow_run_id: str, pid: int | None = None) -> None:
        pid = pid or os.getpid()
        self.folder.mkdir(parents=True, exist_ok=True)
        run = LocalRun(flow_run_id, pid, _process_start_ticks(pid))
        (self.folder / f"{flow_run_id}.json").write_text(json.dumps(asdict(run)) + "\n", encoding="utf-8")

    def clear(self, flow_run_id: str) -> None:
        (self.folder / f"{flow_run_id}.json").unlink(missing_ok=True)

    def find(self, flow_run_id: str) -> LocalRun | None:
        """The marker of this run, if a CLI on this machine started it and has not cleared it."""
        try:
            return LocalRun(**json.loads((self.folder / f"{flow_run_id}.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def orphaned(self) -> list[LocalRun]:
        """Runs whose process is gone without having cleared its marker."""
        if not self.folder.is_dir():
            return []
        orphans = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                run = LocalRun(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)  # a marker cut short by the kill itself names no run
                continue
            if not run.process_is_alive():
                orphans.append(run)
        return orphans
