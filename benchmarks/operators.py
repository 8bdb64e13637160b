"""Forward and adjoint projection speed, side by side.

Compares, per image, this package's torch backend, its astra backend, ASTRA called
directly (CPU 'linear' projector) and ``skimage.transform.radon`` (forward) /
``iradon(filter_name=None)`` (unfiltered backprojection, the nearest thing it has to an
adjoint), for single images and batches of 16, at 128x128 with 128 angles and 256x256
with 256 angles.  It also times building the operator plus its first projection.
With a GPU, it adds the torch backend on CUDA and ASTRA's CUDA projector.

Then the cone-beam operator of lesson 13, ``cu.ConeBeamTransform``: forward and adjoint
of one float32 volume at 32³ and 64³ with a 64 x 64 detector and 90 views, on one
thread and on all threads, and the time to build the operator (which prepares and
keeps its sample positions).  With a GPU, it adds the operator on CUDA and ASTRA's
cone projector (``create_sino3d_gpu`` / ``create_backprojection3d_gpu``, which
include the copies between the CPU and the GPU); ASTRA has no CPU cone projector.

Run:  python benchmarks/operators.py [--sizes 128 256] [--cone-sizes 32 64] [--repeats 5]
      python benchmarks/operators.py --cone-only           (only the cone-beam table)
Prints tables of milliseconds and ratios (ASTRA CPU time / ours); it is a measurement,
not a test: nothing fails when a machine is slow.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

import course_utils as cu


def timed(fn, repeats: int, sync=None) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def astra_direct(n, geometry, gpu=False):
    """ASTRA's own forward and backprojection functions for one image, no wrapper."""
    import astra
    volume = astra.create_vol_geom(n, n)
    projection = astra.create_proj_geom("parallel", geometry.detector_spacing,
                                        geometry.n_detectors, geometry.angles.numpy())
    projector = astra.create_projector("cuda" if gpu else "linear", projection, volume)

    def forward(image):
        data_id, sino = astra.create_sino(image, projector)
        astra.data2d.delete(data_id)
        return sino

    def adjoint(sino):
        data_id, image = astra.create_backprojection(sino, projector)
        astra.data2d.delete(data_id)
        return image

    return forward, adjoint


