"""Helpers shared by the test modules (not tests themselves)."""

from pathlib import Path

#: the repository
ROOT = Path(__file__).resolve().parents[2]
