"""Build the Lambda trigger's zip (``make lambda-package``).

The zip holds only what ``flows.trigger.handler`` needs in deployment mode: its modules (TRIGGER_MODULES)
and PyJWT with cryptography, as manylinux wheels for Lambda's Python 3.11 on x86_64. boto3 is not
packaged: Lambda's Python runtime provides it. Prefect, pydantic and the report code are not in it;
inline mode, which runs the flow itself, is the container image (deploy/lambda/Dockerfile).

Before zipping, every module-level import of the packaged modules is checked: a ``flows`` module
must be packaged too, anything else must be the standard library, a packaged dependency or boto3.
So a new top-level import of the config or Prefect fails this build instead of the deployed
function's first cold start.

    python deploy/lambda/build_package.py [--output build/exec-reports-trigger.zip] [--work-dir build/lambda]
"""

from __future__ import annotations

import argparse
import ast
import compileall
import importlib.metadata
import importlib.util
import json
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HANDLER = "flows.trigger.handler.handler"
TRIGGER_MODULES = (
    "flows/__init__.py",
    "flows/core/__init__.py",
    "flows/core/addresses.py",
    "flows/core/aws_secrets.py",
    "flows/core/errors.py",
    "flows/core/identifiers.py",
    "flows/core/period.py",
    "flows/delivery/__init__.py",  # SES delivery feedback: records and the suppression list
    "flows/delivery/message.py",
    "flows/delivery/feedback.py",
    "flows/delivery/records/__init__.py",
    "flows/delivery/records/claims.py",
    "flows/delivery/records/local.py",
    "flows/delivery/records/model.py",
    "flows/delivery/records/postgres.py",
    "flows/delivery/records/s3.py",
    "flows/orchestrator/__init__.py",
    "flows/orchestrator/history.py",
    "flows/trigger/__init__.py",
    "flows/trigger/auth.py",
    "flows/trigger/handler.py",
    "flows/trigger/prefect_api.py",
    "flows/trigger/requests.py",
    "flows/trigger/scope.py",
    "sources/__init__.py",  # the error base class lives at the bottom of the tree, in sources.errors
    "sources/errors.py",
)
PACKAGED_DISTRIBUTIONS = ("PyJWT", "cryptography")  # with cryptography's own dependencies (cffi)
PACKAGED_IMPORTS = ("jwt", "cryptography")
LAMBDA_RUNTIME_MODULES = ("boto3", "botocore")  # in Lambda's Python runtime; not packaged
# What Lambda's Python runtime puts beside boto3 (its dependencies), as import names.
LAMBDA_RUNTIME_IMPORTS = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
LAMBDA_PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.11",
                   "--only-binary=:all:")
MAX_ZIP_BYTES = 50 * 1024 * 1024  # Lambda: a zip uploaded directly
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda: the unpacked function and its layers
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the same input gives the same zip


class PackageError(Exception):
    pass


def requirements() -> list[str]:
    """The versions this project was installed (and tested) with, where the running Python has them."""
    pinned = []
    for name in PACKAGED_DISTRIBUTIONS:
        try:
            pinned.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(name)
    return pinned


