"""The environment the workflow's jobs inherit (workflow/rules/common.smk): every rule runs
`"$DELLA_PYTHON" -m della <stage>`, so it needs the interpreter and this repository on PYTHONPATH,
not an installed `della-bench` command."""

from __future__ import annotations

import os
from pathlib import Path


def export_job_environment(repo: Path, python: str) -> None:
    """Set DELLA_PYTHON and put `repo` first on PYTHONPATH (once) for the jobs started from here."""
    os.environ["DELLA_PYTHON"] = python
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(repo) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(repo), *paths])
