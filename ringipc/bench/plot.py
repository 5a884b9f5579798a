"""``--plot``: throughput against message size, one line per facility."""
from ringipc.bench.adapters import BASELINE
from ringipc.bench.runner import THROUGHPUT


class PlotUnavailable(RuntimeError):
    pass


def write_plot(path, summaries, title="ringipc bench: throughput, 1 producer -> 1 consumer"):
    try:
        import matplotlib

        matplotlib.use("Agg")  # a file, never a window
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable(
            f"--plot needs matplotlib ({exc}); install it with: pip install 'ringipc[bench]'"
        ) from exc
    from ringipc.bench.report import human_size

    lines = {}
    for s in summaries:
        if s.scenario == THROUGHPUT and s.ok:
            lines.setdefault(s.facility, []).append((s.size, s.mbps))
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    sizes = sorted({size for pts in lines.values() for size, _ in pts})
    # Best at the largest size first so the legend reads as a ranking.
    order = sorted(lines, key=lambda name: -max(lines[name])[1])
    # tab20 plus line styles: two dozen facilities stay distinguishable; ringipc's own are bold.
    colors = plt.get_cmap("tab20").colors
    styles = ["-", "-.", ":"]
    for i, name in enumerate(order):
        pts = sorted(lines[name])
        ours = name.startswith("ringipc.")
        style = dict(color=colors[i % 20], linestyle=styles[(i // 20) % 3], linewidth=2.4 if ours else 1.2,
                     marker="o" if ours else ".")
        if name == BASELINE:
            style.update(color="black", linestyle="--", linewidth=2.4)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, **style)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if sizes:
        ax.set_xticks(sizes)
        ax.set_xticklabels([human_size(s) for s in sizes])
    ax.set_xlabel("message size")
    ax.set_ylabel("MB/s (higher is better)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
