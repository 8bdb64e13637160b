"""Can we trust a reconstruction?  Worst-case perturbations, data consistency, spread.

Lesson 12 measures four ways in which a reconstruction method can fail a reader, and
this module holds the tools it uses:

- **instability** (Antun et al. 2020): a small change of the data that changes the
  output a lot, found by projected gradient ascent (:func:`worst_perturbation`), against
  random noise of the same size (:func:`random_perturbation`);
- **data consistency** (Bhadra et al. 2021): the part of an error that the scanner can
  see and the part it cannot (:func:`range_null_split`), and a step that pulls an output
  back towards the data (:func:`data_consistency_step`);
- **uncertainty**: the per-pixel spread of several reconstructions (an ensemble or
  posterior samples) and how well it predicts the actual error (:func:`calibration`).

Every function works on batches ``(B, 1, ...)`` and treats each item on its own.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import trange

from ..arrays import as_tensor, check_floating, check_int, check_number

__all__ = ["worst_perturbation", "random_perturbation", "relative_change",
           "data_consistency_step", "range_null_split", "calibration"]


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of every item, shaped ``(B, 1, ..., 1)`` to broadcast."""
    return torch.linalg.vector_norm(t.flatten(1), dim=1).view(-1, *([1] * (t.ndim - 1)))


def _batch(t, name: str) -> torch.Tensor:
    t = check_floating(as_tensor(t, name), name)
    if t.ndim < 2:
        raise ValueError(f"{name} must be a batch (B, ...) with at least 2 dimensions, "
                         f"got shape {tuple(t.shape)}")
    return t


