"""Classical iterative reconstruction: Landweber, SIRT, CGLS, MLEM and TV by Chambolle-Pock.

Every method here solves :math:`A x \\approx y` for an image :math:`x` from data
:math:`y` and only uses what any :class:`~course_utils.operators.linear_operator.LinearOperator`
offers: ``A(x)``, ``A.T(y)``, ``A.norm()`` and the shapes.  So the same function
reconstructs from a hand-made matrix, a parallel-beam or a fan-beam Radon transform.

Conventions shared by all methods
---------------------------------
- One argument order: the operator first, the data second, then the number of
  iterations, then keyword options: ``landweber(A, y, n_iter, step=...)``,
  ``tv_pdhg(A, y, n_iter, lam=...)``.
- ``y`` has shape ``(..., *A.range_shape)``, e.g. ``(..., n_angles, n_detectors)``;
  leading dimensions are batch dimensions and every item of the batch is
  reconstructed independently.  The result has shape ``(..., *A.domain_shape)`` and
  the dtype and device of ``y``.
- ``callback(iteration, x)`` is called after every iteration (``iteration`` counts
  from 1) with the current iterate: a tensor (also when the inputs were NumPy arrays)
  that later iterations do not modify, so it can be stored.  Use it to record
  error-versus-iteration curves; its return value is ignored.
- ``progress=True`` shows a progress bar.
- The iterations run under ``torch.no_grad()``: these are reference reconstructions,
  and keeping the autograd graph of hundreds of iterations would cost a lot of memory
  for nothing.  Learned (unrolled) methods in later lessons write their own loop.

The image gradient :math:`D` of total variation (``cu.Gradient``) and the helpers
``cu.image_gradient``, ``cu.image_divergence`` and ``cu.total_variation`` live in
:mod:`course_utils.operators.finite_differences`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers

import torch
from tqdm.auto import trange

from ..arrays import check_floating, check_int, check_number, numpy_compatible
from ..operators.finite_differences import Gradient
# The TV helpers used to live here; code that imports them from here still works.
from ..operators.finite_differences import (  # noqa: F401
    image_divergence, image_gradient, total_variation)
from ..operators.linear_operator import LinearOperator

__all__ = ["landweber", "sirt", "cgls", "mlem", "tv_pdhg"]


# --- Landweber ------------------------------------------------------------------------
@numpy_compatible
def landweber(A, y, n_iter, *, step=None, x0=None, nonneg=False, callback=None,
              progress=False):
    """Landweber iteration: gradient descent on :math:`\\tfrac12\\|A x - y\\|_2^2`.

    .. math:: x_{k+1} = x_k + \\omega\\, A^T (y - A x_k)

    followed by :math:`x_{k+1} \\leftarrow \\max(x_{k+1}, 0)` when ``nonneg=True``
    (projected Landweber).

    When to use: the simplest iterative method, for teaching and as a baseline; slow,
    and stopping it early acts as regularisation.  Taught in lesson 02, section 3.1
    (and lesson 07, section 1.1, as the gradient descent a network can unroll).

    Parameters
    ----------
    A : LinearOperator
        Forward model, images ``(..., *A.domain_shape)`` to data ``(..., *A.range_shape)``.
    y : torch.Tensor or numpy.ndarray, shape (..., *A.range_shape)
        Measured data, e.g. a sinogram ``(..., n_angles, n_detectors)``.
    n_iter : int
        Number of iterations (positive).
    step : float, optional
        Step size :math:`\\omega`.  The gradient of the objective is Lipschitz with
        constant :math:`\\|A\\|_2^2`, so the iteration converges for
        :math:`0 < \\omega < 2 / \\|A\\|_2^2` and diverges for larger steps.  The default
        :math:`\\omega = 1 / \\|A\\|_2^2` is safely inside that range and makes every
        step decrease the objective, also with ``nonneg=True``.
    x0 : torch.Tensor or numpy.ndarray, shape (..., *A.domain_shape), optional
        Start image (default zeros).  A single image is shared by the whole batch.
    nonneg : bool
        Clip negative values to zero after every step.
    callback : callable, optional
        ``callback(iteration, x)`` after every iteration; its return value is ignored.
    progress : bool
        Show a progress bar.

    Returns
    -------
    x : torch.Tensor or numpy.ndarray, shape (..., *A.domain_shape)

    References
    ----------
    L. Landweber (1951). An iteration formula for Fredholm integral equations of the
    first kind. American Journal of Mathematics 73(3), 615-624.
    """
    y, n_iter = _check_problem(A, y, n_iter, callback, "landweber")
    x = _initial_image(x0, A, y, fill=0.0)
    if step is None:
        step = 1.0 / A.norm() ** 2
    step = check_number(step, "step", positive=True)

    with torch.no_grad():
        for k in _iterations(n_iter, progress, "Landweber"):
            x = x + step * A.T(y - A(x))
            if nonneg:
                x = x.clamp(min=0)
            if callback is not None:
                callback(k, x)
    return x


# --- SIRT -----------------------------------------------------------------------------
@numpy_compatible
def sirt(A, y, n_iter, *, x0=None, nonneg=True, callback=None, progress=False):
    """SIRT: Landweber with the ray and pixel weights of a non-negative system matrix.

    .. math:: x_{k+1} = x_k + C\\, A^T R\\, (y - A x_k), \\qquad
              R = \\operatorname{diag}\\frac{1}{A \\mathbf 1}, \\quad
              C = \\operatorname{diag}\\frac{1}{A^T \\mathbf 1}

    :math:`A \\mathbf 1` are the row sums (length of each ray inside the image) and
    :math:`A^T \\mathbf 1` the column sums (how much each pixel is seen).  Rays or
    pixels with a zero sum get weight 0, so pixels no ray sees keep their start value.
    It is gradient descent on the weighted least squares
    :math:`\\tfrac12\\|A x - y\\|_R^2` preconditioned by :math:`C`, and needs no step
    size: for :math:`A \\ge 0` the step 1 is always safe.

    When to use: the standard workhorse of tomography toolboxes (ASTRA, TIGRE); like
    Landweber but with no step size to tune and faster in practice.  Taught in
    lesson 02, section 3.2.

    Parameters
    ----------
    A : LinearOperator
        Forward model with non-negative entries (a projector).
    y : torch.Tensor or numpy.ndarray, shape (..., *A.range_shape)
        Measured data, e.g. a sinogram ``(..., n_angles, n_detectors)``.
    n_iter : int
        Number of iterations (positive).
    x0 : torch.Tensor or numpy.ndarray, shape (..., *A.domain_shape), optional
        Start image (default zeros).
    nonneg : bool
        Clip negative values to zero after every step (default True: attenuation is
        never negative).
    callback : callable, optional
        ``callback(iteration, x)`` after every iteration.
    progress : bool
        Show a progress bar.

    Returns
    -------
    x : torch.Tensor or numpy.ndarray, shape (..., *A.domain_shape)

    References
    ----------
    P. Gilbert (1972). Iterative methods for the three-dimensional reconstruction of an
    object from projections. Journal of Theoretical Biology 36(1), 105-117.
    """
    y, n_iter = _check_problem(A, y, n_iter, callback, "sirt")
    x = _initial_image(x0, A, y, fill=0.0)

    with torch.no_grad():
        row_sums = A(torch.ones(A.domain_shape, dtype=y.dtype, device=y.device))
        column_sums = A.T(torch.ones(A.range_shape, dtype=y.dtype, device=y.device))
        R = _safe_reciprocal(row_sums)
        C = _safe_reciprocal(column_sums)
        for k in _iterations(n_iter, progress, "SIRT"):
            x = x + C * A.T(R * (y - A(x)))
            if nonneg:
                x = x.clamp(min=0)
            if callback is not None:
                callback(k, x)
    return x


# --- CGLS -----------------------------------------------------------------------------
@numpy_compatible
def cgls(A, y, n_iter, *, x0=None, callback=None, progress=False):
    """CGLS: conjugate gradients on the normal equations :math:`A^T A x = A^T y`.

    With residual :math:`r_0 = y - A x_0`, :math:`s_0 = p_0 = A^T r_0`,
    :math:`\\gamma_0 = \\|s_0\\|^2`, every iteration does

    .. math::
        q_k = A p_k,\\quad \\alpha_k = \\frac{\\gamma_k}{\\|q_k\\|^2},\\quad
        x_{k+1} = x_k + \\alpha_k p_k,\\quad r_{k+1} = r_k - \\alpha_k q_k,

        s_{k+1} = A^T r_{k+1},\\quad \\gamma_{k+1} = \\|s_{k+1}\\|^2,\\quad
        p_{k+1} = s_{k+1} + \\frac{\\gamma_{k+1}}{\\gamma_k} p_k .

    It never forms :math:`A^T A` and is more accurate than plain CG on it.  The scalars
    :math:`\\alpha, \\beta` are computed per batch item; once an item has converged
    (:math:`\\|A^T r\\|^2` at rounding level, :math:`\\varepsilon_{\\text{machine}}^2`
    times its start, or a zero denominator) its scalars are set to 0 and it stays put.

    When to use: the fastest way to a least-squares solution; like Landweber, stop it
    early to regularise (the iteration number is the regularisation parameter).
    Taught in lesson 02, section 3.2.

    Parameters
    ----------
    A : LinearOperator
        Forward model.
    y : torch.Tensor or numpy.ndarray, shape (..., *A.range_shape)
        Measured data, e.g. a sinogram ``(..., n_angles, n_detectors)``.
    n_iter : int
        Number of iterations (positive).
    x0 : torch.Tensor or numpy.ndarray, shape (..., *A.domain_shape), optional
        Start image (default zeros).
    callback : callable, optional
        ``callback(iteration, x)`` after every iteration.
    progress : bool
        Show a progress bar.

    Returns
    -------
    x : torch.Tensor or numpy.ndarray, shape (..., *A.domain_shape)

    References
    ----------
    M. R. Hestenes and E. Stiefel (1952). Methods of conjugate gradients for solving
    linear systems. Journal of Research of the National Bureau of Standards 49(6),
    409-436.  Å. Björck (1996). Numerical Methods for Least Squares Problems, SIAM.
    """
    y, n_iter = _check_problem(A, y, n_iter, callback, "cgls")
    x = _initial_image(x0, A, y, fill=0.0)
    n_image, n_data = len(A.domain_shape), len(A.range_shape)

    with torch.no_grad():
        r = y - A(x)
        s = A.T(r)
        p = s
        gamma = _squared_norm(s, n_image)
        # An item whose A^T r has fallen to rounding level has converged; iterating on
        # would only amplify rounding errors (on small full-rank problems they grow
        # until the iterate diverges), so from then on its scalars are 0.
        floor = gamma * torch.finfo(gamma.dtype).eps ** 2
        for k in _iterations(n_iter, progress, "CGLS"):
            q = A(p)
            alpha = _safe_divide(gamma, _squared_norm(q, n_data))
            x = x + _per_item(alpha, n_image) * p
            r = r - _per_item(alpha, n_data) * q
            s = A.T(r)
            gamma_new = _squared_norm(s, n_image)
            gamma_new = torch.where(gamma_new > floor, gamma_new, torch.zeros_like(gamma_new))
            beta = _safe_divide(gamma_new, gamma)
            p = s + _per_item(beta, n_image) * p
            gamma = gamma_new
            if callback is not None:
                callback(k, x)
    return x


# --- MLEM -----------------------------------------------------------------------------
@numpy_compatible
def mlem(A, y, n_iter, *, x0=None, callback=None, progress=False, eps=1e-10):
    """MLEM: the expectation-maximisation algorithm for Poisson data.

    .. math:: x_{k+1} = \\frac{x_k}{A^T \\mathbf 1}\\, A^T\\!\\left(\\frac{y}{A x_k}\\right)

    Every iteration increases the Poisson likelihood, i.e. decreases the negative
    log-likelihood :math:`\\sum_i \\big((A x)_i - y_i \\log (A x)_i\\big)`.  The update is
    multiplicative, so a non-negative start stays non-negative and pixels that are 0
    stay 0.  Pixels no ray sees (:math:`A^T \\mathbf 1 = 0`) are set to 0.

    When to use: emission tomography (PET, SPECT) and low-count data, where the noise is
    Poisson.  Taught in lesson 02, section 3.4, and unrolled into a network in
    lesson 06 (sections 2 to 4).

    Parameters
    ----------
    A : LinearOperator
        Forward model with non-negative entries (a projector).
    y : torch.Tensor or numpy.ndarray, shape (..., *A.range_shape)
        Measured counts (non-negative), e.g. a sinogram ``(..., n_angles, n_detectors)``.
    n_iter : int
        Number of iterations (positive).
    x0 : torch.Tensor or numpy.ndarray, shape (..., *A.domain_shape), optional
        Non-negative start image (default ones: MLEM cannot move away from 0).
    callback : callable, optional
        ``callback(iteration, x)`` after every iteration.
    progress : bool
        Show a progress bar.
    eps : float
        :math:`A x` is clamped from below at ``eps`` before dividing, so that rays with
        no activity give no division by zero.  Keep it far below typical data values.

    Returns
    -------
    x : torch.Tensor or numpy.ndarray, shape (..., *A.domain_shape)

    References
    ----------
    L. A. Shepp and Y. Vardi (1982). Maximum likelihood reconstruction for emission
    tomography. IEEE Transactions on Medical Imaging 1(2), 113-122.
    """
    y, n_iter = _check_problem(A, y, n_iter, callback, "mlem")
    eps = check_number(eps, "eps", positive=True)
    if bool((y < 0).any()):
        raise ValueError(
            "mlem models Poisson counts, so y must be non-negative, but it has values "
            f"down to {float(y.min()):.3g}; clip it first, e.g. y.clamp(min=0)"
        )
    x = _initial_image(x0, A, y, fill=1.0)
    if bool((x < 0).any()):
        raise ValueError("mlem needs a non-negative start image x0, got negative values")

    with torch.no_grad():
        sensitivity = A.T(torch.ones(A.range_shape, dtype=y.dtype, device=y.device))
        inverse_sensitivity = _safe_reciprocal(sensitivity)
        for k in _iterations(n_iter, progress, "MLEM"):
            ratio = y / A(x).clamp(min=eps)
            x = x * inverse_sensitivity * A.T(ratio)
            # A no-op for A >= 0; guards against tiny negative entries of an operator.
            x = x.clamp(min=0)
            if callback is not None:
                callback(k, x)
    return x


# --- TV by Chambolle-Pock (PDHG) ------------------------------------------------------
def _accepts_old_tv_order(function):
    """Let ``tv_pdhg`` also take its old argument order, ``tv_pdhg(A, y, lam, n_iter)``.

    The new order has three positional arguments and ``lam`` by keyword, so a fourth
    positional one, or a third one next to ``n_iter=...``, can only be the old order.
    It is accepted where the types tell ``lam`` from ``n_iter``: ``lam`` not an
    integer, ``n_iter`` an integer.  Anything else is a ``TypeError`` that shows the
    new order.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        old_order = "lam" not in kwargs and (
            len(args) == 4 or (len(args) == 3 and "n_iter" in kwargs))
        if old_order:
            A, y, lam = args[:3]
            n_iter = args[3] if len(args) == 4 else kwargs.pop("n_iter")
            if _is_integer(lam) or not _is_integer(n_iter):
                raise TypeError(
                    f"tv_pdhg(A, y, {lam!r}, {n_iter!r}) is ambiguous: the order is "
                    f"tv_pdhg(A, y, n_iter, lam=...), with lam by keyword, e.g. "
                    f"tv_pdhg(A, y, 300, lam=0.1).  The old order tv_pdhg(A, y, lam, "
                    f"n_iter) is still accepted when lam is a float (0.1, 1.0) and n_iter "
                    f"an int")
            args, kwargs = (A, y, n_iter), {**kwargs, "lam": lam}
        elif len(args) > 3:
            raise TypeError(
                f"tv_pdhg takes 3 positional arguments, (A, y, n_iter), but got "
                f"{len(args)}: give lam and the options by keyword, e.g. "
                f"tv_pdhg(A, y, 300, lam=0.1, tol=1e-4)")
        return function(*args, **kwargs)

    return wrapper


