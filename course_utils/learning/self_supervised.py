"""Learning to denoise without clean images: Noise2Inverse and a blind-spot baseline.

Lesson 10 teaches both.  When a scan is noisy and no clean image of the same kind exists,
a network can still learn to denoise if it is shown two *independent* noisy views of the
same object:

* **Noise2Inverse** (Hendriksen, Pelt and Batenburg 2020) splits the projection angles
  of one scan into :math:`K` disjoint subsets, reconstructs each subset on its own
  (:func:`sub_reconstructions`), and trains a network to predict one sub-reconstruction
  from the mean of the others (:func:`noise2inverse_pairs`).  Given the object, the noise
  of different subsets is independent (different photons), so the expected loss is the
  supervised loss plus a constant, and the network learns the same denoiser.  At
  inference the :math:`K` predictions are averaged (:func:`noise2inverse_predict`).
* **Blind-spot** training (Noise2Self, Batson and Royer 2019; Noise2Void, Krull et al.
  2019) hides some pixels of the noisy image itself and trains the network to predict
  them from their neighbours (:class:`BlindSpotDataset`, :func:`blind_spot_loss`,
  :func:`blind_spot_predict`).  It
  needs noise that is independent from pixel to pixel; noise in a reconstruction is not
  (lesson 10, section 2, measures it), and the method fails there.

Shapes: sinograms ``(..., n_angles, n_detectors)``, images ``(..., N, N)``; the
sub-reconstructions of a batch are stacked in a new first dimension, ``(K, ..., N, N)``.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..arrays import as_tensor, check_floating, check_int
from ..operators.geometry import ParallelBeam
from ..operators.radon import RadonTransform
from ..reconstruction.fbp import fbp

__all__ = ["angle_subsets", "split_sinogram", "sub_reconstructions", "noise2inverse_pairs",
           "noise2inverse_predict", "BlindSpotDataset", "blind_spot_loss", "blind_spot_predict",
           "neighbour_correlation", "autocorrelation"]

SPLIT_STRATEGIES = ("interleaved", "contiguous")
SCHEMES = ("X:1", "1:X")


def angle_subsets(n_angles: int, K: int, strategy: str = "interleaved") -> list:
    """Split the indices ``0 .. n_angles - 1`` of the projection angles into ``K`` subsets.

    ``"interleaved"`` (Noise2Inverse's choice): subset :math:`j` holds the angles
    :math:`j, j + K, j + 2K, \\dots`, so every subset still covers the half circle, only
    more sparsely.  ``"contiguous"``: subset :math:`j` is the :math:`j`-th block of
    consecutive angles, a limited-angle scan (each sub-reconstruction then misses whole
    directions; lesson 10 shows why that is a poor split).

    Parameters
    ----------
    n_angles : int
        Number of projection angles of the scan.
    K : int
        Number of subsets, ``2 <= K <= n_angles``; it must divide ``n_angles`` so that
        every subset has the same number of angles (and the same noise level).
    strategy : {"interleaved", "contiguous"}

    Returns
    -------
    list of torch.Tensor
        ``K`` tensors of ``n_angles / K`` angle indices (int64), disjoint, together all.

    Examples
    --------
    >>> [s.tolist() for s in angle_subsets(6, 2)]
    [[0, 2, 4], [1, 3, 5]]
    >>> [s.tolist() for s in angle_subsets(6, 2, "contiguous")]
    [[0, 1, 2], [3, 4, 5]]

    Taught in lesson 10, section 3.
    """
    n_angles, K = check_int(n_angles, "n_angles"), check_int(K, "K")
    if K < 2 or n_angles % K:
        raise ValueError(f"K must be at least 2 and divide the number of angles "
                         f"({n_angles}), got K={K}")
    if strategy not in SPLIT_STRATEGIES:
        raise ValueError(f"strategy must be one of {SPLIT_STRATEGIES}, got {strategy!r}")
    indices = torch.arange(n_angles)
    if strategy == "interleaved":
        return [indices[j::K] for j in range(K)]
    return list(indices.reshape(K, n_angles // K))


def split_sinogram(y, geometry: ParallelBeam, K: int, strategy: str = "interleaved") -> list:
    """The ``K`` sub-scans of a sinogram: their data and their geometries.

    Parameters
    ----------
    y : torch.Tensor, shape (..., n_angles, n_detectors)
        Sinograms of the full scan.
    geometry : ParallelBeam
        Its scanner.
    K : int
        Number of subsets (see :func:`angle_subsets`).
    strategy : {"interleaved", "contiguous"}

    Returns
    -------
    list of (torch.Tensor, ParallelBeam)
        For each subset, the rows of ``y`` at its angles,
        ``(..., n_angles / K, n_detectors)``, and the geometry with only those angles.

    Taught in lesson 10, section 3 (Exercise 1 writes it).
    """
    y = check_floating(as_tensor(y, "y"), "y")
    if not isinstance(geometry, ParallelBeam):
        raise TypeError(f"geometry must be a ParallelBeam, got {type(geometry).__name__}")
    if y.ndim < 2 or tuple(y.shape[-2:]) != tuple(geometry.sinogram_shape):
        raise ValueError(f"y must hold sinograms of shape (..., {geometry.n_angles}, "
                         f"{geometry.n_detectors}) for this geometry, got {tuple(y.shape)}")
    parts = []
    for subset in angle_subsets(geometry.n_angles, K, strategy):
        sub_geometry = ParallelBeam(angles=geometry.angles[subset],
                                    n_detectors=geometry.n_detectors,
                                    detector_spacing=geometry.detector_spacing)
        parts.append((y[..., subset.to(y.device), :], sub_geometry))
    return parts


def sub_reconstructions(A: RadonTransform, y, K: int, filter: str = "ram-lak",
                        cutoff: float = 1.0, strategy: str = "interleaved") -> torch.Tensor:
    """FBP of each of the ``K`` sub-scans of ``y``: Noise2Inverse's noisy views.

    With interleaved subsets every sub-reconstruction is an FBP from ``n_angles / K``
    evenly spread angles, weighted by their own angular step :math:`K\\pi / n_\\theta`;
    their mean is the FBP of all the angles (FBP is linear).  Given the object their
    noise is independent: each subset saw different photons.

    Parameters
    ----------
    A : RadonTransform
        The operator of the full scan (parallel beam): its geometry and image size.
    y : torch.Tensor, shape (..., n_angles, n_detectors)
        Sinograms of the full scan.
    K : int
        Number of subsets.
    filter, cutoff : str, float
        FBP's filter and cut-off (``cu.fbp``).
    strategy : {"interleaved", "contiguous"}

    Returns
    -------
    torch.Tensor, shape (K, ..., N, N)
        Sub-reconstruction ``j`` in ``[j]``.

    Taught in lesson 10, section 3 (Exercise 1).
    """
    if not isinstance(A, RadonTransform):
        raise TypeError(f"A must be a cu.RadonTransform, got {type(A).__name__}")
    images = []
    for y_j, geometry_j in split_sinogram(y, A.geometry, K, strategy):
        A_j = RadonTransform(image_size=A.image_size, geometry=geometry_j, device=y.device)
        images.append(fbp(A_j, y_j, filter, cutoff))
    return torch.stack(images)


def noise2inverse_pairs(sub_images, scheme: str = "X:1") -> tuple:
    """Training pairs of Noise2Inverse from ``K`` sub-reconstructions of each scan.

    ``"X:1"`` (the paper's choice): for every subset :math:`j`, the input is the mean of
    the *other* :math:`K - 1` sub-reconstructions and the target is sub-reconstruction
    :math:`j`.  ``"1:X"``: the other way round, one sub-reconstruction in, the mean of the
    others out.  Input and target never share a subset, so their noise is independent.

    Parameters
    ----------
    sub_images : torch.Tensor, shape (K, B, 1, N, N)
        From :func:`sub_reconstructions`.
    scheme : {"X:1", "1:X"}

    Returns
    -------
    (inputs, targets) : torch.Tensor, each (K * B, 1, N, N)
        Pairs for ``cu.train``; subset :math:`j` of scan :math:`b` is item ``j * B + b``.

    Taught in lesson 10, section 3 (Exercise 2 writes it).
    """
    sub_images = _check_sub_images(sub_images)
    K = sub_images.shape[0]
    others = (sub_images.sum(0, keepdim=True) - sub_images) / (K - 1)   # mean of the others
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    inputs, targets = (others, sub_images) if scheme == "X:1" else (sub_images, others)
    return inputs.flatten(0, 1), targets.flatten(0, 1)


def noise2inverse_predict(model, sub_images, scheme: str = "X:1",
                          batch_size: int = 32) -> torch.Tensor:
    """Noise2Inverse's reconstruction: the mean of the ``K`` predictions of a trained network.

    Parameters
    ----------
    model : torch.nn.Module
        Trained on :func:`noise2inverse_pairs` with the same ``scheme``.
    sub_images : torch.Tensor, shape (K, B, 1, N, N)
    scheme : {"X:1", "1:X"}
    batch_size : int
        Images given to the network at once.

    Returns
    -------
    torch.Tensor, shape (B, 1, N, N)

    Taught in lesson 10, section 3.
    """
    sub_images = _check_sub_images(sub_images)
    K, B = sub_images.shape[:2]
    inputs, _ = noise2inverse_pairs(sub_images, scheme)
    outputs = _apply(model, inputs, batch_size)
    return outputs.reshape(K, B, *outputs.shape[1:]).mean(0)


def _apply(model, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``model`` on ``inputs`` in batches, in evaluation mode and without gradients.

    The batches go to the model's device and the outputs come back to the inputs'
    device; the model's training mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            return torch.cat([model(batch.to(device)).to(inputs.device)
                              for batch in inputs.split(batch_size)])
    finally:
        model.train(was_training)


def _check_sub_images(sub_images) -> torch.Tensor:
    sub_images = check_floating(as_tensor(sub_images, "sub_images"), "sub_images")
    if sub_images.ndim != 5 or sub_images.shape[0] < 2:
        raise ValueError(f"sub_images must have shape (K, B, 1, N, N) with K >= 2 (from "
                         f"cu.sub_reconstructions), got {tuple(sub_images.shape)}")
    return sub_images


class BlindSpotDataset(Dataset):
    """Noise2Self-style training pairs from noisy images alone: hide pixels, predict them.

    Item ``i`` is image ``i`` with a random grid of pixels hidden (one in ``spacing**2``,
    at a random offset) and each hidden pixel replaced by the mean of its four
    neighbours, so the network cannot see the value it must predict.  The target holds
    the noisy image and the mask in two channels, for :func:`blind_spot_loss`.

    Parameters
    ----------
    images : torch.Tensor, shape (n, 1, N, N)
        Noisy images (e.g. FBP reconstructions).
    spacing : int
        Distance between hidden pixels (Batson and Royer's grid), at least 2.

    Returns (per item)
    ------------------
    (masked, target) : torch.Tensor (1, N, N) and (2, N, N)

    Notes
    -----
    If the noise of a pixel is independent of its neighbours' noise, the best prediction
    of a hidden noisy pixel from its neighbours is the clean value (plus a constant in
    the loss), and training denoises.  If the noise is correlated, the neighbours also
    predict the *noise*, and the network learns to keep it.  Denoise with
    :func:`blind_spot_predict`, which hides every pixel in turn.

    Taught in lesson 10, section 2.
    """

    def __init__(self, images, spacing: int = 4):
        images = check_floating(as_tensor(images, "images"), "images")
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must have shape (n, 1, N, N), got {tuple(images.shape)}")
        self.spacing = check_int(spacing, "spacing")
        if self.spacing < 2:
            raise ValueError(f"spacing must be at least 2, got {spacing}")
        self.images = images
        self._neighbour_mean = _neighbour_mean(images)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        image = self.images[i]
        s = self.spacing
        row, col = (int(v) for v in torch.randint(s, (2,)))
        mask = torch.zeros_like(image)
        mask[..., row::s, col::s] = 1.0
        masked = image * (1 - mask) + self._neighbour_mean[i] * mask
        return masked, torch.cat([image, mask])


def _neighbour_mean(images: torch.Tensor) -> torch.Tensor:
    """Mean of the four neighbours of every pixel (reflected at the border), (n, 1, N, N)."""
    kernel = torch.tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]])
    return torch.nn.functional.conv2d(
        torch.nn.functional.pad(images, (1, 1, 1, 1), mode="reflect"),
        kernel.to(images)[None, None])


def blind_spot_predict(model, images, spacing: int = 4, batch_size: int = 32) -> torch.Tensor:
    """Denoise with a blind-spot network without ever showing it the pixel it predicts.

    For each of the ``spacing**2`` offsets of the grid, the pixels of the grid are hidden
    as in training (replaced by the mean of their neighbours) and the network's output
    is kept on those pixels only; together the offsets cover every pixel.  This is
    Batson and Royer's "J-invariant" prediction.  Applying the network to the unmasked
    image instead would let a residual network copy each pixel's noise straight to the
    output.

    Parameters
    ----------
    model : torch.nn.Module
        Trained with :class:`BlindSpotDataset` and :func:`blind_spot_loss`.
    images : torch.Tensor, shape (n, 1, N, N)
        Noisy images.
    spacing : int
        The grid spacing used in training.
    batch_size : int
        Images given to the network at once.

    Returns
    -------
    torch.Tensor, shape (n, 1, N, N)

    Taught in lesson 10, section 2.
    """
    images = check_floating(as_tensor(images, "images"), "images")
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (n, 1, N, N), got {tuple(images.shape)}")
    spacing = check_int(spacing, "spacing")
    neighbours = _neighbour_mean(images)
    result = torch.empty_like(images)
    for row in range(spacing):
        for col in range(spacing):
            grid = (..., slice(row, None, spacing), slice(col, None, spacing))
            masked = images.clone()
            masked[grid] = neighbours[grid]
            result[grid] = _apply(model, masked, batch_size)[grid]
    return result


def blind_spot_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the hidden pixels only (targets of :class:`BlindSpotDataset`).

    Parameters
    ----------
    output : torch.Tensor, shape (B, 1, N, N)
    target : torch.Tensor, shape (B, 2, N, N)
        Channel 0 the noisy image, channel 1 the mask of hidden pixels.

    Taught in lesson 10, section 2.
    """
    noisy, mask = target[:, :1], target[:, 1:]
    return ((output - noisy) ** 2 * mask).sum() / mask.sum().clamp(min=1)


def neighbour_correlation(noise, shift: tuple = (0, 1)) -> float:
    """Correlation coefficient of the noise of pixels ``shift`` apart (rows, columns).

    :math:`\\rho = \\frac{\\sum (n_p - \\bar n)(n_{p+s} - \\bar n)}{\\sum (n_p - \\bar n)^2}`
    over all pixel pairs of all images; 0 for white noise, 1 for noise that is the same
    in both pixels.

    Parameters
    ----------
    noise : torch.Tensor, shape (..., N, N)
        Noise images (a reconstruction minus the ground truth).
    shift : (int, int)
        Offset between the two pixels of a pair, non-negative.

    Returns
    -------
    float

    Taught in lesson 10, section 2 (Exercise 3 writes it).
    """
    noise = check_floating(as_tensor(noise, "noise"), "noise").double()
    dr, dc = (check_int(v, "shift", minimum=0) for v in shift)
    if noise.ndim < 2 or dr >= noise.shape[-2] or dc >= noise.shape[-1]:
        raise ValueError(f"shift {shift} does not fit images of shape {tuple(noise.shape)}")
    n = noise - noise.mean()
    H, W = n.shape[-2:]
    a = n[..., : H - dr, : W - dc]
    b = n[..., dr:, dc:]
    return float((a * b).mean() / (n ** 2).mean())


def autocorrelation(noise, max_shift: int = 8) -> torch.Tensor:
    """Normalised autocorrelation of noise images, for shifts up to ``max_shift`` pixels.

    Parameters
    ----------
    noise : torch.Tensor, shape (..., N, N)
    max_shift : int

    Returns
    -------
    torch.Tensor, shape (2 max_shift + 1, 2 max_shift + 1)
        Entry ``[max_shift + r, max_shift + c]`` is the correlation of pixels ``(r, c)``
        apart (1 at the centre); computed with the FFT (circular, on zero-padded images).

    Taught in lesson 10, section 2.
    """
    noise = check_floating(as_tensor(noise, "noise"), "noise").double()
    max_shift = check_int(max_shift, "max_shift")
    H, W = noise.shape[-2:]
    n = (noise - noise.mean()).reshape(-1, H, W)
    spectrum = torch.fft.rfft2(n, s=(2 * H, 2 * W))
    correlation = torch.fft.irfft2(spectrum.abs() ** 2, s=(2 * H, 2 * W)).sum(0)
    correlation = torch.fft.fftshift(correlation / correlation[0, 0])
    centre_r, centre_c = H, W
    return correlation[centre_r - max_shift: centre_r + max_shift + 1,
                       centre_c - max_shift: centre_c + max_shift + 1].float()
