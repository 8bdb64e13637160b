"""Tests of course_utils.plotting: images, sinograms, curves, the results table, interact."""

import math
import sys
import warnings

import matplotlib

matplotlib.use("Agg")  # no window: tests run headless

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import course_utils.plotting as plotting  # noqa: E402
from course_utils.plotting import (  # noqa: E402
    interact, plot_curves, results_table, show_images, show_sinogram,
)


@pytest.fixture(autouse=True)
def no_figure_leaks():
    """Every test starts without figures; we close what it made and check its count."""
    plt.close("all")
    yield
    plt.close("all")


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


# --- show_images ------------------------------------------------------------------------

def test_show_images_list_with_titles_and_colorbars():
    images = [torch.rand(16, 16), np.zeros((16, 16)), torch.rand(1, 16, 16, requires_grad=True)]
    fig = show_images(images, ["truth", "zeros", "with grad"], suptitle="Compare")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(_image_axes(fig)) == 3
    assert len(fig.axes) == 6                           # 3 images + 3 colour bars
    assert [ax.get_title() for ax in _image_axes(fig)] == ["truth", "zeros", "with grad"]
    assert fig._suptitle.get_text() == "Compare"
    assert all(not ax.axison for ax in _image_axes(fig))
    assert plt.get_fignums() == [fig.number]          # exactly one figure made
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # the layout works without warnings
        fig.canvas.draw()


def test_show_images_batch_grid_and_no_colorbar():
    batch = torch.rand(6, 1, 8, 8)
    fig = show_images(batch, ncols=4, colorbar=False)
    assert len(fig.axes) == 6                           # unused grid cells are removed
    rows = {ax.get_subplotspec().rowspan.start for ax in fig.axes}
    assert rows == {0, 1}
    assert len(show_images(torch.rand(3, 8, 8)).axes) == 6
    assert len(show_images(torch.rand(8, 8)).axes) == 2   # a single image


def test_show_images_colour_ranges():
    a, b = torch.zeros(8, 8), torch.ones(8, 8) * 3
    a[0, 0] = -1
    fig = show_images([a, b], vmin="shared", colorbar=False)
    assert [ax.images[0].get_clim() for ax in fig.axes] == [(-1, 3), (-1, 3)]
    fig = show_images([a, b], vmin=0, vmax=1, colorbar=False)
    assert [ax.images[0].get_clim() for ax in fig.axes] == [(0, 1), (0, 1)]
    fig = show_images([a, b], vmin=0, vmax="shared", colorbar=False)
    assert fig.axes[0].images[0].get_clim() == (0, 3)
    fig = show_images([a, b], colorbar=False)             # each image its own range
    assert fig.axes[0].images[0].get_clim()[0] == -1
    assert fig.axes[0].images[0].get_cmap().name == "gray"


def test_show_images_bad_input():
    with pytest.raises(ValueError, match="titles"):
        show_images([torch.rand(8, 8)] * 2, ["only one"])
    with pytest.raises(ValueError, match="2-D"):
        show_images([torch.rand(3, 8, 8)])
    with pytest.raises(ValueError, match="shape"):
        show_images(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="shared"):
        show_images([torch.rand(8, 8)], vmin="same")
    with pytest.raises(TypeError):
        show_images([])
    assert plt.get_fignums() == []                       # failed calls leave no figure


# --- show_sinogram ----------------------------------------------------------------------

class _Geometry:
    """The two things show_sinogram reads from a geometry."""

    def __init__(self, n_angles, n_detectors):
        self.angles = torch.arange(n_angles, dtype=torch.float64) * math.pi / n_angles
        self.n_detectors = n_detectors

    def detector_positions(self):
        return torch.arange(self.n_detectors, dtype=torch.float64) + 0.5 - self.n_detectors / 2


def test_show_sinogram_with_geometry():
    ax = show_sinogram(torch.rand(1, 90, 40), _Geometry(90, 40), title="y = A x")
    assert ax.get_title() == "y = A x"
    assert "degrees" in ax.get_ylabel() and "position" in ax.get_xlabel()
    bottom, top = ax.get_ylim()
    assert top == pytest.approx(-1.0) and bottom == pytest.approx(179.0)   # 0..178 degrees, half a step out
    assert ax.get_xlim() == pytest.approx((-20.0, 20.0))
    assert len(ax.figure.axes) == 2                                         # image + colour bar


def test_show_sinogram_without_geometry_and_into_given_axes():
    fig, axes = plt.subplots(1, 2)
    ax = show_sinogram(np.random.rand(30, 20), ax=axes[1])
    assert ax is axes[1]
    assert ax.get_title() == "Sinogram" and "index" in ax.get_xlabel()
    assert plt.get_fignums() == [fig.number]