def _is_integer(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_floating_point()
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@_accepts_old_tv_order
@numpy_compatible
def tv_pdhg(A, y, n_iter, *, lam, x0=None, nonneg=True, tol=None, callback=None,
            progress=False, differentiable=False):
    """Total-variation regularised least squares by the Chambolle-Pock algorithm (PDHG).

    Solves

    .. math:: \\min_x \\; \\tfrac12 \\|A x - y\\|_2^2 + \\lambda\\, \\mathrm{TV}(x)
              \\; (+\\ \\iota_{x \\ge 0}(x)),

    with the isotropic total variation :math:`\\mathrm{TV}(x) = \\|D x\\|_{2,1}` of the
    image gradient :math:`D` (:class:`~course_utils.operators.finite_differences.Gradient`).
    Writing the problem as :math:`\\min_x F(K x) + G(x)` with :math:`K = [A;\\ \\mu D]`,
    :math:`F(z, w) = \\tfrac12\\|z - y\\|^2 + \\tfrac{\\lambda}{\\mu}\\|w\\|_{2,1}` and
    :math:`G` the indicator of :math:`x \\ge 0`, each iteration does

    .. math::
        p &\\leftarrow \\frac{p + \\sigma (A \\bar x - y)}{1 + \\sigma}, \\qquad
        q \\leftarrow \\Pi_{\\lambda/\\mu}\\big(q + \\sigma \\mu D \\bar x\\big),

        x^{+} &\\leftarrow \\max\\!\\big(0,\\ x - \\tau (A^T p + \\mu D^T q)\\big),
        \\qquad \\bar x \\leftarrow 2 x^{+} - x,\\quad x \\leftarrow x^{+},

    where :math:`\\Pi_r` projects every pixel's 2-vector onto the disc of radius
    :math:`r` (and :math:`D^T = -\\mathrm{div}`).  The step sizes are
    :math:`\\sigma = \\tau = 1/L` with :math:`L \\ge \\|K\\|`:
    :math:`L = 1.01 \\sqrt{\\|A\\|^2 + \\mu^2 \\|D\\|^2}`, with the exact
    :math:`\\|D\\|` (``D.norm()``, below :math:`\\sqrt 8`; the 1% margin covers the
    power-method estimate of :math:`\\|A\\|`, which approaches it from below).

    The scale :math:`\\mu = \\|A\\| / \\|D\\|` makes both blocks of :math:`K` equally
    large.  It changes nothing in the problem being solved, only the path to it:
    projectors have norms of tens to hundreds while :math:`\\|D\\| \\approx 2.8`, and
    without it the TV part takes tiny steps: whenever :math:`\\lambda` matters, the
    unscaled iteration needs several times more iterations to reach the same
    objective (5 to over 20 times more on a 32 x 32 Radon problem).

    When to use: few-view or noisy data of piecewise-constant objects, where TV removes
    streaks and noise while keeping edges; the classical model-based baseline that
    learned methods are compared with.  Taught in lesson 02, section 3.5, and unrolled
    into learned primal-dual in lesson 07 (section 1.2).

    Parameters
    ----------
    A : LinearOperator
        Forward model from images ``(..., H, W)`` (``A.domain_shape`` must be 2-D).
    y : torch.Tensor or numpy.ndarray, shape (..., *A.range_shape)
        Measured data, e.g. a sinogram ``(..., n_angles, n_detectors)``.
    n_iter : int
        Number of iterations (positive); a few hundred are typical.
    lam : float, keyword only
        Regularisation weight :math:`\\lambda \\ge 0` (0 gives least squares).  Its
        good value depends on the noise level and on the scale of ``A`` and ``y``:
        try a few values on a logarithmic scale.
    x0 : torch.Tensor or numpy.ndarray, shape (..., H, W), optional
        Start image (default zeros).
    nonneg : bool
        Add the constraint :math:`x \\ge 0` (default True).
    tol : float, optional
        Stop early, once the relative change of the iterate,
        :math:`\\|x^{k+1} - x^k\\| / \\|x^{k+1}\\|`, is below ``tol`` for every item of
        the batch (``n_iter`` is then the cap).  ``1e-4`` is converged for the eye and
        for PSNR to about 0.01 dB in the shared setting.  The number of iterations run
        is kept in ``tv_pdhg.last_iterations``.
    callback : callable, optional
        ``callback(iteration, x)`` after every iteration.  PDHG does not decrease the
        objective at every step, only in the long run.
    progress : bool
        Show a progress bar.
    differentiable : bool
        Keep the autograd graph of every iteration, so that the result can be
        differentiated with respect to ``y`` (or ``x0``): the unrolled algorithm is then
        a differentiable function of its data, as a network is.  Memory grows with the
        number of iterations; lesson 12 (section 1) uses it to find the data
        perturbation that changes the TV reconstruction most.  Default False (no graph).

    Returns
    -------
    x : torch.Tensor or numpy.ndarray, shape (..., H, W)

    Notes
    -----
    The old argument order, ``tv_pdhg(A, y, lam, n_iter)``, still works when ``lam``
    is a float and ``n_iter`` an int (``tv_pdhg(A, y, 0.1, 300)``); a call that could
    mean either order (two integers) is a ``TypeError``.

    References
    ----------
    A. Chambolle and T. Pock (2011). A first-order primal-dual algorithm for convex
    problems with applications to imaging. Journal of Mathematical Imaging and Vision
    40(1), 120-145.  L. I. Rudin, S. Osher and E. Fatemi (1992). Nonlinear total
    variation based noise removal algorithms. Physica D 60(1-4), 259-268.
    """
    y, n_iter = _check_problem(A, y, n_iter, callback, "tv_pdhg")
    lam = check_number(lam, "lam", positive=False)
    if len(A.domain_shape) != 2:
        raise ValueError(
            f"tv_pdhg needs an operator on 2-D images (H, W), but A.domain_shape is "
            f"{A.domain_shape}"
        )
    x = _initial_image(x0, A, y, fill=0.0)
    if tol is not None:
        tol = check_number(tol, "tol", positive=True)

    D = Gradient(A.domain_shape, device=A.device)
    norm_A, norm_D = A.norm(), D.norm()
    mu = norm_A / norm_D
    L = 1.01 * math.sqrt(norm_A**2 + (mu * norm_D) ** 2)
    sigma = tau = 1.0 / L
    radius = lam / mu

    with (contextlib.nullcontext() if differentiable else torch.no_grad()):
        x_bar = x
        p = torch.zeros_like(y)
        q = torch.zeros(*x.shape[:-2], *D.range_shape, dtype=x.dtype, device=x.device)
        for k in _iterations(n_iter, progress, "TV (PDHG)"):
            p = (p + sigma * (A(x_bar) - y)) / (1.0 + sigma)
            if lam > 0:
                q = q + sigma * mu * D(x_bar)
                # |q| per pixel; written out because vector_norm over a middle
                # dimension is ~50x slower on the CPU
                squared = q.pow(2).sum(dim=-3, keepdim=True)
                if differentiable:
                    # the slope of sqrt at 0 is infinite, and 0 * inf is nan in the
                    # backward pass; a tiny floor keeps it finite (zero after the clamp)
                    squared = squared + torch.finfo(q.dtype).tiny
                length = squared.sqrt()
                q = q / torch.clamp(length / radius, min=1.0)
            x_new = x - tau * (A.T(p) + mu * D.T(q))
            if nonneg:
                x_new = x_new.clamp(min=0)
            x_bar = 2.0 * x_new - x
            if tol is not None:
                change = _squared_norm(x_new - x, 2).sqrt()
                size = _squared_norm(x_new, 2).sqrt()
                converged = bool((change <= tol * size).all())
            x = x_new
            if callback is not None:
                callback(k, x)
            if tol is not None and converged:
                break
    tv_pdhg.last_iterations = k
    return x


# --- shared helpers -------------------------------------------------------------------
def _check_problem(A, y, n_iter, callback, name):
    """Check the arguments every algorithm has, once; return ``y`` and ``n_iter``."""
    if not isinstance(A, LinearOperator):
        order = (f"; the operator comes first: {name}(A, y, n_iter)"
                 if isinstance(y, LinearOperator) else "")
        raise TypeError(
            f"{name} expects A to be a course_utils LinearOperator (e.g. "
            f"cu.RadonTransform or cu.MatrixOperator), got {type(A).__name__}{order}"
        )
    y = A.check_range(y, "y", caller=name)
    n_iter = check_int(n_iter, "n_iter")
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be a function callback(iteration, x) or None, "
            f"got {type(callback).__name__}"
        )
    return y, n_iter


