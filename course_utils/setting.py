"""The shared experiment of the learned lessons: sparse-view CT of random ellipses.

Every lesson from 03 on (FBPConvNet, learned FBP, deep image prior, unrolled methods,
GANs, neural fields) reconstructs the *same* data, so that their results tables can be
read side by side:

* **images** ``x``: random-ellipse phantoms (:class:`~course_utils.phantoms.EllipsesDataset`),
  values in [0, 1], ``128 x 128`` pixels (``64 x 64`` in quick mode);
* **scanner**: parallel beam, **30 angles** evenly covering :math:`[0, \\pi)` (sparse
  view: a full scan would have hundreds), ``ceil(sqrt(2) N) + 1`` detector pixels of
  size 1, so every ray through the image is measured;
* **data** :math:`y = A x + e`: relative Gaussian noise of **3 %**,
  :math:`\\|e\\| \\approx 0.03\\,\\|A x\\|` per sinogram
  (:func:`~course_utils.noise.gaussian_noise`);
  or, for the low-dose variant, Poisson photon counts with :math:`N_0 = 10^4` incident
  photons per detector pixel (:func:`~course_utils.noise.poisson_noise`), which gives
  about as much noise overall (3.4 %) but most of it where the object attenuates most;
* **splits**: training, validation and test images drawn with different seeds, and
  noise drawn with a fixed seed per split, so the data are identical in every run and in
  every lesson.  Methods are tuned on *validation* and reported on *test*.

===========  ===========  ==========  ======  ======  ==========================
mode         image size   training    valid.  test    time to generate (2 cores)
===========  ===========  ==========  ======  ======  ==========================
quick        64 x 64      512         32      32      2-4 s
full         128 x 128    2000        100     100     about 15 s
===========  ===========  ==========  ======  ======  ==========================

Quick mode is sized for a laptop CPU: ten epochs of ``cu.UNet(width=16)`` on the
512 training images take about 30 s on 2 cores and reach about 36 dB (FBP: 30 dB).
Full mode is a small version of the published experiments (which use 256 x 256 or
512 x 512 images): best on a GPU, possible on a CPU with patience.

Example
-------
>>> setting = SparseViewSetting()
>>> test = setting.test
>>> test.x.shape, test.y.shape            # doctest: +SKIP
(torch.Size([32, 1, 64, 64]), torch.Size([32, 1, 30, 92]))
>>> x_fbp = setting.fbp(test.y)           # same as test.x_fbp
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .arrays import as_tensor, check_floating
from .config import QUICK
from .fbp import FILTERS, fbp
from .geometry import ParallelBeam
from .metrics import psnr
from .noise import gaussian_noise, poisson_noise
from .phantoms import MU_WATER, EllipsesDataset
from .radon import RadonTransform

__all__ = ["SparseViewSetting", "DataSplit"]

#: The three splits, in the order that numbers their seeds (see SparseViewSetting).
SPLITS = ("train", "val", "test")
NOISE_MODELS = ("gaussian", "poisson")

#: Split sizes (training, validation, test) and image size of each mode.
QUICK_SIZES = dict(size=64, n_train=512, n_val=32, n_test=32)
FULL_SIZES = dict(size=128, n_train=2000, n_val=100, n_test=100)

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
        FBP reconstructions of ``y`` with the setting's filter (computed on first use).

    Indexing gives a smaller split: ``split[:8]`` holds the first 8 images and
    ``split[3]`` the fourth one (still with its batch dimension, ``(1, 1, N, N)``).
    ``len(split)`` is the number of images.
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
        Number of projection angles, evenly covering :math:`[0, \\pi)`.
    noise : {"gaussian", "poisson"}
        ``"gaussian"``: relative white Gaussian noise of ``noise_level``.
        ``"poisson"``: low-dose transmission CT with ``photon_count`` photons per ray.
    noise_level : float
        Relative Gaussian noise level, :math:`\\|e\\| / \\|A x\\|` per sinogram.
    photon_count : float
        Incident photons per detector pixel :math:`N_0` of the Poisson variant.
    n_train, n_val, n_test : int, optional
        Split sizes; defaults 512 / 32 / 32 in quick mode and 2000 / 100 / 100 otherwise.
    seed : int
        Seed of the whole setting; different seeds give different (independent) data.
    device : str or torch.device
        Where the operator and the data live.

    Attributes
    ----------
    image_size : int
        ``N``.
    geometry : ParallelBeam
        The scanner.
    A : RadonTransform
        The forward operator, images ``(..., N, N)`` to sinograms
        ``(..., n_angles, n_detectors)``.
    scale : float
        Pixel size in cm times the attenuation of water: the factor from our line
        integrals (image units x pixels) to the dimensionless ones of Beer-Lambert's law,
        used by the Poisson variant.  A chord through 0.9 N pixels of water gives 3.4.
    train, val, test : DataSplit
        The three splits (generated on first use, then kept).
    cache : dict
        Where helpers keep results computed from this setting (e.g. the tuned methods
        of :func:`cu.classical_methods`), so that a second call is free.

    Notes
    -----
    Seeds: the phantoms of split ``k`` (0 train, 1 val, 2 test) come from
    ``EllipsesDataset(seed=10 * seed + k)``, their noise from a generator seeded
    with ``10 * seed + 5 + k``; so the splits hold different images, and the same
    setting gives the same data in every lesson, on every machine.
    """

    def __init__(self, size=None, n_angles=30, *, noise="gaussian", noise_level=0.03,
                 photon_count=1e4, n_train=None, n_val=None, n_test=None, seed=0,
                 device="cpu"):
        defaults = QUICK_SIZES if QUICK else FULL_SIZES
        self.image_size = _int(defaults["size"] if size is None else size, "size", 8)
        self.n_angles = _int(n_angles, "n_angles", 1)
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
        self.device = torch.device(device)

        N = self.image_size
        self.geometry = ParallelBeam(n_angles=self.n_angles,
                                     n_detectors=math.ceil(math.sqrt(2) * N) + 1)
        self.A = RadonTransform(image_size=N, geometry=self.geometry, device=self.device)
        self.scale = MU_WATER * FIELD_OF_VIEW_CM / N
        self._splits: dict = {}
        self._phantoms: dict = {}
        self._fbp_filter: str | None = None
        self.cache: dict = {}

    # --- the scanner -----------------------------------------------------------------
    def measure(self, x, *, noise=None, noise_level=None, photon_count=None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Simulate the scanner: :math:`y = A x + e`, with the setting's noise model.

        Parameters
        ----------
        x : torch.Tensor, shape (..., N, N)
            Images (float32 or float64) on the setting's device.
        noise, noise_level, photon_count : optional
            Override the setting's noise model or its strength, e.g.
            ``noise_level=0.1`` for ten per cent Gaussian noise.
        generator : torch.Generator, optional
            Source of randomness, for reproducible noise.

        Returns
        -------
        torch.Tensor, shape (..., n_angles, n_detectors)
        """
        noise = self.noise if noise is None else noise
        if noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
        x = check_floating(as_tensor(x, "x"), "x")
        with torch.no_grad():
            y_clean = self.A(x)
            if noise == "gaussian":
                level = self.noise_level if noise_level is None else noise_level
                return gaussian_noise(y_clean, level, generator=generator)
            count = self.photon_count if photon_count is None else photon_count
            return poisson_noise(y_clean, count, scale=self.scale, generator=generator)

    def fbp(self, y: torch.Tensor) -> torch.Tensor:
        """FBP with the setting's filter (:attr:`fbp_filter`).

        Sinograms ``(..., n_angles, n_detectors)`` to images ``(..., N, N)``; a
        reconstruction method in its own right, and the input of FBPConvNet.
        """
        return fbp(y, self.A, self.fbp_filter)

    @property
    def fbp_filter(self) -> str:
        """The FBP filter (one of ``cu.FILTERS``) with the best mean PSNR on validation."""
        if self._fbp_filter is None:
            val = self.split("val")
            if len(val) == 0:
                self._fbp_filter = "hann"
            else:
                scores = {f: float(psnr(fbp(val.y, self.A, f), val.x, data_range=1.0).mean())
                          for f in FILTERS}
                self._fbp_filter = max(scores, key=scores.get)
        return self._fbp_filter

    # --- the data ------------------------------------------------------------------------
    def split(self, name: str, *, noise=None, noise_level=None,
              photon_count=None) -> DataSplit:
        """The training, validation or test split, optionally at another noise level.

        The images are always those of the split; only the noise changes.  With Gaussian
        noise the same random draw is scaled, so levels can be compared image by image.

        Parameters
        ----------
        name : {"train", "val", "test"}
        noise, noise_level, photon_count : optional
            As in :meth:`measure`; default: the setting's.

        Returns
        -------
        DataSplit
            With ``x`` (n, 1, N, N), ``y`` (n, 1, n_angles, n_detectors) and ``x_fbp``
            (FBP with :attr:`fbp_filter`, the filter chosen at the setting's own noise).
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
            x = self._images(name)
            generator = torch.Generator().manual_seed(10 * self.seed + 5 + SPLITS.index(name))
            y = self.measure(x, noise=noise, generator=generator, **strength)
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

    def _images(self, name: str) -> torch.Tensor:
        if name not in self._phantoms:
            phantoms = EllipsesDataset(self.sizes[name], self.image_size,
                                       seed=10 * self.seed + SPLITS.index(name))
            self._phantoms[name] = phantoms.tensors().to(self.device)
        return self._phantoms[name]

    # --- description ---------------------------------------------------------------------
    def _noise_words(self) -> str:
        if self.noise == "gaussian":
            return f"Gaussian noise {100 * self.noise_level:g} %"
        return f"Poisson noise, {self.photon_count:.0e} photons per ray"

    def __repr__(self) -> str:
        s = self.sizes
        return (f"SparseViewSetting({self.image_size}x{self.image_size} images, "
                f"{self.n_angles} angles x {self.geometry.n_detectors} detectors, "
                f"{self._noise_words()}, train/val/test {s['train']}/{s['val']}/{s['test']}, "
                f"seed {self.seed})")

    def describe(self) -> str:
        """A short Markdown description of the setting, for a notebook to print."""
        N, s = self.image_size, self.sizes
        if self.noise == "gaussian":
            noise = (f"white Gaussian noise of relative level {self.noise_level:g} "
                     f"(‖e‖ ≈ {100 * self.noise_level:g} % of ‖Ax‖)")
        else:
            noise = (f"low-dose Poisson noise: {self.photon_count:.0e} incident photons "
                     f"per detector pixel (image value 1 = water, "
                     f"{FIELD_OF_VIEW_CM:g} cm field of view)")
        return "\n".join([
            "**Shared sparse-view setting**",
            "",
            f"- images: random ellipses, {N} x {N} pixels, values in [0, 1]",
            f"- scanner: parallel beam, {self.n_angles} angles in [0, π), "
            f"{self.geometry.n_detectors} detector pixels",
            f"- data: y = A x + e, {noise}",
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
