"""Image quality: peak signal-to-noise ratio (PSNR) and structural similarity (SSIM).

Both compare a reconstruction ``x`` with the ground truth ``ref``, image by image:
inputs are ``(..., H, W)`` and the result has shape ``(...)`` (a 0-dim tensor for a
single image).  Higher is better for both.

Both depend on the *data range* :math:`R`, the spread of values an image can take.
Pass it explicitly when you know it (``data_range=1.0`` for phantoms in [0, 1]): the
default, the range of each reference image, makes scores of different images not
quite comparable.

For volumes ``(..., D, H, W)`` (cone-beam CT, lesson 13), :func:`psnr_3d` takes one
mean squared error over all voxels and :func:`ssim_3d` averages the SSIM of the axial
slices.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from .arrays import as_tensor, check_floating, numpy_compatible

__all__ = ["psnr", "ssim", "psnr_3d", "ssim_3d"]


def _check_pair(x, ref) -> tuple[torch.Tensor, torch.Tensor]:
    x = check_floating(as_tensor(x, "x"), "x")
    ref = check_floating(as_tensor(ref, "ref"), "ref")
    if x.shape != ref.shape:
        raise ValueError(
            f"x and ref must have the same shape, got {tuple(x.shape)} and {tuple(ref.shape)}"
        )
    if x.ndim < 2:
        raise ValueError(f"expected images of shape (..., H, W), got shape {tuple(x.shape)}")
    if x.device != ref.device:
        raise ValueError(f"x and ref must be on the same device, got {x.device} and {ref.device}")
    dtype = torch.promote_types(x.dtype, ref.dtype)
    return x.to(dtype), ref.to(dtype)


def _data_range(ref: torch.Tensor, data_range, dims=(-2, -1), item="an image") -> torch.Tensor:
    """Data range per image (or per volume), shape (...) of the batch (or broadcastable to it)."""
    if data_range is None:
        R = ref.amax(dim=dims) - ref.amin(dim=dims)
        if (R == 0).any():
            raise ValueError(
                f"ref has {item} with constant value, so its data range is 0; "
                "pass data_range explicitly (e.g. data_range=1.0)"
            )
        return R
    R = torch.as_tensor(data_range, dtype=ref.dtype, device=ref.device)
    if (R <= 0).any():
        raise ValueError(f"data_range must be positive, got {data_range}")
    return R


@numpy_compatible
def psnr(x, ref, *, data_range=None):
    """Peak signal-to-noise ratio in decibels, per image.

    .. math::  \\text{PSNR}(x, x^*) = 10 \\log_{10} \\frac{R^2}{\\text{MSE}}, \\qquad
               \\text{MSE} = \\frac{1}{HW} \\sum_{i,j} (x_{ij} - x^*_{ij})^2 .

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray, shape (..., H, W)
        Images to assess (e.g. reconstructions), float32 or float64.
    ref : torch.Tensor or numpy.ndarray, shape (..., H, W)
        Ground-truth images, same shape.
    data_range : float or torch.Tensor, optional
        :math:`R`; a number or a tensor broadcastable to the batch shape ``(...)``.
        Default: ``ref.max() - ref.min()`` of each image.  Giving it explicitly is
        recommended (``1.0`` for phantoms in [0, 1]).

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (...)
        PSNR in dB; ``inf`` where ``x`` equals ``ref``.

    Examples
    --------
    >>> ref = torch.zeros(64, 64)
    >>> float(psnr(ref + 0.1, ref, data_range=1.0))    # MSE = 0.01 -> 20 dB
    20.0

    Taught in lesson 01, section 1; every results table uses it.
    """
    x, ref = _check_pair(x, ref)
    R = _data_range(ref, data_range)
    mse = ((x - ref) ** 2).mean(dim=(-2, -1))
    return 10 * torch.log10(R**2 / mse)  # mse = 0 gives R^2 / 0 = inf


def _gaussian_window(sigma: float, truncate: float, dtype, device) -> torch.Tensor:
    """Normalised 1-D Gaussian, cut at ``truncate * sigma`` like scipy.ndimage."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


