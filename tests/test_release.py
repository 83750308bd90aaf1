"""The release files agree: one version (featvis.__version__) in pyproject, CITATION.cff and the
changelog; the MIT licence that pyproject names is the LICENSE file; the catalog file is valid."""

from __future__ import annotations

import re
import tomllib

import yaml

import featvis
from workflow_helpers import ROOT


def test_one_version_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "featvis.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", featvis.__version__)
    assert yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"] == featvis.__version__
    top = next(line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## "))
    assert top.startswith(f"## {featvis.__version__} ")


def test_license_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert yaml.safe_load((ROOT / "CITATION.cff").read_text())["license"] == "MIT"


def test_catalog_usage_file():
    usage = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["report"] is True and usage["software-stack-deployment"]["conda"] is True
    assert "config/README.md" in usage["mandatory-flags"]["desc"]
    assert (ROOT / "config" / "README.md").is_file()
