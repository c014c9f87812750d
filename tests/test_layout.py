"""The tree shows the architecture, and each package's own rule holds. A package's __init__.py docstring
says what it may import in one paragraph, ``May import: engine.frame, engine.model, engine.errors``:
packages or modules of ours, comma-separated (the paragraph may wrap; ``nothing`` for none). A module may
import its own package's modules and what the rule names, nothing else of ours; a module inside nested
packages answers to each of them. The packages: engine/ and each of its subpackages, app/, lab/ and
stylecam/; scripts/ is no package, its rule is SCRIPTS_MAY_IMPORT here. Inside engine the imports also
go only down the layers (LAYER). No import circles. Imports inside functions count, and so do
importlib.import_module(...) and __import__(...) with a literal name; one with a computed name fails in
the packages (what it loads no reader can see), as does an import of a module that is not in the tree."""
import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "app", "lab", "stylecam")
OURS = (*PACKAGES, "scripts", "tests")
# scripts/ measures and makes things with the engine and the lab tools, never through the Qt app
SCRIPTS_MAY_IMPORT = ("engine", "lab")
# ...except the one script that measures the window itself: what the GUI adds to the bench's frame time
SCRIPTS_THAT_DRIVE_THE_APP = ("scripts.gui_overhead",)
# the live engine (the session, its events and state, the style store, training): the app reaches it only
# through its worker (app/__init__.py); the other app modules use the engine's values and helpers
APP_LIVE = ("engine.live.session", "engine.live.events", "engine.live.state", "engine.live.preview",
            "engine.styles.user_styles", "engine.training", "engine.backends.networks")
# lower number = lower layer; an engine module may import its own group and any lower one
LAYER = {"__init__": 9, "live": 8, "backends": 7, "sinks": 7,
         "training": 6, "styles": 5, "video": 4, "frame": 3, "model": 2,
         "paths": 1, "metrics": 1, "cpu_tuning": 1, "slot": 1, "errors": 0, "defaults": 0, "version": 0, "locking": 0,
         "desktop": 1}
RULE = re.compile(r"^May import:(.*(?:\n.+)*)", re.M)  # to the end of its paragraph
NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")


