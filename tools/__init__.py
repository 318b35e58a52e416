"""Maintainer tools, run from the repository root and not installed: the generators of the shipped
data (`python -m tools.sample_generator --out sample_data`, `python -m tools.rehearsal_data --out
sample_data/rehearsal`), the WordNet reader the small scale's generator uses (wordnet.py), and the
before/after check of a refactor (`python -m tools.compare_outputs CLONE_A CLONE_B`). The pipeline
never imports them."""
