"""End to end, as an operator does it: a real `prefect server` (PostgreSQL), a work pool, `prefect deploy
--all`, a real worker, `prefect deployment run`, then the outbox, artifacts and schedules are checked.

Everything started here is stopped at the end, also when a test fails.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from flows.devtools.prefect_server import PREFECT, LocalPrefectServer
from tests.conftest import PROJECT_ROOT, SAMPLE_PERIOD, load_script

LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@dataclass
class PrefectStack:
    project: Path
    server: LocalPrefectServer

    @property
    def env(self) -> dict[str, str]:
        env = self.server.client_env()
        env.pop("EXEC_REPORTS_CONFIG", None)
        # Flow runs that deliver through SES reach moto's server (the session's) with dummy credentials.
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        return env

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run([PREFECT, *args], cwd=self.project, env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def api(self, method: str, path: str, **kwargs) -> object:
        response = httpx.request(method, f"{self.server.api_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def run_deployment(self, name: str, *params: str) -> str:
        args = ["deployment", "run", name]
        for param in params:
            args += ["--param", param]
        output = self.cli(*args).stdout
        match = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
        assert match, output
        return match.group(1)

    def wait_for(self, flow_run_id: str, timeout: float = 300) -> dict:
        try:
            return self.server.wait_for_flow_run(flow_run_id, timeout)
        except TimeoutError as exc:
            pytest.fail(str(exc))


@pytest.fixture(scope="module")
def stack(tmp_path_factory, moto_endpoint):
    root = tmp_path_factory.mktemp("e2e")
    project = root / "project"
    project.mkdir()
    for name in ("flows", "sources", "reports", "examples"):
        shutil.copytree(PROJECT_ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "prefect.yaml", project / "prefect.yaml")
    server = LocalPrefectServer(root / "server", database_prefix="exec_reports_e2e", extra_env={
        "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2"})
    try:
        server.start()
        stack = PrefectStack(project, server)
        stack.cli("work-pool", "create", "exec-reports", "--type", "process")
        stack.cli("--no-prompt", "deploy", "--all")
        server.spawn([PREFECT, "worker", "start", "--pool", "exec-reports", "--type", "process"], cwd=project,
                     log_name="worker.log", env=stack.env)
        yield stack
    finally:
        server.stop()


def outbox_folders(stack: PrefectStack) -> set[Path]:
    outbox = stack.project / "outbox"
    return set(outbox.iterdir()) if outbox.exists() else set()


def artifact_keys(stack: PrefectStack, flow_run_id: str) -> set[str]:
    artifacts = stack.api("POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    return {artifact["key"] for artifact in artifacts if artifact["key"]}


def test_an_ad_hoc_deployment_run_delivers_the_chosen_roles(stack):
    before = outbox_folders(stack)
    run_id = stack.run_deployment("send-exec-reports/weekly", f"period={SAMPLE_PERIOD}", 'roles=["cfo","ceo"]')
    run = stack.wait_for(run_id)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["name"].startswith(f"{SAMPLE_PERIOD} cfo,ceo")
    [folder] = outbox_folders(stack) - before
    assert sorted(p.name for p in folder.glob("*.eml")) == [
        "portfolio-ceo--ceo-holdings-example.eml", "portfolio-cfo--cfo-holdings-example.eml"]
    keys = artifact_keys(stack, run_id)
    assert {"exec-reports-deliveries", "reports-cfo", "reports-ceo"} <= keys


def test_a_dry_run_of_a_past_period_sends_nothing(stack):
    before = outbox_folders(stack)
    run_id = stack.run_deployment("send-exec-reports/monthly-finance", "period=2026-09", "dry_run=true")
    run = stack.wait_for(run_id)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["name"] == "2026-09 cfo,accounting (dry run)"
    assert outbox_folders(stack) == before
    deliveries = stack.api("POST", "/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["exec-reports-deliveries"]}}})
    rows = json.loads(deliveries[0]["data"])
    assert sorted((row["report"], row["status"]) for row in rows) == [("accounting", "dry-run"), ("cfo", "dry-run")]


def test_a_deployment_run_without_a_period_reports_on_the_one_its_schedule_implies(stack):
    """Issue 28: `monthly-finance` run without a period reported on 2026-W47, a week: the sample config's
    default_period won over the deployment's period_kind. default_period is for local runs only."""
    from flows.core.period import previous_period

    for name, kind in (("monthly-finance", "month"), ("weekly", "week")):
        run_id = stack.run_deployment(f"send-exec-reports/{name}", "dry_run=true", 'roles=["cfo"]')
        run = stack.wait_for(run_id)
        scheduled = dt.datetime.fromisoformat(run["expected_start_time"]).astimezone(LOS_ANGELES).date()
        expected = previous_period(kind, scheduled).label
        assert expected != SAMPLE_PERIOD
        assert run["name"] == f"{expected} cfo (dry run)", run["state"]
        [deliveries] = stack.api("POST", "/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["exec-reports-deliveries"]}}})
        assert {row["period"] for row in json.loads(deliveries["data"])} == {expected}


def test_schedules_are_registered_with_next_runs_in_their_timezone(stack):
    expectations = {"weekly": lambda t: t.weekday() == 0, "monthly-finance": lambda t: t.day == 1}
    for name, on_the_right_day in expectations.items():
        deployment = stack.api("GET", f"/deployments/name/send-exec-reports/{name}")
        [schedule] = deployment["schedules"]
        assert schedule["schedule"]["timezone"] == "America/Los_Angeles"
        deadline = time.monotonic() + 90
        while True:
            runs = stack.api("POST", "/flow_runs/filter", json={"flow_runs": {
                "deployment_id": {"any_": [deployment["id"]]}, "state": {"type": {"any_": ["SCHEDULED"]}}}})
            if runs or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert runs, f"the scheduler created no runs for {name}"
        starts = sorted(dt.datetime.fromisoformat(r["expected_start_time"]).astimezone(LOS_ANGELES) for r in runs)
        now = dt.datetime.now(LOS_ANGELES)
        assert starts[0] > now
        for start in starts:
            assert (start.hour, start.minute) == (7, 0) and on_the_right_day(start), start
        # The next one is the first matching day after now, not a later one.
        assert (starts[0] - now) <= (dt.timedelta(days=7) if name == "weekly" else dt.timedelta(days=31))


# ---- issue 18: the Lambda trigger's zip, without Prefect, against this server --------------------------------

LAMBDA_BUILD = PROJECT_ROOT / "deploy" / "lambda" / "build_package.py"
HEAVY_PACKAGES = ("prefect", "pydantic", "yaml", "jinja2", "markdown_it", "premailer", "openpyxl", "httpx")
JWT_ISSUER, JWT_AUDIENCE = "https://auth.holdings.example/", "exec-reports"

# Runs in the fresh interpreter: the events from stdin through the unpacked zip's handler.
CALL_HANDLER = """
import importlib.util, json, sys
given = json.load(sys.stdin)
importable = [name for name in given["heavy"] if importlib.util.find_spec(name) is not None]
import flows.trigger.handler
responses = [flows.trigger.handler.handler(event, None) for event in given["events"]]
print(json.dumps({"importable": importable, "responses": responses,
                  "loaded": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def load_build_script():
    return load_script(LAMBDA_BUILD)


def test_the_lambda_zip_is_small_imports_without_prefect_and_starts_a_deployment_run(stack, tmp_path):
    import uuid
    import zipfile

    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    # Built as `make lambda-package` builds it.
    zip_path = tmp_path / "exec-reports-trigger.zip"
    build = subprocess.run([sys.executable, str(LAMBDA_BUILD), "--output", str(zip_path),
                            "--work-dir", str(tmp_path / "lambda")], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    assert zip_path.stat().st_size <= 50 * 1024 * 1024
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "task")
    tops = {name.split("/")[0] for name in names}
    assert {"flows", "sources", "jwt", "cryptography"} <= tops and not tops & {*HEAVY_PACKAGES, "boto3", "botocore"}
    packager = load_build_script()
    assert {name for name in names if name.startswith(("flows/", "sources/")) and name.endswith(".py")} == set(
        packager.TRIGGER_MODULES)

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = tmp_path / "jwt-public.pem"
    public_pem.write_bytes(private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    now = int(time.time())
    token = jwt.encode({"iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "iat": now, "exp": now + 600, "sub": "dashboard",
                        "roles": ["*"], "tenants": ["*"]}, private_key, algorithm="RS256")
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_API_URL": stack.server.api_url,
                   "EXEC_REPORTS_JWT_ISSUER": JWT_ISSUER, "EXEC_REPORTS_JWT_AUDIENCE": JWT_AUDIENCE,
                   "EXEC_REPORTS_JWT_PUBLIC_KEY_FILE": str(public_pem),
                   "EXEC_REPORTS_DEPLOYMENT": "send-exec-reports/weekly"}
    api_event = {"version": "2.0", "rawPath": "/reports/run", "headers": {"authorization": f"Bearer {token}"},
                 "requestContext": {"http": {"method": "POST", "path": "/reports/run"}, "requestId": "e2e-1"},
                 "isBase64Encoded": False,
                 "body": json.dumps({"roles": ["cfo"], "period": SAMPLE_PERIOD, "dry_run": True})}
    # An EventBridge schedule two days ahead: a Scheduled run the worker leaves alone; delivered twice.
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    scheduled_event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                       "source": "aws.events", "time": due.isoformat().replace("+00:00", "Z"),
                       "detail": {"roles": ["ceo"]}}
    status_event = {**api_event, "rawPath": "/reports/status", "body": None,
                    "requestContext": {"http": {"method": "GET", "path": "/reports/status"}, "requestId": "e2e-2"}}

    # SES delivery feedback through the zip: a bounce, via SQS, for a message a run recorded as sent.
    from flows.delivery.feedback import SuppressionList
    from flows.delivery.records import DeliveryKey, LocalRecordStore, Record

    records = LocalRecordStore(tmp_path / "records")
    sent_key = DeliveryKey(SAMPLE_PERIOD, "portfolio", "cfo", "", "cfo@holdings.example")
    records.write(Record(sent_key, "sent", "ses", run="e2e", updated_at="2026-11-24T07:01:00+00:00",
                         location="ses:zip-message-1"), None)
    bounce = json.loads((PROJECT_ROOT / "tests" / "fixtures" / "ses" / "bounce.json").read_text()
                        .replace("MESSAGE_ID", "zip-message-1"))
    feedback_event = {"Records": [{"messageId": "sqs-1", "eventSource": "aws:sqs", "body": json.dumps(
        {"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(bounce)})}]}
    environment.update({"EXEC_REPORTS_RECORDS": "local", "EXEC_REPORTS_RECORDS_PATH": str(tmp_path / "records")})

    result = packager.fresh_interpreter(tmp_path / "task", packager.lambda_like_runtime(tmp_path / "runtime"),
                                        CALL_HANDLER, env=environment,
                                        stdin=json.dumps({"heavy": HEAVY_PACKAGES, "events": [
                                            api_event, scheduled_event, scheduled_event, status_event,
                                            feedback_event]}))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["importable"] == []  # none of Prefect, pydantic, yaml, jinja2, ... could be imported
    assert not set(answer["loaded"]) & {*HEAVY_PACKAGES, "boto3"}  # boto3 only for an HS256 secret
    started, first_schedule, second_schedule, status, feedback = answer["responses"]
    assert feedback == {"batchItemFailures": []}
    assert records.get("ses", sent_key).feedback["cfo@holdings.example"]["outcome"] == "bounced"
    assert [entry.key.recipient for entry in SuppressionList(records).active()] == ["cfo@holdings.example"]

    assert started["statusCode"] == 202, started
    run_started = json.loads(started["body"])
    weekly = stack.api("GET", "/deployments/name/send-exec-reports/weekly")
    run = stack.api("GET", f"/flow_runs/{run_started['flow_run_id']}")
    assert run["deployment_id"] == weekly["id"]
    assert run["parameters"] == {"period_kind": "week", "roles": ["cfo"], "period": SAMPLE_PERIOD, "dry_run": True}
    assert run_started["watch"] == f"{stack.server.api_url.removesuffix('/api')}/runs/flow-run/{run['id']}"

    # The same EventBridge event twice (at-least-once delivery) is one run, due at the event's time.
    assert first_schedule["flow_run_id"] == second_schedule["flow_run_id"]
    scheduled = stack.api("GET", f"/flow_runs/{first_schedule['flow_run_id']}")
    assert scheduled["state"]["type"] == "SCHEDULED" and scheduled["parameters"]["roles"] == ["ceo"]
    assert dt.datetime.fromisoformat(scheduled["expected_start_time"]) == due

    assert status["statusCode"] == 200, status
    board = json.loads(status["body"])
    assert isinstance(board["last_sent"], list) and isinstance(board["failures"], list)

    # The worker picks up the run the zip started and completes it.
    finished = stack.wait_for(run_started["flow_run_id"])
    assert finished["state"]["type"] == "COMPLETED", finished["state"]


# ---- runs that fail ------------------------------------------------------------------------------------------


def test_a_failing_report_fails_the_run_delivers_the_rest_and_alerts_operations(stack):
    (stack.project / "reports" / "broken.md").write_text(
        "---\nrole: broken\ntitle: Broken\nsubject: x\nscope: portfolio\nmetrics: [finance.burnrate]\n---\nx\n")
    try:
        before = outbox_folders(stack)
        # cfo and ceo already went out for this period in the ad hoc run above: without resend they are skipped.
        run_id = stack.run_deployment("send-exec-reports/weekly", f"period={SAMPLE_PERIOD}", "resend=true")
        run = stack.wait_for(run_id)
    finally:
        (stack.project / "reports" / "broken.md").unlink()
    assert run["state"]["type"] == "FAILED", run["state"]
    assert "broken.md" in run["state"]["message"]
    [folder] = outbox_folders(stack) - before
    # Prefect records the Failed state first and runs the on_failure hook (the alert) right after it.
    deadline = time.monotonic() + 120
    while not list(folder.glob("portfolio-operations-alert--*.eml")) and time.monotonic() < deadline:
        time.sleep(0.5)
    names = sorted(p.name for p in folder.glob("*.eml"))
    tenants = ("jada", "queenofsandiego", "quickdumpnow", "dangerouscentaur")
    assert [n for n in names if not n.startswith("portfolio-operations-alert")] == sorted(
        [f"portfolio-{role}--{role}-holdings-example.eml" for role in ("accounting", "ceo", "cfo", "cmo", "cto")]
        + [f"{tenant}-gm--gm-{tenant}-example.eml" for tenant in tenants])
    [alert] = [n for n in names if n.startswith("portfolio-operations-alert")]
    message = email.message_from_bytes((folder / alert).read_bytes(), policy=policy.default)
    assert message["To"] == "ops@holdings.example"
    text = message.get_body(("plain",)).get_content()
    # The failure is keyed by role (broken), the file and line in its reason; the text part wraps lines.
    assert "broken / -: reports/broken.md:6: metrics[0]: unknown metric 'finance.burnrate'" in " ".join(text.split())
    assert f"/runs/flow-run/{run_id}" in text
    # The alert names the run by its readable name; the engine ends the Failed run without an error of its
    # own (a dict in a Failed state made it log a TypeError carrying the summary and its addresses).
    assert message["Subject"] == f"[exec-reports] run Failed: {SAMPLE_PERIOD} all roles (resend)"
    assert len(run["state"]["message"]) < 500
    worker_log_path = stack.server.home / "worker.log"
    deadline = time.monotonic() + 60
    while "Hook '_alert_operations' finished" not in worker_log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # whatever the engine logs after the hooks (it logged the TypeError there) is in by now
    worker_log = worker_log_path.read_text()
    assert f"Flow run '{SAMPLE_PERIOD} all roles (resend)'" in worker_log  # the run's own log lines are here
    assert "Unexpected result for failed state" not in worker_log and "TypeError" not in worker_log
    assert "ceo@holdings.example" not in worker_log
    assert "exec-reports-deliveries" in artifact_keys(stack, run_id)


def test_two_workers_and_two_runs_of_the_same_period_deliver_every_message_once(stack):
    """A second worker on the pool and two runs of one period at once: the deployment's concurrency
    limit runs them one after the other, and the delivery records make the second skip what the first
    sent. No duplicate, nothing missing, no false failure."""
    stack.server.spawn([PREFECT, "worker", "start", "--pool", "exec-reports", "--type", "process",
                        "--name", "second-worker"], cwd=stack.project, log_name="worker-2.log", env=stack.env)
    before = outbox_folders(stack)
    period = "2026-W45"  # not sent by any other test here
    run_ids = [stack.run_deployment("send-exec-reports/weekly", f"period={period}", 'roles=["ceo","cfo","gm"]')
               for _ in range(2)]
    runs = [stack.wait_for(run_id, timeout=400) for run_id in run_ids]

    assert [run["state"]["type"] for run in runs] == ["COMPLETED", "COMPLETED"], [run["state"] for run in runs]
    first, second = sorted(runs, key=lambda run: run["start_time"])
    assert second["start_time"] >= first["end_time"]  # concurrency_limit: 1 kept them apart
    delivered = [p.name for folder in outbox_folders(stack) - before for p in folder.glob("*.eml")]
    tenants = ("jada", "queenofsandiego", "quickdumpnow", "dangerouscentaur")
    assert sorted(delivered) == sorted(
        [f"portfolio-{role}--{role}-holdings-example.eml" for role in ("ceo", "cfo")]
        + [f"{tenant}-gm--gm-{tenant}-example.eml" for tenant in tenants])
    tables = {}
    for run in runs:
        [table] = stack.api("POST", "/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": [run["id"]]}, "key": {"any_": ["exec-reports-deliveries"]}}})
        tables[run["id"]] = json.loads(table["data"])
    assert [row["status"] for row in tables[first["id"]]] == ["sent"] * 6
    assert [row["status"] for row in tables[second["id"]]] == ["skipped"] * 6
    assert all("already sent" in row["reason"] for row in tables[second["id"]])


def test_a_sharded_run_fans_out_on_the_pool_and_delivers_every_message_once(stack):
    """shards=2 over the sample's 4 tenants: two shard flow runs on the pool deliver the general manager
    briefs and hand their figures back through Prefect's result storage; the run that started them renders
    and delivers the portfolio briefs from those figures. Every message once, in one outbox folder."""
    before = outbox_folders(stack)
    period = "2026-W44"  # not sent by any other test here
    run_id = stack.run_deployment("send-exec-reports/weekly", f"period={period}", "shards=2")
    run = stack.wait_for(run_id, timeout=400)
    assert run["state"]["type"] == "COMPLETED", run["state"]

    shards = stack.api("POST", "/flow_runs/filter", json={"flow_runs": {"tags": {"all_": ["shard"]}}})
    assert sorted(shard["parameters"]["tenants"] for shard in shards) == [
        ["jada", "queenofsandiego"], ["quickdumpnow", "dangerouscentaur"]]
    assert {shard["state"]["type"] for shard in shards} == {"COMPLETED"}
    assert {shard["parameters"]["run_folder"] for shard in shards} != {""}

    [folder] = outbox_folders(stack) - before  # the shards deliver into the run's own folder
    tenants = ("jada", "queenofsandiego", "quickdumpnow", "dangerouscentaur")
    assert sorted(p.name for p in folder.glob("*.eml")) == sorted(
        [f"portfolio-{role}--{role}-holdings-example.eml" for role in ("ceo", "cfo", "cmo", "cto", "accounting")]
        + [f"{tenant}-gm--gm-{tenant}-example.eml" for tenant in tenants])
    # The portfolio briefs were rendered from the shards' figures: every entity is in the CEO brief.
    ceo = email.message_from_bytes((folder / "portfolio-ceo--ceo-holdings-example.eml").read_bytes(),
                                   policy=policy.default).get_body(("plain",)).get_content()
    assert all(name in ceo for name in ("JADA", "QueenofSanDiego", "QuickDumpNow", "DangerousCentaur"))
    [table] = stack.api("POST", "/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["exec-reports-deliveries"]}}})
    rows = json.loads(table["data"])
    assert len(rows) == 9 and {row["status"] for row in rows} == {"sent"}


def events(stack: PrefectStack, name: str, resource_id: str) -> list[dict]:
    page = stack.api("POST", "/events/filter", json={"filter": {
        "event": {"name": [name]}, "resource": {"id": [resource_id]}, "occurred": {"since": "2020-01-01T00:00:00Z"}},
        "limit": 50})
    return page["events"]


def test_a_sharded_run_through_ses_sends_at_one_rate_shared_by_every_worker(stack, moto_endpoint):
    """The sample in 2 shards through moto's SES (MaxSendRate 1/s): every message reaches SES once, and every
    send, in the shards and in the run that started them, took a slot of one Prefect concurrency limit shaped
    from the account's rate, not each process's own limiter."""
    import yaml

    from tests.flows.delivery.conftest import REGION, SENDER, aws_client, moto_sent_raw_messages

    aws_client("ses", moto_endpoint).verify_email_identity(EmailAddress=SENDER)
    config = yaml.safe_load((stack.project / "examples" / "portfolio.yaml").read_text())
    config["delivery"] = {**config["delivery"], "backend": "ses", "from_address": f"Executive Reports <{SENDER}>",
                          "ses": {"region": REGION, "endpoint_url": moto_endpoint, "check_account_enabled": False}}
    (stack.project / "examples" / "portfolio-ses.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    already = len(moto_sent_raw_messages(moto_endpoint))

    run_id = stack.run_deployment("send-exec-reports/weekly", "period=2026-W43", "shards=2",
                                  "config=examples/portfolio-ses.yaml")
    run = stack.wait_for(run_id, timeout=400)

    assert run["state"]["type"] == "COMPLETED", run["state"]
    sent = moto_sent_raw_messages(moto_endpoint)[already:]
    assert len(sent) == 9  # 4 GM briefs from the shards, 5 portfolio briefs from the parent, each once
    limit = stack.api("GET", "/v2/concurrency_limits/exec-reports-ses-send-rate")
    # moto's 1/s: one slot; every slot released after its hold once the runs were over.
    assert (limit["limit"], limit["slot_decay_per_second"], limit["active_slots"]) == (1, 0.0, 0)
    deadline = time.monotonic() + 60  # events reach the server in batches
    while len(granted := events(stack, "exec-reports.send-rate.granted", "exec-reports.exec-reports-ses-send-rate")
              ) < 9 and time.monotonic() < deadline:
        time.sleep(2)
    assert len(granted) == 9
    # SES never got more than its 1/s: the grants, one per message, are a hold (1/0.93 s) apart; an event is
    # stamped just after its grant, so a process paused in between may shift one by a little (0.9 s, not 1.075).
    times = sorted(dt.datetime.fromisoformat(event["occurred"].replace("Z", "+00:00")) for event in granted)
    assert all((later - earlier).total_seconds() >= 0.9 for earlier, later in zip(times, times[1:], strict=False))


def running_process_of(stack: PrefectStack, flow_run: dict) -> tuple[int, int] | None:
    """The process running a flow run on this machine and the worker that started it (its parent)."""
    pid = int(str(flow_run.get("infrastructure_pid") or "0").rsplit(":", 1)[-1] or 0)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text() if pid else ""
    except FileNotFoundError:
        return None
    return (pid, int(stat.rsplit(")", 1)[1].split()[1])) if stat else None


def test_300_tenants_in_6_shards_with_a_worker_killed_mid_shard_lose_nothing_and_send_nothing_twice(
        stack, tmp_path):
    """300 synthetic tenants in 6 shards on three process workers; once messages are going out, one worker and
    the shard process it runs are SIGKILLed (the parent's worker is spared). The shard's heartbeats stop, the
    run that started it marks it Crashed and starts it again on another worker, which skips what the killed
    attempt sent. Every one of the 305 messages is accounted for once, and the summary names the retried shard."""
    import os
    import signal

    sys.path.insert(0, str(PROJECT_ROOT))
    from bench.synthetic import make_portfolio

    config = make_portfolio(300, tmp_path / "synthetic", with_tenant_report=False)
    stack.server.spawn([PREFECT, "worker", "start", "--pool", "exec-reports", "--type", "process",
                        "--name", "third-worker"], cwd=stack.project, log_name="worker-3.log", env=stack.env)
    run_id = stack.run_deployment("send-exec-reports/weekly", f"period={SAMPLE_PERIOD}", "shards=6",
                                  f"config={config}")
    outbox = config.parent / "outbox"

    killed: tuple[int, int] | None = None
    deadline = time.monotonic() + 600
    while killed is None and time.monotonic() < deadline:
        time.sleep(1)
        if sum(1 for _ in outbox.rglob("*.eml")) < 20:
            continue
        parent = running_process_of(stack, stack.api("GET", f"/flow_runs/{run_id}"))
        shards = stack.api("POST", "/flow_runs/filter", json={"flow_runs": {
            "tags": {"all_": ["shard"]}, "state": {"type": {"any_": ["RUNNING"]}}}})
        for shard in shards:
            if shard["parameters"].get("config") != str(config):
                continue
            process = running_process_of(stack, shard)
            if parent and process and process[1] != parent[1]:
                killed = process
                for pid in (process[1], process[0]):  # the worker first, so it cannot report the crash
                    os.kill(pid, signal.SIGKILL)
                break
    assert killed, "no shard ran on a worker other than the parent's"

    run = stack.wait_for(run_id, timeout=900)
    shards = [shard for shard in stack.api("POST", "/flow_runs/filter", json={
        "flow_runs": {"tags": {"all_": ["shard"]}}}) if shard["parameters"].get("config") == str(config)]
    crashed = [shard for shard in shards if shard["state"]["type"] == "CRASHED"]
    # The killed shard went silent and was marked Crashed by the run that started it; other shards of the dead
    # worker may have crashed on their own (their output pipe was gone), which Prefect reports itself.
    assert any(shard["state"]["message"].startswith("no heartbeat for ") for shard in crashed), [
        (shard["name"], shard["state"]["message"]) for shard in crashed]
    by_number = {}
    for shard in shards:
        by_number.setdefault(shard["parameters"]["shard"], []).append(shard["state"]["type"])
    assert sorted(by_number) == [1, 2, 3, 4, 5, 6]
    # Each crashed shard ran again, and that attempt completed.
    assert all(states.count("COMPLETED") == 1 for states in by_number.values()), by_number

    [table] = stack.api("POST", "/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["exec-reports-deliveries"]}}})
    rows = json.loads(table["data"])
    messages = [(row["report"], row["tenant"]) for row in rows]
    assert len(messages) == 305 and len(set(messages)) == 305  # every message once in the summary
    statuses = [row["status"] for row in rows]
    skipped = [row for row in rows if row["status"] == "skipped"]
    unknown = [row for row in rows if row["status"] == "failed"]
    # The retried attempt skipped what the killed one had sent; a send in flight at the kill is reported as
    # unknown (never resent by itself), so nothing is lost and nothing goes twice.
    assert skipped and all("already sent" in row["reason"] for row in skipped), skipped[:3]
    assert all("unknown" in row["reason"] for row in unknown) and len(unknown) <= 2, unknown
    assert statuses.count("sent") + len(skipped) + len(unknown) == 305
    assert run["state"]["type"] == ("FAILED" if unknown else "COMPLETED"), run["state"]
    # The run page names the retried shard: its attempts and why the first did not finish.
    [shard_table] = stack.api("POST", "/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["exec-reports-shards"]}}})
    shard_rows = json.loads(shard_table["data"])
    assert len(shard_rows) == 6 and all(row["state"] == "Completed" for row in shard_rows)
    assert any(row["attempts"] == 2 and row["reason"].startswith("no heartbeat for ") for row in shard_rows), shard_rows
    # An unknown message may or may not have reached the outbox (it was in flight); every other one did.
    assert 305 - len(unknown) <= len(list(outbox.rglob("*.eml"))) <= 305
