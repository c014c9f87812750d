"""The tree shows the architecture: engine/ grouped by role, imports only going down the layers, no
import circles (lazy imports inside functions count too), each package saying what it may import."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# lower number = lower layer; a module may import its own group and any lower one
LAYER = {"__init__": 9, "live": 8, "backends": 7, "sinks": 7,
         "training": 6, "styles": 5, "video": 4, "frame": 3, "model": 2,
         "paths": 1, "metrics": 1, "cpu_tuning": 1, "slot": 1, "errors": 0, "defaults": 0, "version": 0, "locking": 0,
         "desktop": 1}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for f in (ROOT / "engine").rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_init else parts)] = (f, is_init)
    return out


def _imports(mods) -> dict[str, set[str]]:
    """module → the engine modules it imports anywhere in its code."""
    graph = {m: set() for m in mods}
    for m, (f, is_init) in mods.items():
        pkg = m if is_init else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)] if node.level > 1 else pkg.split(".")
                mod = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                names = [mod, *(f"{mod}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for t in names:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + "."):
                    graph[m].add(t)
    return graph


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_imports_only_go_down_the_layers():
    graph = _imports(_modules())
    up = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                if _group(a) != _group(b) and LAYER[_group(b)] > LAYER[_group(a)])
    assert not up, up


def test_no_import_circles():
    graph = _imports(_modules())
    seen, on_path, circles = set(), [], []

    def visit(m):
        if m in on_path:
            circles.append(on_path[on_path.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        on_path.append(m)
        for t in sorted(graph[m]):
            visit(t)
        on_path.pop()
    for m in sorted(graph):
        visit(m)
    assert not circles, circles[:3]


def test_the_top_level_is_small_and_every_package_says_what_it_may_import():
    top = [f for f in (ROOT / "engine").glob("*.py")]
    assert len(top) <= 16, sorted(f.name for f in top)
    for init in (ROOT / "engine").glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc, init
    assert set(LAYER) >= {_group(m) for m in _modules()}  # a new package gets a layer here


def test_every_public_name_of_the_engine_loads():
    """engine/__init__.py loads its names when first used, each module by a plain import."""
    import engine

    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
