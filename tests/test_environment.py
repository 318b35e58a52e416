"""environment.yml and pyproject.toml must pin the same versions; the running env must match."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import yaml

from della.io import provenance

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)$")


def pins(requirements) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        match = PIN.match(requirement.strip())
        assert match, f"not an exact pin: {requirement!r}"
        found[match.group(1).lower()] = match.group(2)
    return found


def test_environment_yml_and_pyproject_name_the_same_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip_section = next(d["pip"] for d in conda if isinstance(d, dict) and "pip" in d)
    assert pins(project) == pins(pip_section)


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
        assert locked.get(name.replace("_", "-")) == version, f"requirements.lock: {name} {locked.get(name)} != {version}"


def test_ci_runs_the_readmes_test_command():
    """README: two set-up commands; the second is exactly what .ci/run runs on a clean clone."""
    section = (ROOT / "README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(commands) == 2, commands
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci_lines == [commands[1]]
