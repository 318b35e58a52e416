"""Where latent paths come from: the built-in ones (DELLA's in `della/models/della_path.py`, and every module
of the `baselines` package, found by listing the package, so a new baseline module needs no
import added anywhere), and user plug-ins: a model entry's `plugin:` names the code that
registers its latent path.

A baseline that lives outside this repository's packages (`baselines/`, `della/`) is one Python
file or importable module that defines a `LatentPath` subclass decorated with
`@register_latent_path("name")`. The model entry names it:

    models:
      my_baseline: {path: name, plugin: plugins/my_baseline.py, ...}

`plugin` is either a path to a `.py` file (relative paths are relative to the repository root;
the workflow makes them absolute before a job sees them) or a dotted module name importable from
the job's Python (an installed package, or a directory on PYTHONPATH). The model records it in
its config.json, so generation and evaluation import it again before rebuilding the model.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from della.models.latent import LatentPath, get_latent_path

PLUGIN_FILE_SUFFIX = ".py"
# Modules, and packages all of whose modules, define the built-in latent paths.
BUILTIN_PATH_MODULES = ("della.models.della_path",)
BUILTIN_PATH_PACKAGES = ("baselines",)

_loaded_files: dict[Path, ModuleType] = {}


def is_plugin_file(plugin: str) -> bool:
    """A value ending in .py is a file path; anything else is a module name."""
    return plugin.endswith(PLUGIN_FILE_SUFFIX)


def import_plugin(plugin: str) -> ModuleType:
    """Import a plug-in once (its `register_latent_path` decorators run on first import)."""
    if not is_plugin_file(plugin):
        try:
            return importlib.import_module(plugin)
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                f"plugin {plugin!r}: no such module ({error}); give a path ending in {PLUGIN_FILE_SUFFIX} "
                f"or put the module's directory on PYTHONPATH"
            ) from error
    path = Path(plugin).expanduser().resolve()
    if path in _loaded_files:
        return _loaded_files[path]
    if not path.is_file():
        raise FileNotFoundError(f"plugin file {plugin!r} does not exist")
    # A name unique to the file, so two plug-ins called `toy.py` in different folders do not clash.
    name = f"della_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    _loaded_files[path] = module
    return module


def load_builtin_paths() -> None:
    """Import every module that defines a built-in latent path (their decorators register them)."""
    for name in BUILTIN_PATH_MODULES:
        importlib.import_module(name)
    for package_name in BUILTIN_PATH_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(module.name)


def latent_path_class(name: str, plugin: str | None = None) -> type[LatentPath]:
    """The latent path class a model entry's `path:` names, after importing the built-in paths
    and the entry's `plugin:` (if any)."""
    load_builtin_paths()
    if plugin is not None:
        import_plugin(plugin)
    return get_latent_path(name)
