"""The AWS form of the work pool (deploy/ecs/, docs/operations/ecs.md): the ECS job template is the installed
prefect-aws default with the project's defaults and renders, through Prefect's and prefect-aws's own code, into
the task definition and RunTask request every deployment of prefect.yaml needs; the real ECS worker starts and
watches a flow run's task against moto with nothing but the worker policy; the IAM policies cover every AWS call
the installed prefect-aws makes; and a flow's result goes through the S3Bucket block the script saves, with
nothing but the results policy."""

from __future__ import annotations

import ast
import asyncio
import copy
import inspect
import json
import logging
import re
import shlex
import uuid
from fnmatch import fnmatchcase
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import yaml

from tests.conftest import PROJECT_ROOT, load_script

ECS_DIR = PROJECT_ROOT / "deploy" / "ecs"
IAM_DIR = PROJECT_ROOT / "deploy" / "iam"
DOC = PROJECT_ROOT / "docs" / "operations" / "ecs.md"
TEMPLATE = json.loads((ECS_DIR / "base-job-template.json").read_text())
VARIABLES = TEMPLATE["variables"]["properties"]
DEFAULTS = {name: spec["default"] for name, spec in VARIABLES.items() if spec.get("default") is not None}
POLICY_FILES = sorted(path for path in ECS_DIR.glob("*.json") if path.name != "base-job-template.json")
EXAMPLE_ACCOUNT, EXAMPLE_REGION, EXAMPLE_BUCKET = "111122223333", "us-east-1", "EXAMPLE-RESULTS-BUCKET"
REGION = "us-east-1"


def policy(name: str) -> dict:
    return json.loads((ECS_DIR / name).read_text())


def statements(document: dict) -> list[dict]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allows(document: dict, action: str, resource: str | None = None) -> bool:
    """Whether an Allow statement names the action (IAM's case-insensitive wildcards) and, if given, the resource."""
    return any(statement["Effect"] == "Allow"
               and any(fnmatchcase(action.lower(), pattern.lower()) for pattern in as_list(statement["Action"]))
               and (resource is None or any(fnmatchcase(resource, pattern) for pattern in as_list(statement["Resource"])))
               for statement in statements(document))


def statement_for(document: dict, action: str) -> dict:
    [found] = [statement for statement in statements(document) if action in as_list(statement["Action"])]
    return found


@pytest.fixture(scope="module")
def results_script():
    return load_script(ECS_DIR / "create-results-block.py")


class _NoPrefectApi:
    """Passed as the Prefect client where a template must render without one: nothing in this template refers to
    a block or a variable on the server, so any use of the API is a failure that names what was asked."""

    def __getattr__(self, name):
        raise AssertionError(f"rendering the job template asked the Prefect API for {name}")


def render(job_variables: dict):
    """The ECS worker's job configuration for a flow run of a deployment with these job variables, built by Prefect's
    own merge of the pool's defaults and the deployment's variables (BaseJobConfiguration.from_template_and_values)."""
    from prefect_aws.workers.ecs_worker import ECSJobConfiguration

    return asyncio.run(ECSJobConfiguration.from_template_and_values(TEMPLATE, job_variables, client=_NoPrefectApi()))


def prefect_yaml_deployments() -> list[dict]:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]


# --- the template ------------------------------------------------------------------------------------------------


def test_the_template_is_the_installed_prefect_aws_default_with_only_defaults_and_descriptions_changed():
    from prefect_aws.workers.ecs_worker import ECSWorker

    default = ECSWorker.get_default_base_job_template()
    assert TEMPLATE["job_configuration"] == default["job_configuration"], \
        "re-derive deploy/ecs/base-job-template.json from the installed prefect-aws's default"
    assert VARIABLES.keys() == default["variables"]["properties"].keys()
    for name, ours in VARIABLES.items():
        theirs = default["variables"]["properties"][name]
        ignored = ("default", "description")
        assert {k: v for k, v in ours.items() if k not in ignored} == \
            {k: v for k, v in theirs.items() if k not in ignored}, name
    assert TEMPLATE["variables"]["definitions"].keys() == default["variables"]["definitions"].keys()


