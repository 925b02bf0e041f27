"""Import hygiene: what importing a module drags in, no import-time side effects, no import cycles.

Every runtime check imports in a fresh interpreter (the test process has long since imported everything), and
each one is also run on a case it must flag, so a checker that silently passes everything fails here.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "taco_jax"
HEAVY_DATA_LIBS = ("grain", "librosa", "soundfile", "omegaconf")


def _run_python(code: str, extra_path: Iterable[str | os.PathLike] = ()) -> dict:
    """Run `code` in a fresh interpreter (CPU JAX) and return the JSON object it prints on its last line."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_path), str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _loaded_after_import(module: str, extra_path: Iterable[str | os.PathLike] = ()) -> list[str]:
    """Names in sys.modules after a fresh interpreter runs `import <module>`."""
    code = f"""
        import json, sys
        import {module}
        print(json.dumps(sorted(sys.modules)))
    """
    return _run_python(code, extra_path)


def _walk_modules(package: str) -> list[str]:
    """Every module under `package` (itself included), as pkgutil.walk_packages finds them in a fresh interpreter."""
    code = f"""
        import json, pkgutil, {package} as pkg
        names = [pkg.__name__] + [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
        print(json.dumps(names))
    """
    return _run_python(code)


# --- (a) the control package stands alone: no config schema, no training loop ------------------------------


def _forbidden_for_control(loaded: Iterable[str]) -> list[str]:
    return sorted(m for m in loaded if m == f"{PACKAGE}.config" or m.split(".")[:2] == [PACKAGE, "train"])


def test_control_forbidden_check_can_fail():
    # taco_jax.audio takes its AudioConfig from taco_jax.config, so the check must flag it.
    assert f"{PACKAGE}.config" in _forbidden_for_control(_loaded_after_import(f"{PACKAGE}.audio"))


def test_control_does_not_load_config_or_train():
    modules = _walk_modules(f"{PACKAGE}.control")
    assert f"{PACKAGE}.control" in modules and len(modules) > 1
    offenders = {m: bad for m in modules if (bad := _forbidden_for_control(_loaded_after_import(m)))}
    assert not offenders, "control modules that load taco_jax.config or taco_jax.train*:\n" + "\n".join(
        f"  {m}: {bad}" for m, bad in offenders.items()
    )


# --- (b) losses and diagnostics stay free of the data stack ------------------------------------------------


def _heavy_loaded(loaded: Iterable[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in loaded} & set(HEAVY_DATA_LIBS))


def test_heavy_check_can_fail():
    assert {"librosa", "soundfile"} <= set(_heavy_loaded(_loaded_after_import(f"{PACKAGE}.audio")))


@pytest.mark.parametrize("module", [f"{PACKAGE}.losses", f"{PACKAGE}.diagnostics"])
def test_no_data_stack_imports(module):
    assert _heavy_loaded(_loaded_after_import(module)) == [], f"importing {module} loads data-stack libraries"


# --- (c) importing the package never changes matplotlib's backend ------------------------------------------


def _backend_changes(package: str, extra_path: Iterable[str | os.PathLike] = ()) -> dict:
    """Import every module of `package` (not `__main__`) after selecting the svg backend; report what changed."""
    code = f"""
        import importlib, json, pkgutil
        import matplotlib
        matplotlib.use("svg")
        before = matplotlib.get_backend()
        import {package} as pkg
        changed, errors, names = [], {{}}, [pkg.__name__]
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
        for name in names:
            if name.rsplit(".", 1)[-1] == "__main__":
                continue  # running, not importing, is what a __main__ module is for
            try:
                importlib.import_module(name)
            except Exception as e:
                errors[name] = repr(e)
            if matplotlib.get_backend() != before:
                changed.append([name, matplotlib.get_backend()])
                matplotlib.use(before)  # so that a later module's switch is reported too
        print(json.dumps({{"before": before, "changed": changed, "errors": errors, "imported": names}}))
    """
    return _run_python(code, extra_path)


def test_backend_check_can_fail(tmp_path):
    pkg = tmp_path / "switcher"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "quiet.py").write_text("import matplotlib\n")
    (pkg / "loud.py").write_text('import matplotlib\nmatplotlib.use("Agg")\n')
    result = _backend_changes("switcher", [tmp_path])
    assert [name for name, _ in result["changed"]] == ["switcher.loud"]


def test_importing_package_keeps_matplotlib_backend():
    result = _backend_changes(PACKAGE)
    assert result["before"].lower() == "svg"
    assert f"{PACKAGE}.monitor" in result["imported"]
    assert not result["changed"], f"modules that switched the matplotlib backend: {result['changed']}"
    # A module that fails to import was not checked; errors are reported after the backend check on purpose.
    assert not result["errors"], f"modules that failed to import (backend not checked): {result['errors']}"


# --- (d) no import cycles within the package ---------------------------------------------------------------


def _module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> source file for every .py under root/package (a package is its __init__.py)."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _import_targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute names one import statement in `module` refers to: `[base]` or `[base.name, ...]` candidates."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    # `from pkg import name`: name is a submodule when pkg/name.py (or pkg/name/) exists, else an attribute of pkg.
    return [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]


def import_graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import}, for imports within `package` only.

    Every import statement counts, including those inside functions (a cycle through a deferred import is still
    a cycle in the design). No implicit edges to the parents of an imported module.
    """
    files = _module_files(root, package)
    graph: dict[str, dict[str, int]] = {name: {} for name in files}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            candidates = _import_targets(node, module, is_package)
            if isinstance(node, ast.ImportFrom):
                base, names = candidates[0], candidates[1:]
                subs = [n for n in names if n in files]
                # names that are not submodules are attributes of the base module (or `*`)
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            else:
                targets = candidates
            for target in targets:
                if target in files and target != module:
                    graph[module].setdefault(target, node.lineno)
    return graph


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle `[a, b, ..., a]` per strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_cycle_within(graph, set(c)) for c in components]


def _cycle_within(graph: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """A concrete cycle through the component's smallest node, by breadth-first search inside the component."""
    start = min(component)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if w in component and w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in strongly connected component {sorted(component)}")


def test_find_cycles_on_synthetic_graphs():
    assert find_cycles({"a": ["b"], "b": ["c"], "c": []}) == []
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    cycles = find_cycles({"a": ["b", "x"], "b": ["a"], "x": ["y"], "y": ["z"], "z": ["x"]})
    assert sorted(cycles) == [["a", "b", "a"], ["x", "y", "z", "x"]]


def test_import_graph_on_synthetic_package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")  # relative, names a submodule
    (pkg / "b.py").write_text("def f():\n    from .sub.c import thing\n")  # deferred, names an attribute
    (pkg / "sub" / "__init__.py").write_text("from ..a import x\n")
    (pkg / "sub" / "c.py").write_text("import pkg.a\nimport os\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": {},
        "pkg.a": {"pkg.b": 1},
        "pkg.b": {"pkg.sub.c": 2},
        "pkg.sub": {"pkg.a": 1},
        "pkg.sub.c": {"pkg.a": 1},
    }
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]


def test_no_import_cycles():
    graph = import_graph(REPO, PACKAGE)
    cycles = find_cycles(graph)
    lines = []
    for cycle in cycles:
        hops = [f"{a} -> {b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
        lines.append("  " + "; ".join(hops))
    assert not cycles, "import cycles in the package:\n" + "\n".join(lines)
