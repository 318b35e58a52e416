"""The Python is lint-clean and formatted: ruff's rules and line length are in pyproject.toml."""

import subprocess
import sys

from helpers import ROOT


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_is_clean():
    result = ruff("check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_every_file_as_it_is():
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_finds_an_undefined_name(tmp_path):
    """The check can fail: a file with an undefined name is reported, with its line."""
    bad = tmp_path / "bad.py"
    bad.write_text("print(undefined_name)\n")
    result = ruff("check", "--no-cache", "--output-format", "concise", str(bad))
    assert result.returncode == 1 and "bad.py:1:7: F821" in result.stdout, result.stdout