def _initial_image(x0, A, y, fill):
    """The start image: ``x0`` broadcast to the batch of ``y`` (a copy), or ``fill``."""
    batch = tuple(y.shape[: y.dim() - len(A.range_shape)])
    shape = batch + A.domain_shape
    if x0 is None:
        return torch.full(shape, fill, dtype=y.dtype, device=y.device)
    if not isinstance(x0, torch.Tensor):
        raise TypeError(
            f"x0 must be a torch.Tensor or NumPy array, got {type(x0).__name__}"
        )
    check_floating(x0, "x0")
    try:
        fits = torch.broadcast_shapes(x0.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"x0 must have shape {shape} (the batch of y and A.domain_shape) or "
            f"{A.domain_shape} (shared by the batch), got {tuple(x0.shape)}"
        )
    return x0.detach().to(device=y.device, dtype=y.dtype).expand(shape).clone()


def _iterations(n_iter, progress, name):
    """Iteration numbers 1, ..., n_iter, with a progress bar if asked for."""
    return trange(1, n_iter + 1, desc=name, disable=not progress)


def _safe_divide(a, b):
    """a / b where b > 0, and 0 elsewhere (zero-weight rays or pixels, converged items)."""
    positive = b > 0
    return torch.where(positive, a / torch.where(positive, b, torch.ones_like(b)),
                       torch.zeros_like(b))


def _safe_reciprocal(t):
    """1 / t where t > 0, and 0 elsewhere."""
    return _safe_divide(torch.ones_like(t), t)


def _squared_norm(t, n_trailing):
    """Squared 2-norm over the last ``n_trailing`` dims: one number per batch item."""
    return t.pow(2).sum(dim=tuple(range(-n_trailing, 0)))


def _per_item(s, n_trailing):
    """Reshape per-item scalars of shape ``batch`` to broadcast against ``(*batch, ...)``."""
    return s.reshape(s.shape + (1,) * n_trailing)
