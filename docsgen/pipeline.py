"""The pipeline diagram: a sampling CPU profiler in one picture, drawn with matplotlib.

Six boxes (timer → signal → handler → ring buffer → reader → pprof), each naming the
module that models it, and the three places where samples are lost; in the house style
of `figures.style`.
"""

from __future__ import annotations

from pathlib import Path

from figures.style import OKABE_ITO, house_style, new_figure, save

_STAGES = (
    # title, what it is in Go, where, sim module
    ("CPU timer", "setitimer(ITIMER_PROF)\nor timer_create per thread", "kernel", "sim.cputimers"),
    ("SIGPROF", "one pending per process;\nthread-directed per timer", "kernel", "sim.signals"),
    ("signal handler", "sigprof: unwind\nthe stack, ≤ 64 frames", "runtime", "sim.handler"),
    ("ring buffer", "profBuf: 1 MiB,\nlock-free, drops counted", "runtime", "sim.profbuf"),
    (
        "reader",
        "profileWriter goroutine:\nevery 100 ms\n(Go 1.26: at half full)",
        "runtime",
        "sim.reader",
    ),
    ("pprof", "merge by stack:\n[count, count × 10 ms]", "runtime", "contract.profile"),
)
_LOSSES = (
    (1, "expiry dropped:\nSIGPROF already pending"),
    (2, "signal discarded:\nduplicate (validSIGPROF)"),
    (3, "sample dropped:\nbuffer full → lostProfileEvent"),
)


def draw_pipeline(path: str | Path) -> str:
    """The six stages of a sampling CPU profiler as boxes and arrows; returns alt text."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    colours = {"kernel": "#DDEEFF", "runtime": "#FFF2CC"}
    edges = {"kernel": OKABE_ITO["blue"], "runtime": OKABE_ITO["orange"]}
    loss_colour = OKABE_ITO["vermillion"]
    width, gap = 1.22, 0.36
    with house_style():
        fig = new_figure(11.5, 3.3)
        ax = fig.add_subplot()
        ax.set_xlim(-0.15, len(_STAGES) * (width + gap) - gap + 0.15)
        ax.set_ylim(-1.45, 1.5)
        ax.axis("off")
        for i, (title, what, world, module) in enumerate(_STAGES):
            x = i * (width + gap)
            ax.add_patch(
                FancyBboxPatch(
                    (x, -0.05),
                    width,
                    1.0,
                    boxstyle="round,pad=0.02,rounding_size=0.08",
                    facecolor=colours[world],
                    edgecolor=edges[world],
                    linewidth=1.4,
                )
            )
            ax.text(
                x + width / 2, 0.72, title, ha="center", va="center", fontweight="bold", fontsize=10
            )
            ax.text(
                x + width / 2, 0.30, what, ha="center", va="center", fontsize=7.2, linespacing=1.3
            )
            ax.text(
                x + width / 2,
                -0.16,
                module,
                ha="center",
                va="top",
                fontsize=7.5,
                family="DejaVu Sans Mono",
                color="#444444",
            )
            if i:
                ax.add_patch(
                    FancyArrowPatch(
                        (x - gap + 0.03, 0.45),
                        (x - 0.03, 0.45),
                        arrowstyle="-|>",
                        mutation_scale=14,
                        linewidth=1.4,
                        color="#333333",
                    )
                )
        for i, words in _LOSSES:
            x = i * (width + gap) + width / 2
            ax.add_patch(
                FancyArrowPatch(
                    (x, -0.42),
                    (x, -0.92),
                    arrowstyle="-|>",
                    mutation_scale=11,
                    linewidth=1.1,
                    color=loss_colour,
                    linestyle="--",
                )
            )
            ax.text(
                x,
                -0.98,
                words,
                ha="center",
                va="top",
                fontsize=7.2,
                color=loss_colour,
                linespacing=1.3,
            )
        # Which side of the kernel boundary each stage lives on.
        kernel_end = 2 * (width + gap) - gap / 2
        for x, words, world in (
            (kernel_end / 2 - 0.1, "the kernel", "kernel"),
            (
                (kernel_end + ax.get_xlim()[1]) / 2,
                "the runtime, in the profiled process",
                "runtime",
            ),
        ):
            ax.text(x, 1.28, words, ha="center", fontsize=9, color=edges[world], fontweight="bold")
        ax.plot(
            [kernel_end, kernel_end], [-0.3, 1.45], color="#999999", linewidth=0.8, linestyle=":"
        )
        fig.suptitle("A sampling CPU profiler in one picture (Go on Linux)", x=0.01, ha="left")
        alt = (
            "A sampling CPU profiler in one picture. Six boxes joined by arrows, left to "
            "right: a CPU timer in the kernel (setitimer for the whole process, or "
            "timer_create per thread) expires; the kernel sends SIGPROF (one can be pending "
            "per process; thread-directed timer signals are separate); the runtime's signal "
            "handler unwinds the interrupted stack, at most 64 frames; it writes the sample "
            "into a 1 MiB lock-free ring buffer; a reader goroutine drains the buffer every "
            "100 ms (at half full in Go 1.26); the profile builder merges samples by stack "
            "into pprof values [count, count × 10 ms]. Under the boxes, dashed red arrows "
            "mark where samples are lost: an expiry dropped because SIGPROF was already "
            "pending, a signal discarded as a duplicate by validSIGPROF, and a sample dropped "
            "because the buffer was full, counted as lostProfileEvent. Each box names the "
            "simulator module that models it: sim.cputimers, sim.signals, sim.handler, "
            "sim.profbuf, sim.reader and contract.profile."
        )
        save(fig, path, "A sampling CPU profiler in one picture", alt)
    return alt
