"""The baselines of the paper, one module each.

A new baseline is one module here (a `LatentPath` subclass decorated with
`@register_latent_path("name")`) plus one entry under `models:` in the config. Nothing imports
the modules by name: `della.models.plugins.load_builtin_paths` imports every module of this package
before a model is built.
"""
