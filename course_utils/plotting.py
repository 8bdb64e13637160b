"""Figures and tables with one consistent look across the course.

* :func:`show_images` — a row (or grid) of images, grey colour map, titles, colour bars;
* :func:`show_sinogram` — a sinogram with labelled axes (detector, angle in degrees);
* :func:`plot_curves` — loss or error curves with a legend and a grid;
* :func:`results_table` — a small table of results that looks good both in Jupyter and
  in a terminal.

The plotting functions accept tensors (also on a GPU or with gradients) and NumPy
arrays.  They draw with ``matplotlib.pyplot``, so in Jupyter the figure appears at the
end of the cell; end the line with ``;`` (or assign the result) so that it is not shown
a second time as the cell's value.
"""

from __future__ import annotations

import html
import math
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["show_images", "show_sinogram", "plot_curves", "results_table", "ResultsTable"]


def _to_numpy(array: Any, name: str = "image") -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    if isinstance(array, np.ndarray):
        return array
    raise TypeError(f"{name} must be a torch.Tensor or a NumPy array, got {type(array).__name__}")


def _as_image_list(images) -> list[np.ndarray]:
    """Turn a list of images or a batch ``(n, H, W)`` / ``(n, 1, H, W)`` into 2-D arrays."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        batch = _to_numpy(images, "images")
        if batch.ndim == 2:
            batch = batch[None]
        elif batch.ndim == 4 and batch.shape[1] == 1:
            batch = batch[:, 0]
        elif batch.ndim != 3:
            raise ValueError(
                "images must be a list of 2-D images or a batch of shape (n, H, W) or "
                f"(n, 1, H, W), got shape {batch.shape}"
            )
        return list(batch)
    if not isinstance(images, (list, tuple)) or len(images) == 0:
        raise TypeError("images must be a non-empty list of 2-D images or a batch tensor, "
                        f"got {type(images).__name__}")
    result = []
    for k, image in enumerate(images):
        image = _to_numpy(image, f"images[{k}]")
        while image.ndim > 2 and image.shape[0] == 1:   # (1, H, W) or (1, 1, H, W)
            image = image[0]
        if image.ndim != 2:
            raise ValueError(f"images[{k}] must be 2-D (H, W), got shape {image.shape}")
        result.append(image)
    return result


def show_images(images, titles=None, *, ncols=None, cmap="gray", vmin=None, vmax=None,
                colorbar=True, suptitle=None, size=3.0):
    """Show images side by side, with titles and colour bars.

    Parameters
    ----------
    images : list of 2-D tensors/arrays, or a tensor/array of shape (n, H, W) or (n, 1, H, W)
        The images; one 2-D image is fine too.
    titles : list of str, optional
        One title per image.
    ncols : int, optional
        Images per row; default ``min(n, 4)``.
    cmap : str
        Colour map, grey by default.
    vmin, vmax : float, "shared" or None
        Colour range.  A number applies to every image; ``None`` lets each image use its
        own range; ``"shared"`` (in either one) gives all images one common range, the
        overall min and max, so that grey levels can be compared across images
        (a number given for the other one is kept).
    colorbar : bool
        Draw a colour bar next to each image.
    suptitle : str, optional
        A title for the whole figure.
    size : float
        Size of each image in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> show_images([x, x_fbp], ["ground truth", "FBP"], vmin="shared");  # doctest: +SKIP
    """
    images = _as_image_list(images)
    n = len(images)
    if titles is not None:
        if isinstance(titles, str):
            titles = [titles]
        if len(titles) != n:
            raise ValueError(f"got {n} images but {len(titles)} titles")
    if ncols is None:
        ncols = min(n, 4)
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    ncols = min(int(ncols), n)
    nrows = math.ceil(n / ncols)
    for name, value in (("vmin", vmin), ("vmax", vmax)):
        if isinstance(value, str) and value != "shared":
            raise ValueError(f'{name} must be a number, None or "shared", got {value!r}')
    if isinstance(vmin, str) or isinstance(vmax, str):   # "shared"
        low = min(float(np.nanmin(image)) for image in images)
        high = max(float(np.nanmax(image)) for image in images)
        vmin = low if vmin is None or isinstance(vmin, str) else vmin
        vmax = high if vmax is None or isinstance(vmax, str) else vmax

    width = size * ncols * (1.25 if colorbar else 1.0)
    height = size * nrows + (0.4 if suptitle else 0.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False,
                             layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k >= n:
            fig.delaxes(ax)   # unused grid cells
            continue
        im = ax.imshow(images[k], cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[k])
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def show_sinogram(sinogram, geometry=None, *, ax=None, title="Sinogram"):
    """Show a sinogram: detector along the horizontal axis, angle along the vertical one.

    Parameters
    ----------
    sinogram : torch.Tensor or numpy.ndarray, shape (n_angles, n_detectors)
        One sinogram (leading dimensions of size 1 are dropped).
    geometry : optional
        Anything with an ``angles`` attribute (1-D, radians), e.g. ``cu.ParallelBeam``.
        Then the vertical axis shows the angle in degrees, and, if the geometry has a
        ``detector_positions()`` method, the horizontal axis shows the detector
        position in pixels.  Without it, both axes show indices.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure.
    title : str
        Title of the plot.

    Returns
    -------
    matplotlib.axes.Axes
    """
    sinogram = _to_numpy(sinogram, "sinogram")
    while sinogram.ndim > 2 and sinogram.shape[0] == 1:
        sinogram = sinogram[0]
    if sinogram.ndim != 2:
        raise ValueError(f"sinogram must be 2-D (n_angles, n_detectors), got shape {sinogram.shape}")
    n_angles, n_detectors = sinogram.shape

    xlabel, ylabel = "detector index", "projection index"
    left, right = -0.5, n_detectors - 0.5
    top, bottom = -0.5, n_angles - 0.5
    if geometry is not None:
        if not hasattr(geometry, "angles"):
            raise TypeError(f"geometry must have an 'angles' attribute, got {type(geometry).__name__}")
        angles = np.rad2deg(_to_numpy(torch.as_tensor(geometry.angles), "geometry.angles"))
        if angles.shape != (n_angles,):
            raise ValueError(f"the geometry has {angles.size} angles but the sinogram has "
                             f"{n_angles} rows")
        # half a step beyond the first and last angle, so that rows are centred on them
        step = (angles[-1] - angles[0]) / (n_angles - 1) if n_angles > 1 else 1.0
        top, bottom = angles[0] - step / 2, angles[-1] + step / 2
        ylabel = "projection angle (degrees)"
        if callable(getattr(geometry, "detector_positions", None)):
            u = _to_numpy(torch.as_tensor(geometry.detector_positions()), "detector positions")
            if u.shape != (n_detectors,):
                raise ValueError(f"the geometry has {u.size} detector pixels but the sinogram "
                                 f"has {n_detectors} columns")
            du = (u[-1] - u[0]) / (n_detectors - 1) if n_detectors > 1 else 1.0
            left, right = u[0] - du / 2, u[-1] + du / 2
            xlabel = "detector position (pixels)"

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    im = ax.imshow(sinogram, cmap="gray", aspect="auto", extent=(left, right, bottom, top))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax)
    return ax


def _numbers(values) -> np.ndarray:
    """A sequence of numbers (list, tensor, array; items may be 0-dim tensors) as floats."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray([_numbers(v) if isinstance(v, (torch.Tensor, list, tuple, np.ndarray))
                       else float(v) for v in values], dtype=float)


