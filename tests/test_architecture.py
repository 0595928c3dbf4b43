"""The package's shape: no import cycle, and the runtime path stays light.

Imports are read from the AST of every module of ``hypertok/`` (top-level and inside
functions, relative and absolute; imports under ``if TYPE_CHECKING:`` are not run and do
not count). Lightness is checked in a fresh interpreter, so modules other tests imported
do not hide a heavy import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import hypertok

PACKAGE = Path(hypertok.__file__).resolve().parent
MODEL_SIDE = ("hypertok.lab", "hypertok.gpu", "hypertok.adapt", "hypertok.registry")
HEAVY = MODEL_SIDE + ("hypertok.builder",)  # the builder brings pymorphy3, navec and numpy
# all that loading a directory and encoding may import of the package (issue 23)
RUNTIME = ("hypertok", "hypertok.cli", "hypertok.errors", "hypertok.files", "hypertok.text", "hypertok.core")
# ARCHITECTURE.md's picture, bottom up: a package or top-level module imports only from lower layers
LAYERS = (("errors",), ("files", "text", "options", "loss"), ("core",), ("registry",),
          ("builder", "lab", "gpu", "adapt"), ("cli",))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Import nodes, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """``{module: {hypertok modules it imports}}`` for every module of the package."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # `from pkg import sub` imports the module pkg.sub when there is one.
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in files else mod for a in node.names]
            for t in targets:
                while t and t not in files:  # `import hypertok.core.format` -> that module
                    t = t.rpartition(".")[0]
                if t.startswith("hypertok") and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = 2
        path.pop()
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_graph_reader_sees_relative_and_absolute_imports():
    g = import_graph()
    assert "hypertok.core.format" in g["hypertok.core.tokenizer"]
    assert "hypertok.files" in g["hypertok.core.format"]  # from ..files import ...
    assert "hypertok.builder.morphology" in g["hypertok.builder.select"]  # imported inside a function
    assert "hypertok.builder.config" not in g["hypertok.builder.corpus"]  # only under TYPE_CHECKING
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_in_the_package():
    assert find_cycle(import_graph()) is None


def package_graph() -> dict[str, set[str]]:
    """``{package or top-level module: {those it imports}}`` (``hypertok/__init__.py``, the front
    door that names everything on first use, left out)."""
    out: dict[str, set[str]] = {}
    for name, deps in import_graph().items():
        a = name.split(".")[1] if "." in name else None
        for d in deps:
            b = d.split(".")[1] if "." in d else None
            if a and b and a != b:
                out.setdefault(a, set()).add(b)
            elif a:
                out.setdefault(a, set())
    return out


def test_packages_point_down_the_layers():
    """Issue 23: no circle between packages (builder <-> registry was one) and every arrow points
    down ARCHITECTURE.md's layers; a new package must be placed in LAYERS."""
    g = package_graph()
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    assert set(g) <= set(layer), f"place {set(g) - set(layer)} in LAYERS (and in ARCHITECTURE.md)"
    up = {(a, b) for a, deps in g.items() for b in deps if layer[b] >= layer[a]}
    assert not up, f"imports that do not point down the layers: {sorted(up)}"
    assert find_cycle(g) is None
    assert "registry" in g["builder"] and "builder" not in g["registry"] and "builder" not in g["lab"]


def test_no_import_cycle_below_the_model_side():
    """The runtime core, the builder, files/options/cli: no cycle among them."""
    ours = ("hypertok.core", "hypertok.builder", "hypertok.files", "hypertok.text", "hypertok.options", "hypertok.errors")
    g = {n: {d for d in deps if d.startswith(ours)} for n, deps in import_graph().items() if n.startswith(ours)}
    assert len(g) > 10
    assert find_cycle(g) is None


