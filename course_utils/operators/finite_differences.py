"""The image gradient :math:`D` as a linear operator, and total variation built on it.

Total variation (TV) measures how much an image changes from pixel to pixel:
:math:`\\mathrm{TV}(x) = \\sum_{i,j} |(D x)_{i,j}|`, where :math:`D` takes forward
differences down the rows and along the columns.  :math:`D` is linear, so it is a
:class:`~course_utils.operators.linear_operator.LinearOperator` like the projector
:math:`A`: ``D(x)``, ``D.T(q)``, ``D.norm()`` and ``D.check_adjoint()`` all work, and an
algorithm such as :func:`~course_utils.reconstruction.algorithms.tv_pdhg` reads like
its maths.  The adjoint of the gradient is minus the divergence,
:math:`D^T = -\\mathrm{div}`.

Lesson 02 (section 3.5) uses TV in the Chambolle-Pock algorithm, lesson 05 (section 4)
adds it to the deep image prior.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from ..arrays import check_floating, check_int, numpy_compatible
from .linear_operator import LinearOperator

__all__ = ["Gradient", "image_gradient", "image_divergence", "total_variation"]


def _forward_differences(x: torch.Tensor) -> torch.Tensor:
    """``(..., H, W) -> (..., 2, H, W)``: differences down the rows, then along the columns."""
    down = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    right = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    return torch.stack([down, right], dim=-3)


def _divergence(q: torch.Tensor) -> torch.Tensor:
    """``(..., 2, H, W) -> (..., H, W)``: backward differences, minus the adjoint of the above."""
    down = q[..., 0, :-1, :]    # the vertical differences that exist
    right = q[..., 1, :, :-1]   # the horizontal differences that exist
    # div = q_i - q_{i-1}, with q_{-1} = 0 and q_{H-1} = 0 (pad below minus pad above)
    div_down = F.pad(down, (0, 0, 0, 1)) - F.pad(down, (0, 0, 1, 0))
    div_right = F.pad(right, (0, 1)) - F.pad(right, (1, 0))
    return div_down + div_right


class Gradient(LinearOperator):
    """The image gradient :math:`D`: forward differences, images to pairs of differences.

    .. math:: (D x)_{0,i,j} = x_{i+1,j} - x_{i,j}, \\qquad
              (D x)_{1,i,j} = x_{i,j+1} - x_{i,j},

    and 0 where the neighbour would fall outside the image (last row, last column: a
    Neumann boundary).  The adjoint is minus the divergence,
    :math:`D^T q = -\\mathrm{div}\\, q`.

    Taught in lesson 02, section 3.5 (TV with Chambolle-Pock) and lesson 05, section 4
    (DIP + TV).

    Parameters
    ----------
    image_shape : (int, int) or int
        ``(H, W)``, or ``N`` for ``N x N`` images.
    device : str or torch.device
        Where the operator computes; inputs must live there too.

    Examples
    --------
    >>> D = Gradient((64, 64))
    >>> q = D(torch.rand(8, 64, 64))      # (8, 2, 64, 64)
    >>> D.T(q).shape                      # -div q
    torch.Size([8, 64, 64])
    >>> D.norm() ** 2 < 8
    True

    Notes
    -----
    Its norm is known exactly (see :meth:`norm`): :math:`\\|D\\|^2 < 8` for every image
    size, the bound that step-size rules for TV usually quote.
    """

    def __init__(self, image_shape, device="cpu"):
        if isinstance(image_shape, numbers.Integral):
            image_shape = (image_shape, image_shape)
        if not isinstance(image_shape, (tuple, list, torch.Size)) or len(image_shape) != 2:
            raise ValueError(f"image_shape must be (H, W) or one integer N, got {image_shape!r}")
        H = check_int(image_shape[0], "image_shape[0] (H)")
        W = check_int(image_shape[1], "image_shape[1] (W)")
        super().__init__((H, W), (2, H, W), device, domain_name="image",
                         range_name="gradient")

    def _apply(self, x):
        return _forward_differences(x)

    def _apply_adjoint(self, q):
        return -_divergence(q)

    def norm(self, n_iter: int = 100, rtol: float = 1e-6, seed: int = 0) -> float:
        """The exact operator 2-norm; the arguments of :meth:`LinearOperator.norm` are ignored.

        :math:`D^T D` is the Neumann Laplacian, whose largest eigenvalue on an
        ``H x W`` image is known in closed form:

        .. math:: \\|D\\|_2^2 = 4 \\sin^2\\frac{\\pi (H - 1)}{2H}
                             + 4 \\sin^2\\frac{\\pi (W - 1)}{2W} < 8 .

        Returns
        -------
        float
            :math:`\\|D\\|_2` (dimensionless: differences of pixel values).
        """
        H, W = self.domain_shape
        eigenvalue = (4 * math.sin(math.pi * (H - 1) / (2 * H)) ** 2
                      + 4 * math.sin(math.pi * (W - 1) / (2 * W)) ** 2)
        return math.sqrt(eigenvalue)

    def to(self, device) -> "Gradient":
        """The same operator on another device (a new object)."""
        return Gradient(self.domain_shape, device)

    def __repr__(self) -> str:
        return f"Gradient(image_shape={self.domain_shape}, device='{self.device}')"


@numpy_compatible
def image_gradient(x):
    """Forward-difference gradient of images, with Neumann (zero-flux) boundary.

    .. math:: (\\nabla x)_{0,i,j} = x_{i+1,j} - x_{i,j}, \\qquad
              (\\nabla x)_{1,i,j} = x_{i,j+1} - x_{i,j},

    and 0 where the neighbour would fall outside the image (last row / last column).
    The same as ``Gradient(x.shape[-2:])(x)``, for images of any size.  Taught in
    lesson 05, section 4 (DIP + TV).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray, shape (..., H, W)
        Images (float32 or float64).

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (..., 2, H, W)
        Channel 0: vertical differences (down the rows), channel 1: horizontal ones.
    """
    _check_images(x, "image_gradient", "x", "(..., H, W)", min_dim=2)
    return _forward_differences(x)


@numpy_compatible
def image_divergence(g):
    """Divergence of a vector field, the negative adjoint of :func:`image_gradient`.

    .. math:: \\langle \\nabla x, g \\rangle = -\\langle x, \\mathrm{div}\\, g \\rangle
              \\quad \\text{for all } x, g.

    Backward differences, where the last row of ``g[..., 0, :, :]`` and the last column
    of ``g[..., 1, :, :]`` are ignored (the gradient is 0 there).  The same as
    ``-Gradient(g.shape[-2:]).T(g)``; TV by Chambolle-Pock uses it (lesson 02,
    section 3.5).

    Parameters
    ----------
    g : torch.Tensor or numpy.ndarray, shape (..., 2, H, W)
        Vector field, channel 0 vertical and channel 1 horizontal.

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (..., H, W)
    """
    _check_images(g, "image_divergence", "g", "(..., 2, H, W)", min_dim=3)
    if g.shape[-3] != 2:
        raise ValueError(
            f"image_divergence expects g with shape (..., 2, H, W), got {tuple(g.shape)}"
        )
    return _divergence(g)


@numpy_compatible
def total_variation(x):
    """Isotropic total variation of images: the sum of the gradient lengths.

    .. math:: \\mathrm{TV}(x) = \\sum_{i,j} \\sqrt{(\\nabla x)_{0,i,j}^2 + (\\nabla x)_{1,i,j}^2}

    with the forward differences of :func:`image_gradient`.  Differentiable (the
    subgradient 0 is used where the gradient vanishes), so it can be a loss term.
    Taught in lesson 02, section 3.5 and lesson 05, section 4 (DIP + TV).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray, shape (..., H, W)
        Images.

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (...)
        One value per image, in image units times pixels.
    """
    return torch.linalg.vector_norm(image_gradient(x), dim=-3).sum(dim=(-2, -1))


def _check_images(x, name, arg, shape, min_dim):
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} expects {arg} as a torch.Tensor or NumPy array, got {type(x).__name__}"
        )
    check_floating(x, arg)
    if x.dim() < min_dim:
        raise ValueError(f"{name} expects {arg} with shape {shape}, got {tuple(x.shape)}")