def test_every_placeholder_of_the_job_configuration_is_a_variable_as_the_server_checks_it():
    from prefect.server.schemas.actions import WorkPoolCreate
    from prefect.utilities.templating import find_placeholders

    used = {placeholder.name for placeholder in find_placeholders(json.dumps(TEMPLATE["job_configuration"]))}
    assert used and used <= VARIABLES.keys(), used - VARIABLES.keys()
    WorkPoolCreate(name="exec-reports", type="ecs", base_job_template=TEMPLATE)  # the API's own validator

    broken = copy.deepcopy(TEMPLATE)
    broken["job_configuration"]["task_definition"]["runtimePlatform"] = "{{ platform }}"
    with pytest.raises(ValueError, match="platform"):
        WorkPoolCreate(name="exec-reports", type="ecs", base_job_template=broken)


def test_the_variables_are_a_json_schema_and_the_defaults_satisfy_it():
    import jsonschema
    from prefect.utilities.schema_tools import is_valid_schema, validate

    schema = TEMPLATE["variables"]
    jsonschema.validators.validator_for(schema).check_schema(schema)
    is_valid_schema(schema, preprocess=False)  # what the server runs on work-pool create
    validate(DEFAULTS, schema, raise_on_error=True, preprocess=True, ignore_required=True, allow_none_with_default=True)
    with pytest.raises(Exception, match="cpu|integer"):
        validate({**DEFAULTS, "cpu": "one"}, schema, raise_on_error=True, preprocess=True, ignore_required=True)


def test_the_template_links_nowhere_outside_the_repository():
    assert "://" not in json.dumps(TEMPLATE)


def test_the_project_defaults():
    env = DEFAULTS["env"]
    assert env["PREFECT_LOGGING_EXTRA_LOGGERS"] == "exec_reports" and env["DO_NOT_TRACK"] == "1"
    assert (DEFAULTS["cpu"], DEFAULTS["memory"], DEFAULTS["launch_type"]) == (1024, 2048, "FARGATE")
    assert DEFAULTS["configure_cloudwatch_logs"] is True
    assert DEFAULTS["task_role_arn"] != DEFAULTS["execution_role_arn"]
    # Delivery records where every task sees them, in the bucket the delivery-records policy grants.
    records_policy = json.loads((IAM_DIR / "delivery-records-s3-policy.json").read_text())
    assert env["EXEC_REPORTS_RECORDS"] == "s3"
    assert allows(records_policy, "s3:PutObject",
                  f"arn:aws:s3:::{env['EXEC_REPORTS_RECORDS_BUCKET']}/exec-reports/deliveries/x")


def test_the_env_names_the_block_the_script_saves_by_default(results_script):
    setting = DEFAULTS["env"]["PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK"]
    assert setting == results_script.storage_block_setting(results_script.DEFAULT_BLOCK_NAME) \
        == "s3-bucket/exec-reports-results"
    assert results_script.build_parser().parse_args(["--bucket", "b"]).block_name == results_script.DEFAULT_BLOCK_NAME
    assert f"PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK={setting}" in DOC.read_text()


@pytest.mark.parametrize("deployment", prefect_yaml_deployments(), ids=lambda deployment: deployment["name"])
def test_every_deployment_renders_to_a_fargate_task_with_the_pool_env_and_its_own(deployment):
    assert deployment["work_pool"]["name"] == "exec-reports"
    job_variables = deployment["work_pool"].get("job_variables", {})
    config = render(job_variables)

    assert config.env == {**DEFAULTS["env"], **job_variables.get("env", {})}  # merged, not replaced
    definition, request = config.task_definition, config.task_run_request
    assert definition["executionRoleArn"] == DEFAULTS["execution_role_arn"]
    assert definition["family"] == DEFAULTS["family"] and definition["containerDefinitions"][0]["image"] == DEFAULTS["image"]
    assert (definition["cpu"], definition["memory"]) == (1024, 2048)
    assert request["launchType"] == "FARGATE" and request["cluster"] == "exec-reports"
    assert request["overrides"]["taskRoleArn"] == DEFAULTS["task_role_arn"]
    assert config.configure_cloudwatch_logs and config.execution_role_arn == DEFAULTS["execution_role_arn"]


