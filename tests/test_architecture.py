"""The layer rule of docs/architecture.md, read from the source: every import of every module of kp3d
and data_utils (imports inside functions included) is parsed with ``ast``.

- no import circle between modules;
- a module imports only from its own layer or a layer below;
- data_utils imports from kp3d only its bottom layer (kp3d.cameras, kp3d.geometry, kp3d.metrics);
- no module passes 500 lines (one that does is asking to be split by job).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kp3d", "data_utils")

# bottom to top (docs/architecture.md, "Layers"); a module not listed here fails the test
LAYERS: dict[str, tuple[str, ...]] = {
    "geometry": ("kp3d", "kp3d.cameras", "kp3d.geometry", "kp3d.metrics", "kp3d.console", "kp3d.cli_errors"),
    "data": ("data_utils", "data_utils.*"),
    "model": ("kp3d.config", "kp3d.profiles", "kp3d.networks", "kp3d.model", "kp3d.losses", "kp3d.perceptual",
              "kp3d.diagnostics"),
    "training": ("kp3d.checkpoint", "kp3d.distributed", "kp3d.train", "kp3d.export", "kp3d.cli"),
    "evaluation": ("kp3d.probe_fit", "kp3d.probes", "kp3d.lifter", "kp3d.baselines", "kp3d.silhouettes", "kp3d.mask_figures",
                   "kp3d.discovery_check", "kp3d.results", "kp3d.deviations", "kp3d.shipped", "kp3d.ladder",
                   "kp3d.tables", "kp3d.evaluate", "kp3d.evaluate_notebook"),
    "course": ("kp3d.replicate", "kp3d.replicate_report", "kp3d.viz", "kp3d.viz.*"),
}
DATA_MAY_IMPORT = {"kp3d", "kp3d.cameras", "kp3d.geometry", "kp3d.metrics"}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ``name`` (a module, or a name inside one); None outside kp3d and data_utils."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> dict[str, int]:
    """{imported module of kp3d / data_utils: line}, for every import statement anywhere in ``module``."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            # "from kp3d import geometry" imports the module kp3d.geometry; "from kp3d.x import f" kp3d.x
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module:
                found.setdefault(target, node.lineno)
    return found


def layer_of(module: str) -> int:
    for rank, patterns in enumerate(LAYERS.values()):
        for p in patterns:
            if module == p or (p.endswith("*") and module.startswith(p[:-1])):
                return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS here and to docs/architecture.md")


GRAPH = {m: imports_of(m) for m in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_its_layer_or_below(module):
    names = list(LAYERS)
    rank = layer_of(module)
    above = {t: line for t, line in GRAPH[module].items() if layer_of(t) > rank}
    assert not above, (f"{module} ({names[rank]} layer) imports " + ", ".join(
        f"{t} ({names[layer_of(t)]} layer, line {line})" for t, line in above.items()))


def test_data_utils_imports_only_the_bottom_of_kp3d():
    bad = {m: sorted(t for t in GRAPH[m] if t.startswith("kp3d") and t not in DATA_MAY_IMPORT)
           for m in MODULES if m.startswith("data_utils")}
    assert not {m: t for m, t in bad.items() if t}, bad


def test_no_import_circle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in GRAPH[m]:
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_every_module_is_short():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_the_rule_catches_a_violation():
    """The check itself: a data module importing a profile would be reported."""
    assert layer_of("data_utils.rig") < layer_of("kp3d.profiles") < layer_of("kp3d.train") < layer_of("kp3d.evaluate")
    assert "kp3d.cameras" in GRAPH["data_utils.h36m"] and "kp3d.profiles" in GRAPH["kp3d.probe_fit"]


def test_config_has_at_most_one_comment_line_per_field():
    """kp3d.config.Config reads in one sitting: one line per field; the evidence lives in docs/recipe.md."""
    tree = ast.parse(MODULES["kp3d.config"].read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
    n_fields = sum(isinstance(n, ast.AnnAssign) for n in cls.body)
    first_method = next(n for n in cls.body if isinstance(n, ast.FunctionDef))
    lines = MODULES["kp3d.config"].read_text().splitlines()[cls.lineno - 1:first_method.lineno - 1]
    n_comments = sum("#" in line for line in lines)
    assert n_comments <= n_fields, f"Config: {n_comments} comment lines for {n_fields} fields"
