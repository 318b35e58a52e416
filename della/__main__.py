"""`python -m della <stage> ...`: the `della-bench` command without the console script, which is how
the workflow's rules call it (workflow/rules/common.smk: DELLA_BENCH). Under a local run with
`warm_start: true`, the commands of della.pipeline.warm.WARM_COMMANDS run in a worker forked from the run's
warm server (della/pipeline/warm.py), which has the libraries imported already."""

import sys

from della.pipeline.warm import run_warm  # standard library only: it must not import torch

status = run_warm(sys.argv[1:])
if status is not None:
    sys.exit(status)

from della.cli import main  # noqa: E402  (after the warm path, which must not import it)

main()
