"""`python -m della <stage> ...`: the `della-bench` command without the console script, which is how
the workflow's rules call it (workflow/rules/common.smk: DELLA_BENCH)."""

from della.cli import main

main()