# --- the worker, for real, against moto -----------------------------------------------------------------------------


@pytest.fixture
def moto_admin(moto_endpoint):
    """An IAM user of moto's that may do anything: what the test itself does while IAM checks are on."""
    return _moto_user(moto_endpoint, "admin", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def _moto_user(endpoint: str, role: str, document: dict) -> dict:
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
    name = f"exec-reports-{role}-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=role, PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def _actions_only(document: dict) -> dict:
    """The policy as moto can judge it: moto checks an ECS or EC2 call's action against the resource "*" and knows
    none of ECS's condition keys, so resources widen to "*" and conditions go. The actions stay as they are."""
    return {"Version": document["Version"], "Statement": [
        {"Effect": statement["Effect"], "Action": statement["Action"], "Resource": "*"}
        for statement in statements(document)]}


@pytest.fixture
def ecs_on_moto(moto_endpoint, moto_admin, monkeypatch):
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.moto_api import state_manager

    # moto 5 adds up container-level memory to place any task, even on Fargate, where AWS needs only the task's
    # (as prefect-aws registers it): it counts the task's memory for a container that sets none. The request and
    # the stored task definition stay as the worker sent them.
    count_resources = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def fargate_aware(task_definition):
        view = copy.copy(task_definition)
        view.container_definitions = [{**container, "memory": container.get("memory") or int(task_definition.memory)}
                                      for container in task_definition.container_definitions]
        return count_resources(view)

    monkeypatch.setattr(EC2ContainerServiceBackend, "_calculate_task_resource_requirements", staticmethod(fargate_aware))

    ecs = boto3.client("ecs", endpoint_url=moto_endpoint, region_name=REGION, **moto_admin)
    ecs.create_cluster(clusterName=DEFAULTS["cluster"])
    # moto moves a task one state on at each DescribeTasks; a real task stays RUNNING until it stops.
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10_000})
    yield ecs
    state_manager.unset_transition("ecs::task")


def _worker_run(moto_endpoint: str, keys: dict, deployment_id: uuid.UUID, **job_variables):
    """The ECS worker's own code for one flow run, up to the task running: job configuration from the template,
    then the task definition it registers or reuses, the RunTask request and the watch until RUNNING."""
    from prefect.client.schemas.objects import FlowRun
    from prefect_aws.workers.ecs_worker import ECSWorker

    config = render({"aws_credentials": {**keys, "region_name": REGION,
                                         "aws_client_parameters": {"endpoint_url": moto_endpoint}},
                     "task_watch_poll_interval": 0.05, "task_start_timeout_seconds": 30, **job_variables})
    flow_run = FlowRun(flow_id=uuid.uuid4(), deployment_id=deployment_id, name="weekly-run")
    config.prepare_for_flow_run(flow_run)
    worker = ECSWorker(work_pool_name="exec-reports")
    ecs = worker._get_client(config, "ecs")
    logger = logging.getLogger("tests.ecs_worker")
    task_arn, cluster_arn, definition, registered = worker._create_task_and_wait_for_start(logger, ecs, config, flow_run)
    return worker, config, ecs, logger, task_arn, cluster_arn, definition, registered


