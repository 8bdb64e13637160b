"""Forward and adjoint projection speed, side by side.

Compares, per image, this package's torch backend, its astra backend, ASTRA called
directly (CPU 'linear' projector) and ``skimage.transform.radon`` (forward) /
``iradon(filter_name=None)`` (unfiltered backprojection, the nearest thing it has to an
adjoint), for single images and batches of 16, at 128x128 with 128 angles and 256x256
with 256 angles.  It also times building the operator plus its first projection.
With a GPU, it adds the torch backend on CUDA and ASTRA's CUDA projector.

Run:  python benchmarks/operators.py [--sizes 128 256] [--repeats 5]
Prints a table of milliseconds per image and ratios (ASTRA CPU time / ours); it is a
measurement, not a test: nothing fails when a machine is slow.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CUDA: {torch.cuda.is_available()}\n")
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


if __name__ == "__main__":
    main()
