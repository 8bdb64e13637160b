"""Shared helpers of the course *Deep learning for tomographic image reconstruction*.

Every notebook starts with ``import course_utils as cu`` and then uses flat names such
as ``cu.RadonTransform`` or ``cu.fbp``.  Where a name lives follows from the folder names:

=====================  ==========================================================
``config``             ``QUICK`` mode, ``device()``, ``seed_everything()``
``arrays``             tensors in, tensors out; NumPy in, NumPy out; input checks
``metrics``            PSNR and SSIM
``plotting``           images, sinograms, curves, results tables, widgets
``operators/``         what a scanner measures, as a linear operator ``A``:
                       ``linear_operator`` (``A(x)``, ``A.T(y)``, adjoint test),
                       ``geometry`` (parallel, fan and cone beam), ``radon``
                       (Joseph's projector), ``cone_beam`` (the 3D cone-beam
                       projector), ``sparse`` (sparse matrices and their cache),
                       ``astra`` (the ASTRA backend), ``finite_differences``
                       (the image gradient ``D``)
``reconstruction/``    classical inversion: ``fbp`` (filtered backprojection) and
                       ``algorithms`` (Landweber, SIRT, CGLS, MLEM, TV),
                       ``plug_and_play`` (a denoiser as the prior)
``simulation/``        data: ``phantoms``, ``phantoms_3d`` (3D phantoms and their exact
                       cone-beam projections),
                       ``noise``, and ``setting`` (the shared sparse-view experiment
                       of the learned lessons)
``learning/``          ``networks`` (U-Net), ``training`` (the loop),
                       ``checkpoints``, ``evaluation`` (tables with intervals),
                       ``gan``, ``self_supervised`` (Noise2Inverse, blind spots),
                       ``diffusion`` (a diffusion prior), ``primal_dual``
                       (learned primal-dual), ``reconstructors`` (the
                       shipped U-Nets and learned primal-dual of lesson 12),
                       ``memory`` (memory meter, checkpointed learned descent)
``checks/``            automatic feedback on the exercises, one file per lesson
``tools/``             instructor and workshop commands (``dltomo doctor``,
                       ``dltomo release``, ``dltomo grade``, ``dltomo generator``,
                       ``dltomo diffusion``, ``dltomo reconstructors``)
=====================  ==========================================================

``import course_utils`` itself is cheap: the maths (and with it PyTorch and matplotlib)
is imported the first time a name such as ``cu.fbp`` is used.  That is why the
workshop doctor (``dltomo doctor``) still starts on a computer whose PyTorch is broken.
"""

import importlib as _importlib

__version__ = "0.1.0"

#: The modules whose public names (their ``__all__``) make up ``cu.*``, in import order.
_PUBLIC_MODULES = (
    "config", "arrays", "metrics", "plotting",
    "operators.linear_operator", "operators.geometry", "operators.sparse",
    "operators.radon", "operators.cone_beam", "operators.finite_differences",
    "reconstruction.fbp", "reconstruction.fdk", "reconstruction.algorithms",
    "reconstruction.plug_and_play",
    "simulation.phantoms", "simulation.phantoms_3d", "simulation.noise",
    "simulation.setting",
    "learning.networks", "learning.checkpoints", "learning.training",
    "learning.evaluation", "learning.gan", "learning.self_supervised",
    "learning.diffusion", "learning.primal_dual", "learning.reconstructors",
    "learning.robustness",
    "learning.memory",
)

#: Names that a module exports for the package but that stay out of ``cu.*``.
_NOT_FLAT = {"arrays": {"as_tensor", "numpy_compatible", "check_floating", "check_number",
                        "check_int"}}

_loaded = False


def _load() -> None:
    """Import every public module and copy its ``__all__`` names into this package."""
    global _loaded
    if _loaded:
        return
    names = {}
    for module_name in _PUBLIC_MODULES:
        module = _importlib.import_module(f"{__name__}.{module_name}")
        hidden = _NOT_FLAT.get(module_name, set())
        names.update({name: getattr(module, name) for name in module.__all__
                      if name not in hidden})
    names["checks"] = _importlib.import_module(f"{__name__}.checks")
    globals().update(names)
    _loaded = True


def __getattr__(name: str):
    # Called only for names not yet in the package (PEP 562): load the maths once.
    if name.startswith("__"):
        raise AttributeError(name)
    _load()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module 'course_utils' has no attribute {name!r}") from None


def __dir__():
    _load()
    return sorted(globals())
