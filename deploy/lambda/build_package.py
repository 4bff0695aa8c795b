"""Build the Lambda trigger's zip (``make lambda-package``).

The zip holds only what ``flows.handler`` needs in deployment mode: its modules (TRIGGER_MODULES)
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
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HANDLER = "flows.handler.handler"
TRIGGER_MODULES = (
    "flows/__init__.py",
    "flows/handler.py",
    "flows/auth.py",
    "flows/aws_secrets.py",
    "flows/errors.py",
    "flows/history.py",
    "flows/identifiers.py",
    "flows/period.py",
    "flows/prefect_api.py",
)
PACKAGED_DISTRIBUTIONS = ("PyJWT", "cryptography")  # with cryptography's own dependencies (cffi)
PACKAGED_IMPORTS = ("jwt", "cryptography")
LAMBDA_RUNTIME_MODULES = ("boto3", "botocore")  # in Lambda's Python runtime; not packaged
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
            if top == "flows":
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


def write_zip(source: Path, output: Path) -> tuple[int, int, int]:
    """Returns (zip bytes, unpacked bytes, files)."""
    files = sorted(path for path in source.rglob("*")
                   if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc")
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
    copy_modules(work_dir)
    if output.exists():
        output.unlink()
    zipped, unpacked, files = write_zip(work_dir, output)
    if zipped > MAX_ZIP_BYTES:
        raise PackageError(f"{output} is {zipped / 1e6:.1f} MB, over Lambda's 50 MB limit for a zip")
    if unpacked > MAX_UNZIPPED_BYTES:
        raise PackageError(f"{work_dir} is {unpacked / 1e6:.1f} MB unpacked, over Lambda's 250 MB limit")
    return {"zip_bytes": zipped, "unpacked_bytes": unpacked, "files": files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "build" / "exec-reports-trigger.zip")
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / "build" / "lambda",
                        help="where the package is assembled (emptied first)")
    args = parser.parse_args(argv)
    try:
        sizes = build(args.output.resolve(), args.work_dir.resolve())
    except PackageError as exc:
        print(f"lambda-package: {exc}", file=sys.stderr)
        return 1
    print(f"{os.path.relpath(args.output)}: {sizes['zip_bytes'] / 1e6:.1f} MB zipped, "
          f"{sizes['unpacked_bytes'] / 1e6:.1f} MB unpacked, {sizes['files']} files; handler {HANDLER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