def _curve_xy(values, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``y``, an ``(x, y)`` tuple or a sequence of ``(x, y)`` pairs -> two 1-D arrays."""
    if isinstance(values, tuple) and len(values) == 2 and all(np.ndim(v) == 1 for v in values):
        x, y = _numbers(values[0]), _numbers(values[1])
    else:
        array = _numbers(values)
        if array.ndim == 1:
            x, y = np.arange(len(array)), array
        elif array.ndim == 2 and array.shape[1] == 2:
            x, y = array[:, 0], array[:, 1]
        else:
            raise ValueError(f"curve {name!r} must be a sequence of values, an (x, y) tuple "
                             f"or a sequence of (x, y) pairs, got shape {array.shape}")
    if x.shape != y.shape:
        raise ValueError(f"curve {name!r}: x has {x.size} values but y has {y.size}")
    return x, y


def plot_curves(curves: Mapping[str, Any], *, xlabel="iteration", ylabel="value",
                title=None, logy=False, ax=None):
    """Plot named curves (losses, errors, PSNR per iteration...) in one axes.

    Parameters
    ----------
    curves : dict
        ``name -> values``; values are a sequence of numbers (plotted against 0, 1, 2,
        ...), a tuple ``(x, y)`` of two sequences, or a sequence of ``(x, y)`` pairs.
    xlabel, ylabel : str
        Axis labels.
    title : str, optional
        Title of the plot.
    logy : bool
        Logarithmic vertical axis (good for losses and errors that fall by orders of
        magnitude).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> plot_curves({"Landweber": errors_lw, "CGLS": errors_cg},  # doctest: +SKIP
    ...             ylabel="relative error", logy=True);
    """
    if not isinstance(curves, Mapping) or len(curves) == 0:
        raise TypeError("curves must be a non-empty dict name -> values, "
                        f"got {type(curves).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5), layout="constrained")
    for name, values in curves.items():
        x, y = _curve_xy(values, name)
        ax.plot(x, y, label=str(name))
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.4)
    ax.legend()
    return ax


# --- a small results table ---------------------------------------------------------------

def _format_value(value: Any, column: str) -> str:
    """Numbers formatted by what the column holds: PSNR 2 decimals, SSIM 3, times 3 digits."""
    if value is None:
        return ""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    name = column.lower()
    if not math.isfinite(value):
        return str(value)
    if "psnr" in name:
        return f"{value:.2f}"
    if "ssim" in name:
        return f"{value:.3f}"
    if "time" in name or "(s)" in name:
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{value:.4g}"


def _is_number(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


class ResultsTable:
    """A table of results, shown as HTML in Jupyter and as aligned text by ``print``.

    Make one with :func:`results_table`.  ``rows`` (list of dicts) and ``columns``
    (list of names) hold the data.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]):
        self.rows = list(rows)
        self.columns = list(columns)

    def _cells(self) -> list[list[tuple[str, bool]]]:
        """Formatted text of every cell and whether it is a number (right-aligned)."""
        return [[(_format_value(row.get(c), c), _is_number(row.get(c))) for c in self.columns]
                for row in self.rows]

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max([len(c)] + [len(row[j][0]) for row in cells])
                  for j, c in enumerate(self.columns)]
        numeric = [any(row[j][1] for row in cells) for j in range(len(self.columns))]

        def line(texts):
            return "  ".join(t.rjust(w) if num else t.ljust(w)
                             for t, w, num in zip(texts, widths, numeric)).rstrip()

        lines = [line(self.columns), "  ".join("-" * w for w in widths)]
        lines += [line([text for text, _ in row]) for row in cells]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns)
        body = ""
        for row in self._cells():
            body += "<tr>" + "".join(
                f'<td style="text-align: {"right" if num else "left"}">{html.escape(text)}</td>'
                for text, num in row) + "</tr>\n"
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def results_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None):
    """A table of results (one row per method) for notebooks and terminals.

    Parameters
    ----------
    rows : list of dict
        One dict per row, e.g. ``{"method": "FBP", "PSNR (dB)": 24.1, "SSIM": 0.71,
        "time (s)": 0.01}``.  Missing entries stay empty.
    columns : list of str, optional
        Which columns to show, in order; default: every key with a single value (not
        the per-image scores of :func:`cu.evaluate`), in order of first appearance.
        A column named ``"PSNR ±95%"`` holds the half-width of a 95 % interval.

    Returns
    -------
    ResultsTable
        Renders as an HTML table in Jupyter and as aligned text with ``print``.
        Numbers are formatted by column name: 2 decimals for a column whose name
        contains "PSNR", 3 for "SSIM", 3 significant digits for "time" or "(s)",
        4 significant digits otherwise.

    Examples
    --------
    >>> print(results_table([{"method": "FBP", "PSNR (dB)": 24.123, "SSIM": 0.7123}]))
    method  PSNR (dB)   SSIM
    ------  ---------  -----
    FBP         24.12  0.712
    """
    if isinstance(rows, Mapping) or not all(isinstance(r, Mapping) for r in rows):
        raise TypeError("rows must be a list of dicts, one per row")
    if columns is None:
        # per-image scores (tensors, lists) are kept in a row but not shown
        columns = []
        for row in rows:
            columns += [key for key, value in row.items() if key not in columns
                        and (_is_number(value) or not isinstance(value, (torch.Tensor,
                                                                        list, tuple,
                                                                        np.ndarray)))]
    else:
        columns = list(columns)
    return ResultsTable(rows, [str(c) for c in columns])
