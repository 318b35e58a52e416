"""Maintainer tools, run from the repository root and not installed: the generators of the shipped
data (`python -m tools.sample_generator --out sample_data`, `python -m tools.rehearsal_data --out
sample_data/rehearsal`) and the WordNet reader the small scale's generator uses (wordnet.py). The
pipeline never imports them."""
