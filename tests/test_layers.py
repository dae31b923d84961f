"""The app layers of docs/architecture.md hold, and a wrong import breaks the build.

``./dev test`` runs ``lint-imports`` before pytest; these tests show that the contracts it checks
are not toothless: an upward import or Django inside the inference code makes it fail.
"""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: apps whose modules sit in two layers (their pages/admin on top, their models and services low)
SPLIT_APPS = ("seller", "facelibrary")
NOT_LAYERED = {"apps", "migrations", "templates"}


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [
        name.strip() for layer in contract["layers"] for name in layer.replace(":", "|").split("|")
    ]


def _copy_of_the_project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "var", "node_modules", "test-artifacts", "*.pyc", "static"
        ),
    )
    return copy


def _lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=where, capture_output=True, text=True, timeout=120
    )


def test_the_project_keeps_its_layers():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


#: file -> (the line added to it, what lint-imports must say about it)
UPWARD_IMPORTS = {
    "generation/services.py": ("from qa import models", "generation is not allowed to import qa"),
    "catalog/selectors.py": ("import qa.services", "catalog is not allowed to import qa"),
    "seller/services.py": (
        "import generation.models",
        "seller.services is not allowed to import generation",
    ),
    "core/files.py": ("import seller.models", "core is not allowed to import seller"),
    "generation/inference/pose.py": (
        "import django.db",
        "generation.inference is not allowed to import django",
    ),
}


@pytest.mark.parametrize("module", UPWARD_IMPORTS)
def test_an_import_against_the_layers_fails_the_lint(tmp_path, module):
    line, complaint = UPWARD_IMPORTS[module]
    copy = _copy_of_the_project(tmp_path)
    path = copy / module
    path.write_text(path.read_text() + f"\n{line}  # deliberate\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert complaint in " ".join(result.stdout.split())


@pytest.mark.parametrize("app", SPLIT_APPS)
def test_every_module_of_a_split_app_has_a_layer(app):
    """A new module in seller/ or facelibrary/ must be placed in a layer, or nothing checks it."""
    layered = set(_layers())
    modules = {info.name for info in pkgutil.iter_modules([str(ROOT / app)])} - NOT_LAYERED
    missing = sorted(f"{app}.{name}" for name in modules if f"{app}.{name}" not in layered)
    assert not missing, f"add these to a layer in pyproject.toml: {missing}"
