"""Code-shape rules that are cheap to check: functions in the orchestration layer stay readable in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "taco_jax"
MAX_LINES = 80


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function whose body, without its docstring, spans more than `limit` lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        lines = node.end_lineno - node.lineno + 1  # signature and body
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            lines -= first.end_lineno - first.lineno + 1
        if lines > limit:
            found.append((node.name, lines))
    return found


def test_the_checker_counts_body_lines_without_the_docstring():
    body = "\n".join(f"    x{i} = {i}" for i in range(79))
    assert long_functions(f'def f():\n    """doc\n\n    more doc\n    """\n{body}\n') == []
    assert long_functions(f"def f():\n{body}\n    y = 1\n    z = 2\n") == [("f", 82)]


@pytest.mark.parametrize("folder", ["train", "control"])
def test_no_function_in_the_orchestration_layer_exceeds_80_lines(folder):
    offenders = {
        f"{path.relative_to(PACKAGE.parent)}:{name}": n
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for name, n in long_functions(path.read_text())
    }
    assert not offenders, f"functions over {MAX_LINES} lines (docstring excluded): {offenders}"