def relative_change(a, b) -> torch.Tensor:
    """:math:`\\|a_b - b_b\\| / \\|b_b\\|` for every item ``b`` of two batches.

    Parameters
    ----------
    a, b : torch.Tensor, shape (B, ...)
        Same shape; ``b`` is the reference (e.g. the unperturbed output).

    Returns
    -------
    torch.Tensor, shape (B,)

    Used in lesson 12, section 1.
    """
    a, b = _batch(a, "a"), _batch(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return (_norms(a - b) / _norms(b).clamp(min=torch.finfo(b.dtype).tiny)).flatten()


def random_perturbation(y, eps: float, *, generator: torch.Generator | None = None
                        ) -> torch.Tensor:
    """White Gaussian noise scaled to norm :math:`\\varepsilon \\|y_b\\|` for every item.

    Parameters
    ----------
    y : torch.Tensor, shape (B, ...)
        Data, e.g. sinograms ``(B, 1, n_angles, n_detectors)``.
    eps : float
        Relative size, :math:`\\|\\delta_b\\| = \\varepsilon \\|y_b\\|`.
    generator : torch.Generator, optional

    Returns
    -------
    torch.Tensor, same shape as ``y``

    Used in lesson 12, section 1 (the baseline of a worst-case perturbation).
    """
    y = _batch(y, "y")
    eps = check_number(eps, "eps", positive=False)
    direction = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
    return direction * (eps * _norms(y) / _norms(direction))


def worst_perturbation(reconstruct, y, eps: float, *, n_steps: int = 10,
                       step: float = 0.5, generator: torch.Generator | None = None,
                       progress: bool = False) -> torch.Tensor:
    """The data perturbation of relative size ``eps`` that changes the output most.

    Projected gradient ascent (Antun et al. 2020; Genzel et al. 2022) on

    .. math:: \\max_{\\|\\delta_b\\| \\le \\varepsilon \\|y_b\\|}
              \\; \\|f(y + \\delta) - f(y)\\|^2,

    for each item ``b`` of the batch: start from a random direction on the sphere,
    take normalised gradient steps of length ``step`` times the radius, and project back
    onto the ball after each step.  The problem is not concave: the result is a local
    maximum, a lower bound of the true worst case.

    Parameters
    ----------
    reconstruct : callable
        ``f(y)``: data ``(B, ...)`` to images ``(B, 1, N, N)``, differentiable with
        respect to ``y`` (a network, or :func:`cu.tv_pdhg` with ``differentiable=True``).
    y : torch.Tensor, shape (B, 1, n_angles, n_detectors)
        The data.
    eps : float
        Relative size of the perturbation, :math:`\\|\\delta_b\\| \\le \\varepsilon\\|y_b\\|`.
    n_steps : int
        Ascent steps.
    step : float
        Length of each step, as a fraction of the ball's radius.
    generator : torch.Generator, optional
        For the random start.
    progress : bool
        Show a progress bar.

    Returns
    -------
    torch.Tensor, same shape as ``y``
        :math:`\\delta`, detached, with :math:`\\|\\delta_b\\| \\le \\varepsilon\\|y_b\\|`.

    Taught in lesson 12, section 1 (Exercise 1 writes it).
    """
    y = _batch(y, "y").detach()
    eps = check_number(eps, "eps", positive=False)
    n_steps = check_int(n_steps, "n_steps", minimum=0)
    step = check_number(step, "step", positive=True)
    radius = eps * _norms(y)
    with torch.no_grad():
        reference = reconstruct(y).detach()
    delta = random_perturbation(y, eps, generator=generator)
    for _ in trange(n_steps, desc="worst perturbation", disable=not progress, leave=False):
        delta.requires_grad_(True)
        with torch.enable_grad():
            change = (reconstruct(y + delta) - reference).pow(2).sum()
            gradient, = torch.autograd.grad(change, delta)
        with torch.no_grad():
            # the clamp keeps a zero gradient (an output that ignores the data) harmless
            delta = delta + step * radius * gradient / _norms(gradient).clamp(
                min=torch.finfo(y.dtype).tiny)
            delta = delta * torch.clamp(radius / _norms(delta).clamp(
                min=torch.finfo(y.dtype).tiny), max=1.0)
    return delta.detach()


def data_consistency_step(A, y, x_hat, mu: float, n_iter: int = 30) -> torch.Tensor:
    """Pull an output back towards the data: :math:`\\arg\\min_x \\|Ax - y\\|^2 + \\mu\\|x - \\hat x\\|^2`.

    The minimiser solves :math:`(A^TA + \\mu I)\\,x = A^Ty + \\mu\\hat x`; with
    :math:`x = \\hat x + d` this is :math:`(A^TA + \\mu I)\\,d = A^T(y - A\\hat x)`, solved
    by ``n_iter`` conjugate-gradient steps from :math:`d = 0`.  A large :math:`\\mu`
    trusts the network's output :math:`\\hat x`; a small one trusts the data, and brings
    their noise and streaks back.

    Parameters
    ----------
    A : LinearOperator
        Images ``(..., N, N)`` to data.
    y : torch.Tensor, shape (B, 1, n_angles, n_detectors)
    x_hat : torch.Tensor, shape (B, 1, N, N)
        The output to correct.
    mu : float
        Weight of the closeness to ``x_hat`` (positive).
    n_iter : int
        Conjugate-gradient steps (the system is well conditioned for a :math:`\\mu` of
        the order of :math:`\\|A\\|^2 / 100` or more).

    Returns
    -------
    torch.Tensor, shape (B, 1, N, N)

    Taught in lesson 12, section 3 (Exercise 2 writes it).
    """
    y, x_hat = _batch(y, "y"), _batch(x_hat, "x_hat")
    mu = check_number(mu, "mu", positive=True)
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    dims = tuple(range(1, x_hat.ndim))
    with torch.no_grad():
        r = A.T(y - A(x_hat))
        d, p = torch.zeros_like(x_hat), r.clone()
        rr = (r * r).sum(dims, keepdim=True)
        for _ in range(n_iter):
            Ap = A.T(A(p)) + mu * p
            alpha = rr / (p * Ap).sum(dims, keepdim=True).clamp(min=torch.finfo(r.dtype).tiny)
            d, r = d + alpha * p, r - alpha * Ap
            rr_new = (r * r).sum(dims, keepdim=True)
            # a converged item has rr = 0: keep its direction at zero instead of 0/0
            p = r + rr_new / rr.clamp(min=torch.finfo(r.dtype).tiny) * p
            rr = rr_new
    return x_hat + d


def range_null_split(A, e, n_iter: int = 300) -> tuple:
    """Split images into the part the scanner sees and the part it cannot see.

    :math:`e = P_R\\, e + P_N\\, e`, where :math:`P_R = A^+A` projects onto the row
    space of :math:`A` (the *measurement* space: :math:`A P_R e = A e`) and
    :math:`P_N = I - P_R` onto its null space (:math:`A P_N e = 0`).  :math:`P_R e` is
    the minimum-norm solution of :math:`Az = Ae`, which CGLS started from zero
    converges to.  Applied to an error :math:`\\hat x - x`, the null-space part is what
    Bhadra et al. (2021) call a hallucination map: structure that no data check can see.

    Parameters
    ----------
    A : LinearOperator
    e : torch.Tensor, shape (B, 1, N, N)
        Images, e.g. errors of a reconstruction.
    n_iter : int
        Most CGLS iterations (``P_R e`` is approximate: the directions of the smallest
        singular values converge last).  An item stops early once
        :math:`\\|A^T r\\|` has fallen below machine precision times its start: run on
        past that point (a small operator, converged in a few dozen steps), CGLS
        amplifies its round-off and diverges.

    Returns
    -------
    (e_range, e_null) : torch.Tensor, torch.Tensor
        Both of the shape of ``e``; they sum to ``e``.

    Taught in lesson 12, section 3.
    """
    e = _batch(e, "e")
    n_iter = check_int(n_iter, "n_iter", minimum=1)
    tiny = torch.finfo(e.dtype).tiny

    def squared(t):  # per-item squared norm, shaped (B, 1, ..., 1)
        return t.pow(2).flatten(1).sum(1).view(-1, *([1] * (t.ndim - 1)))

    with torch.no_grad():
        # CGLS for A z = A e from z = 0 (as cu.cgls), with a per-item stop
        e_range = torch.zeros_like(e)
        r = A(e)
        s = A.T(r)
        p = s
        gamma = squared(s)
        floor = gamma * torch.finfo(e.dtype).eps ** 2
        for _ in range(n_iter):
            active = gamma > floor  # False for converged items, and for A e = 0
            if not active.any():
                break
            q = A(p)
            alpha = torch.where(active, gamma / squared(q).view_as(gamma).clamp(min=tiny),
                                torch.zeros_like(gamma))
            e_range = e_range + alpha * p
            r = r - alpha.view(-1, *([1] * (r.ndim - 1))) * q
            s = A.T(r)
            gamma_new = squared(s)
            beta = torch.where(active, gamma_new / gamma.clamp(min=tiny),
                               torch.zeros_like(gamma))
            p = s + beta * p
            gamma = torch.where(active, gamma_new, gamma)
    return e_range, e - e_range


def calibration(spread, error, n_bins: int = 10) -> dict:
    """How well a predicted per-pixel spread tracks the actual error.

    Pixels are put into ``n_bins`` bins of equal count by their predicted standard
    deviation; for a calibrated predictor the root-mean-square error of each bin equals
    its mean predicted standard deviation (the diagonal of a reliability plot).  The
    Spearman rank correlation between spread and absolute error, per image, says whether
    the spread at least *ranks* the pixels by their error, whatever its scale.

    Parameters
    ----------
    spread : torch.Tensor, shape (B, 1, N, N)
        Predicted standard deviation of every pixel (e.g. the std of ensemble members
        or posterior samples).
    error : torch.Tensor, shape (B, 1, N, N)
        Actual error of the prediction (e.g. ensemble mean minus truth).
    n_bins : int

    Returns
    -------
    dict
        ``"predicted"`` and ``"rmse"``: tensors ``(n_bins,)``, the mean spread and the
        RMS error of each bin (all images pooled); ``"spearman"``: tensor ``(B,)``,
        the rank correlation of ``spread`` and ``|error|`` in each image;
        ``"ratio"``: float, total RMS error over RMS spread (1 for a calibrated scale;
        above 1, over-confident).

    Taught in lesson 12, section 4 (Exercise 3 writes the binning).
    """
    from scipy.stats import spearmanr

    spread, error = _batch(spread, "spread"), _batch(error, "error")
    if spread.shape != error.shape:
        raise ValueError(f"spread and error must have the same shape, got "
                         f"{tuple(spread.shape)} and {tuple(error.shape)}")
    if (spread < 0).any():
        raise ValueError("spread is a standard deviation: it cannot be negative")
    n_bins = check_int(n_bins, "n_bins", minimum=1)
    s = spread.detach().double().flatten()
    e = error.detach().double().flatten()
    if s.numel() < n_bins:
        raise ValueError(f"{s.numel()} pixels cannot fill {n_bins} bins")
    order = torch.argsort(s)
    bins = torch.tensor_split(order, n_bins)
    predicted = torch.stack([s[b].mean() for b in bins])
    rmse = torch.stack([e[b].pow(2).mean().sqrt() for b in bins])
    rho = [spearmanr(a.flatten().double().cpu().numpy(), b.flatten().abs().double().cpu().numpy())[0]
           for a, b in zip(spread.detach(), error.detach())]
    return {"predicted": predicted, "rmse": rmse,
            "spearman": torch.as_tensor(np.nan_to_num(np.asarray(rho, dtype=float))),
            "ratio": float(e.pow(2).mean().sqrt() / s.pow(2).mean().sqrt().clamp(
                min=torch.finfo(torch.float64).tiny))}
