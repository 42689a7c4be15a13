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


def package_import_graph() -> dict[str, set[str]]:
    """Module → package modules it imports (top level or inside functions), without parent packages."""
    from sst2bench import cache

    modules = []
    for path in sorted(cache.PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(cache.PACKAGE_DIR.parent).with_suffix("").parts)
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return {m: {d for d in cache._imported(m, cache.module_file(m)) if d != m and not m.startswith(d + ".")} for m in modules}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state, cycles = {}, []

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target in graph and target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = "closed"

    for module in graph:
        if module not in state:
            visit(module, [])
    return cycles


def test_no_import_cycle_between_package_modules():
    graph = package_import_graph()
    assert "sst2bench.stages.latency" in graph and graph["sst2bench.latency"].isdisjoint(
        {m for m in graph if m.startswith("sst2bench.stages")}
    )
    assert find_cycles(graph) == []
    assert find_cycles({**graph, "sst2bench.results": graph["sst2bench.results"] | {"sst2bench.report"}})  # a cycle is seen
