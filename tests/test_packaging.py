"""The package's requirements leave a GPU machine's own torch alone; the Makefile's installs stay exact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_torch_is_a_range_in_the_package_and_pinned_only_for_the_makefile():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = [d for d in deps if re.match(r"torch\b", d)]
    assert torch == ["torch>=2.4"], torch  # an exact pin forces this project's CPU wheel on a CUDA machine
    constraints = [line.strip() for line in (ROOT / "constraints.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert "torch==2.13.0" in constraints
    installs = [line for line in (ROOT / "Makefile").read_text().splitlines() if "$(PIP) install" in line]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
