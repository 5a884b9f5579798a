"""Imported by children of a process that called ringipc.install() (spawned
children on their command line, the forkserver as a preloaded module)."""
from .install import install

install()
