"""From run outputs to the paper's evidence: every number in one long table (tidy.py), intervals
and verdicts (intervals.py), tables and their specs (tables.py, table_spec.py), figures
(figures.py), the claims' findings (findings.py) and the human evaluation (human_eval.py)."""
