"""Figures and tables with one consistent look across the course.

* :func:`show_images` — a row (or grid) of images, grey colour map, titles, colour bars;
* :func:`show_sinogram` — a sinogram with labelled axes (detector, angle in degrees);
* :func:`plot_curves` — loss or error curves with a legend and a grid;
* :func:`results_table` — a small table of results that looks good both in Jupyter and
  in a terminal;
* :func:`interact` — sliders and menus that redraw a figure, like ``ipywidgets.interact``,
  but safe to run headless (``nbconvert --execute``, papermill, ``nbclient``).

The plotting functions accept tensors (also on a GPU or with gradients) and NumPy
arrays.  They draw with ``matplotlib.pyplot``, so in Jupyter the figure appears at the
end of the cell; end the line with ``;`` (or assign the result) so that it is not shown
a second time as the cell's value.
"""

from __future__ import annotations

import base64
import functools
import html
import inspect
import io
import math
import sys
import traceback
from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["show_images", "show_sinogram", "plot_curves", "results_table", "ResultsTable",
           "interact", "Interaction"]


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


# --- interactive figures that never hang a headless run ------------------------------------

def _kernel_shell():
    """The IPython shell if this runs in a Jupyter kernel (which can show widgets), else None."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:   # plain Python, terminal IPython
        return None
    return shell


def _inline_backend() -> bool:
    import matplotlib
    return "backend_inline" in matplotlib.get_backend()   # matplotlib_inline's, or ipykernel's


def _new_figure_numbers(before: set) -> list:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return [] if pyplot is None else [n for n in pyplot.get_fignums() if n not in before]


@functools.lru_cache(maxsize=None)
def _recorder_class():
    """A display publisher that keeps, in order, what a call displays and prints."""
    from IPython.core.displaypub import DisplayPublisher

    class _Recorder(DisplayPublisher):
        def __init__(self):
            super().__init__()                       # no shell: nothing is sent anywhere
            self.outputs: list[dict] = []            # {"data", "metadata", "display_id"}

        def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                    **kwargs):
            display_id = (transient or {}).get("display_id")
            output = {"data": dict(data), "metadata": dict(metadata or {}),
                      "display_id": display_id}
            if update:                               # the function updated its own display
                for k, old in enumerate(self.outputs):
                    if display_id is not None and old["display_id"] == display_id:
                        self.outputs[k] = output
                return
            self.outputs.append(output)

        def clear_output(self, wait=False):
            self.outputs.clear()

        def write(self, name: str, text: str) -> None:
            """Printed text: one text output per run of writes to the same stream."""
            last = self.outputs[-1] if self.outputs else None
            if last is not None and last.get("stream") == name:
                last["data"]["text/plain"] += text
            else:
                self.outputs.append({"data": {"text/plain": text}, "metadata": {},
                                     "display_id": None, "stream": name})

    return _Recorder


class _Stream(io.TextIOBase):
    """Stands in for ``sys.stdout`` / ``sys.stderr`` while a call is captured."""

    def __init__(self, recorder, name: str):
        self._recorder, self.name = recorder, name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self._recorder.write(self.name, str(text))
        return len(text)


def _combine(outputs: list[dict]) -> dict:
    """Several outputs as one HTML bundle (for a slot that must hold more than one)."""
    parts, texts = [], []
    for output in outputs:
        data = output["data"]
        texts.append(data.get("text/plain", ""))
        if "text/html" in data:
            parts.append(data["text/html"])
        elif "image/svg+xml" in data:
            parts.append(data["image/svg+xml"])
        elif "image/png" in data or "image/jpeg" in data:
            mime = "image/png" if "image/png" in data else "image/jpeg"
            payload = data[mime]
            if isinstance(payload, bytes):
                payload = base64.b64encode(payload).decode("ascii")
            parts.append(f'<img src="data:{mime};base64,{payload}"/>')
        else:
            parts.append(f"<pre>{html.escape(data.get('text/plain', ''))}</pre>")
    return {"data": {"text/html": "\n".join(parts), "text/plain": "\n".join(texts)},
            "metadata": {}}


class Interaction:
    """What :func:`interact` returns: the function, its controls, and its last result.

    Attributes
    ----------
    function : callable
        The function that draws.
    controls : dict
        ``name -> widget`` (an ``ipywidgets`` value widget, or ``ipywidgets.fixed``).
    widget : ipywidgets.VBox or None
        The box of controls shown in the notebook; ``None`` outside a Jupyter kernel.
    result : object
        What the last call of ``function`` returned.
    calls : int
        How many times ``function`` has been called.
    """

    def __init__(self, function: Callable, controls: Mapping[str, Any]):
        self.function = function
        self.controls = dict(controls)
        self.widget = None
        self.result = None
        self.calls = 0
        self._shell = None
        self._handles: list = []

    @property
    def kwargs(self) -> dict:
        """The current value of every control, as passed to the function."""
        return {name: control.get_interact_value() for name, control in self.controls.items()}

    def __repr__(self) -> str:
        name = getattr(self.function, "__name__", repr(self.function))
        return f"<cu.interact: {name}({', '.join(self.controls)})>"

    # -- calling the function ------------------------------------------------------------

    def _call(self):
        self.calls += 1
        self.result = self.function(**self.kwargs)
        return self.result

    def _captured_call(self) -> list[dict]:
        """Call the function and return what it displayed and printed, in order.

        Figures it leaves open are shown (as the inline backend would at the end of the
        cell) and closed, so that nothing leaks into later cells; a value other than
        ``None`` that it returns is shown last, as ``ipywidgets.interact`` does.
        """
        shell = self._shell
        recorder = _recorder_class()()
        pyplot = sys.modules.get("matplotlib.pyplot")
        before = set(pyplot.get_fignums()) if pyplot is not None else set()
        saved = shell.display_pub, sys.stdout, sys.stderr
        shell.display_pub, sys.stdout, sys.stderr = (recorder, _Stream(recorder, "stdout"),
                                                     _Stream(recorder, "stderr"))
        try:
            try:
                result = self._call()
                from IPython.display import display
                new = _new_figure_numbers(before)
                if new:
                    pyplot = sys.modules["matplotlib.pyplot"]
                    metadata = None
                    if _inline_backend():
                        from matplotlib_inline import backend_inline
                        metadata = getattr(backend_inline, "_fetch_figure_metadata", None)
                    for number in new:
                        figure = pyplot.figure(number)
                        display(figure, metadata=metadata(figure) if metadata else None)
                if result is not None:
                    display(result)
            finally:
                for number in _new_figure_numbers(before):
                    sys.modules["matplotlib.pyplot"].close(number)
        finally:
            shell.display_pub, sys.stdout, sys.stderr = saved
        return recorder.outputs

    # -- showing and updating --------------------------------------------------------------

    def _show(self, shell) -> None:
        """First call: show the controls and the outputs, each in a display with an id."""
        from IPython.display import display
        from ipywidgets import DOMWidget, VBox

        self._shell = shell
        try:
            from ipywidgets.widgets.interaction import show_inline_matplotlib_plots
            show_inline_matplotlib_plots()   # figures of the cell so far go before the controls
        except ImportError:   # pragma: no cover - an old ipywidgets
            pass
        outputs = self._captured_call()   # errors here fail the cell, as they should
        self.widget = VBox([c for c in self.controls.values() if isinstance(c, DOMWidget)],
                           _dom_classes=["widget-interact"])
        display(self.widget)
        self._handles = []
        for output in outputs or [None]:   # at least one display, for later results
            if output is None:
                self._handles.append(display(display_id=True))
            else:
                self._handles.append(display(output["data"], metadata=output["metadata"],
                                             raw=True, display_id=True))
        for control in self.controls.values():
            if hasattr(control, "observe"):   # ipywidgets.fixed has no value to watch
                control.observe(self.update, names="value")

    def update(self, change=None) -> None:
        """Call the function with the controls' values and replace the displays' contents.

        Registered as the controls' observer; ``change`` is ignored.  The number of
        displays is fixed by the first call: fewer outputs leave the rest empty, more
        are combined into the last display.  An error is shown, not raised (nobody
        would see it raised from a slider).
        """
        if self._shell is None:   # outside a kernel: nothing to update
            self._call()
            return
        try:
            outputs = self._captured_call()
        except Exception:   # noqa: BLE001 - shown to the student instead
            text = "".join(traceback.format_exception(*sys.exc_info()))
            outputs = [{"data": {"text/plain": text}, "metadata": {}}]
        n = len(self._handles)
        if len(outputs) > n:
            outputs = outputs[:n - 1] + [_combine(outputs[n - 1:])]
        for k, handle in enumerate(self._handles):
            if k < len(outputs):
                handle.update(outputs[k]["data"], metadata=outputs[k]["metadata"], raw=True)
            else:
                handle.update({}, raw=True)


def _controls_from(function: Callable, controls: Mapping[str, Any]) -> dict:
    """``name -> widget`` as ``ipywidgets.interact`` makes them (abbreviations included)."""
    from ipywidgets import interactive

    # ipywidgets' own rules, without an ``interactive`` (it would make an Output widget):
    # its find_abbreviations and widgets_from_abbreviations use only these of ``self``.
    class _Signature:
        @staticmethod
        def signature():
            return inspect.signature(function)

        widget_from_abbrev = interactive.widget_from_abbrev

    unused = dict(controls)   # find_abbreviations takes out what the function accepts
    abbreviations = interactive.find_abbreviations(_Signature, unused)
    label = getattr(function, "__name__", repr(function))
    if unused:   # ipywidgets would ignore these silently: a typo would go unnoticed
        raise TypeError(f"interact: {label}() has no argument {', '.join(map(repr, unused))}")
    try:
        inspect.getcallargs(function, **{name: value for name, value, _ in abbreviations})
    except TypeError as error:
        raise TypeError(f"interact: the controls do not match {label}(): {error}") from None
    widgets = interactive.widgets_from_abbreviations(_Signature, abbreviations)
    return {widget._kwarg: widget for widget in widgets}


def interact(function: Callable, **controls) -> Interaction:
    """Sliders and menus that call ``function`` again when they move, like ``ipywidgets.interact``.

    A drop-in for ``ipywidgets.interact(function, **controls)`` that never hangs a
    notebook run headless (``jupyter nbconvert --execute``, papermill, ``nbclient``,
    ``benchmarks/lessons.py``).  ``ipywidgets.interact`` draws into an ``Output``
    widget; nbclient mimics that widget by sending messages to the kernel on the
    channel on which it awaits the kernel's reply, and now and then it misses that
    reply: the run waits, with the kernel idle, until the cell's time limit runs out,
    or forever without one (jupyter/nbclient#312, jupyter/nbconvert#2029; lesson 01
    hung in 2 of 6 runs, a small notebook with a large figure in 12 of 30).

    Here there is no ``Output`` widget.  ``function`` is called once, at once, with the
    controls' initial values; what it shows (figures shown with ``plt.show()`` or left
    open, printed text, a returned value) becomes ordinary outputs of the cell, each in
    a display with an id, below the controls.  When a control moves, ``function`` is
    called again and those displays are updated in place (``update_display_data``,
    which JupyterLab applies without an executing cell).  So a headless run calls
    ``function`` exactly once, as plain output, and nothing waits for a browser.
    Outside a Jupyter kernel (a script, terminal IPython) ``function`` is just called
    once.

    Used by the "explore" cells of lessons 01 to 09.

    Parameters
    ----------
    function : callable
        Draws one state, e.g. with ``cu.show_images(...)`` and ``plt.show()``.
    **controls
        ``name=widget`` for arguments of ``function``: ``ipywidgets`` value widgets
        (``IntSlider``, ``Dropdown``, ...), ``ipywidgets.fixed(value)``, or the
        abbreviations of ``ipywidgets.interact`` (``(0, 10)``, ``["a", "b"]``, ``True``,
        ...).  Arguments with a default and no control get one from the default, as in
        ``ipywidgets.interact``.

    Returns
    -------
    Interaction
        With the ``controls``, the box of controls (``widget``) and the last ``result``.
        (``ipywidgets.interact`` returns ``function``; end the line with ``;`` as usual.)

    Notes
    -----
    The number of displays is set by the first call.  Errors of the first call are
    raised (the cell fails, as a test should see); later errors are shown in place of
    the figure.  Figures that ``function`` leaves open are shown and closed: this is
    made for matplotlib's inline backend (Jupyter's default), not ``%matplotlib widget``.

    Examples
    --------
    >>> cu.interact(show_fbp,  # doctest: +SKIP
    ...             n_angles=widgets.IntSlider(value=60, min=10, max=180));
    """
    interaction = Interaction(function, _controls_from(function, controls))
    shell = _kernel_shell()
    if shell is None:
        result = interaction._call()
        if result is not None:
            from IPython.display import display
            display(result)
        return interaction
    interaction._show(shell)
    return interaction
