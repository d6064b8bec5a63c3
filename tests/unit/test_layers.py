"""The package's layers hold: every import inside opskit goes down the layers, never up or
sideways, and only ``opskit.engine`` talks to docker-py.

The test reads each module's source (imports inside functions and under ``TYPE_CHECKING``
included), so a violation fails here before it can become an import cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import opskit

PACKAGE = Path(opskit.__file__).parent

# Bottom to top. Packages in the same tier are siblings: neither may import the other.
TIERS: list[set[str]] = [
    {"base"},
    {"records"},
    {"spec"},
    {"engine"},
    {"observe"},
    {"act"},
    {"recover", "figures"},
    {"analysis"},
    {"facade"},  # ops.py and the public paths errors/metrics/policy/statsframe
    {"fleet", "swarm"},
    {"widgets"},
    {"cli"},  # cli.py, lab.py
    {"root"},  # opskit/__init__.py
]
FACADE = {"ops", "errors", "metrics", "policy", "statsframe"}
CLI = {"cli", "lab"}
# Third-party packages worth delaying to the first call that needs them: importing opskit stays
# light (no docker-py, pandas, plotly or Jupyter until used).
HEAVY = {"docker", "requests", "urllib3", "pandas", "numpy", "pyarrow", "plotly", "ipywidgets",
         "IPython", "yaml", "papermill", "nbformat"}
DOCKER_PY = {"docker", "requests", "urllib3"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # what it imports, dotted (opskit.x.y or a third-party top-level name)
    line: int
    in_function: bool
    type_only: bool = False  # under ``if TYPE_CHECKING:``


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    if len(parts) == 2 and parts[1] in FACADE:
        return "facade"
    if len(parts) == 2 and parts[1] in CLI:
        return "cli"
    return parts[1]


def rank(layer: str) -> int:
    return next(i for i, tier in enumerate(TIERS) if layer in tier)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(id(n) for n in ast.walk(node)
                          if isinstance(n, ast.Import | ast.ImportFrom))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node)
                               if isinstance(n, ast.Import | ast.ImportFrom))
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    targets = [f"{stem}.{alias.name}" for alias in node.names]
                else:
                    targets = [stem]
            elif node.module:
                targets = [node.module]
        found += [Import(name, t, node.lineno, id(node) in inside, id(node) in typing_only)
                  for t in targets]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "demo" not in p.parts)
ALL = [imp for path in MODULES for imp in imports_of(path)]


def test_every_module_belongs_to_a_layer() -> None:
    known = set().union(*TIERS)
    for path in MODULES:
        assert layer_of(module_name(path)) in known, f"{module_name(path)} is in no layer"


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for imp in ALL:
        if not imp.target.startswith("opskit"):
            continue
        mine, theirs = layer_of(imp.module), layer_of(resolve(imp.target))
        if mine == theirs:
            continue
        if rank(theirs) >= rank(mine):
            how = "sideways to" if rank(theirs) == rank(mine) else "up to"
            wrong.append(f"{imp.module}:{imp.line} imports {imp.target} ({mine} {how} {theirs})")
    assert not wrong, "\n".join(wrong)


def resolve(target: str) -> str:
    """The module an import names (``opskit.base`` for ``from opskit.base import labels``...)."""
    parts = target.split(".")
    while parts and not (_exists(parts)):
        parts.pop()
    return ".".join(parts) or target


def _exists(parts: list[str]) -> bool:
    path = PACKAGE.parent.joinpath(*parts)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def heavy_at_import() -> set[str]:
    """The opskit modules whose import pulls in a heavy package (directly or through another
    opskit module imported at module level)."""
    runtime = [imp for imp in ALL if not imp.in_function and not imp.type_only]
    heavy = {imp.module for imp in runtime if imp.target.split(".")[0] in HEAVY}
    while True:
        more = {imp.module for imp in runtime
                if imp.target.startswith("opskit") and resolve(imp.target) in heavy} - heavy
        if not more:
            return heavy
        heavy |= more


def test_imports_inside_functions_only_delay_heavy_packages() -> None:
    """An import inside a function is there to delay a heavy third-party package (``import
    opskit`` must not load pandas, plotly, docker-py or Jupyter): of that package itself, or of
    an opskit module that imports one when it is imported. Any other import inside a function
    would hide a layer problem or a cycle."""
    heavy = heavy_at_import()
    wrong = [f"{imp.module}:{imp.line} imports {imp.target} inside a function"
             for imp in ALL if imp.in_function and imp.module != "opskit"
             and imp.target.split(".")[0] not in HEAVY
             and not (imp.target.startswith("opskit") and resolve(imp.target) in heavy)]
    assert not wrong, "\n".join(wrong)


def test_import_opskit_stays_light() -> None:
    """``import opskit`` (the core: everything but widgets) loads no heavy package."""
    code = ("import sys, opskit, opskit.cli\n"
            f"print(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"
    light = [module_name(p) for p in MODULES if "widgets" not in p.parts]
    assert {"opskit", "opskit.ops", "opskit.cli"} & heavy_at_import() == set()
    assert len(light) > 40


def test_only_the_engine_package_imports_docker_py() -> None:
    wrong = [f"{imp.module}:{imp.line} imports {imp.target}" for imp in ALL
             if imp.target.split(".")[0] in DOCKER_PY and layer_of(imp.module) != "engine"]
    assert not wrong, "\n".join(wrong)


def test_no_module_reaches_into_docker_py_private_api() -> None:
    """``api._get``, ``_post``, ``_url``... are docker-py internals: one module of the engine
    package wraps them, so a docker-py upgrade has one place to check."""
    wrong = []
    for path in MODULES:
        if module_name(path) == "opskit.engine.calls":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for private in ("._get(", "._post(", "._put(", "._delete(", "._url(", "._result(",
                            "._raise_for_status(", "._stream_helper("):
                if private in line:
                    wrong.append(f"{module_name(path)}:{n}: {line.strip()}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for imp in ALL:
        if imp.target.startswith("opskit") and not imp.in_function:
            graph.setdefault(imp.module, set()).add(resolve(imp.target))
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == "opskit" or nxt.startswith(node + "."):
                continue  # a package's __init__ naming its own modules
            if seen.get(nxt) == 1 and not node.startswith(nxt + "."):
                pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module)


def test_every_package_says_what_it_is_for() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.splitlines()[0]) > 20, f"{init.parent.name} has no purpose line"


def test_each_layer_imports_alone() -> None:
    """Every module imports in a fresh interpreter on its own (no hidden order dependency)."""
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    importlib.import_module(name)\n")
    names = [module_name(p) for p in MODULES if "widgets" not in p.parts]
    done = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
