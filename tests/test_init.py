"""nodekit/__init__.py: a cheap import with lazy submodules and exports."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nodekit


def test_import_nodekit_needs_neither_ipython_nor_torchdiffeq():
    """Neither is a dependency of the library: the book needs IPython, the comparisons torchdiffeq."""
    code = (
        "import sys, nodekit\n"
        "import nodekit.models, nodekit.training, nodekit.attacks, nodekit.data, nodekit.book, nodekit.fields\n"
        "import nodekit.measure.gradients, nodekit.measure.memory, nodekit.measure.timing\n"
        "nodekit.odeint, nodekit.odeint_adjoint\n"
        "print(sorted(m for m in ('IPython', 'torchdiffeq') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_exports_and_submodules_load_on_first_use():
    assert nodekit.odeint is nodekit.solvers.odeint
    assert nodekit.StepSizeUnderflowError is nodekit.errors.StepSizeUnderflowError
    assert "training" in dir(nodekit) and "odeint_adjoint" in nodekit.__all__
    with pytest.raises(AttributeError, match="has no attribute 'odient'"):
        nodekit.odient  # noqa: B018
