"""Hardcoded secrets in a tenant's code, found by detect-secrets. Only the kind and place are kept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sources.aws.live import ServiceFailure

SKIPPED_FOLDERS = frozenset({".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", "dist", "build"})


def scan_repository(folder: Path) -> list[dict[str, Any]]:
    """One row per potential secret: file (relative), line and detector type — never the value."""
    from detect_secrets.core import scan
    from detect_secrets.settings import default_settings

    if not folder.is_dir():
        raise ServiceFailure(f"repository folder not found: {folder}")
    found = []
    with default_settings():
        for path in _files(folder):
            # scan_file reads one file in this process; SecretsCollection.scan_files would fork a pool.
            try:
                secrets = list(scan.scan_file(str(path)))
            except OSError as exc:
                raise ServiceFailure(f"could not read {path}: {exc.strerror or type(exc).__name__}") from None
            for secret in secrets:
                found.append({"file": path.relative_to(folder).as_posix(), "line": int(secret.line_number or 0),
                              "type": secret.type})
    return sorted(found, key=lambda f: (f["file"], f["line"], f["type"]))


def _files(folder: Path):
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if f not in SKIPPED_FOLDERS)
        for name in sorted(files):
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                yield path


# CI/CD configuration files by system, as each system documents where it looks. Checked in this
# order; a repository with several is listed under the first.
PIPELINE_FILES = (
    ("GitHub Actions", (".github/workflows/*.yml", ".github/workflows/*.yaml")),
    ("GitLab CI", (".gitlab-ci.yml",)),
    ("AWS CodeBuild", ("buildspec.yml", "buildspec.yaml")),
    ("AWS Amplify", ("amplify.yml",)),
    ("Jenkins", ("Jenkinsfile",)),
    ("CircleCI", (".circleci/config.yml",)),
    ("Bitbucket Pipelines", ("bitbucket-pipelines.yml",)),
    ("Azure Pipelines", ("azure-pipelines.yml",)),
    ("Travis CI", (".travis.yml",)),
    ("Drone", (".drone.yml",)),
)


def pipeline_of(folder: Path) -> str:
    """The CI/CD system a repository's own configuration names, or "" when it has none."""
    if not folder.is_dir():
        raise ServiceFailure(f"repository folder not found: {folder}")
    for system, patterns in PIPELINE_FILES:
        for pattern in patterns:
            if any(path.is_file() for path in folder.glob(pattern)):
                return system
    return ""