@numpy_compatible
def ssim(x, ref, *, data_range=None):
    """Structural similarity index (Wang et al., 2004), per image, in [-1, 1].

    SSIM compares local means :math:`\\mu`, variances :math:`\\sigma^2` and the
    covariance :math:`\\sigma_{x x^*}`, computed with a Gaussian window
    (:math:`\\sigma = 1.5` pixels, 11 x 11), and averages the local index

    .. math::  \\frac{(2 \\mu_x \\mu_{x^*} + C_1)(2 \\sigma_{x x^*} + C_2)}
               {(\\mu_x^2 + \\mu_{x^*}^2 + C_1)(\\sigma_x^2 + \\sigma_{x^*}^2 + C_2)},
               \\qquad C_1 = (0.01 R)^2, \\; C_2 = (0.03 R)^2,

    over all pixels at least 5 pixels away from the border.  It matches
    ``skimage.metrics.structural_similarity(x, ref, data_range=R,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``, and it is
    differentiable, so it can also serve as a training loss (``1 - ssim``).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray, shape (..., H, W)
        Images to assess, float32 or float64; ``H, W >= 11``.
    ref : torch.Tensor or numpy.ndarray, shape (..., H, W)
        Ground-truth images, same shape.
    data_range : float or torch.Tensor, optional
        :math:`R`, as in :func:`psnr`.  Default: ``ref.max() - ref.min()`` per image.

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (...)
        Mean SSIM of each image; 1 where ``x`` equals ``ref``.

    Taught in lesson 01, section 5; every results table uses it.
    """
    x, ref = _check_pair(x, ref)
    H, W = x.shape[-2:]
    window = _gaussian_window(1.5, 3.5, x.dtype, x.device)
    if min(H, W) < len(window):
        raise ValueError(
            f"ssim needs images of at least {len(window)} x {len(window)} pixels, "
            f"got {H} x {W}"
        )
    R = _data_range(ref, data_range)
    C1 = ((0.01 * R) ** 2)[..., None, None]
    C2 = ((0.03 * R) ** 2)[..., None, None]

    batch_shape = x.shape[:-2]
    x = x.reshape(-1, 1, H, W)
    ref = ref.reshape(-1, 1, H, W)

    def local_mean(image):
        # separable Gaussian filter; 'valid' convolution keeps exactly the pixels that
        # are averaged in the end, so no border handling is needed
        image = F.conv2d(image, window.view(1, 1, -1, 1))
        return F.conv2d(image, window.view(1, 1, 1, -1))

    mu_x, mu_r = local_mean(x), local_mean(ref)
    var_x = local_mean(x * x) - mu_x**2
    var_r = local_mean(ref * ref) - mu_r**2
    cov = local_mean(x * ref) - mu_x * mu_r

    h, w = mu_x.shape[-2:]
    mu_x, mu_r, var_x, var_r, cov = (t.reshape(*batch_shape, h, w)
                                     for t in (mu_x, mu_r, var_x, var_r, cov))
    ssim_map = ((2 * mu_x * mu_r + C1) * (2 * cov + C2)
                / ((mu_x**2 + mu_r**2 + C1) * (var_x + var_r + C2)))
    return ssim_map.mean(dim=(-2, -1))


def _check_volumes(x, ref) -> tuple[torch.Tensor, torch.Tensor]:
    x, ref = _check_pair(x, ref)
    if x.ndim < 3:
        raise ValueError(f"expected volumes of shape (..., D, H, W), got shape "
                         f"{tuple(x.shape)}; for images use psnr and ssim")
    return x, ref


@numpy_compatible
def psnr_3d(x, ref, *, data_range=None):
    """PSNR of whole volumes: one mean squared error over all voxels, in decibels.

    .. math::  10 \\log_{10} \\frac{R^2}{\\frac{1}{DHW}\\sum_{d,h,w}
               (x_{dhw} - x^*_{dhw})^2}.

    Not the mean of the slices' PSNRs: a few bad slices (the top and bottom of a
    cone-beam volume) weigh in through their squared error, not through a logarithm.

    Parameters
    ----------
    x, ref : torch.Tensor or numpy.ndarray, shape (..., D, H, W)
        Volumes to assess and ground-truth volumes, same shape.
    data_range : float or torch.Tensor, optional
        :math:`R`.  Default: ``ref.max() - ref.min()`` of each volume.

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (...)
        PSNR in dB, per volume.

    Examples
    --------
    >>> ref = torch.zeros(8, 16, 16)
    >>> float(psnr_3d(ref + 0.1, ref, data_range=1.0))
    20.0

    Taught in lesson 13 (its results table).
    """
    x, ref = _check_volumes(x, ref)
    data_range = _data_range(ref, data_range, (-3, -2, -1), "a volume")
    depth, height, width = x.shape[-3:]
    # a volume is one image of D*H rows: psnr's mean over (-2, -1) is then over all voxels
    shape = (*x.shape[:-3], depth * height, width)
    return psnr(x.reshape(shape), ref.reshape(shape), data_range=data_range)


@numpy_compatible
def ssim_3d(x, ref, *, data_range=None):
    """SSIM of whole volumes: the mean of :func:`ssim` over the axial slices.

    The slice-wise convention (each ``x[..., d, :, :]`` against ``ref[..., d, :, :]``,
    with one data range per volume); a 3D Gaussian window would give slightly
    different numbers.

    Parameters
    ----------
    x, ref : torch.Tensor or numpy.ndarray, shape (..., D, H, W)
        Volumes to assess and ground-truth volumes, same shape; ``H, W >= 11``.
    data_range : float or torch.Tensor, optional
        :math:`R`.  Default: ``ref.max() - ref.min()`` of each volume.

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (...)
        Mean SSIM per volume.

    Taught in lesson 13 (its results table).
    """
    x, ref = _check_volumes(x, ref)
    data_range = _data_range(ref, data_range, (-3, -2, -1), "a volume")
    R = torch.as_tensor(data_range, dtype=ref.dtype, device=ref.device)
    per_slice = ssim(x, ref, data_range=R[..., None] if R.ndim else R)
    return per_slice.mean(dim=-1)