def test_the_ecs_worker_runs_a_flow_run_task_with_only_the_worker_policy(moto_endpoint, ecs_on_moto, moto_admin):
    from moto.core.authorization import enable_iam_authentication

    keys = _moto_user(moto_endpoint, "worker", _actions_only(policy("worker-policy.json")))
    [shard] = [deployment for deployment in prefect_yaml_deployments() if deployment["name"] == "shard"]
    shard_variables = shard["work_pool"].get("job_variables", {})
    with enable_iam_authentication():
        worker, config, ecs, logger, task_arn, cluster_arn, definition, registered = _worker_run(
            moto_endpoint, keys, uuid.uuid4(), **shard_variables)
        assert registered
        [task] = ecs_on_moto.describe_tasks(cluster=cluster_arn, tasks=[task_arn])["tasks"]
        described = ecs_on_moto.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        assert described["family"] == "exec-reports-flow-run" and described["requiresCompatibilities"] == ["FARGATE"]
        assert (described["cpu"], described["memory"], described["networkMode"]) == ("1024", "2048", "awsvpc")
        assert described["executionRoleArn"] == DEFAULTS["execution_role_arn"]
        [container] = described["containerDefinitions"]
        assert container["image"] == DEFAULTS["image"]
        assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/exec-reports"
        assert container["logConfiguration"]["options"]["awslogs-stream-prefix"] == "exec-reports"
        assert task["overrides"]["taskRoleArn"] == DEFAULTS["task_role_arn"]
        environment = {item["name"]: item["value"] for item in task["overrides"]["containerOverrides"][0]["environment"]}
        # The RunTask request carries the pool's env defaults and the deployment's env, merged.
        expected = {**DEFAULTS["env"], **shard_variables.get("env", {})}
        assert {name: environment.get(name) for name in expected} == expected
        assert "PREFECT__FLOW_RUN_ID" in environment

        # Another deployment's run reuses the family's revision (match_latest_revision_in_family): the log
        # prefix does not name the deployment, so every deployment's task definition is the same.
        *_, second_definition, second_registered = _worker_run(moto_endpoint, keys, uuid.uuid4())
        assert not second_registered

        # The end of a run: stopped, its exit code read, and (when asked) its task definition deregistered.
        ecs_on_moto.stop_task(cluster=cluster_arn, task=task_arn)
        worker._watch_task_and_get_exit_code(logger, config, task_arn, cluster_arn, definition, True, ecs)
    assert ecs_on_moto.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]["status"] \
        == "INACTIVE"


def test_the_worker_policy_check_is_live_a_missing_action_is_refused(moto_endpoint, ecs_on_moto):
    from moto.core.authorization import enable_iam_authentication

    document = _actions_only(policy("worker-policy.json"))
    for statement in document["Statement"]:
        statement["Action"] = [action for action in as_list(statement["Action"]) if action != "ecs:DescribeTasks"]
    document["Statement"] = [statement for statement in document["Statement"] if statement["Action"]]
    keys = _moto_user(moto_endpoint, "worker-without-describe", document)
    with enable_iam_authentication(), pytest.raises(botocore.exceptions.ClientError, match="DescribeTasks"):
        _worker_run(moto_endpoint, keys, uuid.uuid4())


# --- the policies against the installed code ------------------------------------------------------------------------


