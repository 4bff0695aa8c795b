"""Shared fixtures. Flow tests share one session-scoped Prefect test harness (see tests/flows)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from flows.core.config import load_config
from flows.core.period import parse_period

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_ROOT / "examples"
SAMPLE_CONFIG = EXAMPLES / "portfolio.yaml"
# A fixed period keeps computed figures stable whatever today's date is.
SAMPLE_PERIOD = "2026-W47"
# When the weekly deployment sends the sample week's briefs: the Monday after it. Due dates count from it.
SAMPLE_SENT = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


@pytest.fixture
def sample_period():
    return parse_period(SAMPLE_PERIOD)


@pytest.fixture
def sample_config():
    return load_config(SAMPLE_CONFIG)


@pytest.fixture
def portfolio_copy(tmp_path) -> Path:
    """A writable copy of the sample portfolio and the reports, wired to each other; returns the config path."""
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "reports", tmp_path / "reports")
    return tmp_path / "examples" / "portfolio.yaml"


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (SQLite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's server mode on 127.0.0.1 (real HTTP), with dummy credentials for every boto3 client."""
    import os

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                      "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.pop("AWS_SESSION_TOKEN", None)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory):
    """The compiled-template and chart cache (flows/core/cache.py) lives in a folder of this test session,
    not in the user's home: tests see the cache's real behaviour without sharing it with anything else."""
    import os

    saved = os.environ.get("EXEC_REPORTS_CACHE_DIR")
    os.environ["EXEC_REPORTS_CACHE_DIR"] = str(tmp_path_factory.mktemp("exec-reports-cache"))
    yield
    if saved is None:
        os.environ.pop("EXEC_REPORTS_CACHE_DIR", None)
    else:
        os.environ["EXEC_REPORTS_CACHE_DIR"] = saved


def load_script(path: Path):
    """A script of the repository that is not a package module (deploy/.../build_package.py), imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
