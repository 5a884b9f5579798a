"""The typed public API: ``mypy --strict`` passes over tests/typing/example.py
(every name in ``ringipc.__all__``), reveal_type() gives users useful types,
and a misuse is caught.

ringipc is checked as a user's project sees an installed, ``py.typed``
package: its own modules are followed for their types but their internal
errors are not reported (``--follow-imports=silent``); everything the example
touches must be annotated or stubbed, or ``--strict`` rejects the call.
"""
import os
import re
import subprocess
import sys

import pytest

import ringipc

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPING = os.path.join(TOP, "tests", "typing")


def mypy(tmp_path, *files):
    pytest.importorskip("mypy", reason="mypy is not installed (it is in the 'test' extra)")
    cmd = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
           "--show-error-codes", "--cache-dir", str(tmp_path / "mypy-cache"), *files]
    return subprocess.run(cmd, cwd=TOP, capture_output=True, text=True, timeout=600)


def test_example_uses_every_public_name():
    source = open(os.path.join(TYPING, "example.py")).read()
    unused = [name for name in ringipc.__all__ if not re.search(rf"\b{name}\b", source)]
    assert not unused, f"tests/typing/example.py does not use {unused}"


def test_package_ships_its_types():
    assert os.path.exists(os.path.join(TOP, "ringipc", "py.typed"))
    pyproject = open(os.path.join(TOP, "pyproject.toml")).read()
    assert "py.typed" in pyproject and "*.pyi" in pyproject, "py.typed and the stubs must be package data"
    for root, _, files in os.walk(os.path.join(TOP, "ringipc")):
        for f in files:
            if f.endswith(".pyx"):
                stub = os.path.join(root, f[:-4] + ".pyi")
                assert os.path.exists(stub), f"no stub beside {os.path.relpath(os.path.join(root, f), TOP)}"


def test_strict_example_and_revealed_types(tmp_path):
    example, reveal = os.path.join("tests", "typing", "example.py"), os.path.join("tests", "typing", "reveal.py")
    result = mypy(tmp_path, example, reveal)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not errors and result.returncode == 0, result.stdout + result.stderr
    revealed = {}
    for line in result.stdout.splitlines():
        m = re.match(r".*reveal\.py:(\d+): note: Revealed type is \"(.*)\"$", line)
        if m:
            revealed[int(m.group(1))] = m.group(2).replace("builtins.", "")
    expected = {}
    for number, line in enumerate(open(os.path.join(TOP, reveal)), 1):
        m = re.search(r"# R: (.*)$", line)
        if m:
            expected[number] = m.group(1).strip()
    assert expected and revealed == expected


def test_misuse_is_an_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import ringipc\n"
                   "q: ringipc.Queue[int] = ringipc.Queue()\n"
                   "q.put('not an int')\n"
                   "ringipc.Ring().send_bytes(42)\n")
    result = mypy(tmp_path, str(bad))
    assert result.returncode == 1
    assert "bad.py:3: error" in result.stdout and "bad.py:4: error" in result.stdout, result.stdout


def test_queues_are_generic_at_runtime():
    assert ringipc.Queue[int] is not None and ringipc.JoinableQueue[str] is not None
    q = ringipc.SimpleQueue[int]()
    try:
        q.put(7)
        assert q.get() == 7
    finally:
        q.close()


STUBBED = ["ringipc.core._ring", "ringipc.core._inspect", "ringipc.core._mapping", "ringipc.channels.transports._mq_fast",
           "ringipc.channels.transports._packet_fast", "ringipc.sync._sync", "ringipc.signals._signalfd",
           "ringipc.topic._topic", "ringipc.mp._connection_fast"]


def _stub_names(path):
    """{top-level name: set of member names (classes) or None} declared in a .pyi."""
    import ast

    names = {}
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.ClassDef):
            members = set()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
            names[node.name] = members
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = None
        elif isinstance(node, ast.Assign):
            names.update({t.id: None for t in node.targets if isinstance(t, ast.Name)})
    return names


@pytest.mark.parametrize("modname", STUBBED)
def test_stubs_match_the_compiled_modules(modname):
    """A small stubtest: every public name of a compiled module (and every
    public method of its classes) is in its stub, and the stub invents none."""
    import importlib
    import inspect

    module = importlib.import_module(modname)
    stub = _stub_names(module.__file__.split(".", 1)[0] + ".pyi")
    runtime = {n: v for n, v in vars(module).items()
               if not n.startswith("__") and not inspect.ismodule(v)
               and getattr(v, "__module__", modname) == modname
               and (not n.startswith("_") or n in stub)}
    public = {n for n in runtime if not n.startswith("_")}
    assert public <= set(stub), f"{modname}: missing from the stub: {sorted(public - set(stub))}"
    invented = [n for n in stub if n not in vars(module) and n != "Kind"]
    assert not invented, f"{modname}: the stub declares names the module lacks: {invented}"
    for name, members in stub.items():
        if members is None:
            continue
        cls = getattr(module, name)
        have = {m for m in dir(cls) if not m.startswith("__") or m in ("__enter__", "__exit__", "__reduce__", "__len__")}
        public_methods = {m for m in vars(cls) if not m.startswith("_") and callable(getattr(cls, m, None))}
        assert public_methods <= members | {"spin"}, f"{modname}.{name}: not in the stub: {sorted(public_methods - members)}"
        ghosts = members - have - {"__buffer__", "__init__"}
        assert not ghosts, f"{modname}.{name}: the stub declares members the class lacks: {sorted(ghosts)}"


def test_package_checks_clean(tmp_path):
    """``mypy`` with the project's configuration (pyproject.toml [tool.mypy]:
    every body checked, the modules listed there held to --strict) finds no
    error in the package, so annotations stay true as the code changes."""
    pytest.importorskip("mypy", reason="mypy is not installed (it is in the 'test' extra)")
    config = open(os.path.join(TOP, "pyproject.toml")).read()
    assert "[tool.mypy]" in config and 'files = ["ringipc"]' in config
    cmd = [sys.executable, "-m", "mypy", "--no-error-summary", "--show-error-codes",
           "--cache-dir", str(tmp_path / "mypy-cache")]
    result = subprocess.run(cmd, cwd=TOP, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def _matches(module, pattern):
    return module == pattern or (pattern.endswith(".*") and (module + ".").startswith(pattern[:-1]))


def test_every_module_is_placed_in_the_mypy_configuration():
    """A new module is either held to --strict or listed as not checked yet
    (pyproject.toml): none falls silently to the looser default."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    with open(os.path.join(TOP, "pyproject.toml"), "rb") as f:
        overrides = tomllib.load(f)["tool"]["mypy"]["overrides"]
    placed = []
    for section in overrides:
        if section.get("disallow_untyped_defs") or section.get("ignore_errors"):
            placed += section["module"] if isinstance(section["module"], list) else [section["module"]]
    modules = []
    for root, dirs, files in os.walk(os.path.join(TOP, "ringipc")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, name[:-3]), TOP).split(os.sep)
                modules.append(".".join(rel[:-1] if rel[-1] == "__init__" else rel))
    assert "ringipc.channels.transports.udp" in modules
    unplaced = sorted(m for m in modules if not any(_matches(m, p) for p in placed))
    assert not unplaced, f"add these to a [[tool.mypy.overrides]] section of pyproject.toml: {unplaced}"
