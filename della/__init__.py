"""della-bench: DELLA (Hu et al., NAACL 2022) and the Transformer-VAE baselines, one framework."""

from pathlib import Path

__version__ = "0.2.0"

# The repository the packages sit in (an editable install): config/ and the Snakefile beside them.
REPO = Path(__file__).resolve().parent.parent

# The project's top-level packages (pyproject.toml's `packages.find` and ruff's first-party list
# name the same three; tests/test_imports.py checks that they agree).
PACKAGES = ("della", "baselines", "metrics")