def test_show_sinogram_bad_input():
    with pytest.raises(ValueError, match="rows"):
        show_sinogram(torch.rand(30, 40), _Geometry(90, 40))
    with pytest.raises(ValueError, match="2-D"):
        show_sinogram(torch.rand(2, 30, 40))
    with pytest.raises(TypeError, match="angles"):
        show_sinogram(torch.rand(30, 40), geometry="parallel")


# --- plot_curves ------------------------------------------------------------------------

def test_plot_curves_forms_of_input():
    ax = plot_curves(
        {
            "list": [1.0, 0.5, 0.25],
            "tensor": torch.tensor([2.0, 1.0]),
            "x and y": ([0, 10, 20], [3.0, 2.0, 1.0]),
            "pairs": [(0, 1.0), (5, 0.1)],
            "losses": [torch.tensor(0.7, requires_grad=True) * 1, torch.tensor(0.3)],
        },
        ylabel="loss", title="Training", logy=True,
    )
    assert len(ax.lines) == 5
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["list", "tensor", "x and y", "pairs", "losses"]
    assert ax.get_yscale() == "log" and ax.get_title() == "Training"
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "loss"
    np.testing.assert_allclose(ax.lines[2].get_xdata(), [0, 10, 20])
    np.testing.assert_allclose(ax.lines[3].get_ydata(), [1.0, 0.1])
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0, 1, 2])


def test_plot_curves_bad_input():
    with pytest.raises(TypeError, match="dict"):
        plot_curves([1, 2, 3])
    with pytest.raises(ValueError, match="x has 3 values but y has 2"):
        plot_curves({"bad": ([1, 2, 3], [1.0, 2.0])})


# --- results_table ----------------------------------------------------------------------

ROWS = [
    {"method": "FBP", "PSNR (dB)": 24.1234, "SSIM": 0.71234, "time (s)": 0.012345},
    {"method": "learned primal-dual", "PSNR (dB)": 31.5, "SSIM": 0.9, "time (s)": 12.345},
]


