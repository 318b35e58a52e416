"""The networks: the Transformer-VAE every model is an instance of (vae.py), its Gaussian chain and
the latent-path registry (latent.py), DELLA's layer-wise path (della_path.py; the baselines' paths
are in `baselines/`), where paths come from (plugins.py), backbones and the published architectures
(backbone.py, architectures.py), and decoding through transformers' `generate()` (decoding.py)."""
