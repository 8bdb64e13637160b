"""Plug-and-play: a denoiser in place of the proximal operator of a regulariser.

Lesson 11 teaches it.  The proximal gradient method (ISTA) for
:math:`\\min_x \\tfrac12\\|Ax - y\\|^2 + \\lambda R(x)` alternates a gradient step on the
data term and the proximal operator of the regulariser,

.. math::  x^{k+1} = \\operatorname{prox}_{\\tau\\lambda R}\\big(x^k - \\tau A^T(Ax^k - y)\\big),
           \\qquad \\operatorname{prox}_{\\tau\\lambda R}(v)
           = \\arg\\min_x \\tfrac12\\|x - v\\|^2 + \\tau\\lambda R(x).

The prox is a denoising problem: it finds an image close to :math:`v` that the
regulariser likes.  Plug-and-play (Venkatakrishnan, Bouman and Wohlberg 2013) swaps it
for any good denoiser :math:`D_\\sigma`, for instance a network trained on clean images
with Gaussian noise of level :math:`\\sigma`:

.. math::  x^{k+1} = D_\\sigma\\big(x^k - \\tau A^T(Ax^k - y)\\big).

The denoiser knows images, not the scanner; the scanner enters only through :math:`A`.
So one denoiser serves any geometry, number of angles or noise level.
"""

from __future__ import annotations

import torch
from tqdm.auto import trange

from ..arrays import as_tensor, check_floating, check_int, check_number

__all__ = ["pnp_pgd"]


def pnp_pgd(A, y, denoiser, n_iter: int, *, sigma: float, step: float | None = None,
            x0=None, callback=None, progress: bool = False) -> torch.Tensor:
    """Plug-and-play proximal gradient: :math:`x \\leftarrow D_\\sigma(x - \\tau A^T(Ax - y))`.

    Parameters
    ----------
    A : LinearOperator
        Images ``(..., N, N)`` to sinograms ``(..., n_angles, n_detectors)``.
    y : torch.Tensor, shape (B, 1, n_angles, n_detectors)
        The data.
    denoiser : callable
        ``denoiser(x, sigma)`` returns images ``(B, 1, N, N)`` with Gaussian noise of
        standard deviation ``sigma`` removed, e.g. ``prior.denoise`` of a
        :class:`cu.DiffusionPrior`.
    n_iter : int
        Number of iterations.
    sigma : float
        The denoiser's noise level: the strength of the prior (lesson 11 chooses it on
        validation).
    step : float, optional
        :math:`\\tau`; default :math:`1/\\|A\\|^2`, the largest step for which the gradient
        step alone never increases the data term.
    x0 : torch.Tensor, optional
        Starting image, default zeros (an FBP is a good start).
    callback : callable, optional
        ``callback(k, x)`` after iteration ``k = 1, ..., n_iter``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    torch.Tensor, shape (B, 1, N, N)

    Notes
    -----
    Unlike ISTA with a true prox, plug-and-play need not converge: a denoiser is in
    general not the prox of any function, and the iteration can drift or oscillate.
    Convergence is proved for denoisers with special properties (e.g. non-expansive
    residuals, Ryu et al. 2019); with a trained network, watch the iterates.

    Taught in lesson 11, section 1 (Exercise 1 writes the loop).
    """
    y = check_floating(as_tensor(y, "y"), "y")
    n_iter = check_int(n_iter, "n_iter")
    sigma = check_number(sigma, "sigma", positive=True)
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got "
                        f"{type(denoiser).__name__}")
    tau = 1.0 / A.norm() ** 2 if step is None else check_number(step, "step", positive=True)
    x = torch.zeros(*y.shape[:-2], *A.domain_shape, dtype=y.dtype, device=y.device) \
        if x0 is None else check_floating(as_tensor(x0, "x0"), "x0").clone()
    with torch.no_grad():
        for k in trange(1, n_iter + 1, desc="plug-and-play", disable=not progress,
                        leave=False):
            x = denoiser(x - tau * A.T(A(x) - y), sigma)
            if callback is not None:
                callback(k, x)
    return x
