"""della-bench: DELLA (Hu et al., NAACL 2022) and the Transformer-VAE baselines, one framework."""

__version__ = "0.2.0"
