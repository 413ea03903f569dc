"""The house style of every figure, so a scientist reads each one at a glance.

Why one module: the campaign, intercalation and ordering figures each chose their own colours
(matplotlib's default cycle, which colour-blind readers confuse), drew lines across points of
unrelated hosts, let later series hide earlier ones, labelled counts 0.25, 0.5, ... and clipped
labels at the canvas edge. Here:

- colours come from Okabe & Ito's colour-blind-safe palette, and each method keeps one colour and
  one marker in every figure (`method_style`);
- series that share an x position stand side by side (`offsets`), drawn as markers, never joined;
- count axes have integer ticks (`integer_ticks`);
- figures use constrained layout, which keeps titles, legends and labels inside the canvas, and are
  written atomically (`save_figure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from chggen_plugins.files import replacing
from chggen_plugins.runs.methods import GENERATED

# Okabe & Ito (2008), "Color Universal Design": told apart with every common colour-vision
# deficiency; their yellow is left out (too faint on white) and their grey kept. In the order of
# `GENERATED`, so the methods one command compares get the most distinct colours.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#999999")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
REFERENCE_COLOUR = "0.2"  # thresholds, zero lines: always dashed or thin, so they never read as a series


def style(index: int) -> dict[str, str]:
    """The colour and marker of the `index`-th series.

    Args:
        index: the series' position (any integer; the palette repeats after eight).

    Returns:
        {"color": ..., "marker": ...}, ready to pass to a plotting call as keyword arguments.
    """
    return {"color": PALETTE[index % len(PALETTE)], "marker": MARKERS[index % len(MARKERS)]}


def method_style(method: str) -> dict[str, str]:
    """The colour and marker of `method`, the same in every figure (by its place in `GENERATED`).

    Args:
        method: a generated method name from `runs.methods`.

    Returns:
        {"color": ..., "marker": ...} as `style`.
    """
    return style(GENERATED.index(method))


def new_figure(width: float, height: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure of `columns` side-by-side axes with constrained layout and the house palette.

    Args:
        width: figure width in inches.
        height: figure height in inches.
        columns: how many axes, left to right.

    Returns:
        The figure and its axes (a list even for one), each cycling through `PALETTE`.
    """
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = [figure.add_subplot(1, columns, column) for column in range(1, columns + 1)]
    for one in axes:
        one.set_prop_cycle(color=list(PALETTE))
    return figure, axes


def offsets(count: int, width: float = 0.7) -> list[float]:
    """Horizontal shifts that place `count` series side by side around each x position.

    Args:
        count: number of series sharing the x positions.
        width: the total spread, in x units (0.7 leaves a gap between neighbouring positions
            one unit apart).

    Returns:
        `count` shifts, evenly spaced and centred on zero (a single series is not shifted).
    """
    if count <= 1:
        return [0.0] * count
    step = width / count
    return [(i - (count - 1) / 2) * step for i in range(count)]


def integer_ticks(axis: Axis) -> None:
    """Put ticks only at whole numbers on `axis` (an axis of counts: 2 structures, never 1.75).

    Args:
        axis: `axes.xaxis` or `axes.yaxis`.
    """
    axis.set_major_locator(MaxNLocator(integer=True))


def count_histogram(axes: Axes, series: Mapping[str, Sequence[float]], colours: Sequence[str],
                    bins: Sequence[float]) -> None:
    """Histograms of several series with their bars side by side in each bin, never on top.

    Args:
        axes: where to draw.
        series: legend label -> values; series without values are left out.
        colours: one colour per entry of `series`, in order.
        bins: the bin edges, shared by every series.
    """
    chosen = [(label, list(values), colour) for (label, values), colour in zip(series.items(), colours) if len(values)]
    if chosen:
        labels, values, chosen_colours = zip(*chosen)
        axes.hist(list(values), bins=bins, color=list(chosen_colours), label=list(labels), edgecolor="white",
                  linewidth=0.5)
    integer_ticks(axes.yaxis)


def empty_note(axes: Axes, text: str) -> None:
    """Write `text` in the middle of `axes` (a figure with nothing to show says why).

    Args:
        axes: the empty axes.
        text: the reason, e.g. "no relaxed candidate".
    """
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)


def save_figure(figure: Figure, path: Path) -> Path:
    """Write `figure` to `path` atomically (PNG at 120 dpi unless the suffix says otherwise).

    Args:
        figure: a figure made by `new_figure` (its constrained layout is applied when drawn).
        path: the file; its folder is made if missing.

    Returns:
        `path`.
    """
    with replacing(path) as temporary:
        figure.savefig(temporary, dpi=120, format=path.suffix.lstrip(".") or "png")
    return path
