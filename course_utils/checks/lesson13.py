"""Checks for the exercises of lesson 13: cone-beam CT, FDK and learning in 3D.

Each check runs the learner's function on small cases it makes up (non-square detectors,
unequal row and column spacings, ``detector_distance = 0``, explicit lists of angles,
volumes with ``D``, ``H`` and ``W`` all different), compares with a reference computed
here (:meth:`~course_utils.operators.geometry.ConeBeam.source_and_pixels`,
:func:`~course_utils.reconstruction.fdk.fdk_cosine_weights`,
:func:`~course_utils.reconstruction.fdk.fdk_distance_weights`) and, when the answer is
wrong, recognises the usual mistakes and says which one it is:

* **the source and detector pixels of one view**: rows and columns swapped (shape
  ``(n_cols, n_rows, 3)``), the coordinates not on the last axis, the two results
  swapped; the view index, an evenly spaced angle or degrees instead of
  ``geometry.angles[view]``, an angle converted although it is in radians already, a
  scanner that does not turn, turns the other way or is rotated by 90° (sin and cos
  exchanged); the source or the detector on the wrong side of the axis (the sign of
  ``d_d``), the detector ``d_s + d_d`` from the axis or through the axis; pixel corners
  instead of centres (the missing +0.5), the row and column spacings swapped or
  forgotten, rows going down (``z`` reversed), columns running the wrong way;
* **the FDK weights**: for the cosine weights, detector coordinates not divided by the
  magnification (``d_s`` with unscaled ``u, v``), ``d_s + d_d`` with scaled ones,
  coordinates multiplied by the magnification, the cosine squared or inverted, the
  row coordinate forgotten (a fan-beam weight), pixel corners, spacings swapped,
  transposed weights; for the distance weights, :math:`1/U`, :math:`U` or :math:`U^2`
  instead of :math:`1/U^2`, the sign of :math:`\\mathbf{x}\\cdot\\hat{\\mathbf{s}}`
  reversed (the source on the other side), the detector's direction instead of the
  central ray's, ``y`` pointing down, ``x`` pointing left, voxel corners, ``D`` used
  where ``H`` was meant (or a wrong output shape), ``d_s + d_d`` instead of ``d_s``,
  transposed weights, one map for all views, a map per slice; the two results swapped;
* **the cone-angle artefact per slice**: angles in radians instead of degrees, signed
  angles (no absolute value), heights without the +0.5 offset or not centred, the
  arctangent over ``d_s + d_d`` instead of ``d_s``; the mean squared (no root) or mean
  absolute error, the norm instead of the RMS, an error relative to the slice's norm,
  the mean (signed) difference, errors per coronal or sagittal slice (wrong axes); the
  two results swapped.

Every check leaves the global random state as it found it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..operators.geometry import ConeBeam
from ..reconstruction.fdk import fdk_cosine_weights, fdk_distance_weights
from ._feedback import CheckFailed, _to_numpy, compare_arrays, exercise_check, expect

__all__ = ["cone_beam_positions", "fdk_weights", "slice_artefacts"]


def _close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-5,
           atol: float = 1e-4) -> bool:
    return (got.shape == expected.shape
            and bool(np.allclose(got, expected, rtol=rtol, atol=atol)))


def _pair(result, what: str, names: tuple[str, str]) -> tuple:
    """The learner's two results, or CheckFailed saying what came back instead."""
    expect(result is not None, f"{what} returned None — did you forget a `return`?")
    expect(isinstance(result, (tuple, list)) and len(result) == 2,
           f"{what} should return two results, ({names[0]}, {names[1]}), got "
           f"{type(result).__name__}"
           + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    return result[0], result[1]


def _numbers(value, what: str) -> np.ndarray:
    """A tensor, array or list of numbers as a float64 array."""
    if isinstance(value, (list, tuple)):
        try:
            value = np.asarray([_numbers(v, what) if isinstance(v, (list, tuple))
                                else float(v) if np.ndim(v) == 0 else _to_numpy(v, what)
                                for v in value], dtype=np.float64)
        except (TypeError, ValueError):
            raise CheckFailed(f"{what} should hold numbers, in a tensor or an array of "
                              f"one shape") from None
    array = _to_numpy(value, what)
    if np.iscomplexobj(array):
        raise CheckFailed(f"{what} is complex, real values were expected")
    return array


def _diagnose(got: list, variants: dict, close) -> str | None:
    """The name of the mistake whose results match the learner's.

    ``got`` holds the learner's results case by case (None where right), ``variants``
    maps a name to the function ``case -> result`` of that mistake.  A variant that
    matches every wrong case wins; otherwise one that matches the first wrong case.
    """
    wrong = [i for i, g in enumerate(got) if g is not None]
    for name, variant in variants.items():
        if all(close(got[i], variant(i)) for i in wrong):
            return name
    for name, variant in variants.items():
        if close(got[wrong[0]], variant(wrong[0])):
            return name
    return None


# --- Exercise 1: the source and the detector pixels of one view --------------------------

#: (ConeBeam arguments, views tried): non-square detectors, unequal spacings, d_d = 0,
#: explicit (unevenly spaced) angles.
_POSITION_CASES = [
    (dict(n_angles=8, n_rows=3, n_cols=5, source_distance=20, detector_distance=12,
          row_spacing=1.5, col_spacing=0.75), (0, 1, 3)),
    (dict(angles=[0.3, 1.1, 2.5, 4.0], n_rows=4, n_cols=6, source_distance=15,
          detector_distance=0, row_spacing=0.8, col_spacing=1.25), (0, 2, 3)),
    (dict(n_angles=5, n_rows=6, n_cols=2, source_distance=40, detector_distance=25,
          row_spacing=2.0, col_spacing=1.0), (2, 4)),
    (dict(angles=[-0.7, 2.0, 5.5], n_rows=2, n_cols=3, source_distance=9,
          detector_distance=6, row_spacing=1.1, col_spacing=0.9), (0, 2)),
]


def _layout(geometry: ConeBeam, theta: float, *, source_side=1.0, detector_side=1.0,
            detector_from_source=False, detector_at_axis=False, swap_sin_cos=False,
            half=(0.5, 0.5), swap_spacings=False, no_spacing=False, z_down=False,
            columns_reversed=False):
    """(source, pixels) at angle ``theta``, right by default, with the mistakes asked for."""
    cos, sin = math.cos(theta), math.sin(theta)
    if swap_sin_cos:
        cos, sin = sin, cos
    ds, dd = geometry.source_distance, geometry.detector_distance
    if detector_from_source:
        dd = ds + dd
    if detector_at_axis:
        dd = 0.0
    source = source_side * ds * np.array([sin, -cos, 0.0])
    centre = detector_side * dd * np.array([-sin, cos, 0.0])
    dv, du = geometry.row_spacing, geometry.col_spacing
    if swap_spacings:
        dv, du = du, dv
    if no_spacing:
        dv, du = 1.0, 1.0
    v = (np.arange(geometry.n_rows) + half[0] - geometry.n_rows / 2) * dv
    u = (np.arange(geometry.n_cols) + half[1] - geometry.n_cols / 2) * du
    if z_down:
        v = -v
    if columns_reversed:
        u = -u
    pixels = (centre + v[:, None, None] * np.array([0.0, 0.0, 1.0])
              + u[None, :, None] * np.array([cos, sin, 0.0]))
    return source, pixels


#: How a mistaken angle comes from (geometry, view).
_ANGLE_MISTAKES = {
    "index as angle": lambda g, view: float(view),
    "evenly spaced": lambda g, view: 2 * math.pi * view / g.n_angles,
    "degrees from index": lambda g, view: 360.0 * view / g.n_angles,
    "degrees": lambda g, view: math.degrees(float(g.angles[view])),
    "radians again": lambda g, view: math.radians(float(g.angles[view])),
    "fixed angle": lambda g, view: 0.0,
    "reversed angle": lambda g, view: -float(g.angles[view]),
    "rotated": lambda g, view: float(g.angles[view]) + math.pi / 2,
    "rotated back": lambda g, view: float(g.angles[view]) - math.pi / 2,
}

#: The mistakes of the layout itself, as options of :func:`_layout`.
_LAYOUT_MISTAKES = {
    "swap sin cos": dict(swap_sin_cos=True),
    "source side": dict(source_side=-1.0),
    "detector side": dict(detector_side=-1.0),
    "detector from source": dict(detector_from_source=True),
    "detector at axis": dict(detector_at_axis=True),
    "corners": dict(half=(0.0, 0.0)),
    "row corners": dict(half=(0.0, 0.5)),
    "column corners": dict(half=(0.5, 0.0)),
    "spacings swapped": dict(swap_spacings=True),
    "no spacing": dict(no_spacing=True),
    "z down": dict(z_down=True),
    "columns reversed": dict(columns_reversed=True),
}

_ROTATED = ("your scanner is rotated by 90° (sin and cos exchanged?): at θ = 0 the source "
            "is at (0, −d_s, 0) and the detector columns run along +x")
_CORNERS = ("your positions are the pixels' corners, not their centres: the centre of "
            "column k is u_k = (k + 0.5 − n_cols/2)·Δu, of row r v_r = "
            "(r + 0.5 − n_rows/2)·Δv")

_POSITION_MISTAKES = {
    "index as angle": "you use the view index as the angle; the angle of view `view` is "
                      "geometry.angles[view], in radians",
    "evenly spaced": "you compute the angle from the view index as if the angles were "
                     "evenly spaced; take geometry.angles[view] (a scan can use any list "
                     "of angles)",
    "degrees from index": "your angle is in degrees, computed from the view index; sin and "
                          "cos take radians: use geometry.angles[view]",
    "degrees": "you convert geometry.angles[view] to degrees; it is in radians already, as "
               "sin and cos want it",
    "radians again": "you convert geometry.angles[view] to radians; it is in radians "
                     "already",
    "fixed angle": "your scanner does not turn: the source and the detector go round with "
                   "the angle geometry.angles[view]",
    "reversed angle": "your scanner turns the other way round: at angle θ the source is at "
                      "d_s(sin θ, −cos θ, 0)",
    "rotated": _ROTATED,
    "rotated back": _ROTATED,
    "swap sin cos": _ROTATED,
    "source side": "your source is on the detector's side of the rotation axis; the source "
                   "and the detector face each other across it",
    "detector side": "your detector is on the source's side of the rotation axis (the sign "
                     "of d_d); it faces the source from the other side",
    "detector from source": "your detector is d_s + d_d from the rotation axis; "
                            "detector_distance is measured from the axis, not from the "
                            "source",
    "detector at axis": "your detector passes through the rotation axis; its centre is "
                        "detector_distance from the axis, on the far side from the source",
    "corners": _CORNERS,
    "row corners": _CORNERS,
    "column corners": _CORNERS,
    "spacings swapped": "row_spacing and col_spacing are swapped: neighbouring columns are "
                        "col_spacing apart, neighbouring rows row_spacing",
    "no spacing": "your pixels are one voxel apart; multiply by the pixel spacings "
                  "(col_spacing along the columns, row_spacing along the rows)",
    "z down": "your rows go down; row r is at height v_r = (r + 0.5 − n_rows/2)·Δv along "
              "+z, so row 0 is the lowest",
    "columns reversed": "your columns run the wrong way: column k moves along "
                        "+(cos θ, sin θ, 0) as k grows",
}


def _position_variants(cases, part: int) -> dict:
    """name -> (case index -> the source (part 0) or the pixels (part 1) of that mistake)."""
    variants = {}
    for name, angle in _ANGLE_MISTAKES.items():
        variants[name] = (lambda i, angle=angle:
                          _layout(cases[i][0], angle(*cases[i]))[part])
    for name, options in _LAYOUT_MISTAKES.items():
        variants[name] = (lambda i, options=options:
                          _layout(cases[i][0], float(cases[i][0].angles[cases[i][1]]),
                                  **options)[part])
    return variants


def _describe(geometry: ConeBeam, view: int) -> str:
    return (f"my_source_and_pixels(geometry, {view}) ({geometry.n_rows} x "
            f"{geometry.n_cols} detector, θ = {float(geometry.angles[view]):.3g}, "
            f"d_d = {geometry.detector_distance:g})")


def _positions_of(result, what: str, geometry: ConeBeam) -> tuple:
    """The learner's (source, pixels) as arrays of the right shapes, or CheckFailed."""
    source, pixels = _pair(result, what, ("source", "pixels"))
    source = _numbers(source, f"{what}'s source")
    pixels = _numbers(pixels, f"{what}'s pixels")
    rows, cols = geometry.n_rows, geometry.n_cols
    expect(not (source.shape == (rows, cols, 3) and pixels.shape == (3,)),
           f"{what}: the two results are swapped: first the source, then the pixels")
    expect(source.shape == (3,),
           f"{what}'s source has shape {source.shape}, expected (3,): its (x, y, z)")
    if pixels.shape == (rows, cols, 3):
        return source, pixels
    expect(pixels.shape != (cols, rows, 3),
           f"{what}'s pixels have shape {pixels.shape}: rows and columns are swapped; "
           f"pixels[r, k] is row r (along z), column k, shape (n_rows, n_cols, 3) = "
           f"{(rows, cols, 3)}")
    expect(pixels.shape not in ((3, rows, cols), (3, cols, rows)),
           f"{what}'s pixels have shape {pixels.shape}: the coordinates (x, y, z) belong "
           f"on the last axis, shape (n_rows, n_cols, 3) = {(rows, cols, 3)}")
    expect(pixels.shape != (rows * cols, 3),
           f"{what}'s pixels have shape {pixels.shape}: keep one point per detector "
           f"pixel arranged as (n_rows, n_cols, 3) = {(rows, cols, 3)}, not flattened")
    raise CheckFailed(f"{what}'s pixels have shape {pixels.shape}, expected "
                      f"(n_rows, n_cols, 3) = {(rows, cols, 3)}")


@exercise_check("the source and detector pixels of one view")
def cone_beam_positions(my_source_and_pixels):
    """Check ``my_source_and_pixels(geometry, view)`` -> (source (3,), pixels (R, C, 3)).

    Against ``geometry.source_and_pixels(view)`` for four ``cu.ConeBeam`` scanners
    (non-square detectors, unequal spacings, ``detector_distance = 0``, explicit
    angles) and ten views; tensors or arrays, float32 or float64, are accepted.
    """
    cases = [(ConeBeam(**arguments), view)
             for arguments, views in _POSITION_CASES for view in views]
    results = []
    for geometry, view in cases:
        what = _describe(geometry, view)
        with torch.random.fork_rng(devices=[]):
            result = my_source_and_pixels(geometry, view)
        results.append(_positions_of(result, what, geometry))
    expected = [tuple(t.numpy() for t in geometry.source_and_pixels(view))
                for geometry, view in cases]
    for part, name in ((0, "source"), (1, "pixels")):
        got = [None if _close(r[part], e[part]) else r[part]
               for r, e in zip(results, expected)]
        if all(g is None for g in got):
            continue
        first = next(i for i, g in enumerate(got) if g is not None)
        what = _describe(*cases[first])
        mistake = _diagnose(got, _position_variants(cases, part), _close)
        if mistake is not None:
            raise CheckFailed(f"{what}: {_POSITION_MISTAKES[mistake]}")
        compare_arrays(got[first], expected[first][part], what=f"{what}'s {name}",
                       rtol=1e-5, atol=1e-4)
    return f"{len(_POSITION_CASES)} geometries, {len(cases)} views tried"


# --- Exercise 2: the FDK weights ----------------------------------------------------------

#: (ConeBeam arguments, volume shape (D, H, W)), with D, H, W all different.
_WEIGHT_CASES = [
    (dict(n_angles=6, n_rows=4, n_cols=6, source_distance=20, detector_distance=10,
          row_spacing=1.5, col_spacing=1.0), (3, 5, 7)),
    (dict(angles=[0.2, 1.3, 2.9, 4.4, 5.1], n_rows=5, n_cols=3, source_distance=12,
          detector_distance=0, row_spacing=0.7, col_spacing=1.3), (6, 4, 5)),
    (dict(n_angles=4, n_rows=3, n_cols=8, source_distance=9, detector_distance=14,
          row_spacing=2.0, col_spacing=2.5), (2, 6, 3)),
]


def _cosine(geometry: ConeBeam, *, scale="divide", distance="d_s", power=1.0,
            fan=False, half=0.5, swap_spacings=False) -> np.ndarray:
    """FDK's cosine weights (n_rows, n_cols), right by default, or with a mistake."""
    dv, du = geometry.row_spacing, geometry.col_spacing
    if swap_spacings:
        dv, du = du, dv
    v = (np.arange(geometry.n_rows) + half - geometry.n_rows / 2) * dv
    u = (np.arange(geometry.n_cols) + half - geometry.n_cols / 2) * du
    m = geometry.magnification
    factor = {"divide": 1 / m, "times": m, "none": 1.0}[scale]
    u, v = u * factor, v * factor
    d = geometry.source_distance
    if distance == "d_s + d_d":
        d = d + geometry.detector_distance
    squares = d**2 + u[None, :] ** 2 + (0.0 if fan else v[:, None] ** 2)
    weights = (d / np.sqrt(squares)) ** power
    return np.broadcast_to(weights, (geometry.n_rows, geometry.n_cols))


def _distance(geometry: ConeBeam, volume_shape, *, power=-2.0, sign=1.0, y_down=False,
              x_left=False, half=0.5, y_size=None, x_size=None, direction="central",
              numerator="d_s", denominator="d_s") -> np.ndarray:
    """FDK's distance weights (n_angles, H, W), right by default, or with a mistake."""
    depth, height, width = volume_shape
    y_size = height if y_size is None else y_size
    x_size = width if x_size is None else x_size
    x = np.arange(width) + half - x_size / 2
    y = y_size / 2 - np.arange(height) - half
    if y_down:
        y = -y
    if x_left:
        x = -x
    ds, dd = geometry.source_distance, geometry.detector_distance
    top = ds + dd if numerator == "d_s + d_d" else ds
    bottom = ds + dd if denominator == "d_s + d_d" else ds
    maps = []
    for theta in geometry.angles.tolist():
        cos, sin = math.cos(theta), math.sin(theta)
        if direction == "central":
            s = -x[None, :] * sin + y[:, None] * cos
        else:
            s = x[None, :] * cos + y[:, None] * sin
        maps.append(((top + sign * s) / bottom) ** power)
    return np.stack(maps)


_COSINE_MISTAKES = {
    "unscaled": dict(scale="none"),
    "mixed": dict(distance="d_s + d_d"),
    "times M": dict(scale="times"),
    "squared": dict(power=2.0),
    "inverse": dict(power=-1.0),
    "fan": dict(fan=True),
    "corners": dict(half=0.0),
    "spacings swapped": dict(swap_spacings=True),
}

_COSINE_MESSAGES = {
    "unscaled": "your u and v are the detector coordinates themselves; with d_s they must "
                "be scaled to the rotation axis: divided by the magnification "
                "M = (d_s + d_d)/d_s",
    "mixed": "you use d_s + d_d with the coordinates scaled to the rotation axis; take "
             "d_s with u/M and v/M (or d_s + d_d with the unscaled u and v)",
    "times M": "you multiply the detector coordinates by the magnification; divide them "
               "by it, M = (d_s + d_d)/d_s, to move them to the rotation axis",
    "squared": "your weights are the cosine squared: divide d_s by the square root of "
               "d_s² + u² + v²",
    "inverse": "your weights are 1/cos, above 1 away from the centre; the cosine weight "
               "d_s/√(d_s² + u² + v²) is at most 1",
    "fan": "your weights ignore the row coordinate v (a fan-beam weight); in a cone the "
           "rays tilt up and down too: d_s/√(d_s² + u² + v²)",
    "corners": "your u and v are the pixels' corners; use their centres, "
               "(k + 0.5 − n/2) times the spacing, scaled to the axis",
    "spacings swapped": "row_spacing and col_spacing are swapped: u runs along the "
                        "columns (col_spacing), v along the rows (row_spacing)",
}

_DISTANCE_MISTAKES = {
    "1/U": dict(power=-1.0),
    "U": dict(power=1.0),
    "U²": dict(power=2.0),
    "sign": dict(sign=-1.0),
    "along detector": dict(direction="detector"),
    "y down": dict(y_down=True),
    "x left": dict(x_left=True),
    "corners": dict(half=0.0),
    "D for H": dict(y_size="D"),
    "D for W": dict(x_size="D"),
    "d_s + d_d": dict(numerator="d_s + d_d", denominator="d_s + d_d"),
    "over d_s + d_d": dict(denominator="d_s + d_d"),
}

_D_FOR_H = ("you use D where H is meant: volume_shape is (D, H, W), and the weights "
            "belong to the voxel columns (h, w) of the H x W slices")
_DS_DD = ("U is measured with d_s, the source-to-axis distance, not d_s + d_d: "
          "U = (d_s + x·ŝ)/d_s")

_DISTANCE_MESSAGES = {
    "1/U": "your weights are 1/U; FDK's backprojection weight is 1/U²",
    "U": "your weights are U; FDK's backprojection weight is 1/U², larger for voxels "
         "nearer the source",
    "U²": "your weights are U²; FDK's backprojection weight is 1/U², larger for voxels "
          "nearer the source",
    "sign": "your weights are largest on the detector's side (the sign of x·ŝ): "
            "ŝ = (−sin θ, cos θ, 0) points from the source to the detector, and voxels "
            "near the source have U < 1",
    "along detector": "your x·ŝ projects the voxel onto the detector's direction "
                      "(cos θ, sin θ, 0); ŝ = (−sin θ, cos θ, 0) is the central ray's",
    "y down": "your y axis points down; row h = 0 is the top of a slice: "
              "y = H/2 − h − 0.5",
    "x left": "your x axis points left; column w = 0 is the left of a slice: "
              "x = w + 0.5 − W/2",
    "corners": "your x and y are voxel corners; use the voxel centres, "
               "x = w + 0.5 − W/2 and y = H/2 − h − 0.5",
    "D for H": _D_FOR_H,
    "D for W": _D_FOR_H,
    "d_s + d_d": _DS_DD,
    "over d_s + d_d": _DS_DD,
}


def _weights_of(result, what: str, geometry: ConeBeam, volume_shape) -> tuple:
    """The learner's (cosine, distance) weights of the right shapes, or CheckFailed."""
    cosine, distance = _pair(result, what, ("cosine", "distance"))
    cosine = _numbers(cosine, f"{what}'s cosine weights")
    distance = _numbers(distance, f"{what}'s distance weights")
    depth, height, width = volume_shape
    detector = (geometry.n_rows, geometry.n_cols)
    maps = (geometry.n_angles, height, width)
    expect(not (cosine.shape == maps and distance.shape == detector),
           f"{what}: the two results are swapped: first the cosine weights, then the "
           f"distance weights")
    expect(cosine.shape == detector or cosine.shape != detector[::-1],
           f"{what}'s cosine weights have shape {cosine.shape}: transposed? one weight "
           f"per detector pixel (row, column), shape (n_rows, n_cols) = {detector}")
    expect(cosine.shape not in ((geometry.n_cols,), (1, geometry.n_cols)),
           f"{what}'s cosine weights have shape {cosine.shape}, one per column: in a cone "
           f"the rays tilt up and down too, so the weight depends on the row (v) as well: "
           f"shape (n_rows, n_cols) = {detector}")
    expect(cosine.shape == detector,
           f"{what}'s cosine weights have shape {cosine.shape}, expected "
           f"(n_rows, n_cols) = {detector}")
    if distance.shape == maps:
        return cosine, distance
    expect(distance.shape != (geometry.n_angles, width, height),
           f"{what}'s distance weights have shape {distance.shape}: transposed? rows h "
           f"(along y) come before columns w (along x): (n_angles, H, W) = {maps}")
    expect(distance.shape != (height, width),
           f"{what}'s distance weights have shape {distance.shape}: they change with the "
           f"angle, one (H, W) map per view: (n_angles, H, W) = {maps}")
    expect(distance.shape != (geometry.n_angles, depth, height, width),
           f"{what}'s distance weights have shape {distance.shape}: U does not depend on "
           f"the height z, one (H, W) map per view is enough: (n_angles, H, W) = {maps}")
    if distance.shape in ((geometry.n_angles, depth, width),
                          (geometry.n_angles, height, depth),
                          (geometry.n_angles, depth, depth)):
        raise CheckFailed(f"{what}'s distance weights have shape {distance.shape}: "
                          f"{_D_FOR_H}, shape (n_angles, H, W) = {maps}")
    raise CheckFailed(f"{what}'s distance weights have shape {distance.shape}, expected "
                      f"(n_angles, H, W) = {maps} (volume_shape is (D, H, W))")


@exercise_check("the FDK weights")
def fdk_weights(my_fdk_weights):
    """Check ``my_fdk_weights(geometry, volume_shape)`` -> (cosine, distance).

    Against ``cu.fdk_cosine_weights(geometry)`` (shape (n_rows, n_cols)) and
    ``cu.fdk_distance_weights(geometry, volume_shape)`` (shape (n_angles, H, W)) for
    three scanners and volume shapes ``(D, H, W)`` with D, H and W all different.
    """
    cases = [(ConeBeam(**arguments), shape) for arguments, shape in _WEIGHT_CASES]
    results = []
    for geometry, shape in cases:
        what = f"my_fdk_weights(geometry, {shape})"
        with torch.random.fork_rng(devices=[]):
            result = my_fdk_weights(geometry, tuple(shape))
        results.append(_weights_of(result, what, geometry, shape))
    expected = [(fdk_cosine_weights(g).numpy(), fdk_distance_weights(g, s).numpy())
                for g, s in cases]

    def resolve(options, shape):
        """Options with "D" standing for the volume's depth."""
        return {k: (shape[0] if v == "D" else v) for k, v in options.items()}

    variants = [
        {name: (lambda i, o=options: _cosine(cases[i][0], **o))
         for name, options in _COSINE_MISTAKES.items()},
        {name: (lambda i, o=options: _distance(*cases[i], **resolve(o, cases[i][1])))
         for name, options in _DISTANCE_MISTAKES.items()},
    ]
    for part, (name, messages) in enumerate((("cosine weights", _COSINE_MESSAGES),
                                             ("distance weights", _DISTANCE_MESSAGES))):
        got = [None if _close(r[part], e[part], 1e-5, 1e-6) else r[part]
               for r, e in zip(results, expected)]
        if all(g is None for g in got):
            continue
        first = next(i for i, g in enumerate(got) if g is not None)
        shape = cases[first][1]
        what = f"my_fdk_weights(geometry, {shape})"
        mistake = _diagnose(got, variants[part],
                            lambda a, b: _close(a, b, 1e-5, 1e-6))
        if mistake is not None:
            raise CheckFailed(f"{what}'s {name}: {messages[mistake]}")
        compare_arrays(got[first], expected[first][part], what=f"{what}'s {name}",
                       rtol=1e-5, atol=1e-6)
    n_views = sum(g.n_angles for g, _ in cases)
    return f"{len(cases)} geometries, {n_views} views, {len(cases)} volume shapes tried"


# --- Exercise 3: the cone-angle artefact per slice ---------------------------------------

#: (ConeBeam arguments, volume shape (D, H, W)), with D, H, W all different.
_SLICE_CASES = [
    (dict(n_angles=12, n_rows=8, n_cols=10, source_distance=20, detector_distance=10),
     (6, 5, 7)),
    (dict(n_angles=9, n_rows=12, n_cols=6, source_distance=7, detector_distance=3,
          row_spacing=1.5), (9, 4, 3)),
]


def _slice_angles(geometry: ConeBeam, depth: int, *, degrees=True, absolute=True,
                  sign=1.0, half=0.5, centred=True, distance="d_s") -> np.ndarray:
    """Angle of each axial slice's centre seen from the source, right by default."""
    z = np.arange(depth) + half - (depth / 2 if centred else 0.0)
    z = sign * z
    if absolute:
        z = np.abs(z)
    d = geometry.source_distance
    if distance == "d_s + d_d":
        d = d + geometry.detector_distance
    angle = np.arctan(z / d)
    return np.degrees(angle) if degrees else angle


def _slice_errors(x_rec: np.ndarray, x_true: np.ndarray, *, stat="rms",
                  axes=(1, 2)) -> np.ndarray:
    """The error of every slice, RMS over the axial slices by default."""
    difference = x_rec - x_true
    if stat == "rms":
        return np.sqrt((difference**2).mean(axis=axes))
    if stat == "mse":
        return (difference**2).mean(axis=axes)
    if stat == "mae":
        return np.abs(difference).mean(axis=axes)
    if stat == "norm":
        return np.sqrt((difference**2).sum(axis=axes))
    if stat == "relative":
        return np.sqrt((difference**2).sum(axis=axes) / (x_true**2).sum(axis=axes))
    if stat == "bias":
        return difference.mean(axis=axes)
    raise ValueError(stat)


_ANGLE_VARIANTS = {
    "radians": dict(degrees=False),
    "signed": dict(absolute=False),
    "signed the other way": dict(absolute=False, sign=-1.0),
    "no offset": dict(half=0.0),
    "no offset, signed": dict(half=0.0, absolute=False),
    "not centred": dict(centred=False),
    "index": dict(centred=False, half=0.0),
    "d_s + d_d": dict(distance="d_s + d_d"),
    "radians and d_s + d_d": dict(degrees=False, distance="d_s + d_d"),
}

_NO_OFFSET = ("your slice heights miss the half voxel: the centre of slice d is "
              "z_d = d + 0.5 − D/2 above the central plane")
_SIGNED = ("your angles are negative below the central plane; the angle above or below "
           "it is that of |z_d|: the artefacts are symmetric")
_NOT_CENTRED = ("your height is measured from the bottom slice; measure it from the "
                "central plane, through the source: z_d = d + 0.5 − D/2")
_DSDD = ("the source is d_s = geometry.source_distance from the rotation axis (d_s + d_d "
         "is its distance to the detector): the angle is atan(|z_d| / d_s)")

_ANGLE_MESSAGES = {
    "radians": "your angles are in radians; the exercise asks for degrees",
    "signed": _SIGNED,
    "signed the other way": _SIGNED,
    "no offset": _NO_OFFSET,
    "no offset, signed": _NO_OFFSET,
    "not centred": _NOT_CENTRED,
    "index": _NOT_CENTRED,
    "d_s + d_d": _DSDD,
    "radians and d_s + d_d": _DSDD,
}

_ERROR_VARIANTS = {
    "mse": dict(stat="mse"),
    "mae": dict(stat="mae"),
    "norm": dict(stat="norm"),
    "relative": dict(stat="relative"),
    "bias": dict(stat="bias"),
}

_ERROR_MESSAGES = {
    "mse": "your errors are mean squared errors; take their square root, the RMS error",
    "mae": "your errors are mean absolute errors; the exercise asks for the "
           "root-mean-square error",
    "norm": "your errors are the norm of each slice's difference (the root of its sum of "
            "squares); the RMS error takes the root of the mean",
    "relative": "your errors are relative to the norm of each true slice; the exercise "
                "asks for the plain RMS error, in the units of the volume",
    "bias": "your errors are the mean difference, where positive and negative errors "
            "cancel; square first: the root-mean-square error",
}


def _slice_volumes(gen: torch.Generator, shape) -> tuple[torch.Tensor, torch.Tensor]:
    """A float32 volume and a 'reconstruction' whose error grows away from the centre."""
    depth = shape[0]
    z = torch.arange(depth, dtype=torch.float64) + 0.5 - depth / 2
    scale = (1.0 + torch.arange(depth, dtype=torch.float64) / depth).reshape(-1, 1, 1)
    x_true = scale * torch.rand(shape, generator=gen, dtype=torch.float64)
    amplitude = (0.02 + 0.05 * z.abs()).reshape(-1, 1, 1)
    noise = torch.randn(shape, generator=gen, dtype=torch.float64) + 0.3
    x_rec = x_true + amplitude * noise
    return x_rec.float(), x_true.float()


def _slice_shape_message(got: np.ndarray, shape, what: str, name: str) -> str | None:
    depth, height, width = shape
    if got.shape == (depth,):
        return None
    if got.shape in ((height,), (width,)):
        return (f"{what}'s {name} have shape {got.shape}: one per coronal or sagittal "
                f"slice (wrong axes?); axial slice d is x[d], averaged over its H x W "
                f"pixels: shape (D,) = ({depth},)")
    return (f"{what}'s {name} have shape {got.shape}, expected (D,) = ({depth},): one "
            f"value per axial slice x[d]")


@exercise_check("the cone-angle artefact per slice")
def slice_artefacts(my_slice_artefacts):
    """Check ``my_slice_artefacts(x_rec, x_true, geometry)`` -> (angle, error).

    On two float32 volumes ``(D, H, W)`` (D, H and W all different) whose error grows
    away from the central plane: ``error[d]`` the RMS error of axial slice ``d``,
    ``angle[d]`` = degrees(atan(|d + 0.5 − D/2| / d_s)).  Tensors, arrays and lists
    are accepted.
    """
    gen = torch.Generator().manual_seed(13)
    n_slices = 0
    for arguments, shape in _SLICE_CASES:
        geometry = ConeBeam(**arguments)
        x_rec, x_true = _slice_volumes(gen, shape)
        n_slices += shape[0]
        what = (f"my_slice_artefacts(x_rec, x_true, geometry) on {shape} volumes "
                f"(d_s = {geometry.source_distance:g})")
        with torch.random.fork_rng(devices=[]):
            result = my_slice_artefacts(x_rec.clone(), x_true.clone(), geometry)
        angle, error = _pair(result, what, ("angle", "error"))
        angle = _numbers(angle, f"{what}'s angles")
        error = _numbers(error, f"{what}'s errors")
        rec, true = x_rec.double().numpy(), x_true.double().numpy()
        expected_angle = _slice_angles(geometry, shape[0])
        expected_error = _slice_errors(rec, true)

        def close_angle(a, b):
            return _close(a, b, 1e-5, 1e-5)

        def close_error(a, b):
            return _close(a, b, 1e-4, 1e-7)

        if close_angle(error, expected_angle) and close_error(angle, expected_error):
            raise CheckFailed(f"{what}: the two results are swapped: first the angles, "
                              f"then the errors")
        for got, name in ((angle, "angles"), (error, "errors")):
            message = _slice_shape_message(got, shape, what, name)
            if message:
                raise CheckFailed(message)
        if not close_angle(angle, expected_angle):
            for mistake, options in _ANGLE_VARIANTS.items():
                if close_angle(angle, _slice_angles(geometry, shape[0], **options)):
                    raise CheckFailed(f"{what}: {_ANGLE_MESSAGES[mistake]}")
            compare_arrays(angle, expected_angle, what=f"{what}'s angles", rtol=1e-5,
                           atol=1e-5)
        if not close_error(error, expected_error):
            for mistake, options in _ERROR_VARIANTS.items():
                if close_error(error, _slice_errors(rec, true, **options)):
                    raise CheckFailed(f"{what}: {_ERROR_MESSAGES[mistake]}")
            compare_arrays(error, expected_error, what=f"{what}'s errors", rtol=1e-4,
                           atol=1e-7)
    return f"{len(_SLICE_CASES)} volumes, {n_slices} axial slices tried"
