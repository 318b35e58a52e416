"""The workflow's plumbing: configs as a base plus overlays (overlays.py), resolved once
(resolved.py) and their errors (config_errors.py), the files each target reads (targets.py), the
pinned model cache (prefetch.py), the jobs' environment (jobenv.py) and the warm start
(warm.py)."""