def _client_calls(source: str, scope: ast.AST | None = None) -> set[tuple[str, str]]:
    """(client variable, method) for every `<something>_client.<method>(...)` call in the source (or the node)."""
    tree = scope or ast.parse(source)
    return {(node.func.value.id, node.func.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id.endswith("_client")}


def test_the_worker_policy_allows_every_aws_call_the_installed_ecs_worker_makes():
    from prefect_aws.workers import ecs_worker

    calls = _client_calls(inspect.getsource(ecs_worker))
    services = {variable.removesuffix("_client") for variable, _ in calls}
    assert services == {"ecs", "ec2", "logs"}, services
    document = policy("worker-policy.json")
    actions = set()
    for variable, method in calls:
        service = variable.removesuffix("_client")
        operation = boto3.client(service, region_name=REGION).meta.method_to_api_mapping[method]
        actions.add(f"{service}:{operation}")
    assert {"ecs:RegisterTaskDefinition", "ecs:RunTask", "ecs:DescribeTasks"} <= actions  # the scan sees the core
    assert [action for action in sorted(actions) if not allows(document, action)] == []

    # What the source does not show: RunTask with tags needs ecs:TagResource, and the roles must be passed.
    assert allows(document, "ecs:TagResource")
    assert set(statement_for(document, "iam:PassRole")["Resource"]) == \
        {DEFAULTS["task_role_arn"], DEFAULTS["execution_role_arn"]}


def test_the_worker_policy_names_the_templates_cluster_family_and_log_group():
    document = policy("worker-policy.json")
    prefix = f"arn:aws:ecs:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}"
    run_task = statement_for(document, "ecs:RunTask")
    assert run_task["Resource"] == f"{prefix}:task-definition/{DEFAULTS['family']}:*"
    assert run_task["Condition"]["ArnEquals"]["ecs:cluster"] == f"{prefix}:cluster/{DEFAULTS['cluster']}"
    assert allows(document, "ecs:DescribeTasks", f"{prefix}:task/{DEFAULTS['cluster']}/0123abcd")
    group = DEFAULTS["cloudwatch_logs_options"]["awslogs-group"]
    assert allows(document, "logs:GetLogEvents", f"arn:aws:logs:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}:log-group:{group}:*")
    execution = policy("execution-role-policy.json")
    assert allows(execution, "logs:PutLogEvents",
                  f"arn:aws:logs:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}:log-group:{group}:log-stream:x")
    repository = DEFAULTS["image"].split("/", 1)[1].split(":")[0]
    assert allows(execution, "ecr:BatchGetImage", f"arn:aws:ecr:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}:repository/{repository}")


def test_the_results_policy_allows_what_prefects_result_store_does_with_an_s3_bucket_block():
    import prefect.results
    from prefect_aws.s3 import S3Bucket

    # Prefect's result store only reads and writes paths of its storage block ...
    used = set(re.findall(r"call_explicitly_sync_block_method\(\s*self\.\w+,\s*\"(\w+)\"",
                          inspect.getsource(prefect.results)))
    assert used == {"read_path", "write_path"}, used
    # ... which S3Bucket does with these calls and nothing else (a new call here fails until it is looked at).
    methods = {method for name in ("_read_sync", "_write_sync")
               for _, method in _client_calls("", ast.parse(inspect.getsource(getattr(S3Bucket, name)).strip()))}
    assert methods == {"download_fileobj", "upload_fileobj"}, methods
    # download_fileobj: HeadObject + GetObject; upload_fileobj: PutObject, or a multipart upload (PutObject's
    # permission) that is aborted on failure.
    needed = {"download_fileobj": ["s3:GetObject"], "upload_fileobj": ["s3:PutObject", "s3:AbortMultipartUpload"]}
    document = policy("task-role-results-policy.json")
    key = f"arn:aws:s3:::{EXAMPLE_BUCKET}/results/0f1e2d3c"
    assert [action for method in methods for action in needed[method] if not allows(document, action, key)] == []
    assert allows(document, "s3:ListBucket", f"arn:aws:s3:::{EXAMPLE_BUCKET}")
    assert not allows(document, "s3:DeleteObject", key)


def test_the_policies_are_iam_json_in_the_example_account_with_named_statements_and_no_wildcard_actions():
    assert {path.name for path in POLICY_FILES} == {"ecs-tasks-trust-policy.json", "execution-role-policy.json",
                                                   "task-role-results-policy.json", "worker-policy.json"}
    for path in POLICY_FILES:
        document = json.loads(path.read_text())
        assert document["Version"] == "2012-10-17", path.name
        sids = [statement["Sid"] for statement in statements(document)]
        assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids) and len(set(sids)) == len(sids), path.name
        for statement in statements(document):
            assert statement["Effect"] == "Allow", path.name
            assert all("*" not in action for action in as_list(statement["Action"])), (path.name, statement["Sid"])
        # Every ARN uses the example account and region the doc's sed replaces.
        for arn in re.findall(r"arn:aws:[a-z0-9-]+:([a-z0-9-]*):(\d*):", path.read_text()):
            assert arn[0] in ("", EXAMPLE_REGION) and arn[1] in ("", EXAMPLE_ACCOUNT), (path.name, arn)
    trust = policy("ecs-tasks-trust-policy.json")
    [statement] = statements(trust)
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"} and statement["Action"] == "sts:AssumeRole"


