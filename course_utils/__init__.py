"""Shared helpers of the course *Deep learning for tomographic image reconstruction*.

Every notebook starts with ``import course_utils as cu``.  The package is small on
purpose; each module is one idea and can be read on its own:

==================  ==========================================================
``config``          ``QUICK`` mode, ``device()``, ``seed_everything()``
``arrays``          tensors in, tensors out; NumPy in, NumPy out
``linear_operator`` ``A(x)``, ``A.T(y)``, ``A.norm()``, adjointness test, matrix
``geometry``        ``ParallelBeam`` and ``FanBeam``: what the scanner looks like
``radon``           ``RadonTransform``: the differentiable projector
``fbp``             filtered backprojection and its filters
``algorithms``      Landweber, SIRT, CGLS, MLEM, TV by Chambolle-Pock
``phantoms``        Shepp-Logan, random ellipses, a real CT slice
``noise``           Gaussian and low-dose Poisson noise
``metrics``         PSNR and SSIM
``plotting``        images, sinograms and curves with one consistent look
``setting``         the shared sparse-view experiment of the learned lessons
``networks``        the U-Net (FBPConvNet) and small building blocks
``training``        a training loop with progress bar, live plot, early stopping
``evaluation``      PSNR / SSIM / time / parameters over a test set, as a table
``gan``             a small GAN, the shipped generator, latent reconstruction
``checks``          automatic feedback on the exercises
``release``         ``python -m course_utils.release``: student copies from solutions
``grade``           ``python -m course_utils.grade``: grade a class's notebooks
``doctor``          ``python -m course_utils.doctor``: is this computer ready?
==================  ==========================================================
"""

from . import checks
from .algorithms import *  # noqa: F401,F403
from .config import QUICK, device, seed_everything
from .evaluation import *  # noqa: F401,F403
from .fbp import *  # noqa: F401,F403
from .gan import *  # noqa: F401,F403
from .geometry import *  # noqa: F401,F403
from .linear_operator import LinearOperator, MatrixOperator
from .metrics import *  # noqa: F401,F403
from .networks import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
from .phantoms import *  # noqa: F401,F403
from .plotting import *  # noqa: F401,F403
from .radon import *  # noqa: F401,F403
from .setting import *  # noqa: F401,F403
from .training import *  # noqa: F401,F403

__version__ = "0.1.0"
