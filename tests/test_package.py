"""The package as a learner meets it: flat ``cu.*`` names, folders by idea, a cheap import."""

import subprocess
import sys
import types
from pathlib import Path

import course_utils as cu

ROOT = Path(__file__).resolve().parents[1]

#: Every flat name the lessons could use before the package was split into folders
#: (issue #12): they must all still work.
NAMES_BEFORE_THE_FOLDERS = """
DataSplit Discriminator EllipsesDataset FILTERS FINE_FACTOR FanBeam GENERATOR_PATH Generator
History LinearOperator MU_WATER MatrixOperator PairedDifference ParallelBeam QUICK
RadonTransform ResultsTable SparseViewSetting UNet backproject_fbp cgls classical_baselines
classical_methods count_parameters ct_slice device discriminator_loss dival_geometry
ellipse_line_integrals evaluate fbp filter_response filter_sinogram fine_grid_sinogram
gaussian_noise generator_loss image_divergence image_gradient joseph_matrix landweber
latent_reconstruction load_checkpoint load_generator mean_interval mlem paired_difference
plot_curves poisson_counts poisson_noise psnr results_table save_checkpoint save_generator
seed_everything shepp_logan show_images show_sinogram sirt ssim total_variation train
train_gan tune_tv_weight tv_pdhg checks
""".split()


def test_every_flat_name_is_still_there():
    missing = [name for name in NAMES_BEFORE_THE_FOLDERS if not hasattr(cu, name)]
    assert not missing, f"cu.* lost {missing}"
    assert isinstance(cu.checks, types.ModuleType)


def test_flat_names_come_from_the_folders_named_after_their_idea():
    where = {"RadonTransform": "operators", "LinearOperator": "operators",
             "fbp": "reconstruction", "tv_pdhg": "reconstruction",
             "SparseViewSetting": "simulation", "shepp_logan": "simulation",
             "train": "learning", "UNet": "learning", "evaluate": "learning"}
    for name, folder in where.items():
        assert getattr(cu, name).__module__.startswith(f"course_utils.{folder}."), name


def test_no_module_sits_loose_beside_the_folders():
    loose = sorted(p.name for p in (ROOT / "course_utils").glob("*.py"))
    assert loose == ["__init__.py", "arrays.py", "config.py", "metrics.py", "plotting.py"]
    for folder in ("operators", "reconstruction", "simulation", "learning", "checks", "tools"):
        assert (ROOT / "course_utils" / folder / "__init__.py").is_file(), folder


def test_dir_lists_the_flat_names_and_unknown_names_fail_clearly():
    assert {"fbp", "RadonTransform", "train"} <= set(dir(cu))
    try:
        cu.no_such_name
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("cu.no_such_name did not raise AttributeError")


def _imports_after(code: str) -> set:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(' '.join(m for m in ('torch', 'matplotlib', 'numpy') "
                          "if m in sys.modules))"],
                         capture_output=True, text=True, timeout=120, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_importing_the_package_or_a_tool_does_not_import_torch():
    assert _imports_after("import course_utils") & {"torch", "matplotlib"} == set()
    for tool in ("cli", "doctor", "release", "grade", "generator"):
        imported = _imports_after(f"import course_utils.tools.{tool}")
        assert imported & {"torch", "matplotlib"} == set(), tool
    # and the first flat name loads the maths
    assert "torch" in _imports_after("import course_utils as cu; cu.fbp")