# --- the results block, for real ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_a_flow_result_goes_through_the_scripts_block_with_only_the_results_policy(
        results_script, moto_endpoint, moto_admin, monkeypatch, capsys):
    from moto.core.authorization import enable_iam_authentication
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK, temporary_settings
    from prefect_aws.credentials import _get_client_cached

    bucket = f"exec-reports-results-{uuid.uuid4().hex[:8]}"
    s3_admin = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION, **moto_admin)
    s3_admin.create_bucket(Bucket=bucket)
    document = json.loads((ECS_DIR / "task-role-results-policy.json").read_text().replace(EXAMPLE_BUCKET, bucket))
    keys = _moto_user(moto_endpoint, "flow-run", document)

    block_name = f"exec-reports-results-{uuid.uuid4().hex[:8]}"
    assert results_script.main(["--bucket", bucket, "--block-name", block_name, "--prefix", "results",
                                "--region", REGION]) == 0
    assert f"s3-bucket/{block_name}" in capsys.readouterr().out

    # The task role, as boto3's default chain finds it in a task; S3 is moto.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys["aws_secret_access_key"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)

    @flow(persist_result=True, result_serializer="pickle")
    def shard_like() -> dict:
        return {"tenants": ["jada", "kumo"], "figures": {"jada": {"revenue": 1250.5}}}

    _get_client_cached.cache_clear()  # no S3 client built earlier with other credentials
    try:
        with enable_iam_authentication(), temporary_settings(
                updates={PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: f"s3-bucket/{block_name}"}):
            state = shard_like(return_state=True)
            assert state.is_completed(), state
            # As the parent reads a shard: the flow run's state from the API, its result from the block's bucket.
            with get_client(sync_client=True) as client:
                stored = client.read_flow_run(state.state_details.flow_run_id).state
            assert stored.result(raise_on_failure=False) == {"tenants": ["jada", "kumo"],
                                                             "figures": {"jada": {"revenue": 1250.5}}}
    finally:
        _get_client_cached.cache_clear()
    objects = s3_admin.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert objects and all(item["Key"].startswith("results/") for item in objects)


# --- the image and the page -----------------------------------------------------------------------------------------


def test_the_image_holds_the_project_where_deploy_records_it_and_starts_the_worker_on_the_pool():
    dockerfile = (ECS_DIR / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and not line.startswith(("#", " "))]
    copies = [shlex.split(rest)[:-1] for keyword, rest in instructions if keyword == "COPY"]
    copied = {Path(source).as_posix().rstrip("/") for sources in copies for source in sources}
    assert {"flows", "sources", "reports", "examples", "prefect.yaml", "pyproject.toml"} <= copied
    for source in copied:
        assert (PROJECT_ROOT / source).exists(), f"the Dockerfile copies {source}, which the repository lacks"
    [command] = [json.loads(rest) for keyword, rest in instructions if keyword == "CMD"]
    pool = prefect_yaml_deployments()[0]["work_pool"]["name"]
    assert command == ["prefect", "worker", "start", "--pool", pool, "--type", "ecs"]
    assert "pip install --no-cache-dir -e ." in dockerfile


def test_the_page_names_every_file_and_every_action():
    text = DOC.read_text()
    for path in ECS_DIR.iterdir():
        assert f"deploy/ecs/{path.name}" in text or path.name.endswith(".dockerignore"), path.name
    for path in POLICY_FILES:
        for statement in statements(json.loads(path.read_text())):
            for action in as_list(statement["Action"]):
                assert f"`{action}`" in text, (path.name, action)
