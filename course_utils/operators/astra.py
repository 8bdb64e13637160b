"""The ASTRA toolbox behind ``RadonTransform(..., backend="astra")``.

ASTRA (van Aarle et al., 2016) is the reference implementation of tomographic
projectors.  The course's own projector (:mod:`course_utils.operators.radon`) is the
one we teach with; this backend computes the same operator with ASTRA's projectors, so
that the two can be compared (lesson 01, section 1.2).  ASTRA is imported only when
such an operator is created: the default backend needs nothing extra.
"""

from __future__ import annotations

import numpy as np
import torch

from .geometry import ParallelBeam
from .sparse import csr_matrix

__all__ = ["AstraProjector"]


class AstraProjector:
    """ASTRA's 2D projectors for an ``N x N`` image and a scanner geometry.

    Uses ``'linear'`` (parallel beam) or ``'line_fanflat'`` (fan beam) on the CPU, and
    ``'cuda'`` when ``device`` is a CUDA device and ASTRA was built with CUDA.  Created
    by ``RadonTransform(..., backend="astra")``, which lesson 01, section 1.2 compares
    with the course's own projector.

    Parameters
    ----------
    image_size : int
        ``N``.
    geometry : ParallelBeam or FanBeam
        The scanner.
    device : torch.device
        Where the operator lives.
    """

    def __init__(self, image_size, geometry, device):
        try:
            import astra
        except ImportError:
            raise ImportError(
                "backend='astra' needs the ASTRA toolbox: `pip install astra-toolbox` "
                "(Linux, Windows) or `conda install -c astra-toolbox astra-toolbox`; "
                "the default backend='torch' needs nothing extra") from None
        self.astra = astra
        self.image_shape = (image_size, image_size)
        self.sinogram_shape = geometry.sinogram_shape
        angles = geometry.angles.numpy()
        volume = astra.create_vol_geom(image_size, image_size)
        if isinstance(geometry, ParallelBeam):
            projection = astra.create_proj_geom("parallel", geometry.detector_spacing,
                                                geometry.n_detectors, angles)
            cpu_kind = "linear"
        else:
            projection = astra.create_proj_geom(
                "fanflat", geometry.detector_spacing, geometry.n_detectors, angles,
                geometry.source_distance, geometry.detector_distance)
            cpu_kind = "line_fanflat"
        use_gpu = device.type == "cuda" and astra.use_cuda()
        self.projector = astra.create_projector("cuda" if use_gpu else cpu_kind,
                                                projection, volume)
        # ASTRA builds explicit matrices only with its CPU projectors.
        self.cpu_projector = (astra.create_projector(cpu_kind, projection, volume)
                              if use_gpu else self.projector)

    def project(self, image: np.ndarray) -> np.ndarray:
        """One image ``(N, N)`` to its sinogram ``(n_angles, n_detectors)``, float32."""
        data_id, sinogram = self.astra.create_sino(image, self.projector)
        self.astra.data2d.delete(data_id)
        return sinogram

    def backproject(self, sinogram: np.ndarray) -> np.ndarray:
        """One sinogram ``(n_angles, n_detectors)`` to its backprojection ``(N, N)``."""
        data_id, image = self.astra.create_backprojection(sinogram, self.projector)
        self.astra.data2d.delete(data_id)
        return image

    def product(self, x: torch.Tensor, adjoint: bool) -> torch.Tensor:
        """``A x`` (or ``A^T x``) of a batch ``(..., N, N)`` (or ``(..., n_angles, n_detectors)``).

        ASTRA computes in float32, one item at a time, on NumPy arrays; the result has
        the dtype and device of ``x``.
        """
        shape_in = self.sinogram_shape if adjoint else self.image_shape
        shape_out = self.image_shape if adjoint else self.sinogram_shape
        flat = x.detach().reshape(-1, *shape_in).to("cpu", torch.float32).numpy()
        apply = self.backproject if adjoint else self.project
        out = np.stack([apply(item) for item in flat])
        out = torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
        return out.reshape(*x.shape[: x.dim() - 2], *shape_out)

    def matrix(self) -> torch.Tensor:
        """ASTRA's system matrix, float32 sparse CSR ``(n_angles * n_detectors, N * N)``."""
        matrix_id = self.astra.projector.matrix(self.cpu_projector)
        m = self.astra.matrix.get(matrix_id).tocsr()
        self.astra.matrix.delete(matrix_id)
        return csr_matrix(torch.from_numpy(m.indptr).long(), torch.from_numpy(m.indices).long(),
                          torch.from_numpy(m.data).float(), m.shape)

    def __del__(self):
        try:
            self.astra.projector.delete(self.projector)
            if self.cpu_projector != self.projector:
                self.astra.projector.delete(self.cpu_projector)
        except Exception:  # interpreter shutting down
            pass