def test_results_table_text():
    text = str(results_table(ROWS))
    lines = text.splitlines()
    assert lines[0].split() == ["method", "PSNR", "(dB)", "SSIM", "time", "(s)"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["FBP", "24.12", "0.712", "0.0123"]
    assert lines[3].split() == ["learned", "primal-dual", "31.50", "0.900", "12.3"]
    # numbers are right-aligned in their column, so rows end at the same place
    assert len(lines[2]) == len(lines[3])
    assert repr(results_table(ROWS)) == text


def test_results_table_columns_missing_values_and_html():
    rows = ROWS + [{"method": "CGLS", "iterations": 50, "note": "<early stop>"}]
    table = results_table(rows, columns=["method", "PSNR (dB)", "iterations", "note"])
    text = str(table).splitlines()
    assert text[0].split() == ["method", "PSNR", "(dB)", "iterations", "note"]
    assert text[-1].split() == ["CGLS", "50", "<early", "stop>"]
    html = table._repr_html_()
    assert html.count("<tr>") == 4 and html.count("<th>") == 4
    assert "&lt;early stop&gt;" in html and "<early" not in html
    assert "24.12" in html and "SSIM" not in html


def test_results_table_number_formats():
    table = results_table([{"PSNR": float("inf"), "SSIM": np.float32(0.5),
                            "time (s)": 1234.5, "loss": 0.000123456,
                            "value": torch.tensor(2.5)}])
    assert str(table).splitlines()[2].split() == ["inf", "0.500", "1234", "0.0001235", "2.5"]


def test_results_table_bad_input():
    with pytest.raises(TypeError, match="list of dicts"):
        results_table({"method": "FBP"})
    with pytest.raises(TypeError, match="list of dicts"):
        results_table([("FBP", 24.1)])


# --- interact ---------------------------------------------------------------------------
# A real IPython shell, with a display publisher that records every message instead of
# sending it, stands in for a Jupyter kernel: cu.interact needs no kernel to be tested.

class _Published(list):
    """The display messages published, as dicts: data, metadata, display_id, update."""

    def displays(self):
        return [m for m in self if not m["update"]]

    def updates(self):
        return [m for m in self if m["update"]]


@pytest.fixture
def kernel(monkeypatch):
    """An IPython shell that records what is displayed; cu.interact takes it for a kernel."""
    import builtins

    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import select_figure_formats
    from traitlets.config import Config

    published = _Published()

    class Recorder(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                    **kwargs):
            published.append({"data": data, "metadata": metadata or {},
                              "display_id": (transient or {}).get("display_id"),
                              "update": update})

    # the shell sets these for good; the monkeypatch puts them back afterwards
    for name in ("__IPYTHON__", "display"):
        monkeypatch.setitem(builtins.__dict__, name, None)
    for name in ("ps1", "ps2", "ps3"):
        monkeypatch.setattr(sys, name, "", raising=False)
    assert not InteractiveShell.initialized()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.display_pub = Recorder()
    select_figure_formats(shell, {"png"})          # figures display as PNG, as inline does
    monkeypatch.setattr(plotting, "_kernel_shell", lambda: shell)
    yield published
    InteractiveShell.clear_instance()


def _png(message):
    return message["data"].get("image/png")


def _drawer(calls, *, title="frequency"):
    """A function as the lessons write them: print a line, draw a figure, plt.show()."""
    def draw(freq=3, label="sine"):
        calls.append({"freq": freq, "label": label})
        print(f"{label}: {freq}")
        fig, ax = plt.subplots(figsize=(2, 1.5))
        ax.plot(np.sin(np.linspace(0, 2 * np.pi * freq, 50)))
        ax.set_title(f"{title} {freq}")
        plt.show()
    return draw


def test_interact_calls_once_with_the_initial_values_and_shows_plain_outputs(kernel):
    import ipywidgets as widgets
    calls = []
    freq = widgets.IntSlider(value=4, min=1, max=9)
    label = widgets.Dropdown(options=["sine", "wave"], value="wave")
    interaction = interact(_drawer(calls), freq=freq, label=label)

    assert calls == [{"freq": 4, "label": "wave"}]          # once, at once
    assert interaction.calls == 1 and interaction.kwargs == {"freq": 4, "label": "wave"}
    assert list(interaction.widget.children) == [freq, label]   # no Output widget
    assert not any(isinstance(w, widgets.Output) for w in interaction.widget.children)
    assert [m["update"] for m in kernel] == [False, False, False]
    controls, text, figure = kernel
    assert "application/vnd.jupyter.widget-view+json" in controls["data"]
    assert text["data"] == {"text/plain": "wave: 4\n"}
    assert _png(figure) and figure["display_id"]
    assert text["display_id"] and text["display_id"] != figure["display_id"]
    assert plt.get_fignums() == []                             # the figure was closed
    assert "draw" in repr(interaction)


def test_interact_moving_a_control_redraws_into_the_same_displays(kernel):
    import ipywidgets as widgets
    calls = []
    freq = widgets.IntSlider(value=4, min=1, max=9)
    interact(_drawer(calls), freq=freq, label=widgets.Dropdown(options=["sine", "wave"]))
    first = kernel.displays()[1:]
    del kernel[:]

    freq.value = 7
    assert calls[-1] == {"freq": 7, "label": "sine"} and len(calls) == 2
    assert [m["update"] for m in kernel] == [True, True]
    assert [m["display_id"] for m in kernel] == [m["display_id"] for m in first]
    assert kernel[0]["data"] == {"text/plain": "sine: 7\n"}
    assert _png(kernel[1]) and _png(kernel[1]) != _png(first[1])   # a new figure
    assert plt.get_fignums() == []


def test_interact_more_or_fewer_outputs_than_displays(kernel):
    import ipywidgets as widgets
    from IPython.display import display

    def show(n=2):
        for k in range(n):
            display({"text/plain": f"output {k}", "text/html": f"<b>output {k}</b>"}, raw=True)

    n = widgets.IntSlider(value=2, min=0, max=3)
    interact(show, n=n)
    ids = [m["display_id"] for m in kernel.displays()[1:]]
    assert len(ids) == 2
    del kernel[:]
    n.value = 1                                    # the second display is emptied
    assert [(m["display_id"], m["data"]) for m in kernel] == [
        (ids[0], {"text/plain": "output 0", "text/html": "<b>output 0</b>"}), (ids[1], {})]
    del kernel[:]
    n.value = 3                                    # outputs 1 and 2 share the last display
    assert [m["display_id"] for m in kernel] == ids
    assert kernel[1]["data"]["text/html"] == "<b>output 1</b>\n<b>output 2</b>"
    assert kernel[1]["data"]["text/plain"] == "output 1\noutput 2"


def test_interact_with_no_output_still_has_a_display_to_update(kernel):
    import ipywidgets as widgets
    show = widgets.Checkbox(value=False)
    interact(lambda show: print("shown") if show else None, show=show)
    (placeholder,) = kernel.displays()[1:]
    assert placeholder["data"] == {} and placeholder["display_id"]
    show.value = True
    assert kernel.updates() == [{"data": {"text/plain": "shown\n"}, "metadata": {},
                                 "display_id": placeholder["display_id"], "update": True}]


def test_interact_combines_images_into_html_when_displays_run_out(kernel):
    import ipywidgets as widgets

    def figures(n=1):
        for k in range(n):
            plt.figure(figsize=(1, 1))
            plt.title(str(k))

    n = widgets.IntSlider(value=1, min=1, max=2)
    interact(figures, n=n)
    assert len(kernel.displays()) == 2 and _png(kernel[1])
    n.value = 2                                    # two figures, one display
    (update,) = kernel.updates()
    assert update["data"]["text/html"].count('<img src="data:image/png;base64,') == 2
    assert plt.get_fignums() == []


def test_interact_shows_a_returned_value(kernel):
    import ipywidgets as widgets
    word = widgets.Text(value="tomography")
    interaction = interact(lambda word: word.upper(), word=word)
    assert interaction.result == "TOMOGRAPHY"
    assert kernel[-1]["data"]["text/plain"] == "'TOMOGRAPHY'"
    word.value = "ct"
    assert kernel.updates()[-1]["data"]["text/plain"] == "'CT'"
    assert interaction.result == "CT"


def test_interact_errors_fail_the_cell_first_and_are_shown_later(kernel):
    import ipywidgets as widgets

    def fragile(k=1):
        plt.figure()
        if k == 0:
            raise ValueError("k must not be 0")
        print(f"k = {k}")

    with pytest.raises(ValueError, match="must not be 0"):
        interact(fragile, k=widgets.IntSlider(value=0))
    assert kernel == [] and plt.get_fignums() == []     # nothing shown, nothing leaked
    k = widgets.IntSlider(value=1)
    interact(fragile, k=k)
    del kernel[:]
    k.value = 0                                    # a slider's error is shown, not raised
    assert "ValueError: k must not be 0" in kernel[0]["data"]["text/plain"]
    assert plt.get_fignums() == []
    k.value = 2
    assert kernel[-2]["data"] == {"text/plain": "k = 2\n"}


def test_interact_abbreviations_fixed_and_defaults_as_ipywidgets(kernel):
    import ipywidgets as widgets
    calls = []

    def f(n, word, scale, flag=True, title="default"):
        calls.append((n, word, scale, flag, title))

    interaction = interact(f, n=(0, 10, 2), word=["a", "b"], scale=widgets.fixed(0.5))
    assert calls == [(4, "a", 0.5, True, "default")]     # the values ipywidgets picks too
    controls = interaction.controls
    assert isinstance(controls["n"], widgets.IntSlider) and controls["n"].step == 2
    assert isinstance(controls["word"], widgets.Dropdown)
    assert isinstance(controls["flag"], widgets.Checkbox)
    assert isinstance(controls["title"], widgets.Text)
    assert controls["n"].description == "n"
    assert controls["scale"] not in interaction.widget.children   # fixed: not shown
    controls["flag"].value = False
    assert calls[-1] == (4, "a", 0.5, False, "default")


def test_interact_bad_controls(kernel):
    import ipywidgets as widgets
    with pytest.raises(TypeError, match="has no argument 'b'"):      # a typo
        interact(lambda a: None, a=widgets.IntSlider(), b=widgets.IntSlider())

    def positional_only(a, /):
        pass

    with pytest.raises(TypeError, match="do not match"):             # no control can reach a
        interact(positional_only)
    with pytest.raises(ValueError, match="cannot find widget"):
        interact(lambda a: None)
    with pytest.raises(TypeError, match="not a ValueWidget"):
        interact(lambda a: None, a=widgets.Button())
    assert kernel == []


def test_interact_outside_a_kernel_just_calls_the_function(capsys):
    import ipywidgets as widgets
    assert plotting._kernel_shell() is None
    calls = []
    freq = widgets.IntSlider(value=5)
    interaction = interact(_drawer(calls), freq=freq)
    assert calls == [{"freq": 5, "label": "sine"}]
    assert interaction.widget is None
    assert capsys.readouterr().out == "sine: 5\n"
    freq.value = 6                                 # no kernel, no redraw
    assert len(calls) == 1
    interact(lambda x: x * 2, x=widgets.IntSlider(value=21))
    assert capsys.readouterr().out == "42\n"      # a returned value is shown, as in Jupyter
