"""The Lambda trigger's packaging: the import guard of deploy/lambda/build_package.py and the inline
image's Dockerfile. Building the zip and starting a run through it is tests/e2e/test_deployments.py."""

from __future__ import annotations

import shlex
import shutil

import pytest

from tests.conftest import PROJECT_ROOT, load_script

LAMBDA_DIR = PROJECT_ROOT / "deploy" / "lambda"


@pytest.fixture(scope="module")
def packager():
    return load_script(LAMBDA_DIR / "build_package.py")


@pytest.fixture
def project_copy(tmp_path, packager):
    for module in packager.TRIGGER_MODULES:
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / module, tmp_path / module)
    return tmp_path


def test_the_handler_and_what_it_imports_fit_the_package(packager):
    packager.check_imports(PROJECT_ROOT)  # raises PackageError naming the module and the import


@pytest.mark.parametrize(("line", "named"), [
    ("from flows.core.config import SLUG", "flows/trigger/handler.py: imports flows.core.config, which is not in the trigger package"),
    ("from flows import flow", "flows/trigger/handler.py: imports flows.flow, which is not in the trigger package"),
    ("import pydantic", "flows/trigger/handler.py: imports pydantic, which is neither the standard library"),
    ("try:\n    import prefect\nexcept ImportError:\n    prefect = None",
     "flows/trigger/handler.py: imports prefect, which is neither"),
])
def test_a_module_level_import_the_zip_lacks_fails_the_build(packager, project_copy, line, named):
    handler = project_copy / "flows" / "trigger" / "handler.py"
    handler.write_text(handler.read_text() + f"\n{line}\n")
    with pytest.raises(packager.PackageError) as refusal:
        packager.check_imports(project_copy)
    assert named in str(refusal.value)


def test_imports_inside_functions_and_for_type_checkers_only_are_allowed(packager, project_copy):
    handler = project_copy / "flows" / "trigger" / "handler.py"
    handler.write_text(handler.read_text() + "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    from flows.core.config import PortfolioConfig\n\n\ndef later():\n    import prefect\n")
    packager.check_imports(project_copy)


def test_the_inline_image_copies_what_the_repository_has_and_runs_the_handler():
    dockerfile = (LAMBDA_DIR / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and not line.startswith(("#", " "))]
    assert ["FROM", "public.ecr.aws/lambda/python:3.11"] in instructions
    copies = [shlex.split(rest)[:-1] for keyword, rest in instructions if keyword == "COPY"]
    assert copies
    for sources in copies:
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies {source}, which the repository lacks"
    [command] = [rest for keyword, rest in instructions if keyword == "CMD"]
    module, _, function = shlex.split(command.strip("[]").replace(",", " "))[0].rpartition(".")
    assert module == "flows.trigger.handler" and function == "handler"
    assert "EXEC_REPORTS_HANDLER_MODE=inline" in dockerfile