def module_level_imports(path: Path) -> set[str]:
    """Dotted names imported when the module is imported (not the imports inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "__future__":
                continue
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If | ast.Try):  # `if TYPE_CHECKING:` blocks are skipped below
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for block in ("body", "orelse", "handlers", "finalbody"):
                for child in getattr(node, block, []):
                    pending.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])
    return names


def check_imports(root: Path) -> None:
    packaged = {module.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for module in TRIGGER_MODULES}
    packages = {module.removesuffix("/__init__.py").replace("/", ".") for module in TRIGGER_MODULES
                if module.endswith("/__init__.py")}
    allowed_roots = set(sys.stdlib_module_names) | set(PACKAGED_IMPORTS) | set(LAMBDA_RUNTIME_MODULES)
    problems = []
    for module in TRIGGER_MODULES:
        for name in sorted(module_level_imports(root / module)):
            top = name.split(".")[0]
            if top in ("flows", "sources"):  # the project's own packages: packaged module by module
                # "from flows.x import y" names flows.x and flows.x.y, an attribute of a packaged module;
                # "from flows import x" names flows.x, a module, which must be packaged itself.
                parent = name.rpartition(".")[0]
                if name in packaged or (parent in packaged and parent not in packages):
                    continue
                problems.append(f"{module}: imports {name}, which is not in the trigger package "
                                f"(add it to TRIGGER_MODULES if it is standard-library only, or import it lazily)")
            elif top not in allowed_roots:
                problems.append(f"{module}: imports {name}, which is neither the standard library, "
                                f"{', '.join(PACKAGED_DISTRIBUTIONS)} nor Lambda's boto3")
    if problems:
        raise PackageError("the trigger package would not import:\n  " + "\n  ".join(problems))


def install_dependencies(target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(target), *LAMBDA_PLATFORM, *requirements()]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackageError(f"pip could not fetch the Lambda wheels ({' '.join(requirements())}) for "
                           f"manylinux2014_x86_64 / Python 3.11:\n{result.stderr.strip()}")


def copy_modules(target: Path) -> None:
    for module in TRIGGER_MODULES:
        destination = target / module
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / module, destination)


def precompile(root: Path) -> bool:
    """Bytecode for Lambda's Python 3.11, checked by nobody: /var/task is read-only, so without it every
    cold start compiles each module again (imports take about twice as long). Unchecked hash-based
    .pyc files ignore the zip's fixed timestamps; the package is immutable once deployed. Only a Python 3.11
    build can write 3.11 bytecode; another version builds the zip without it."""
    if sys.version_info[:2] != (3, 11):
        print(f"lambda-package: Python {sys.version_info.major}.{sys.version_info.minor} cannot write bytecode for "
              f"Lambda's 3.11; the zip works without it but imports slower", file=sys.stderr)
        return False
    return compileall.compile_dir(root, quiet=1, workers=1,
                                  invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def write_zip(source: Path, output: Path) -> tuple[int, int, int]:
    """Returns (zip bytes, unpacked bytes, files)."""
    files = sorted(path for path in source.rglob("*") if path.is_file())
    output.parent.mkdir(parents=True, exist_ok=True)
    unpacked = 0
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # Lambda runs the code as another user: readable by all
            data = path.read_bytes()
            unpacked += len(data)
            archive.writestr(info, data, compresslevel=9)
    return output.stat().st_size, unpacked, len(files)


def build(output: Path, work_dir: Path) -> dict[str, int]:
    check_imports(PROJECT_ROOT)
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    install_dependencies(work_dir)
    shutil.rmtree(work_dir / "bin", ignore_errors=True)  # console scripts of the wheels: nothing runs them
    copy_modules(work_dir)
    precompile(work_dir)
    if output.exists():
        output.unlink()
    zipped, unpacked, files = write_zip(work_dir, output)
    if zipped > MAX_ZIP_BYTES:
        raise PackageError(f"{output} is {zipped / 1e6:.1f} MB, over Lambda's 50 MB limit for a zip")
    if unpacked > MAX_UNZIPPED_BYTES:
        raise PackageError(f"{work_dir} is {unpacked / 1e6:.1f} MB unpacked, over Lambda's 250 MB limit")
    return {"zip_bytes": zipped, "unpacked_bytes": unpacked, "files": files}


# ---- measuring: the unpacked zip in a fresh interpreter, as Lambda starts it ---------------------------------


def lambda_like_runtime(destination: Path) -> Path:
    """A folder with boto3 and its dependencies, linked from this environment: what Lambda's Python
    runtime adds to the zip's folder. Nothing else of this environment (no Prefect, no pydantic)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in LAMBDA_RUNTIME_IMPORTS:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise PackageError(f"{name} is not installed here; it stands in for Lambda's runtime copy")
        source = Path(spec.submodule_search_locations[0]) if spec.submodule_search_locations else Path(spec.origin)
        link = destination / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return destination


def fresh_interpreter(unpacked: Path, runtime: Path, code: str, *, env: dict[str, str] | None = None,
                      stdin: str | None = None) -> subprocess.CompletedProcess:
    """Runs ``code`` in a new Python without site-packages (``-S``): only the standard library, the
    unpacked zip and the runtime's boto3 are importable. No bytecode is written (Lambda's /var/task is
    read-only), so every run imports as a cold start does: from the zip's own bytecode."""
    environment = {key: value for key, value in (env or os.environ).items() if not key.startswith("PYTHON")}
    environment.update(PYTHONPATH=os.pathsep.join([str(unpacked), str(runtime)]), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-S", "-c", code], env=environment, input=stdin, capture_output=True,
                          text=True, timeout=120)


COLD_IMPORT = """
import json, sys, time
started = time.perf_counter()
import flows.trigger.handler
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "modules": sorted(sys.modules)}))
"""


def measure_cold_import(zip_path: Path, runs: int = 7) -> dict[str, object]:
    """Median time of ``import flows.trigger.handler`` from the unpacked zip, each in a new interpreter."""
    with tempfile.TemporaryDirectory(prefix="exec-reports-lambda-") as scratch:
        unpacked = Path(scratch) / "task"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(unpacked)
        runtime = lambda_like_runtime(Path(scratch) / "runtime")
        timings, modules = [], []
        for _ in range(runs):
            result = fresh_interpreter(unpacked, runtime, COLD_IMPORT)
            if result.returncode != 0:
                raise PackageError(f"the handler does not import from {zip_path}:\n{result.stderr.strip()}")
            answer = json.loads(result.stdout)
            timings.append(answer["seconds"])
            modules = answer["modules"]
    return {"median_seconds": statistics.median(timings), "runs": runs, "modules": modules}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "build" / "exec-reports-trigger.zip")
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / "build" / "lambda",
                        help="where the package is assembled (emptied first)")
    parser.add_argument("--measure", action="store_true",
                        help="then import the handler from the unpacked zip in fresh interpreters and print the time")
    args = parser.parse_args(argv)
    try:
        sizes = build(args.output.resolve(), args.work_dir.resolve())
    except PackageError as exc:
        print(f"lambda-package: {exc}", file=sys.stderr)
        return 1
    print(f"{os.path.relpath(args.output)}: {sizes['zip_bytes'] / 1e6:.1f} MB zipped, "
          f"{sizes['unpacked_bytes'] / 1e6:.1f} MB unpacked, {sizes['files']} files; handler {HANDLER}")
    if args.measure:
        try:
            timing = measure_cold_import(args.output.resolve())
        except PackageError as exc:
            print(f"lambda-package: {exc}", file=sys.stderr)
            return 1
        third_party = sorted({name.split(".")[0] for name in timing["modules"]} & {"jwt", "cryptography", "boto3"})
        print(f"cold import of {HANDLER.rpartition('.')[0]}: {timing['median_seconds'] * 1000:.0f} ms "
              f"(median of {timing['runs']} fresh interpreters, the zip's bytecode, none written; "
              f"loads {', '.join(third_party)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
