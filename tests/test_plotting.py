"""Tests of course_utils.plotting: images, sinograms, curves and the results table."""

import math
import warnings

import matplotlib

matplotlib.use("Agg")  # no window: tests run headless

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.plotting import (  # noqa: E402
    plot_curves, results_table, show_images, show_sinogram,
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
