"""SES throughput: N messages through the real SES backend (rate limiter, retries, delivery records)
against moto's server, counting what arrives at the server per one-second window.

moto reports the same quota for every account (MaxSendRate 1/s, 200 a day) and has no API to change
it, so this process patches moto's quota model to report the configured MaxSendRate: the backend then
learns the rate exactly as it would from a real account (GetSendQuota), not from a shortcut.
"""

from __future__ import annotations

import collections
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SENDER = "reports@holdings.example"


def measure(messages: int = 1000, rate: float = 50, workers: int = 8) -> dict:
    import boto3
    import moto.ses.models as ses_models
    from moto.server import ThreadedMotoServer

    from flows.core.config import SesConfig
    from flows.delivery.message import Email
    from flows.delivery.records import LocalRecordStore, deliver_once
    from flows.delivery.ses import SesBackend

    arrivals: list[float] = []
    arrivals_lock = threading.Lock()
    original_quota_init = ses_models.SESQuota.__init__
    original_send_raw = ses_models.SESBackend.send_raw_email

    def quota_init(self, sent):
        original_quota_init(self, sent)
        self.max_send_rate, self.max24_hour_send = rate, 1_000_000

    def counting_send_raw(self, *args, **kwargs):
        with arrivals_lock:
            arrivals.append(time.monotonic())
        return original_send_raw(self, *args, **kwargs)

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server would log every request
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    ses_models.SESQuota.__init__ = quota_init
    ses_models.SESBackend.send_raw_email = counting_send_raw
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("ses", endpoint_url=endpoint, region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
        settings = SesConfig(region="us-east-1", endpoint_url=endpoint, check_account_enabled=False)
        emails = [Email(subject=f"Report {i}", html=f"<p>report {i}</p>", text=f"report {i}", from_address=SENDER,
                        to=(f"reader{i:04d}@holdings.example",), role="cfo", tenant="portfolio", period="2026-W47")
                  for i in range(messages)]
        with tempfile.TemporaryDirectory() as tmp:
            store = LocalRecordStore(Path(tmp) / "records")

            def run_once(run: str) -> tuple[float, int]:
                backend = SesBackend(settings, SENDER)  # a new run: preflight reads the quota again
                backend.preflight()
                before = len(arrivals)
                started = time.monotonic()
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    results = list(pool.map(lambda email: deliver_once(backend, email, store, run=run), emails))
                elapsed = time.monotonic() - started
                failed = [r for r in results if r.status == "failed"]
                if failed:
                    raise RuntimeError(f"{len(failed)} sends failed, first: {failed[0].error}")
                return elapsed, len(arrivals) - before

            elapsed, sent = run_once("first")
            first_arrivals = list(arrivals)
            _, resent = run_once("re-run")
    finally:
        server.stop()
        ses_models.SESQuota.__init__ = original_quota_init
        ses_models.SESBackend.send_raw_email = original_send_raw

    windows = collections.Counter(int((t - first_arrivals[0]) // 1) for t in first_arrivals)
    # Sliding one-second windows too, not only aligned buckets: the limit holds for any second.
    ordered, most, start = sorted(first_arrivals), 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    achieved = sent / elapsed
    return {"messages": sent, "rate": rate, "elapsed_s": elapsed, "achieved_rate": achieved,
            "ratio": achieved / rate, "max_in_one_second": most, "max_in_aligned_second": max(windows.values()),
            "duplicates": resent, "workers": workers}


if __name__ == "__main__":
    import json

    print(json.dumps(measure(200, 50), indent=2))
