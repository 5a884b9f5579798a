"""The package layout's rules, checked from the source: dependencies flow one way.

Python: every module under ``ringipc/`` (``.py`` parsed with ``ast``; the
import lines of ``.pyx``/``.pxd``, which ``ast`` cannot parse, read with a
regular expression) is a node; every import of another ringipc module --
at the top, inside a function or under ``TYPE_CHECKING`` alike -- is an edge.
The graph must have no circle, and no edge may go to a higher layer than the
importing module's (LAYERS below; equal layers may import each other as long
as no circle forms).

C: every function a ``csrc/*.c`` file defines belongs to that file's layer
(C_LAYERS); a file may call only functions of lower layers or its own file,
and only through the internal headers (``ring.h``, ``ring_internal.h``),
never through an ``extern`` declaration of its own.
"""
import ast
import os
import re

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(TOP, "ringipc")
CSRC = os.path.join(TOP, "csrc")

# Lowest first.  A module's layer is that of the longest prefix listed here.
LAYERS = [
    ("ringipc.errors",),        # exceptions: imports nothing of ringipc
    ("ringipc.core",),          # the ring, segments, lifetimes, byte-stream mode, cleanup
    # multiprocessing drop-ins (built on core, with out-of-band pickling); process-shared locks; signals;
    # broadcast topics (their own segments; objects pickled as the drop-ins do)
    ("ringipc.mp", "ringipc.sync", "ringipc.signals", "ringipc.topic"),
    ("ringipc.channels",),      # Channel API and transports (shm:// rides on mp's Connection)
    ("ringipc.asyncio",),       # awaitable queues, pipes, rings and channels (on core's doorbells)
    ("ringipc",),               # ringipc/__init__.py: the public names, re-exported
    # tools: the bench measures the public API and its peers; cleanup, ls and doctor look after the machine
    ("ringipc.bench", "ringipc.cleanup", "ringipc.ls", "ringipc.doctor"),
    ("ringipc.__main__",),      # command line: bench, cleanup, ls, doctor
]

# Lowest first: who may call whom among csrc/*.c.
C_LAYERS = [
    ("ring_liveness.c", "ring_chaos.c",    # is a process alive; chaos pauses;
     "bell.c"),                            # the doorbell mechanism (rings' and topics')
    ("ring_backend.c", "ring_waiters.c",   # futex/semaphore primitives; who is counted asleep;
     "ring_bell.c",                        # doorbells: readiness as a file descriptor
     "sync.c"),                            # process-shared locks (ringipc.sync: their own extension)
    # Broadcast topics (ringipc.topic: their own extension, csrc/topic_internal.h)
    # are layers beside the ring's, on its liveness check and wait backend.
    ("ring_release.c",                     # freeing consumed space, waking sleepers
     "topic_layout.c", "topic_wake.c",     # topic: format, validate, attach; waking sleepers;
     "topic_bell.c"),                      # topic: doorbells (on bell.c)
    ("ring_recover.c",                     # dead producers' and consumers' claims
     "topic_slots.c", "topic_lock.c"),     # topic: slots and recovery; the publisher lock
    ("ring_segment.c",),                   # create, validate, attach; roles and slots
    ("ring.c", "ring_batch.c",             # the data path: claim, commit, read, release
     "topic_publish.c", "topic_subscribe.c", "topic_read.c"),  # topic: the data path
    ("ring_wait.c", "topic_wait.c"),       # sleeping until the ring (a topic) changes
]
C_HEADERS = ("ring.h", "ring_internal.h", "topic.h", "topic_internal.h")


def module_name(path):
    rel = os.path.relpath(path, TOP)
    parts = rel.split(os.sep)
    parts[-1] = parts[-1].rsplit(".", 1)[0]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_modules():
    found = {}
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            if f.endswith((".py", ".pyx", ".pxd", ".pxi")):
                found.setdefault(module_name(os.path.join(root, f)), []).append(os.path.join(root, f))
    return found