def test_core_does_not_import_the_builder_or_the_model_side():
    g = import_graph()
    for name, deps in g.items():
        if name.startswith("hypertok.core"):
            bad = {d for d in deps if d.startswith(("hypertok.builder", "hypertok.cli") + MODEL_SIDE)}
            assert not bad, f"{name} imports {bad}"


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys; print('MODULES:', *sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    return set(out.rsplit("MODULES:", 1)[1].split())


def _heavy(modules: set[str]) -> set[str]:
    roots = {m.split(".")[0] for m in modules}
    heavy = {"numpy", "torch", "transformers", "peft", "matplotlib", "pymorphy3", "navec"} & roots
    return heavy | {m for m in modules if m.startswith(HEAVY)}


def _beyond_the_runtime(modules: set[str]) -> set[str]:
    """The package's modules outside core/, files, errors, cli and the package ``__init__``."""
    return {m for m in modules if m.split(".")[0] == "hypertok"
            and not any(m == r or (r == "hypertok.core" and m.startswith(r + ".")) for r in RUNTIME)}


def test_the_probe_sees_the_builder_and_the_model_side():
    assert _heavy({"hypertok.builder.corpus", "numpy.linalg"}) == {"hypertok.builder.corpus", "numpy"}
    assert _beyond_the_runtime({"hypertok", "hypertok.core.engine", "hypertok.files", "hypertok.options",
                                "hypertok.builder"}) == {"hypertok.options", "hypertok.builder"}


def test_import_load_encode_imports_only_the_core(tiny_tok):
    code = (f"import hypertok\ntok = hypertok.HyperTok.load({str(tiny_tok.path)!r})\n"
            "assert tok.decode(tok.encode('Мне было тогда')) == 'Мне было тогда'")
    mods = _modules_after(code)
    assert _heavy(mods) == set()
    assert _beyond_the_runtime(mods) == set()


def test_encode_command_imports_only_the_core(tiny_tok, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Мне было тогда", encoding="utf-8")
    code = f"from hypertok.cli import main\nmain(['encode', {str(tiny_tok.path)!r}, {str(src)!r}])"
    mods = _modules_after(code)
    assert _heavy(mods) == set()
    assert _beyond_the_runtime(mods) == set()


def test_the_front_door_resolves_each_name_on_first_use():
    """``import hypertok`` imports the core only; every other name of ``__all__`` loads its
    module when asked for (issue 23), and ``hypertok.adapt`` is the package, callable as adapt()."""
    mods = _modules_after("import hypertok")
    assert _heavy(mods) == set() and _beyond_the_runtime(mods) == set()
    code = ("import hypertok\nnames = {n: getattr(hypertok, n) for n in hypertok.__all__}\n"
            "import hypertok.adapt.cli\nfrom hypertok.adapt.train import adapt\n"
            "assert hypertok.adapt is names['adapt'] and hypertok.adapt.adapt is adapt and callable(hypertok.adapt)\n"
            "assert names['build'] is hypertok.builder.build and names['merge'].__module__ == 'hypertok.adapt.model'\n"
            "assert set(hypertok.__all__) <= set(dir(hypertok))")
    mods = _modules_after(code)
    assert {"hypertok.builder", "hypertok.lab.compare", "hypertok.adapt.model"} <= mods


def test_calling_the_adapt_package_runs_adapt(monkeypatch):
    import hypertok.adapt as package

    monkeypatch.setattr(package, "adapt", lambda cfg: ("ran", cfg))
    assert hypertok.adapt("cfg") == ("ran", "cfg")


def test_help_lists_commands_without_importing_them():
    code = "from hypertok.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    mods = _modules_after(code)
    assert _heavy(mods) == set()
    assert not {m for m in mods if m.startswith("hypertok.") and m.endswith(".commands")}


@pytest.mark.parametrize("name", ["tokenizer", "vocab", "reference", "corpus", "symbols", "morphology"])
def test_old_top_level_modules_are_gone(name):
    """Moved to core/ and builder/ (reference.py to tests/core/): no shims left behind."""
    assert not (PACKAGE / f"{name}.py").exists()
