"""What a job asks the cluster for and how it ended: the resources of a train / generate /
evaluate job (resources.py), its estimated peak GPU memory (gpu_memory.py) and disk (disk.py),
docs/cluster.md's per-run table (cluster_table.py), and each attempt's end, which sizes its retry
(attempts.py)."""