def _modules() -> dict[str, tuple[Path, bool]]:
    """module name → (file, whether it is a package's __init__), for our packages, scripts/ and tests/."""
    out = {}
    for top in OURS:
        for f in (ROOT / top).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            is_init = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_init else parts)] = (f, is_init)
    return out


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _absolute(name: str, level: int, package: str) -> str:
    if not level:
        return name
    base = package.split(".")[: len(package.split(".")) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _loads_by_name(call: ast.Call) -> bool:
    """importlib.import_module(...), import_module(...) or __import__(...)."""
    f = call.func
    return (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")) in ("import_module", "__import__")


def _scan(mods) -> tuple[dict[str, set[str]], list[str], list[str]]:
    """module → the modules of ours it imports anywhere in its code; the imports naming a module of ours
    that is not in the tree; the modules loaded by a computed name (file:line)."""
    graph, missing, computed = {m: set() for m in mods}, [], []
    for m, (f, is_init) in mods.items():
        pkg = m if is_init else m.rpartition(".")[0]
        where = f.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(f.read_text(), where)):
            if isinstance(node, ast.Import):
                named = [(a.name, []) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                named = [(_absolute(node.module or "", node.level, pkg), [a.name for a in node.names])]
            elif isinstance(node, ast.Call) and _loads_by_name(node):
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    computed.append(f"{where}:{node.lineno}")
                    continue
                name = arg.value.lstrip(".")
                named = [(_absolute(name, len(arg.value) - len(name), pkg), [])]
            else:
                continue
            for mod, names in named:
                if mod.split(".")[0] not in OURS:
                    continue
                if mod not in mods:
                    missing.append(f"{where}:{node.lineno} {mod}")
                    continue
                # `from X import a`: the module X.a where there is one, else X (a name defined in X)
                for t in [f"{mod}.{n}" if f"{mod}.{n}" in mods else mod for n in names] or [mod]:
                    if not _within(m, t):  # itself, or a package it is inside (imported implicitly)
                        graph[m].add(t)
    return graph, missing, computed


@functools.cache
def _tree():
    """(modules, import graph, imports of missing modules, loads by a computed name): read once per run."""
    mods = _modules()
    return (mods, *_scan(mods))


def _rules(mods) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """package → what its __init__.py says it may import (scripts: SCRIPTS_MAY_IMPORT); and the packages
    whose rule is missing or not a list of modules of ours."""
    rules, unreadable = {"scripts": SCRIPTS_MAY_IMPORT}, []
    for m, (f, is_init) in sorted(mods.items()):
        if not is_init or m.split(".")[0] not in PACKAGES:
            continue
        found = RULE.findall(ast.get_docstring(ast.parse(f.read_text())) or "")
        names = [n.strip() for n in found[0].replace("\n", " ").split(",")] if len(found) == 1 else []
        if names == ["nothing"]:
            rules[m] = ()
        elif names and all(NAME.fullmatch(n) and n in mods for n in names):
            rules[m] = tuple(names)
        else:
            unreadable.append(f"{f.relative_to(ROOT)}: {found or 'no May import: paragraph'}")
    return rules, unreadable


def test_every_package_says_what_it_may_import():
    mods = _tree()[0]
    rules, unreadable = _rules(mods)
    assert not unreadable, unreadable
    assert set(SCRIPTS_THAT_DRIVE_THE_APP) <= set(mods)
    assert {"engine", "app", "lab", "stylecam", "engine.live", "engine.model"} <= set(rules)


def test_each_package_imports_only_what_its_rule_names():
    mods, graph, _, _ = _tree()
    rules = _rules(mods)[0]
    wrong = []
    for m, targets in sorted(graph.items()):
        for p in (p for p in rules if _within(m, p)):
            allowed = (p, *rules[p], *(("app",) if m in SCRIPTS_THAT_DRIVE_THE_APP else ()))
            wrong += [f"{m} -> {t} (rule of {p}: {', '.join(rules[p]) or 'nothing'})"
                      for t in sorted(targets) if not any(_within(t, a) for a in allowed)]
    assert not wrong, wrong


def test_the_app_reaches_the_live_engine_through_its_worker_only():
    graph = _tree()[1]
    wrong = sorted(f"{m} -> {t}" for m, targets in graph.items() if _within(m, "app") and m != "app.workers"
                   for t in targets if any(_within(t, live) for live in APP_LIVE))
    assert not wrong, wrong


def test_engine_imports_only_go_down_the_layers():
    def group(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 else "__init__"

    graph = _tree()[1]
    up = sorted(f"{a} -> {b}" for a, targets in graph.items() if _within(a, "engine") for b in targets
                if _within(b, "engine") and group(a) != group(b) and LAYER[group(b)] > LAYER[group(a)])
    assert not up, up


def test_no_import_circles():
    graph = {m: t for m, t in _tree()[1].items() if not _within(m, "tests")}
    seen, on_path, circles = set(), [], []

    def visit(m):
        if m in on_path:
            circles.append(on_path[on_path.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        on_path.append(m)
        for t in sorted(graph.get(m, ())):
            visit(t)
        on_path.pop()
    for m in sorted(graph):
        visit(m)
    assert not circles, circles[:3]


def test_no_module_is_loaded_by_a_computed_name():
    computed = _tree()[3]
    assert not [c for c in computed if c.split("/")[0] in PACKAGES], computed


def test_every_import_of_ours_names_a_module_in_the_tree():
    """A moved module's old name fails here (an editable install elsewhere could still answer it)."""
    assert not _tree()[2]


def test_the_engine_top_level_is_small_and_every_group_has_a_layer():
    top = [f for f in (ROOT / "engine").glob("*.py")]
    assert len(top) <= 16, sorted(f.name for f in top)
    groups = {m.split(".")[1] if "." in m else "__init__" for m in _tree()[0] if _within(m, "engine")}
    assert set(LAYER) >= groups  # a new package gets a layer here


def test_every_public_name_of_the_engine_loads():
    """engine/__init__.py loads its names when first used, each module by a plain import."""
    import engine

    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
