"""The package layout keeps its promises (issue 19.4, 19.5), checked on the source:

* no import cycle among first-party modules (module-level imports, the ones that run);
* dependencies go one way: ``crypto``, ``auth`` and ``plugins`` never import ``gateway``;
* ``crypto`` and ``auth`` do no I/O: they import no module that touches files, sockets
  or an event loop (key files live in ``gateway/keyfiles.py``);
* a first-party import inside a function is only the lazy load of an optional driver
  (listed below), never a way to hide a cycle;
* ``gateway/`` groups its endpoints in subpackages: no flat ``http_*``, ``ws_*`` or
  ``cli_*`` modules come back.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "crypto", "auth", "plugins")

#: Modules that touch files, sockets, processes or an event loop.
IO_MODULES = {
    "os",
    "io",
    "pathlib",
    "shutil",
    "socket",
    "ssl",
    "subprocess",
    "sqlite3",
    "asyncio",
    "aiohttp",
    "aiosqlite",
    "asyncpg",
    "redis",
    "websockets",
    "httpx",
    "urllib",
    "http",
    "qrcode",
}

#: Lazy imports of optional drivers: each loads a dependency only when configured.
ALLOWED_DEFERRED = {
    ("gateway.store", "gateway.store.sqlite"),
    ("gateway.store", "gateway.store.postgres"),
    ("gateway.bus", "gateway.bus.redis"),
    ("plugins.registry", "plugins"),
    ("plugins.registry", "plugins.freshdesk"),
    ("plugins.registry", "plugins.webhook"),
    ("plugins.registry", "plugins.zendesk"),
    ("plugins.testing", "plugins.outbox"),
    ("plugins.testing", "plugins.registry"),
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if "examples" in rel.parts:
                continue
            name = ".".join(rel.with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every absolute import."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.dump(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                out.append((child.module, in_function))
                out.extend((f"{child.module}.{a.name}", in_function) for a in child.names)
            elif isinstance(child, ast.Import):
                out.extend((a.name, in_function) for a in child.names)
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return out


IMPORTS = {name: _imports(ast.parse(path.read_text())) for name, path in MODULES.items()}


def test_there_are_modules_to_check() -> None:
    assert {"gateway.app", "gateway.http.plumbing", "crypto.envelope", "auth.totp"} <= set(MODULES)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, imports in IMPORTS.items():
        for target, deferred in imports:
            if not deferred and target in MODULES and target != name:
                graph[name].add(target)
    # Tarjan's strongly connected components; any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
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
                cycles.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            strong(v)
    assert cycles == []


def test_libraries_never_import_the_gateway() -> None:
    wrong = [
        (name, target)
        for name, imports in IMPORTS.items()
        if name.split(".")[0] in ("crypto", "auth", "plugins")
        for target, _ in imports
        if target == "gateway" or target.startswith("gateway.")
    ]
    assert wrong == []


def test_crypto_and_auth_do_no_io() -> None:
    wrong = [
        (name, target)
        for name, imports in IMPORTS.items()
        if name.split(".")[0] in ("crypto", "auth")
        for target, _ in imports
        if target.split(".")[0] in IO_MODULES
    ]
    assert wrong == []


def test_deferred_imports_only_load_optional_drivers() -> None:
    deferred = {
        (name, target)
        for name, imports in IMPORTS.items()
        for target, in_function in imports
        if in_function and target in MODULES
    }
    assert deferred <= ALLOWED_DEFERRED, sorted(deferred - ALLOWED_DEFERRED)


def test_gateway_groups_its_endpoints_in_subpackages() -> None:
    flat = sorted(
        p.name
        for p in (ROOT / "gateway").glob("*.py")
        if p.name.startswith(("http_", "ws_", "cli_")) or p.name == "cli.py"
    )
    assert flat == []
    for package in ("http", "ws", "cli", "ratelimit", "sdk", "governance", "store", "bus"):
        assert (ROOT / "gateway" / package / "__init__.py").is_file(), package
