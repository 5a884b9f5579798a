"""``python -m ringipc bench``: ringipc and its peers measured side by side.

Modules are imported by full path (``ringipc.bench.runner`` ...); this package
re-exports nothing so that importing one piece never drags in rich or matplotlib.
"""
