"""environment.yml and pyproject.toml must pin the same versions; the running env must match."""

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from della.io import provenance
from metrics.embedding import MINILM_ALIAS

from helpers import ROOT
from helpers.workflow import one_run_config, snakemake_command, write_config

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)$")


def pins(requirements) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        match = PIN.match(requirement.strip())
        assert match, f"not an exact pin: {requirement!r}"
        found[match.group(1).lower()] = match.group(2)
    return found


def environment_yml_pip() -> list[str]:
    """The pip section of environment.yml: every package of the conda environment but Python."""
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    return next(d["pip"] for d in conda if isinstance(d, dict) and "pip" in d)


def test_environment_yml_and_pyproject_name_the_same_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert pins(project) == pins(environment_yml_pip())


def requirement_closure(requirements: list[str]) -> set[str]:
    """The distributions `requirements` need, recursively, as installed in this venv (markers
    evaluated here, no extras: environment.yml asks for none)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    names, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in names or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        names.add(name)
        todo += [Requirement(r) for r in metadata.distribution(name).requires or []]
    return names


@pytest.fixture(scope="session")
def environment_yml_venv(tmp_path_factory) -> Path:
    """What `--sdm conda` builds from environment.yml, without conda: a venv holding its pip
    section and those packages' dependencies, and nothing else (the project is not installed).
    Their files are hard-linked from this venv, which has the same pinned versions: a `pip
    install` of them takes minutes here (torch alone is 1 GB unpacked)."""
    venv = tmp_path_factory.mktemp("environment_yml") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for name in requirement_closure(environment_yml_pip()):
        dist = metadata.distribution(name)
        for file in dist.files:
            target = (site / file).resolve()
            if not target.is_relative_to(site):
                continue  # console scripts: `python -m` runs what the workflow needs
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(dist.locate_file(file), target)
    return venv


def test_the_workflow_runs_in_the_environment_yml_environment_without_the_project(environment_yml_venv, tmp_path):
    """Every rule runs `python -m della` with the repository on PYTHONPATH, so the environment
    needs no `della-bench` package: here Snakemake and its jobs run from that environment alone,
    its bin/ first on PATH (as `--sdm conda` activates it) and the test venv's bin/ off it."""
    bin_dir = environment_yml_venv / "bin"
    assert not (bin_dir / "della-bench").exists()
    for probe, error in (
        ("import della", "No module named 'della'"),
        ("from importlib import metadata; metadata.version('della-bench')", "PackageNotFoundError"),
    ):
        result = subprocess.run([bin_dir / "python", "-c", probe], cwd=tmp_path, capture_output=True, text=True)
        assert error in result.stderr, result
    command, env = snakemake_command(
        tmp_path,
        write_config(tmp_path / "one_run.yaml", one_run_config()),
        python=bin_dir / "python",
        targets=["runs/yelp/della/seed0/metrics.json"],
    )
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent)
    env.pop("PYTHONPATH", None)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads((tmp_path / "runs" / "yelp" / "della" / "seed0" / "metrics.json").read_text())
    # the evaluate job found its feature model among the environment's packages (no PYTHONPATH, no
    # other Python on PATH), and recorded it by name and version, not by the environment's folder
    assert document["metrics"]["MAUVE"]["settings"]["feature_model_path"] == (
        f"{MINILM_ALIAS}=={metadata.version(MINILM_ALIAS)} (installed package)"
    )


def test_recorded_versions_are_the_running_ones():
    recorded = provenance()["versions"]
    for name in ("torch", "transformers", "sacrebleu"):
        assert recorded[name] == metadata.version(name)


def test_the_running_environment_has_the_pinned_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name, version in pins(project).items():
        installed = metadata.version(name)
        # a local build tag (torch's "+cpu") is the same release
        assert installed.split("+")[0] == version, f"{name}: installed {installed}, pinned {version}"


def test_the_lock_file_agrees_with_the_pins():
    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            locked[name.lower().replace("_", "-")] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name, version in pins(project).items():
        assert locked.get(name.replace("_", "-")) == version, (
            f"requirements.lock: {name} {locked.get(name)} != {version}"
        )


def test_ci_runs_the_readmes_test_command():
    """README: two set-up commands; the second is exactly what .ci/run runs on a clean clone."""
    section = (ROOT / "README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(commands) == 2, commands
    ci_lines = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci_lines == [commands[1]]
