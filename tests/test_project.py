"""The project's own promises: pins in step, README commands, Makefile help."""

import re
import tomllib

import yaml

from .conftest import REPO


def test_environment_yml_matches_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pyproject_pins = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert set(pip_section) - {"-e ."} == pyproject_pins
    assert all("==" in pin for pin in pyproject_pins)


def test_constraints_pin_every_direct_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    constraints = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, version = line.split("==")
        constraints[name.lower().replace("_", "-")] = version
    for pin in project["dependencies"]:
        name, version = re.sub(r"\[.*\]", "", pin).split("==")
        assert constraints[name.lower().replace("_", "-")] == version, pin


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    assert "make report" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_make_target_documents_itself():
    makefile = (REPO / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split())
    documented = set(re.findall(r"^([a-zA-Z_-]+):.*## ", makefile, re.M))
    assert phony == documented
