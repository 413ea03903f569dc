"""Every figure reads at a glance: each series has its own artist and colour, series sharing an x
position stand side by side as markers (no line across unrelated points), count axes have integer
ticks, the hull's samples are drawn on top, and every label lies inside the canvas. Structure, not
pixels: the checks read the matplotlib artists after a real draw."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure
from pymatgen.entries.computed_entries import ComputedEntry
from test_intercalation import si8_li_states
from test_metrics import cesium_chloride, diamond, rocksalt

from chggen_plugins.applications.intercalation import plot_hull
from chggen_plugins.applications.ordering import plot_energies
from chggen_plugins.evaluation.coordination import coordination_stats
from chggen_plugins.evaluation.voltage import pseudo_binary
from chggen_plugins.runs.figures import PALETTE, offsets, save_figure
from chggen_plugins.runs.report import plot_coordination, plot_de_vs_rmsd, plot_ed_histogram, plot_symmetry_rates
from chggen_plugins.runs.store import StoredResult

CAMPAIGN = ("unconditional", "inpainting", "inpainting-sym", "inpainting-snap")


def drawn(figure: Figure) -> Figure:
    """`figure` after a real Agg draw (layout done, tick positions final)."""
    FigureCanvasAgg(figure).draw()
    return figure


def assert_inside_canvas(figure: Figure) -> None:
    """Everything drawn (titles, labels, legends, annotations) lies inside the saved canvas."""
    drawn_box = figure.get_tightbbox(figure.canvas.get_renderer())  # inches, as bbox_inches="tight" sees it
    canvas = figure.bbox_inches
    assert drawn_box.x0 >= canvas.x0 - 0.01 and drawn_box.y0 >= canvas.y0 - 0.01, drawn_box
    assert drawn_box.x1 <= canvas.x1 + 0.01 and drawn_box.y1 <= canvas.y1 + 0.01, drawn_box


def integer_ticks_shown(axes) -> bool:
    low, high = axes.get_ylim()
    return all(float(t).is_integer() for t in axes.get_yticks() if low <= t <= high)


def summary_row(method: str, n_atoms: int, symmetric: int, generated: int, backend: str = "analytic") -> dict:
    """A summary row as `summary_rows` makes it (the fields the plot reads)."""
    return {"backend": backend, "weights": "trained", "method": method, "n_atoms": n_atoms, "generated": generated,
            "symmetric_spglib": symmetric, "symmetric_moyopy": symmetric, "symprec": 0.1, "angle_tolerance": 10.0}


def result(uid: str, method: str, **fields) -> StoredResult:
    return StoredResult(uid, None, None, {"method": method, "status": "relaxed", **fields})


def test_offsets_are_centred_and_evenly_spaced():
    assert offsets(1) == [0.0]
    assert offsets(4, 0.8) == pytest.approx([-0.3, -0.1, 0.1, 0.3])
    assert sum(offsets(7)) == pytest.approx(0.0)


def test_symmetry_rates_are_markers_side_by_side_one_artist_per_series(tmp_path):
    # Unconditional at 3 atoms (random cells), three inpainting methods at the 12-atom host: before,
    # the methods at 12 atoms were drawn on one spot and a line joined 3 to 12.
    rows = [summary_row("unconditional", 3, 0, 2)] + [summary_row(m, 12, 2, 2) for m in CAMPAIGN[1:]]
    figure = drawn(plot_symmetry_rates(rows, ["spglib", "moyopy"]))
    axes = figure.axes[0]
    series = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    assert len(series) == 4 * 2  # methods x libraries, each its own artist
    assert all(c.lines[0].get_linestyle() == "None" for c in series)  # markers only
    at_host = [x for c in series for x in c.lines[0].get_xdata() if x > 0.5]
    assert len(at_host) == 6 and len(set(at_host)) == 6 and all(0.5 < x < 1.5 for x in at_host)
    assert sum(at_host) / 6 == pytest.approx(1.0)  # centred on the 12-atom tick
    assert [t.get_text() for t in axes.get_xticklabels()] == ["3", "12"]
    spglib = [c.lines[0].get_color() for c in series if c.get_label().endswith("(spglib)")]
    assert len(set(spglib)) == 4 and set(spglib) <= set(PALETTE)  # one colour-blind-safe colour per method
    assert len(axes.get_legend().get_texts()) == 8
    assert_inside_canvas(figure)
    assert save_figure(figure, tmp_path / "rates.png").stat().st_size > 1000


def test_backend_benchmark_colours_backends_and_names_untrained_weights():
    rows = [summary_row("unconditional", 3, 1, 2, "analytic"), summary_row("inpainting", 6, 2, 2, "analytic"),
            {**summary_row("unconditional", 3, 0, 2, "native"), "weights": "UNTRAINED"}]
    figure = drawn(plot_symmetry_rates(rows, ["spglib", "moyopy"], by_backend=True))
    series = [c for c in figure.axes[0].containers if isinstance(c, ErrorbarContainer)]
    labels = [c.get_label() for c in series]
    assert labels == ["analytic unconditional (spglib)", "analytic inpainting (spglib)",
                      "native unconditional [UNTRAINED] (spglib)"]
    colours = [c.lines[0].get_color() for c in series]
    assert colours[0] == colours[1] != colours[2]
    first, untrained = series[0].lines[0].get_xdata()[0], series[2].lines[0].get_xdata()[0]
    assert first != untrained  # both at 3 atoms, side by side
    assert_inside_canvas(figure)


def test_ed_histogram_has_integer_counts_bars_per_method_and_names_each_hull_once():
    results = [result(f"u{i}", "unconditional", ed=0.05 * i, hull="APPROXIMATE CHGNet reference hull Li-Si (cache a)")
               for i in range(3)]
    results += [result(f"i{i}", "inpainting", ed=0.02 * i, hull="APPROXIMATE CHGNet reference hull Li-Si (cache b)")
                for i in range(4)]
    figure = drawn(plot_ed_histogram(results, threshold=0.1))
    axes = figure.axes[0]
    bars = [c for c in axes.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and bars[0].patches[0].get_facecolor() != bars[1].patches[0].get_facecolor()
    assert sum(p.get_height() for p in bars[0].patches) == 3 and sum(p.get_height() for p in bars[1].patches) == 4
    assert integer_ticks_shown(axes)
    title = axes.get_title()
    assert title.count("APPROXIMATE") == 1 and title.count("Li-Si") == 1
    assert_inside_canvas(figure)


def test_ordering_energies_side_by_side_with_integer_counts():
    relaxed = [result(f"{m}{i}", m, e_per_atom=-4.0 + 0.01 * i) for m in ("inpainting", "pymatgen", "random")
               for i in range(2)]
    figure = drawn(plot_energies(relaxed, ["inpainting", "inpainting-sites", "pymatgen", "random"]))
    axes = figure.axes[0]
    bars = [c for c in axes.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3  # a method without candidates has no artist (and no legend entry)
    assert len({c.patches[0].get_facecolor() for c in bars}) == 3
    lefts = [c.patches[0].get_x() for c in bars]
    assert len(set(lefts)) == 3  # side by side in the first bin, not on top of each other
    assert integer_ticks_shown(axes)
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["inpainting (2)", "pymatgen (2)", "random (2)"]


def test_de_vs_rmsd_open_markers_of_distinct_shapes():
    results = [result(f"{m}{i}", m, rmsd=0.0, delta_e=-0.1) for m in CAMPAIGN for i in range(2)]
    figure = drawn(plot_de_vs_rmsd(results))
    collections = figure.axes[0].collections
    assert len(collections) == 4
    assert len({c.get_paths()[0].vertices.tobytes() for c in collections}) == 4  # four marker shapes
    assert all(c.get_facecolor().size == 0 or c.get_facecolor()[0][3] == 0 for c in collections)  # open


def test_hull_samples_on_top_and_labels_inside_the_canvas():
    host, li, states = si8_li_states()
    # The most lithiated stable content on the right edge: its label used to run off the canvas.
    states.append(ComputedEntry("Li8Si8", host.energy + 8 * li.energy_per_atom - 1.5, entry_id="a8"))
    thermo = pseudo_binary(host, li, states)
    figure = drawn(plot_hull(thermo))
    axes = figure.axes[0]
    samples = next(c for c in axes.collections if c.get_label().startswith("relaxed samples"))
    lowest = next(c for c in axes.collections if c.get_label() == "lowest per x")
    hull = next(line for line in axes.lines if line.get_label() == "hull")
    assert len(samples.get_offsets()) == len(states)
    assert samples.get_zorder() > lowest.get_zorder() > hull.get_zorder()
    labels = [t for t in axes.texts if t.get_text()]
    assert [t.get_text() for t in labels] == [p.entry.composition.reduced_formula for p in thermo.stable]
    renderer = figure.canvas.get_renderer()
    frame = axes.get_window_extent(renderer)
    for text in labels:  # inside the axes, not only the canvas
        box = text.get_window_extent(renderer)
        assert frame.contains(*box.p0) and frame.contains(*box.p1), text.get_text()
    assert_inside_canvas(figure)


def test_coordination_ticks_are_the_integer_coordination_numbers():
    stats = coordination_stats({"training": [diamond(), rocksalt()], "generated": [cesium_chloride(), diamond()]})
    figure = drawn(plot_coordination(stats))
    by_title = {axes.get_title().split(":")[0]: axes for axes in figure.axes}
    assert list(by_title["Si"].get_xticks()) == [4]
    assert list(by_title["Cs"].get_xticks()) == [8]
    si_bars = [c for c in by_title["Si"].containers if isinstance(c, BarContainer)]
    assert len(si_bars) == 2 and si_bars[0].patches[0].get_x() != si_bars[1].patches[0].get_x()
    assert_inside_canvas(figure)