def measure(n: int, n_angles: int, repeats: int) -> list[dict]:
    from skimage.transform import iradon, radon

    geometry = cu.ParallelBeam(n_angles=n_angles, n_detectors=math.ceil(n * math.sqrt(2)) + 1)
    degrees = np.rad2deg(geometry.angles.numpy())
    image = cu.shepp_logan(n).numpy()
    rows = []

    def add(method, batch, forward_s, adjoint_s):
        rows.append({"size": f"{n}x{n}, {n_angles} angles", "method": method, "batch": batch,
                     "forward ms/image": 1e3 * forward_s / batch,
                     "adjoint ms/image": (1e3 * adjoint_s / batch) if adjoint_s else None})

    # ASTRA directly, one image at a time: the reference of the ratios.
    fwd, adj = astra_direct(n, geometry)
    sino = fwd(image)
    add("ASTRA CPU (direct)", 1, timed(lambda: fwd(image), repeats),
        timed(lambda: adj(sino), repeats))
    add("skimage radon / iradon(no filter)", 1,
        timed(lambda: radon(image, degrees, circle=False), max(1, repeats // 2)),
        timed(lambda: iradon(radon(image, degrees, circle=False), degrees, filter_name=None,
                             circle=False), max(1, repeats // 2)))

    x1 = torch.from_numpy(image)
    for backend in ("torch", "astra"):
        A = cu.RadonTransform(n, geometry, backend=backend)
        for batch in (1, 16):
            x = x1.expand(batch, n, n).contiguous() if batch > 1 else x1
            y = A(x)
            add(f"course_utils {backend} (CPU)", batch, timed(lambda: A(x), repeats),
                timed(lambda: A.T(y), repeats))

    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        A = cu.RadonTransform(n, geometry, device="cuda")
        for batch in (1, 16):
            x = x1.cuda().expand(batch, n, n).contiguous() if batch > 1 else x1.cuda()
            y = A(x)
            add("course_utils torch (CUDA)", batch, timed(lambda: A(x), repeats, sync),
                timed(lambda: A.T(y), repeats, sync))
        import astra
        if astra.use_cuda():
            fwd, adj = astra_direct(n, geometry, gpu=True)
            add("ASTRA CUDA (direct)", 1, timed(lambda: fwd(image), repeats),
                timed(lambda: adj(sino), repeats))
    return rows


def construction(n: int, n_angles: int) -> dict:
    """Seconds to build the operator and make its first projection, versus one radon call."""
    from skimage.transform import radon
    geometry = cu.ParallelBeam(n_angles=n_angles, n_detectors=math.ceil(n * math.sqrt(2)) + 1)
    image = cu.shepp_logan(n)
    cu.clear_cache()     # a cold start: no matrix built earlier in this process
    start = time.perf_counter()
    A = cu.RadonTransform(n, geometry)
    A(image)
    first = time.perf_counter() - start
    start = time.perf_counter()
    A.T(A(image))
    first_adjoint = time.perf_counter() - start
    start = time.perf_counter()
    radon(image.numpy(), np.rad2deg(geometry.angles.numpy()), circle=False)
    skimage_s = time.perf_counter() - start
    return {"size": f"{n}x{n}, {n_angles} angles", "build + first A(x) s": first,
            "first A.T(y) s (builds the transpose)": first_adjoint,
            "skimage radon s": skimage_s, "ratio (skimage / ours)": skimage_s / first,
            "cached MB (A and A.T)": cu.cache_info().bytes / 1e6}


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    cells = [[_fmt(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |")
    print()


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 100 else f"{value:.0f}"
    return str(value)


def cone_geometry(n: int, n_angles: int = 90, detector: int = 64) -> cu.ConeBeam:
    """A scan of an ``n``³ volume: source at 3n, detector at n from the axis (magnification
    4/3), pixels wide enough for the detector to hold the shadow of the whole volume."""
    spacing = 2.5 * n / detector
    return cu.ConeBeam(n_angles=n_angles, n_rows=detector, n_cols=detector,
                       source_distance=3 * n, detector_distance=n,
                       row_spacing=spacing, col_spacing=spacing)


def astra_cone(n, geometry):
    """ASTRA's GPU cone projector on the same scan (its volumes are ours flipped along H)."""
    import astra
    volume_geometry = astra.create_vol_geom(n, n, n)
    projection_geometry = astra.create_proj_geom(
        "cone", geometry.col_spacing, geometry.row_spacing, geometry.n_rows,
        geometry.n_cols, geometry.angles.numpy(), geometry.source_distance,
        geometry.detector_distance)

    def forward(volume):
        data_id, projections = astra.create_sino3d_gpu(volume, projection_geometry,
                                                       volume_geometry)
        astra.data3d.delete(data_id)
        return projections

    def adjoint(projections):
        data_id, volume = astra.create_backprojection3d_gpu(projections, projection_geometry,
                                                            volume_geometry)
        astra.data3d.delete(data_id)
        return volume

    return forward, adjoint


def measure_cone(n: int, repeats: int, all_threads: int) -> list[dict]:
    """Forward and adjoint of one float32 volume, ``n``³, 64 x 64 detector, 90 views."""
    geometry = cone_geometry(n)
    volume = cu.shepp_logan_3d(n)
    rows = []

    def add(method, build_s, forward_s, adjoint_s, cache_mb):
        rows.append({"size": f"{n}³, 64x64 detector, 90 views", "method": method,
                     "build s": build_s, "forward ms": 1e3 * forward_s,
                     "adjoint ms": 1e3 * adjoint_s,
                     "forward + adjoint s": forward_s + adjoint_s,
                     "kept positions MB": cache_mb})

    for threads in sorted({1, all_threads}):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        A = cu.ConeBeamTransform(n, geometry)
        build = time.perf_counter() - start
        y = A(volume)
        add(f"course_utils cone (CPU, {threads} thread{'s' * (threads > 1)})", build,
            timed(lambda: A(volume), repeats), timed(lambda: A.T(y), repeats),
            A.cache_bytes / 1e6)
    torch.set_num_threads(all_threads)

    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        start = time.perf_counter()
        A = cu.ConeBeamTransform(n, geometry, device="cuda")
        sync()
        build = time.perf_counter() - start
        x = volume.cuda()
        y = A(x)
        add("course_utils cone (CUDA)", build, timed(lambda: A(x), repeats, sync),
            timed(lambda: A.T(y), repeats, sync), A.cache_bytes / 1e6)
        import astra
        if astra.use_cuda():
            fwd, adj = astra_cone(n, geometry)
            theirs = volume.flip(-2).numpy()
            projections = fwd(theirs)
            add("ASTRA cuda3d (direct, incl. copies)", None,
                timed(lambda: fwd(theirs), repeats), timed(lambda: adj(projections), repeats),
                None)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--cone-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--cone-only", action="store_true",
                        help="only the cone-beam table")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    all_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {all_threads} threads, "
          f"CUDA: {torch.cuda.is_available()}\n")
    if not args.cone_only:
        for n in args.sizes:
            rows = measure(n, n, args.repeats)
            reference = rows[0]
            for row in rows:
                row["forward: ASTRA CPU / this"] = (reference["forward ms/image"]
                                                    / row["forward ms/image"])
                row["adjoint: ASTRA CPU / this"] = (
                    reference["adjoint ms/image"] / row["adjoint ms/image"]
                    if row["adjoint ms/image"] else None)
            print_table(rows)
        print_table([construction(n, n) for n in args.sizes])
    print_table([row for n in args.cone_sizes
                 for row in measure_cone(n, args.repeats, all_threads)])


if __name__ == "__main__":
    main()