def _resolve(current, is_package, level, name):
    if level == 0:
        return name
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: -(level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(path, modname, modules):
    """The ringipc modules that ``path`` imports (a name imported from a
    package counts as the submodule when there is one)."""
    is_package = os.path.basename(path).startswith("__init__.")
    targets = []
    if path.endswith(".py"):
        tree = ast.parse(open(path).read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets += [(a.name, []) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(modname, is_package, node.level, node.module or "")
                targets.append((base, [a.name for a in node.names]))
    else:  # Cython: import lines only
        text = open(path).read()
        for m in re.finditer(r"^\s*(?:c?import)\s+([\w.]+)", text, re.M):
            targets.append((m.group(1), []))
        for m in re.finditer(r"^\s*from\s+(\.*)([\w.]*)\s+c?import\s+([\w, ]+)", text, re.M):
            base = _resolve(modname, is_package, len(m.group(1)), m.group(2))
            targets.append((base, [n.split(" as ")[0].strip() for n in m.group(3).split(",")]))
    out = set()
    for base, names in targets:
        if not (base == "ringipc" or base.startswith("ringipc.")):
            continue
        subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
        out.update(subs or [base])
    out.discard(modname)
    return out


def layer_of(modname):
    best, best_len = None, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (modname == p or modname.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def find_cycle(graph):
    """One circle of ``graph`` (a list of nodes, first repeated last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    stack = []

    def visit(n):
        colour[n] = GREY
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if colour.get(m, BLACK) == GREY:
                return stack[stack.index(m):] + [m]
            if colour.get(m) == WHITE:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        colour[n] = BLACK
        return None

    for n in sorted(graph):
        if colour[n] == WHITE:
            found = visit(n)
            if found:
                return found
    return None


def python_graph():
    modules = python_modules()
    graph = {}
    for name, paths in modules.items():
        graph[name] = set()
        for path in paths:
            graph[name] |= imports_of(path, name, modules)
    return graph


def test_every_module_has_a_layer():
    missing = [m for m in python_modules() if layer_of(m) is None]
    assert not missing, f"modules outside every layer of LAYERS: {missing}"


def test_every_import_resolves():
    """An import of a ringipc module that does not exist would slip past the
    layer check (its name alone decides its layer): none may be left."""
    graph = python_graph()
    unknown = sorted(f"{mod} imports {t}" for mod, targets in graph.items() for t in targets if t not in graph)
    assert not unknown, "imports of no ringipc module:\n" + "\n".join(unknown)


def test_no_python_import_circle():
    cycle = find_cycle(python_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_upward_python_import():
    upward = []
    for mod, targets in python_graph().items():
        for t in targets:
            if layer_of(t) > layer_of(mod):
                upward.append(f"{mod} (layer {LAYERS[layer_of(mod)][0]}) imports {t} (layer {LAYERS[layer_of(t)][0]})")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def _strip_c(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


# The ring's functions are rip_*, the topic's tp_*.
_C_DEFINITION = re.compile(r"^(?!static\b)[A-Za-z_][\w \*]*?\b((?:rip|tp)_\w+)\s*\([^;{}]*\)\s*\{", re.M)
_C_DECLARATION = re.compile(r"^(?!static\b)[A-Za-z_][\w \*]*?\b((?:rip|tp)_\w+)\s*\([^;{}]*\)\s*;", re.M)


def c_graph():
    """{file: {callee file: set of functions}} over csrc/*.c, and the definitions."""
    sources = {f: _strip_c(open(os.path.join(CSRC, f)).read()) for f in sorted(os.listdir(CSRC)) if f.endswith(".c")}
    defined = {}
    for f, text in sources.items():
        for m in _C_DEFINITION.finditer(text):
            defined[m.group(1)] = f
    calls = {}
    for f, text in sources.items():
        calls[f] = {}
        for m in re.finditer(r"\b((?:rip|tp)_\w+)\s*\(", text):
            callee = defined.get(m.group(1))
            if callee and callee != f:
                calls[f].setdefault(callee, set()).add(m.group(1))
    return sources, defined, calls


def c_layer_of(filename):
    for i, files in enumerate(C_LAYERS):
        if filename in files:
            return i
    return None


def test_every_c_file_has_a_layer():
    missing = [f for f in os.listdir(CSRC) if f.endswith(".c") and c_layer_of(f) is None]
    assert not missing, f"csrc files outside every layer of C_LAYERS: {missing}"


def test_c_files_call_only_downward():
    _, _, calls = c_graph()
    upward = []
    for f, callees in calls.items():
        for callee, functions in callees.items():
            if c_layer_of(callee) >= c_layer_of(f):
                upward.append(f"{f} calls {sorted(functions)} of {callee}")
    assert not upward, "C calls that are not downward:\n" + "\n".join(sorted(upward))
    cycle = find_cycle({f: set(c) for f, c in calls.items()})
    assert cycle is None, "C call circle: " + " -> ".join(cycle)


def test_c_calls_go_through_the_internal_headers():
    sources, defined, calls = c_graph()
    declared = set()
    for h in C_HEADERS:
        declared |= {m.group(1) for m in _C_DECLARATION.finditer(_strip_c(open(os.path.join(CSRC, h)).read()))}
    undeclared = sorted(fn for callees in calls.values() for fns in callees.values() for fn in fns if fn not in declared)
    assert not undeclared, f"called across files but not declared in {C_HEADERS}: {undeclared}"
    local_externs = sorted(f"{f}: {m.group(1)}" for f, text in sources.items()
                           for m in _C_DECLARATION.finditer(text) if defined.get(m.group(1)) not in (None, f))
    assert not local_externs, f"declarations of other files' functions outside the headers: {local_externs}"


# Files of one job each: none over MAX_LINES.  Files allowed over it, each
# with the reason; the list must stay short (every entry is a debt).
MAX_LINES = 500
TOO_LONG_ALLOWED = {
}
SOURCE_SUFFIXES = (".py", ".pyx", ".pxi", ".pxd", ".c", ".h")


def source_files():
    """Relative paths of the hand-written sources under ringipc/ and csrc/
    (the .c files Cython generates beside a .pyx are not ours to split)."""
    found = []
    for base in (PACKAGE, CSRC):
        for root, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "build")]
            for f in files:
                path = os.path.join(root, f)
                if not f.endswith(SOURCE_SUFFIXES):
                    continue
                if f.endswith(".c") and os.path.exists(path[:-2] + ".pyx"):
                    continue
                found.append(os.path.relpath(path, TOP))
    return sorted(found)


def test_no_source_file_is_too_long():
    files = source_files()
    assert "ringipc/core/_ring.pyx" in files and "csrc/ring.c" in files and "ringipc/core/_ring.c" not in files
    too_long = []
    for rel in files:
        with open(os.path.join(TOP, rel), "rb") as f:
            lines = f.read().count(b"\n")
        if lines > MAX_LINES and rel not in TOO_LONG_ALLOWED:
            too_long.append(f"{rel}: {lines} lines")
    assert not too_long, f"files over {MAX_LINES} lines (split them by concept):\n" + "\n".join(too_long)
    stale = [rel for rel in TOO_LONG_ALLOWED if rel not in files]
    assert not stale, f"TOO_LONG_ALLOWED names files that no longer exist: {stale}"


def test_the_checks_see_a_circle(tmp_path):
    """The checks themselves: a circle or an upward edge put into a copy is found."""
    graph = python_graph()
    assert graph["ringipc.mp.queues"] & {"ringipc.core._ring"}, "the graph misses known imports"
    broken = {k: set(v) for k, v in graph.items()}
    broken["ringipc.core._ring"].add("ringipc.mp.queues")
    assert find_cycle(broken) is not None
    _, _, calls = c_graph()
    assert "ring_segment.c" in calls["ring.c"], "the C graph misses ring.c's call of rip_ensure_role"
    calls = {f: set(c) for f, c in calls.items()}
    calls["ring_segment.c"].add("ring.c")
    assert find_cycle(calls) is not None


if __name__ == "__main__":  # pragma: no cover - a readable dump of both graphs
    for mod, targets in sorted(python_graph().items()):
        print(mod, "->", ", ".join(sorted(targets)))
    for f, callees in sorted(c_graph()[2].items()):
        print(f, "->", {k: sorted(v) for k, v in callees.items()})
    pytest.main([__file__])
