"""The checks of lesson 13 accept correct answers and diagnose typical mistakes."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.checks import lesson13
from lesson_references import broken, needs_solutions_for, reference, run, stub

# The reference answers, from solutions/13_cone_beam.py (lesson_references.py); the
# other correct answers below are written here, each in its own way.
ref = reference("13")
needs_solutions = needs_solutions_for("13")


# --- Exercise 1: the source and the detector pixels of one view ---------------------------

def positions_package(geometry, view):
    return geometry.source_and_pixels(view)


def positions_loop(geometry, view):
    """Plain Python: one pixel after the other, then a float64 tensor."""
    theta = float(geometry.angles[view])
    c, s = math.cos(theta), math.sin(theta)
    ds, dd = geometry.source_distance, geometry.detector_distance
    source = [ds * s, -ds * c, 0.0]
    rows = []
    for r in range(geometry.n_rows):
        v = (r + 0.5 - geometry.n_rows / 2) * geometry.row_spacing
        row = []
        for k in range(geometry.n_cols):
            u = (k + 0.5 - geometry.n_cols / 2) * geometry.col_spacing
            row.append([-dd * s + u * c, dd * c + u * s, v])
        rows.append(row)
    return torch.tensor(source, dtype=torch.float64), torch.tensor(rows, dtype=torch.float64)


def positions_torch32(geometry, view):
    """Vectorised, in float32."""
    theta = geometry.angles[view].float()
    c, s = torch.cos(theta), torch.sin(theta)
    ds, dd = geometry.source_distance, geometry.detector_distance
    source = torch.stack([ds * s, -ds * c, torch.zeros(())])
    v = (torch.arange(geometry.n_rows) - (geometry.n_rows - 1) / 2) * geometry.row_spacing
    u = (torch.arange(geometry.n_cols) - (geometry.n_cols - 1) / 2) * geometry.col_spacing
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    pixels = torch.stack([-dd * s + uu * c, dd * c + uu * s, vv], dim=-1)
    return source, pixels.float()


def positions_numpy(geometry, view):
    """NumPy, with the source and the detector centre as vectors."""
    theta = float(geometry.angles[view])
    central = np.array([-np.sin(theta), np.cos(theta), 0.0])   # source -> detector
    across = np.array([np.cos(theta), np.sin(theta), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    v, u = (t.numpy() for t in geometry.detector_positions())
    pixels = (geometry.detector_distance * central + v[:, None, None] * up
              + u[None, :, None] * across)
    return -geometry.source_distance * central, pixels


def positions_lists(geometry, view):
    """Nested Python lists of numbers."""
    source, pixels = geometry.source_and_pixels(view)
    return source.tolist(), pixels.tolist()


def make_positions(angle="right", layout="right", source_sign=1.0, detector_sign=1.0,
                   detector="from the axis", half=(0.5, 0.5), spacings="right",
                   rows_up=True, columns_forward=True, shape="right"):
    def positions(geometry, view):
        theta = {"right": float(geometry.angles[view]), "index": float(view),
                 "even": 2 * math.pi * view / geometry.n_angles,
                 "degrees": 360.0 * view / geometry.n_angles,
                 "to degrees": math.degrees(float(geometry.angles[view])),
                 "fixed": 0.0, "reversed": -float(geometry.angles[view])}[angle]
        c, s = np.cos(theta), np.sin(theta)
        if layout == "polar":          # the usual polar convention: rotated by 90°
            towards_source, across = np.array([c, s, 0.0]), np.array([-s, c, 0.0])
        elif layout == "swap":         # sin and cos exchanged everywhere
            towards_source, across = np.array([c, -s, 0.0]), np.array([s, c, 0.0])
        else:
            towards_source, across = np.array([s, -c, 0.0]), np.array([c, s, 0.0])
        ds, dd = geometry.source_distance, geometry.detector_distance
        dd = {"from the axis": dd, "from the source": ds + dd, "at the axis": 0.0}[detector]
        dv, du = geometry.row_spacing, geometry.col_spacing
        if spacings == "swapped":
            dv, du = du, dv
        elif spacings == "none":
            dv, du = 1.0, 1.0
        v = (np.arange(geometry.n_rows) + half[0] - geometry.n_rows / 2) * dv
        u = (np.arange(geometry.n_cols) + half[1] - geometry.n_cols / 2) * du
        v = v if rows_up else -v
        u = u if columns_forward else -u
        source = source_sign * ds * towards_source
        pixels = (-detector_sign * dd * towards_source + v[:, None, None] * [0, 0, 1.0]
                  + u[None, :, None] * across)
        if shape == "cols, rows":
            pixels = pixels.transpose(1, 0, 2)
        elif shape == "xyz first":
            pixels = pixels.transpose(2, 0, 1)
        elif shape == "flat":
            pixels = pixels.reshape(-1, 3)
        elif shape == "swapped":
            return torch.from_numpy(pixels), torch.from_numpy(source)
        return torch.from_numpy(source), torch.from_numpy(pixels)
    return positions


@pytest.mark.parametrize("good", [positions_package, positions_loop, positions_torch32,
                                  positions_numpy, positions_lists, make_positions()])
def test_positions_accept_correct_answers(good):
    result, line = run(cu.checks.cone_beam_positions, good)
    assert result.status == "passed", line
    assert "4 geometries, 10 views tried" in line


@needs_solutions
def test_positions_accept_the_reference_answer():
    result, line = run(cu.checks.cone_beam_positions, ref.source_and_pixels)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_positions(shape="cols, rows"), "rows and columns are swapped"),
    (make_positions(shape="xyz first"), "on the last axis"),
    (make_positions(shape="flat"), "not flattened"),
    (make_positions(shape="swapped"), "the two results are swapped"),
    (make_positions(detector_sign=-1.0), "on the source's side"),
    (make_positions(source_sign=-1.0), "on the detector's side"),
    (make_positions(layout="polar"), "rotated by 90°"),
    (make_positions(layout="swap"), "rotated by 90°"),
    (make_positions(angle="index"), "view index as the angle"),
    (make_positions(angle="even"), "evenly spaced"),
    (make_positions(angle="degrees"), "in degrees"),
    (make_positions(angle="to degrees"), "convert geometry.angles[view] to degrees"),
    (make_positions(angle="fixed"), "does not turn"),
    (make_positions(angle="reversed"), "turns the other way"),
    (make_positions(half=(0.0, 0.0)), "corners"),
    (make_positions(half=(0.0, 0.5)), "corners"),
    (make_positions(half=(0.5, 0.0)), "corners"),
    (make_positions(spacings="swapped"), "row_spacing and col_spacing are swapped"),
    (make_positions(spacings="none"), "one voxel apart"),
    (make_positions(detector="from the source"), "d_s + d_d from the rotation axis"),
    (make_positions(detector="at the axis"), "passes through the rotation axis"),
    (make_positions(rows_up=False), "rows go down"),
    (make_positions(columns_forward=False), "columns run the wrong way"),
    (lambda geometry, view: None, "None"),
    (lambda geometry, view: geometry.source_and_pixels(view)[1], "two results"),
])
def test_positions_diagnose_mistakes(wrong, diagnosis):
    result, line = run(cu.checks.cone_beam_positions, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_positions_stub_is_not_attempted():
    result, line = run(cu.checks.cone_beam_positions, stub)
    assert result.status == "not attempted", line


def test_positions_report_an_error_of_the_learners_code():
    result, line = run(cu.checks.cone_beam_positions, broken)
    assert result.status == "error", line
    assert "IndexError" in line, line


# --- Exercise 2: the FDK weights ------------------------------------------------------------

def weights_package(geometry, volume_shape):
    return (cu.fdk_cosine_weights(geometry),
            cu.fdk_distance_weights(geometry, volume_shape))


def weights_loops(geometry, volume_shape):
    """Plain Python loops over pixels, views and voxels."""
    _, height, width = volume_shape
    ds = geometry.source_distance
    m = (ds + geometry.detector_distance) / ds
    cosine = torch.zeros(geometry.n_rows, geometry.n_cols, dtype=torch.float64)
    for r in range(geometry.n_rows):
        for k in range(geometry.n_cols):
            v = (r + 0.5 - geometry.n_rows / 2) * geometry.row_spacing / m
            u = (k + 0.5 - geometry.n_cols / 2) * geometry.col_spacing / m
            cosine[r, k] = ds / math.sqrt(ds**2 + u**2 + v**2)
    distance = torch.zeros(geometry.n_angles, height, width, dtype=torch.float64)
    for a, theta in enumerate(geometry.angles.tolist()):
        for h in range(height):
            for w in range(width):
                x, y = w + 0.5 - width / 2, height / 2 - h - 0.5
                big_u = (ds - x * math.sin(theta) + y * math.cos(theta)) / ds
                distance[a, h, w] = 1 / big_u**2
    return cosine, distance


def weights_numpy32(geometry, volume_shape):
    """NumPy in float32, the cosine with d_s + d_d and the unscaled coordinates."""
    _, height, width = volume_shape
    ds, dd = geometry.source_distance, geometry.detector_distance
    v, u = (t.numpy() for t in geometry.detector_positions())
    cosine = (ds + dd) / np.sqrt((ds + dd) ** 2 + v[:, None] ** 2 + u[None, :] ** 2)
    x = np.arange(width) + 0.5 - width / 2
    y = -(np.arange(height) + 0.5 - height / 2)
    theta = geometry.angles.numpy()[:, None, None]
    along = -np.sin(theta) * x[None, None, :] + np.cos(theta) * y[None, :, None]
    distance = (ds / (ds + along)) ** 2
    return cosine.astype(np.float32), distance.astype(np.float32)


def weights_torch_detector_coordinates(geometry, volume_shape):
    """Vectorised torch, with cu.fdk_detector_coordinates."""
    _, height, width = volume_shape
    v, u = cu.fdk_detector_coordinates(geometry)
    ds = geometry.source_distance
    cosine = ds / (ds**2 + u[None, :] ** 2 + v[:, None] ** 2).sqrt()
    yy, xx = torch.meshgrid(height / 2 - 0.5 - torch.arange(height, dtype=torch.float64),
                            torch.arange(width, dtype=torch.float64) + 0.5 - width / 2,
                            indexing="ij")
    s_hat = torch.stack([-torch.sin(geometry.angles), torch.cos(geometry.angles)], dim=-1)
    along = s_hat[:, 0, None, None] * xx + s_hat[:, 1, None, None] * yy
    return cosine, ((ds + along) / ds) ** -2


def make_weights(scale="divide", distance_in_cosine="d_s", cosine_power=1.0, fan=False,
                 pixel_half=0.5, spacings="right", transpose_cosine=False,
                 power=-2.0, sign=1.0, direction="central", y_up=True, x_right=True,
                 voxel_half=0.5, y_from="H", over="d_s", layout="right", swap=False):
    def weights(geometry, volume_shape):
        depth, height, width = volume_shape
        ds, dd = geometry.source_distance, geometry.detector_distance
        m = geometry.magnification
        dv, du = geometry.row_spacing, geometry.col_spacing
        if spacings == "swapped":
            dv, du = du, dv
        factor = {"divide": 1 / m, "times": m, "none": 1.0}[scale]
        v = (torch.arange(geometry.n_rows) + pixel_half - geometry.n_rows / 2) * dv * factor
        u = (torch.arange(geometry.n_cols) + pixel_half - geometry.n_cols / 2) * du * factor
        d = ds + dd if distance_in_cosine == "d_s + d_d" else ds
        squares = d**2 + u[None, :] ** 2 + (0 if fan else v[:, None] ** 2)
        cosine = (d / squares.sqrt()) ** cosine_power
        cosine = cosine.expand(geometry.n_rows, geometry.n_cols)
        if transpose_cosine:
            cosine = cosine.T
        rows = {"H": height, "D": depth}[y_from]
        x = torch.arange(width) + voxel_half - width / 2
        y = rows / 2 - torch.arange(rows) - voxel_half
        x, y = (x if x_right else -x), (y if y_up else -y)
        theta = geometry.angles[:, None, None]
        if direction == "central":
            s = -torch.sin(theta) * x[None, None, :] + torch.cos(theta) * y[None, :, None]
        else:
            s = torch.cos(theta) * x[None, None, :] + torch.sin(theta) * y[None, :, None]
        top, bottom = {"d_s": (ds, ds), "d_s + d_d": (ds + dd, ds + dd),
                       "only below": (ds, ds + dd)}[over]
        distance = ((top + sign * s) / bottom) ** power
        if layout == "W, H":
            distance = distance.transpose(1, 2)
        elif layout == "one map":
            distance = distance[0]
        elif layout == "per slice":
            distance = distance[:, None].expand(-1, depth, -1, -1)
        return (distance, cosine) if swap else (cosine, distance)
    return weights


@pytest.mark.parametrize("good", [weights_package, weights_loops, weights_numpy32,
                                  weights_torch_detector_coordinates, make_weights()])
def test_weights_accept_correct_answers(good):
    result, line = run(cu.checks.fdk_weights, good)
    assert result.status == "passed", line
    assert "3 geometries" in line


@needs_solutions
def test_weights_accept_the_reference_answer():
    result, line = run(cu.checks.fdk_weights, ref.fdk_weights)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_weights(scale="none"), "divided by the magnification"),
    (make_weights(distance_in_cosine="d_s + d_d"), "d_s + d_d with the coordinates scaled"),
    (make_weights(scale="times"), "multiply the detector coordinates"),
    (make_weights(cosine_power=2.0), "cosine squared"),
    (make_weights(cosine_power=-1.0), "1/cos"),
    (make_weights(fan=True), "ignore the row coordinate"),
    (make_weights(pixel_half=0.0), "pixels' corners"),
    (make_weights(spacings="swapped"), "row_spacing and col_spacing are swapped"),
    (make_weights(transpose_cosine=True), "cosine weights have shape (6, 4): transposed"),
    (make_weights(power=-1.0), "your weights are 1/U;"),
    (make_weights(power=1.0), "your weights are U;"),
    (make_weights(power=2.0), "your weights are U²"),
    (make_weights(sign=-1.0), "the sign of x·ŝ"),
    (make_weights(y_up=False, x_right=False), "the sign of x·ŝ"),
    (make_weights(direction="detector"), "detector's direction"),
    (make_weights(y_up=False), "y axis points down"),
    (make_weights(x_right=False), "x axis points left"),
    (make_weights(voxel_half=0.0), "voxel corners"),
    (make_weights(y_from="D"), "you use D where H is meant"),
    (make_weights(over="d_s + d_d"), "the source-to-axis distance"),
    (make_weights(over="only below"), "the source-to-axis distance"),
    (make_weights(layout="W, H"), "transposed? rows h"),
    (make_weights(layout="one map"), "one (H, W) map per view"),
    (make_weights(layout="per slice"), "does not depend on the height"),
    (make_weights(swap=True), "the two results are swapped"),
    (lambda geometry, volume_shape: None, "None"),
    (lambda geometry, volume_shape: (cu.fdk_cosine_weights(geometry)[0],
                                     cu.fdk_distance_weights(geometry, volume_shape)),
     "one per column"),
])
def test_weights_diagnose_mistakes(wrong, diagnosis):
    result, line = run(cu.checks.fdk_weights, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_weights_diagnose_an_output_shaped_with_d():
    def d_for_h(geometry, volume_shape):
        depth, height, width = volume_shape
        cosine, _ = weights_package(geometry, volume_shape)
        return cosine, cu.fdk_distance_weights(geometry, (height, depth, width))

    result, line = run(cu.checks.fdk_weights, d_for_h)
    assert result.status == "failed", line
    assert "you use D where H is meant" in line, line


def test_weights_stub_is_not_attempted():
    result, line = run(cu.checks.fdk_weights, stub)
    assert result.status == "not attempted", line


def test_weights_report_an_error_of_the_learners_code():
    result, line = run(cu.checks.fdk_weights, broken)
    assert result.status == "error", line
    assert "IndexError" in line, line


# --- Exercise 3: the cone-angle artefact per slice ------------------------------------------

def slices_loop(x_rec, x_true, geometry):
    """One slice after the other, plain Python numbers in a tensor."""
    depth = x_rec.shape[0]
    angles, errors = [], []
    for d in range(depth):
        z = d + 0.5 - depth / 2
        angles.append(math.degrees(math.atan(abs(z) / geometry.source_distance)))
        errors.append(float(((x_rec[d] - x_true[d]) ** 2).mean().sqrt()))
    return torch.tensor(angles), torch.tensor(errors)


def slices_vectorised(x_rec, x_true, geometry):
    depth = x_rec.shape[0]
    z = torch.arange(depth, dtype=torch.float64) - (depth - 1) / 2
    angle = torch.rad2deg(torch.atan2(z.abs(), torch.tensor(geometry.source_distance)))
    error = torch.sqrt(torch.mean((x_rec - x_true) ** 2, dim=(-2, -1)))
    return angle, error


def slices_numpy_lists(x_rec, x_true, geometry):
    difference = (x_rec - x_true).numpy().reshape(x_rec.shape[0], -1)
    z = np.abs(np.arange(x_rec.shape[0]) + 0.5 - x_rec.shape[0] / 2)
    return (list(np.degrees(np.arctan(z / geometry.source_distance))),
            list(np.linalg.norm(difference, axis=1) / np.sqrt(difference.shape[1])))


def make_slices(degrees=True, absolute=True, half=0.5, centred=True, distance="d_s",
                stat="rms", dims=(1, 2), swap=False):
    def slices(x_rec, x_true, geometry):
        depth = x_rec.shape[0]
        z = torch.arange(depth, dtype=torch.float64) + half - (depth / 2 if centred else 0)
        z = z.abs() if absolute else z
        d = geometry.source_distance + (geometry.detector_distance
                                        if distance == "d_s + d_d" else 0.0)
        angle = torch.atan(z / d)
        angle = torch.rad2deg(angle) if degrees else angle
        difference = x_rec - x_true
        error = {"rms": lambda: difference.pow(2).mean(dims).sqrt(),
                 "mse": lambda: difference.pow(2).mean(dims),
                 "mae": lambda: difference.abs().mean(dims),
                 "norm": lambda: difference.pow(2).sum(dims).sqrt(),
                 "relative": lambda: (torch.linalg.vector_norm(difference, dim=dims)
                                      / torch.linalg.vector_norm(x_true, dim=dims)),
                 "bias": lambda: difference.mean(dims),
                 "whole": lambda: difference.pow(2).mean().sqrt()}[stat]()
        return (error, angle) if swap else (angle, error)
    return slices


@pytest.mark.parametrize("good", [slices_loop, slices_vectorised, slices_numpy_lists,
                                  make_slices()])
def test_slices_accept_correct_answers(good):
    result, line = run(cu.checks.slice_artefacts, good)
    assert result.status == "passed", line
    assert "2 volumes, 15 axial slices tried" in line


@needs_solutions
def test_slices_accept_the_reference_answer():
    result, line = run(cu.checks.slice_artefacts, ref.slice_artefacts)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_slices(degrees=False), "in radians"),
    (make_slices(absolute=False), "negative below the central plane"),
    (make_slices(half=0.0), "miss the half voxel"),
    (make_slices(centred=False, half=0.0), "measured from the bottom slice"),
    (make_slices(centred=False), "measured from the bottom slice"),
    (make_slices(distance="d_s + d_d"), "d_s = geometry.source_distance"),
    (make_slices(stat="mse"), "mean squared errors"),
    (make_slices(stat="mae"), "mean absolute errors"),
    (make_slices(stat="norm"), "the norm of each slice's difference"),
    (make_slices(stat="relative"), "relative to the norm"),
    (make_slices(stat="bias"), "the mean difference"),
    (make_slices(dims=(0, 2)), "coronal or sagittal"),
    (make_slices(dims=(0, 1)), "coronal or sagittal"),
    (make_slices(stat="whole"), "one value per axial slice"),
    (make_slices(swap=True), "the two results are swapped"),
    (lambda x_rec, x_true, geometry: None, "None"),
])
def test_slices_diagnose_mistakes(wrong, diagnosis):
    result, line = run(cu.checks.slice_artefacts, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_slices_stub_is_not_attempted():
    result, line = run(cu.checks.slice_artefacts, stub)
    assert result.status == "not attempted", line


def test_slices_report_an_error_of_the_learners_code():
    result, line = run(cu.checks.slice_artefacts, broken)
    assert result.status == "error", line
    assert "IndexError" in line, line


# --- All three ------------------------------------------------------------------------------

def test_the_checks_leave_the_global_random_state_alone():
    def noisy(*args):
        torch.rand(3)
        raise ValueError("not today")

    def noisy_but_right(check, answer):
        def answer_after_a_draw(*args):
            torch.rand(3)
            return answer(*args)
        return run(check, answer_after_a_draw)[0]

    state = torch.random.get_rng_state()
    for check, answer in ((lesson13.cone_beam_positions, positions_loop),
                          (lesson13.fdk_weights, weights_package),
                          (lesson13.slice_artefacts, slices_loop)):
        assert run(check, noisy)[0].status == "error"
        assert noisy_but_right(check, answer).status == "passed"
    assert torch.equal(torch.random.get_rng_state(), state)


def test_the_mistake_lists_match_their_messages():
    assert set(lesson13._ANGLE_MISTAKES) | set(lesson13._LAYOUT_MISTAKES) == set(
        lesson13._POSITION_MISTAKES)
    assert set(lesson13._COSINE_MISTAKES) == set(lesson13._COSINE_MESSAGES)
    assert set(lesson13._DISTANCE_MISTAKES) == set(lesson13._DISTANCE_MESSAGES)
    assert set(lesson13._ANGLE_VARIANTS) == set(lesson13._ANGLE_MESSAGES)
    assert set(lesson13._ERROR_VARIANTS) == set(lesson13._ERROR_MESSAGES)
