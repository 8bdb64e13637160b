"""The shared experiment of the learned lessons: sparse-view CT of random ellipses.

Every lesson from 03 on (FBPConvNet, learned FBP, deep image prior, unrolled methods,
GANs, neural fields) reconstructs the *same* data, so that their results tables can be
read side by side.  In full mode the setting **is the "ellipses" benchmark of dival**
(Leuschner et al.; Baguer, Leuschner and Schmidt 2020), so our numbers can be read
against the published table; quick mode is the same construction at 64 x 64:

* **images** ``x``: dival's random ellipses (:class:`~course_utils.simulation.phantoms.EllipsesDataset`,
  ``style="dival"``), ``128 x 128`` pixels covering ``[-64, 64]^2`` (pixel size 1;
  ``64 x 64`` in quick mode), each pixel the average of ``4 x 4`` point samples, values
  in [0, 1];
* **scanner**: parallel beam, **30 angles** at :math:`(k + \\tfrac12)\\,\\pi/30`
  (6 degrees apart: sparse view), and ``2 ceil(N / sqrt 2) + 1`` detector pixels
  spanning :math:`\\pm N/\\sqrt 2` (183 pixels of width 0.98918 at ``N = 128``):
  ODL's ``parallel_beam_geometry``, which dival uses;
* **data** :math:`y = \\mathcal P x_{fine} + e`: **no inverse crime**.  The clean data
  are line integrals of the phantom computed on a grid **4 times finer** than the image
  (the phantom rendered there, :meth:`EllipsesDataset.render`), never ``A x`` with the
  operator ``A`` that the methods reconstruct with.  The noise is white Gaussian with
  standard deviation **2.5 % of the mean absolute clean value** of each sinogram
  (dival's ``relative_stddev``; :func:`~course_utils.simulation.noise.gaussian_noise` with
  ``relative_to="mean_abs"``); or, for the low-dose variant, Poisson photon counts with
  :math:`N_0 = 10^4` incident photons per detector pixel
  (:func:`~course_utils.simulation.noise.poisson_noise`);
* **splits**: training, validation and test images drawn with different seeds, and
  noise drawn with a fixed seed per split, so the data are identical in every run and in
  every lesson.  Methods are tuned on *validation* and reported on *test*.

===========  ===========  ==========  ======  ======  ==========================
mode         image size   training    valid.  test    time to generate (2 cores)
===========  ===========  ==========  ======  ======  ==========================
quick        64 x 64      512         32      32      about 10 s
full         128 x 128    2000        100     100     about 1 min
===========  ===========  ==========  ======  ======  ==========================

(Rendering a phantom on the fine grid takes 0.016 s at 64 x 64 and 0.027 s at 128 x 128
on one thread; projecting is faster.)  dival's own training set holds 32,000 images; the published learned rows used all of
them, ours use 2000 (``n_train`` changes it).  dival simulates on a 400 x 400 grid
from a bilinear enlargement of the point-sampled 128 x 128 image; we render the
ellipses themselves on a 512 x 512 grid, which is closer to the continuous object.

Example
-------
>>> setting = SparseViewSetting()
>>> test = setting.test
>>> test.x.shape, test.y.shape            # doctest: +SKIP
(torch.Size([32, 1, 64, 64]), torch.Size([32, 1, 30, 93]))
>>> x_fbp = setting.fbp(test.y)           # same as test.x_fbp
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..arrays import as_tensor, check_floating
from ..config import QUICK
from ..reconstruction.fbp import FILTERS, fbp
from ..operators.geometry import ParallelBeam
from ..metrics import psnr
from .noise import gaussian_noise, poisson_noise
from .phantoms import ELLIPSE_STYLES, FINE_FACTOR, MU_WATER, EllipsesDataset
from ..operators.radon import RadonTransform

__all__ = ["SparseViewSetting", "DataSplit", "dival_geometry", "fine_grid_sinogram",
           "tune_fbp_filter"]

#: The three splits, in the order that numbers their seeds (see SparseViewSetting).
SPLITS = ("train", "val", "test")
NOISE_MODELS = ("gaussian", "poisson")

#: Split sizes (training, validation, test) and image size of each mode.
QUICK_SIZES = dict(size=64, n_train=512, n_val=32, n_test=32)
FULL_SIZES = dict(size=128, n_train=2000, n_val=100, n_test=100)

#: FBP cut-offs tried when the setting tunes its FBP (fractions of Nyquist).
FBP_CUTOFFS = tuple(round(0.3 + 0.05 * k, 2) for k in range(15))

#: Images rendered, projected and pooled at once when a split is generated.
_CHUNK = 32


def tune_fbp_filter(A, y, x, filters=FILTERS, cutoffs=FBP_CUTOFFS) -> tuple:
    """The FBP filter and cut-off with the best mean PSNR on a set of tuning images.

    Parameters
    ----------
    A : RadonTransform
        The operator whose geometry FBP inverts.
    y : torch.Tensor, shape (n, 1, n_angles, n_detectors)
        Sinograms of the tuning (validation) images.
    x : torch.Tensor, shape (n, 1, N, N)
        The tuning images, values in [0, 1] (data range 1 for the PSNR).
    filters, cutoffs : sequences
        The grid searched: by default the 4 filters of ``cu.FILTERS`` and 15 cut-offs
        from 0.3 to 1.0 of Nyquist.

    Returns
    -------
    (str, float)
        The best filter and cut-off (lesson 03, section 1; lesson 02 tunes the filter the
        same way by hand).
    """
    scores = {(f, c): float(psnr(fbp(A, y, f, c), x, data_range=1.0).mean())
              for f in filters for c in cutoffs}
    return max(scores, key=scores.get)


def dival_geometry(image_size: int, n_angles: int = 30) -> ParallelBeam:
    """The parallel-beam geometry of dival's ellipses benchmark, for any image size.

    ODL's ``parallel_beam_geometry`` for an ``N x N`` image of pixel size 1: angles at
    the centres of ``n_angles`` equal cells of :math:`[0, \\pi)`,
    :math:`\\theta_k = (k + \\tfrac12)\\pi / n`, and ``2 ceil(N / sqrt 2) + 1``
    detector pixels that together span the image's diagonal, :math:`\\pm N / \\sqrt 2`.

    Parameters
    ----------
    image_size : int
        ``N``.
    n_angles : int
        Number of projection angles.

    Returns
    -------
    ParallelBeam
        For ``N = 128`` and 30 angles: 183 detector pixels of width 0.98918.

    The scanner of the shared setting (lesson 03, section 1).
    """
    radius = image_size / math.sqrt(2)
    n_detectors = 2 * math.ceil(radius) + 1
    angles = (torch.arange(n_angles, dtype=torch.float64) + 0.5) * (math.pi / n_angles)
    return ParallelBeam(angles=angles, n_detectors=n_detectors,
                        detector_spacing=2 * radius / n_detectors)


def fine_grid_sinogram(x_fine, geometry, factor: int = FINE_FACTOR) -> torch.Tensor:
    """Line integrals of images given on a grid ``factor`` times finer: simulated data.

    The honest way to simulate a scan (lesson 02): the object is described more finely
    than the reconstruction grid, so the data carry the discretisation error that real
    data carry, and a method that reconstructs with the coarse operator ``A`` cannot
    fit them exactly.  Simulating with ``A`` itself is the **inverse crime**.

    Parameters
    ----------
    x_fine : torch.Tensor, shape (..., factor * N, factor * N)
        The object on the fine grid (fine pixels of size ``1 / factor``).
    geometry : ParallelBeam or FanBeam
        The scanner, in the units of the coarse ``N x N`` grid (pixel size 1).
    factor : int
        Fine pixels per coarse pixel along each axis.

    Returns
    -------
    torch.Tensor, shape (..., n_angles, n_detectors)
        The same rays as ``RadonTransform(image_size=N, geometry=geometry)``, in its units.
    """
    x_fine = check_floating(as_tensor(x_fine, "x_fine"), "x_fine")
    factor = _int(factor, "factor", 1)
    if x_fine.ndim < 2 or x_fine.shape[-1] != x_fine.shape[-2] or x_fine.shape[-1] % factor:
        raise ValueError(f"x_fine must hold square images whose side is a multiple of "
                         f"factor={factor}, got shape {tuple(x_fine.shape)}")
    if not isinstance(geometry, ParallelBeam):
        from ..operators.geometry import FanBeam
        if not isinstance(geometry, FanBeam):
            raise TypeError(f"geometry must be a ParallelBeam or FanBeam, got "
                            f"{type(geometry).__name__}")
        fine = FanBeam(angles=geometry.angles, n_detectors=geometry.n_detectors,
                       source_distance=factor * geometry.source_distance,
                       detector_distance=factor * geometry.detector_distance,
                       detector_spacing=factor * geometry.detector_spacing)
    else:
        fine = ParallelBeam(angles=geometry.angles, n_detectors=geometry.n_detectors,
                            detector_spacing=factor * geometry.detector_spacing)
    A_fine = RadonTransform(image_size=x_fine.shape[-1], geometry=fine, device=x_fine.device)
    with torch.no_grad():
        return A_fine(x_fine) / factor


#: Field of view assumed by the low-dose (Poisson) variant, in cm: the image is a
#: 20 cm wide slice and the value 1 means water, so line integrals are a few units.
FIELD_OF_VIEW_CM = 20.0


class DataSplit:
    """One split of the setting: ground-truth images, noisy sinograms, FBP images.

    Attributes
    ----------
    name : str
        ``"train"``, ``"val"`` or ``"test"``.
    x : torch.Tensor, shape (n, 1, N, N)
        Ground-truth images, float32, values in [0, 1].
    y : torch.Tensor, shape (n, 1, n_angles, n_detectors)
        Noisy sinograms, float32.
    x_fbp : torch.Tensor, shape (n, 1, N, N)
        FBP reconstructions of ``y`` with the setting's filter and cut-off (computed on
        first use, once :meth:`SparseViewSetting.tune_fbp` has chosen them).

    Indexing gives a smaller split: ``split[:8]`` holds the first 8 images and
    ``split[3]`` the fourth one (still with its batch dimension, ``(1, 1, N, N)``).
    ``len(split)`` is the number of images.

    Introduced in lesson 03, section 1.
    """

    def __init__(self, name: str, x: torch.Tensor, y: torch.Tensor, fbp=None,
                 x_fbp: torch.Tensor | None = None):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y must hold the same number of items, got "
                             f"{x.shape[0]} and {y.shape[0]}")
        self.name = name
        self.x = x
        self.y = y
        self._fbp = fbp
        self._x_fbp = x_fbp

    @property
    def x_fbp(self) -> torch.Tensor:
        if self._x_fbp is None:
            if self._fbp is None:
                raise AttributeError("this split has no FBP function to compute x_fbp")
            self._x_fbp = self._fbp(self.y)
        return self._x_fbp

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index) -> "DataSplit":
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1 or None)
        x_fbp = None if self._x_fbp is None else self._x_fbp[index]
        return DataSplit(self.name, self.x[index], self.y[index], self._fbp, x_fbp)

    def __repr__(self) -> str:
        return (f"DataSplit({self.name!r}: x {tuple(self.x.shape)}, "
                f"y {tuple(self.y.shape)})")


class SparseViewSetting:
    """The shared sparse-view CT experiment: scanner, noise and fixed data splits.

    Parameters
    ----------
    size : int, optional
        Image side ``N`` in pixels; default 64 in quick mode (``cu.QUICK``), else 128.
    n_angles : int
        Number of projection angles, at :math:`(k + \\tfrac12)\\pi / n` (dival's).
    phantoms : {"dival", "disc"}
        The family of random ellipses (:class:`~course_utils.simulation.phantoms.EllipsesDataset`):
        dival's (default) or the course's earlier one, which lesson 08's shipped GAN
        learned.
    noise : {"gaussian", "poisson"}
        ``"gaussian"``: white Gaussian noise of ``noise_level`` (see below).
        ``"poisson"``: low-dose transmission CT with ``photon_count`` photons per ray.
    noise_level : float
        Standard deviation of the Gaussian noise relative to the mean absolute value of
        each clean sinogram (dival's convention; 0.025 by default, 0 for clean data).
    photon_count : float
        Incident photons per detector pixel :math:`N_0` of the Poisson variant.
    n_train, n_val, n_test : int, optional
        Split sizes; defaults 512 / 32 / 32 in quick mode and 2000 / 100 / 100 otherwise.
    seed : int
        Seed of the whole setting; different seeds give different (independent) data.
    sampling : {"area", "point"}
        ``"area"`` (default): each pixel is the average of 4 x 4 samples of the phantom
        and the data are line integrals of the phantom on the 4 times finer grid.
        ``"point"``: dival's own construction, for comparison with its published
        numbers: one point sample per pixel (staircase edges) and data from that image
        enlarged 4 times by bilinear interpolation.  Point-sampled ground truth has
        detail that no reconstruction from 30 views recovers; it costs TV about 1.8 dB
        and FBP about 0.6 dB (benchmarks/README.md).
    fbp : (str, float), optional
        FBP's filter (one of ``cu.FILTERS``) and cut-off, if you want to fix them;
        default: none yet, call :meth:`tune_fbp` to choose them on the validation split
        before using :meth:`fbp` or ``x_fbp`` (lesson 03 does, section 1).
    device : str or torch.device
        Where the operator and the data live.

    Attributes
    ----------
    image_size : int
        ``N``.
    geometry : ParallelBeam
        The scanner (:func:`dival_geometry`).
    A : RadonTransform
        The forward operator **the methods reconstruct with**, images ``(..., N, N)``
        to sinograms ``(..., n_angles, n_detectors)``.  The data are *not* simulated
        with it (see :meth:`measure`).
    scale : float
        Pixel size in cm times the attenuation of water: the factor from our line
        integrals (image units x pixels) to the dimensionless ones of Beer-Lambert's law,
        used by the Poisson variant.
    train, val, test : DataSplit
        The three splits (generated on first use, then kept).
    fbp_filter, fbp_cutoff : str or None, float or None
        The FBP of :meth:`fbp` and of every split's ``x_fbp``: given as ``fbp=...``, or
        chosen on the validation split by :meth:`tune_fbp`; ``None`` until then.

    Notes
    -----
    Seeds: the phantoms of split ``k`` (0 train, 1 val, 2 test) come from
    ``EllipsesDataset(seed=10 * seed + k)``, their noise from a generator seeded
    with ``10 * seed + 5 + k``; so the splits hold different images, and the same
    setting gives the same data in every lesson, on every machine.  A split's noise is
    drawn for the whole split at once: its first images are the same for every split
    size, but their noise is not, so compare methods only on splits of the same size.
    """

    def __init__(self, size=None, n_angles=30, *, phantoms="dival", noise="gaussian",
                 noise_level=0.025, photon_count=1e4, n_train=None, n_val=None,
                 n_test=None, seed=0, sampling="area", fbp=None, device="cpu"):
        defaults = QUICK_SIZES if QUICK else FULL_SIZES
        self.image_size = _int(defaults["size"] if size is None else size, "size", 8)
        self.n_angles = _int(n_angles, "n_angles", 1)
        if phantoms not in ELLIPSE_STYLES:
            raise ValueError(f"phantoms must be one of {ELLIPSE_STYLES}, got {phantoms!r}")
        self.phantoms = phantoms
        if noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
        self.noise = noise
        self.noise_level = _number(noise_level, "noise_level", positive=False)
        self.photon_count = _number(photon_count, "photon_count", positive=True)
        self.sizes = {
            "train": _int(defaults["n_train"] if n_train is None else n_train, "n_train", 0),
            "val": _int(defaults["n_val"] if n_val is None else n_val, "n_val", 0),
            "test": _int(defaults["n_test"] if n_test is None else n_test, "n_test", 0),
        }
        self.seed = _int(seed, "seed", 0)
        if sampling not in ("area", "point"):
            raise ValueError(f'sampling must be "area" or "point", got {sampling!r}')
        self.sampling = sampling
        self.device = torch.device(device)

        N = self.image_size
        self.geometry = dival_geometry(N, self.n_angles)
        self.A = RadonTransform(image_size=N, geometry=self.geometry, device=self.device)
        self.scale = MU_WATER * FIELD_OF_VIEW_CM / N
        self._A_fine = None
        self._splits: dict = {}
        self._phantoms: dict = {}
        self.fbp_filter: str | None = None
        self.fbp_cutoff: float | None = None
        if fbp is not None:
            self.use_fbp(*fbp)

    # --- the scanner -----------------------------------------------------------------
    @property
    def A_fine(self) -> RadonTransform:
        """The simulator's projector: the same rays on a grid 4 times finer.

        Images ``(..., 4N, 4N)`` (fine pixels of size 1/4) to sinograms; ``A_fine(x) / 4``
        are line integrals in the units of :attr:`A` (a fine pixel is a quarter as long).
        """
        if self._A_fine is None:
            g, f = self.geometry, FINE_FACTOR
            fine = ParallelBeam(angles=g.angles, n_detectors=g.n_detectors,
                                detector_spacing=f * g.detector_spacing)
            self._A_fine = RadonTransform(image_size=f * self.image_size, geometry=fine,
                                          device=self.device)
        return self._A_fine  # fine_grid_sinogram(x, geometry) builds the same projector

    def clean_sinogram(self, x) -> torch.Tensor:
        """Noise-free data of images, computed **without the inverse crime**.

        Parameters
        ----------
        x : torch.Tensor, shape (..., N, N) or (..., 4N, 4N)
            Images, or the same objects rendered 4 times finer
            (``EllipsesDataset.render(i, 4)``: the most faithful choice).  An ``N x N``
            image is first enlarged 4 times by bilinear interpolation (as dival does,
            from 128 to 400 pixels), so that its data do not come from :attr:`A` either.

        Returns
        -------
        torch.Tensor, shape (..., n_angles, n_detectors)
            Non-negative line integrals (negative values, which no scanner measures, are
            clipped to zero).
        """
        x = check_floating(as_tensor(x, "x"), "x")
        N, f = self.image_size, FINE_FACTOR
        if x.ndim < 2 or x.shape[-1] != x.shape[-2] or x.shape[-1] not in (N, f * N):
            raise ValueError(f"x must hold images of shape (..., {N}, {N}) or their fine "
                             f"versions (..., {f * N}, {f * N}), got {tuple(x.shape)}")
        with torch.no_grad():
            if x.shape[-1] == N:
                lead = x.shape[:-2]
                x = torch.nn.functional.interpolate(
                    x.reshape(-1, 1, N, N), scale_factor=f, mode="bilinear",
                    align_corners=False).reshape(*lead, f * N, f * N)
            # Attenuation is never negative, so neither is a line integral.  dival's
            # normalisation (minus the *pixel* minimum) can leave fine samples a little
            # below zero near the corners, and a few border rays at -0.01 in full mode:
            # a scanner cannot measure that, so they are clipped (no effect at 64 x 64).
            return (self.A_fine(x) / f).clamp(min=0)

    def measure(self, x, *, noise=None, noise_level=None, photon_count=None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Simulate the scanner: clean data (:meth:`clean_sinogram`) plus noise.

        Parameters
        ----------
        x : torch.Tensor, shape (..., N, N) or (..., 4N, 4N)
            Images (float32 or float64) on the setting's device, or their fine versions.
        noise, noise_level, photon_count : optional
            Override the setting's noise model or its strength, e.g.
            ``noise_level=0.1`` for Gaussian noise of 10 % of the mean absolute value.
        generator : torch.Generator, optional
            Source of randomness, for reproducible noise.

        Returns
        -------
        torch.Tensor, shape (..., n_angles, n_detectors)
        """
        return self._add_noise(self.clean_sinogram(x), noise=noise, noise_level=noise_level,
                               photon_count=photon_count, generator=generator)

    def _add_noise(self, y_clean, *, noise=None, noise_level=None, photon_count=None,
                   generator=None):
        noise = self.noise if noise is None else noise
        if noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
        with torch.no_grad():
            if noise == "gaussian":
                level = self.noise_level if noise_level is None else noise_level
                return gaussian_noise(y_clean, level, relative_to="mean_abs",
                                      generator=generator)
            count = self.photon_count if photon_count is None else photon_count
            return poisson_noise(y_clean, count, scale=self.scale, generator=generator)

    def noise_norm(self, y) -> torch.Tensor:
        """Expected norm of the Gaussian noise in sinograms ``y``, shape ``(...)``.

        :math:`\\sqrt{m}\\,\\sigma` with :math:`\\sigma` the setting's standard deviation,
        estimated from the noisy data themselves (their mean absolute value is that of
        the clean data up to a fraction of a per cent): the :math:`\\delta` of the
        discrepancy principle.
        """
        y = check_floating(as_tensor(y, "y"), "y")
        m = y.shape[-1] * y.shape[-2]
        return self.noise_level * y.abs().mean(dim=(-2, -1)) * math.sqrt(m)

    def fbp(self, y: torch.Tensor) -> torch.Tensor:
        """FBP with the setting's filter and cut-off (see :meth:`tune_fbp`).

        Sinograms ``(..., n_angles, n_detectors)`` to images ``(..., N, N)``; a
        reconstruction method in its own right, and the input of FBPConvNet.
        """
        if self.fbp_filter is None:
            raise RuntimeError(
                "the setting's FBP filter is not chosen yet: call setting.tune_fbp() "
                "(it picks the filter and cut-off of the best validation PSNR), or create "
                "the setting with fbp=(filter, cutoff)")
        return fbp(self.A, y, self.fbp_filter, self.fbp_cutoff)

    def use_fbp(self, filter: str, cutoff: float = 1.0) -> None:
        """Fix the FBP of :meth:`fbp` and ``x_fbp`` (forgets the FBP images made so far)."""
        if filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
        cutoff = _number(cutoff, "cutoff", positive=True)
        if cutoff > 1:
            raise ValueError(f"cutoff is a fraction of Nyquist in (0, 1], got {cutoff}")
        self.fbp_filter, self.fbp_cutoff = filter, cutoff
        for split in self._splits.values():
            split._x_fbp = None

    def tune_fbp(self) -> tuple:
        """Choose FBP's filter and cut-off on the validation split, and use them.

        Tries the 4 filters of ``cu.FILTERS`` with 15 cut-offs (0.3 to 1.0 of Nyquist)
        and keeps the pair of the best mean PSNR over the validation images (never the
        test images).  Called explicitly, once, by every learned lesson (lesson 03,
        section 1); a second call does the work again and gives the same answer.

        Returns
        -------
        (str, float)
            The filter and the cut-off, also in :attr:`fbp_filter` and
            :attr:`fbp_cutoff`.
        """
        val = self.split("val")
        if len(val) == 0:
            raise ValueError("the setting has no validation images to tune FBP on (n_val=0): "
                             "pass fbp=(filter, cutoff) instead")
        self.use_fbp(*tune_fbp_filter(self.A, val.y, val.x))
        return self.fbp_filter, self.fbp_cutoff

    @property
    def fbp_name(self) -> str:
        """The setting's FBP as a table label, e.g. ``"FBP (hann, cut-off 0.65)"``."""
        if self.fbp_filter is None:
            return "FBP (filter not chosen yet: call setting.tune_fbp())"
        f, c = self.fbp_filter, self.fbp_cutoff
        return f"FBP ({f})" if c == 1.0 else f"FBP ({f}, cut-off {c:g})"

    # --- the data ------------------------------------------------------------------------
    def split(self, name: str, *, noise=None, noise_level=None,
              photon_count=None) -> DataSplit:
        """The training, validation or test split, optionally at another noise level.

        The images are always those of the split; only the noise changes.  With Gaussian
        noise the same random draw is scaled, so levels can be compared image by image,
        and ``noise_level=0`` gives the clean (but crime-free) data.

        Parameters
        ----------
        name : {"train", "val", "test"}
        noise, noise_level, photon_count : optional
            As in :meth:`measure`; default: the setting's.

        Returns
        -------
        DataSplit
            With ``x`` (n, 1, N, N), ``y`` (n, 1, n_angles, n_detectors) and ``x_fbp``
            (FBP with the filter and cut-off tuned at the setting's own noise).
            Kept: asking again gives the same object.
        """
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        noise = self.noise if noise is None else noise
        if noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
        if noise == "gaussian":
            strength = {"noise_level": _number(
                self.noise_level if noise_level is None else noise_level, "noise_level",
                positive=False)}
        else:
            strength = {"photon_count": _number(
                self.photon_count if photon_count is None else photon_count,
                "photon_count", positive=True)}
        key = (name, noise, *strength.values())
        if key not in self._splits:
            x, y_clean = self._images(name)
            generator = torch.Generator().manual_seed(10 * self.seed + 5 + SPLITS.index(name))
            y = self._add_noise(y_clean, noise=noise, generator=generator, **strength)
            self._splits[key] = DataSplit(name, x, y, fbp=self.fbp)
        return self._splits[key]

    @property
    def train(self) -> DataSplit:
        """The training split (see :meth:`split`)."""
        return self.split("train")

    @property
    def val(self) -> DataSplit:
        """The validation split: tune hyper-parameters and stop training here."""
        return self.split("val")

    @property
    def test(self) -> DataSplit:
        """The test split: report results here, and only here."""
        return self.split("test")

    def _images(self, name: str) -> tuple:
        """Images ``(n, 1, N, N)`` of a split and their clean, crime-free sinograms."""
        if name not in self._phantoms:
            phantoms = EllipsesDataset(self.sizes[name], self.image_size,
                                       seed=10 * self.seed + SPLITS.index(name),
                                       style=self.phantoms)
            images, sinograms = [], []
            for start in range(0, len(phantoms), _CHUNK):
                chunk = range(start, min(start + _CHUNK, len(phantoms)))
                if self.sampling == "point":         # dival: the image, enlarged 4 times
                    coarse = torch.stack([phantoms.point_sampled(i)[None] for i in chunk])
                    coarse = coarse.to(self.device)
                    sinograms.append(self.clean_sinogram(coarse))
                else:                                # the phantom itself, 4 times finer
                    fine = torch.stack([phantoms.render(i, FINE_FACTOR)[None] for i in chunk])
                    fine = fine.to(self.device)
                    sinograms.append(self.clean_sinogram(fine))
                    coarse = torch.nn.functional.avg_pool2d(fine, FINE_FACTOR)
                images.append(coarse.clamp(0.0, 1.0))
            N, g = self.image_size, self.geometry
            if not images:
                images = [torch.zeros(0, 1, N, N, device=self.device)]
                sinograms = [torch.zeros(0, 1, *g.sinogram_shape, device=self.device)]
            self._phantoms[name] = (torch.cat(images), torch.cat(sinograms))
        return self._phantoms[name]

    # --- description ---------------------------------------------------------------------
    def _noise_words(self) -> str:
        if self.noise == "gaussian":
            return f"Gaussian noise {100 * self.noise_level:g} % of mean |y|"
        return f"Poisson noise, {self.photon_count:.0e} photons per ray"

    def __repr__(self) -> str:
        s = self.sizes
        point = ", point-sampled" if self.sampling == "point" else ""
        return (f"SparseViewSetting({self.image_size}x{self.image_size} {self.phantoms} "
                f"ellipses{point}, {self.n_angles} angles x {self.geometry.n_detectors} detectors, "
                f"{self._noise_words()}, train/val/test {s['train']}/{s['val']}/{s['test']}, "
                f"seed {self.seed})")

    def describe(self) -> str:
        """A short Markdown description of the setting, for a notebook to print."""
        N, s, g = self.image_size, self.sizes, self.geometry
        if self.noise == "gaussian":
            noise = (f"white Gaussian noise, standard deviation {100 * self.noise_level:g} % "
                     f"of the mean absolute clean value of each sinogram (dival's convention)")
        else:
            noise = (f"low-dose Poisson noise: {self.photon_count:.0e} incident photons "
                     f"per detector pixel (image value 1 = water, "
                     f"{FIELD_OF_VIEW_CM:g} cm field of view)")
        family = "dival's random ellipses" if self.phantoms == "dival" else \
            "random ellipses inside the inscribed disc"
        return "\n".join([
            "**Shared sparse-view setting**" + (" (dival's ellipses benchmark)"
                                                  if self.phantoms == "dival" else ""),
            "",
            f"- images: {family}, {N} x {N} pixels (4 x 4 samples each), values in [0, 1]",
            f"- scanner: parallel beam, {self.n_angles} angles at (k + 1/2)·180°/{self.n_angles}, "
            f"{g.n_detectors} detector pixels of width {g.detector_spacing:.5f}",
            f"- data: line integrals on a {FINE_FACTOR}x finer grid (no inverse crime) + {noise}",
            f"- splits: {s['train']} training / {s['val']} validation / {s['test']} test "
            f"images (seed {self.seed}); tune on validation, report on test",
        ])


def _int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _number(value, name: str, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} "
                         f"finite number, got {value}")
    return value
