"""The architecture's rules, read from the source: imports point one way, and the CLI holds no algorithm.

The package order is the one :mod:`depthface`'s docstring states (``cli -> evaluation -> ... -> geometry``);
docs/architecture.md explains it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import depthface

ROOT = Path(depthface.__file__).parent
TESTS = Path(__file__).parent
#: modules every package may import
SHARED = {"errors", "files"}
#: what a command module may not import: array maths and plotting belong to the library
NOT_IN_CLI = {"numpy", "torch", "scipy", "matplotlib", "numba", "PIL"}
#: the most statements a command's body may have (imports and the docstring not counted)
MAX_COMMAND_STATEMENTS = 15


def _layers() -> list[str]:
    """The packages from the top (``cli``) down, as the package docstring lists them."""
    line = next(ln for ln in depthface.__doc__.splitlines() if ln.strip().startswith("cli ->"))
    return [name.strip() for name in line.split("->")]


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in a file, also those inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def test_the_documented_layers_are_the_packages():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert set(_layers()) == packages, "depthface/__init__.py's package order must name every package once"


def test_imports_point_down_the_layers():
    layers = _layers()
    rank = {name: len(layers) - i for i, name in enumerate(layers)}
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if len(parts) < 2:
            continue  # depthface/__init__.py, errors.py, files.py: shared
        own = parts[0]
        for line, module in _imports(path):
            m = re.match(r"depthface\.(\w+)", module)
            if m is None or m.group(1) in SHARED or m.group(1) == own:
                continue
            if rank[m.group(1)] > rank[own]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {module} ({own} is below {m.group(1)})")
    assert not bad, "\n".join(bad)


def test_the_cli_does_no_computation():
    """Commands parse options, call one library function and print: no array library, no helper functions
    besides the commands, short bodies, no nested loops."""
    bad = []
    for path in sorted((ROOT / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        for line, module in _imports(path):
            if module.split(".")[0] in NOT_IN_CLI:
                bad.append(f"{path.name}:{line} imports {module}")
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            command = any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                          and d.func.attr in ("command", "callback") for d in node.decorator_list)
            if not command and not node.name.startswith("_") and node.name != "main":
                bad.append(f"{path.name}:{node.lineno} {node.name} is a helper: library code belongs in the library")
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            n = sum(1 for b in body for x in ast.walk(b)
                    if isinstance(x, ast.stmt) and not isinstance(x, (ast.Import, ast.ImportFrom)))
            if n > MAX_COMMAND_STATEMENTS:
                bad.append(f"{path.name}:{node.lineno} {node.name} has {n} statements (a flow: move it to the library)")
            for loop in (x for b in body for x in ast.walk(b) if isinstance(x, (ast.For, ast.While))):
                inner = [x for s in loop.body for x in ast.walk(s) if isinstance(x, (ast.For, ast.While))]
                if isinstance(loop, ast.While) or inner:
                    bad.append(f"{path.name}:{loop.lineno} {node.name} loops like an algorithm")
    assert not bad, "\n".join(bad)


def test_tests_use_the_cli_only_as_a_command():
    """Tests reach library code through the library: from ``depthface.cli`` they import only ``app``/``main``."""
    bad = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("depthface.cli"):
                bad += [f"{path.name}:{node.lineno} imports {a.name} from {node.module}"
                        for a in node.names if a.name not in ("app", "main")]
    assert not bad, "\n".join(bad)
