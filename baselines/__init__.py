"""The baselines of the paper, one module each; importing this package registers them all.

A new baseline is one module here (a `LatentPath` subclass decorated with
`@register_latent_path("name")`) plus one entry under `models:` in the config.
"""

from baselines import embedding, finetune, memory, optimus, softmax  # noqa: F401
