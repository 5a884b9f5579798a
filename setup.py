"""Build script: compiles csrc/*.c and the Cython modules into ringipc's extensions.

Build switches (environment variables, read at build time):

* ``RINGIPC_WAIT=futex|sem`` -- the wait/wake backend.  ``futex`` (the default on
  Linux) sleeps on a shared futex word; ``sem`` uses process-shared POSIX
  semaphores and is what non-Linux systems get.  CI builds both.
* ``RINGIPC_CHAOS=1`` -- pause at random between the steps of the ring's
  claim/commit/read/release protocol (csrc/ring_chaos.c), so stress tests meet
  rare interleavings often.  For testing only: it slows every message.
* ``RINGIPC_SANITIZE=1`` -- compile with AddressSanitizer and UBSan (``-O1 -g``).
  Run the result with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``.
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

wait_backend = os.environ.get("RINGIPC_WAIT", "futex" if sys.platform.startswith("linux") else "sem")
if wait_backend not in ("futex", "sem"):
    raise SystemExit(f"RINGIPC_WAIT must be 'futex' or 'sem', not {wait_backend!r}")

compile_args = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-unused-function"]
link_args = []
if os.environ.get("RINGIPC_SANITIZE") == "1":
    sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    compile_args = [a for a in compile_args if a != "-O2"] + ["-O1", "-g"] + sanitize
    link_args += sanitize

macros = [("RINGIPC_WAIT_" + wait_backend.upper(), "1"), ("_GNU_SOURCE", "1")]
if os.environ.get("RINGIPC_CHAOS") == "1":
    macros.append(("RINGIPC_CHAOS", "1"))
libraries = ["rt", "pthread"] if sys.platform.startswith("linux") else ["pthread"]

headers = [os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".h")]
ring_includes = [os.path.join("ringipc", "core", f) for f in os.listdir(os.path.join("ringipc", "core")) if f.endswith(".pxi")]
# Lowest layer first (see csrc/ring_internal.h).
ring_sources = ["csrc/ring_liveness.c", "csrc/ring_chaos.c", "csrc/bell.c", "csrc/ring_backend.c", "csrc/ring_waiters.c", "csrc/ring_bell.c",
                "csrc/ring_release.c", "csrc/ring_recover.c", "csrc/ring_segment.c", "csrc/ring.c",
                "csrc/ring_batch.c", "csrc/ring_wait.c"]

# Lowest layer first (see csrc/topic_internal.h).
topic_sources = ["csrc/ring_liveness.c", "csrc/ring_chaos.c", "csrc/bell.c", "csrc/ring_backend.c",
                 "csrc/topic_layout.c", "csrc/topic_wake.c", "csrc/topic_bell.c", "csrc/topic_slots.c", "csrc/topic_lock.c", "csrc/topic_publish.c",
                 "csrc/topic_subscribe.c", "csrc/topic_read.c", "csrc/topic_wait.c"]
topic_includes = [os.path.join("ringipc", "topic", f) for f in os.listdir(os.path.join("ringipc", "topic")) if f.endswith(".pxi")]


def extension(name, sources, libs=(), extra_args=()):
    return Extension(
        name,
        sources=sources,
        include_dirs=["csrc"],
        define_macros=macros,
        extra_compile_args=compile_args + list(extra_args),
        extra_link_args=link_args,
        libraries=list(libs),
        depends=headers + ["ringipc/core/_cring.pxd", "ringipc/core/_ring.pxd"] + ["ringipc/topic/_ctopic.pxd"] + ring_includes + topic_includes,
    )


extensions = [
    # The only module that links the C ring: its globals (the fork generation)
    # must exist once per process.  Views and test hooks are part of it
    # (_ring.pyx includes ringipc/core/_ring_*.pxi).
    extension("ringipc.core._ring", ["ringipc/core/_ring.pyx"] + ring_sources, libraries),
    # Connection's everyday calls straight into the ring (cimports Ring; links no ring code).
    extension("ringipc.mp._connection_fast", ["ringipc/mp/_connection_fast.pyx"]),
    # No ring: the C fast path of unixpacket:// channels.
    extension("ringipc.channels.transports._packet_fast", ["ringipc/channels/transports/_packet_fast.pyx"]),
    # Crash-safe Lock/Semaphore/Event: their own segments, and ring_liveness.c
    # for telling whether a holder still runs (a per-process cache only).
    extension("ringipc.sync._sync", ["ringipc/sync/_sync.pyx", "csrc/sync.c", "csrc/ring_liveness.c"], libraries),
    # sigqueue/signalfd for ringipc.signals (Linux).
    *([extension("ringipc.signals._signalfd", ["ringipc/signals/_signalfd.pyx"])]
      if sys.platform.startswith("linux") else []),
    # Read-only snapshots of segments for `python -m ringipc ls` (layouts only, no ring code).
    extension("ringipc.core._inspect", ["ringipc/core/_inspect.pyx"]),
    extension("ringipc.core._mapping", ["ringipc/core/_mapping.pyx"]),
    # No ring: GIL-free copies of large buffers and atomic words of large-object slabs.
    extension("ringipc.core._bulk", ["ringipc/core/_bulk.pyx"]),
    # No ring: received large arrays' memory, parked for reuse instead of unmapped.
    extension("ringipc.core._recycle", ["ringipc/core/_recycle.pyx"]),
    # No ring: the C fast path of mq:// channels (mq_send/mq_receive: librt).
    extension("ringipc.channels.transports._mq_fast", ["ringipc/channels/transports/_mq_fast.pyx"], libraries),
    # No ring: the C fast path of sysvmq:// channels (msgsnd/msgrcv).
    extension("ringipc.channels.transports._sysvmq_fast", ["ringipc/channels/transports/_sysvmq_fast.pyx"]),
    # Broadcast topics (csrc/topic_*.c): their own segment layout; share the
    # ring's liveness check, wait backend and chaos points (not the ring).
    # Hidden visibility: the module's calls into its C files bind directly
    # instead of through the PLT (only the module's init function is exported).
    extension("ringipc.topic._topic", ["ringipc/topic/_topic.pyx"] + topic_sources, libraries,
              ["-fvisibility=hidden"]),
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
