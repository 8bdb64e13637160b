"""``dltomo ctslices``: rebuild the real CT slices that the course ships in ``data/``.

::

    pip install pydicom-data
    dltomo ctslices --out data/ct_slices.npz

reads two DICOM files that ship inside Python packages (nothing is downloaded):

* ``CT_small.dcm`` from **pydicom** itself (128 x 128, a region around the thoracic
  spine of the NEMA WG04 ``CT1_UNC`` image),
* ``eCT_Supplemental.dcm`` from **pydicom-data** (an enhanced CT, two 512 x 512 frames
  of a brain from NEMA's multi-frame CT samples),

converts them to Hounsfield units with the DICOM rescale, brings the three slices to
256 x 256 and writes them, with their names, sources, pixel sizes and provenance, to a
compressed ``.npz`` (about 0.1 MB).  ``data/README.md`` has the details and the licences;
:func:`course_utils.real_ct_slices` (lesson 12) reads the file.

pydicom-data is needed only to rebuild the file, never to run the course.

pydicom-data's head slice ``693_UNCR.dcm`` is deliberately not used: it comes from the
CQ500 data set (patient CQ500-CT-310), licensed CC BY-NC-SA 4.0 (non-commercial, share
alike), which is incompatible with shipping it in this MIT-licensed repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: The file that the course ships (lesson 12), read by ``cu.real_ct_slices``.
CT_SLICES_PATH = Path(__file__).resolve().parents[2] / "data" / "ct_slices.npz"

#: Side of the stored slices in pixels.
SIZE = 256

#: The lowest value a CT scanner stores: air.  Lower values (such as the padding outside
#: a scanner's field of view) are raised to it.
HU_AIR = -1024

#: The file taken from pydicom-data (the other, CT_small.dcm, ships in pydicom).  Not
#: 693_UNCR.dcm: a CQ500 slice under CC BY-NC-SA 4.0, which an MIT repository cannot ship.
PYDICOM_DATA_FILE = "eCT_Supplemental.dcm"

PROVENANCE = """\
Real CT slices of lesson 12 ("Deep learning for tomographic image reconstruction"):
Hounsfield units (int16), 256 x 256, row 0 at the top (anterior), the patient's right
on the left of the image (radiological convention). Built by `dltomo ctslices` with
pydicom {pydicom} and pydicom-data {pydicom_data}; no file was downloaded.
[0] CT_small: pydicom's CT_small.dcm. pydicom's test_files/README.txt: a CT image
"downsized to 128x128 from 'CT1_UNC'" of the NEMA DICOM WG04 compression test images
(ftp://medical.nema.org/MEDICAL/Dicom/DataSets/WG04/); header: GE HiSpeed CT/i,
120 kVp, contrast-enhanced, 5 mm slice; a region around a thoracic vertebra (its pixel
spacing, 0.661 mm, is that of the 338.7 mm, 512 x 512 original, so it looks cropped
rather than downsized). Upsampled 128 -> 256 by bilinear interpolation (each new pixel
a bilinear interpolate of the four nearest old pixel centres, half-pixel aligned).
[1, 2] eCT_Supplemental frame 0 and 1: pydicom-data's eCT_Supplemental.dcm.
pydicom's README: original file CT0012 of NEMA's enhanced multi-frame CT samples
(ftp://medical.nema.org/medical/dicom/Multiframe/CT/nemamfct.images.tar.bz2); the
header (fictitious names: "Acme Medical Devices", "St. Nowhere Hospital") calls it a
derived brain perfusion (rCBF) image: bone, cerebrospinal fluid and large vessels are
set to the lowest value, so the brain lies in "air". Its rescale (intercept -1024,
slope 1, type US) comes from the shared functional groups; its orientation
(-1, 0, 0, 0, 1, 0) is flipped left-right here to match the others. Frames 0 and 1
are 10 mm apart. Area-averaged 512 -> 256.
Conversion: HU = RescaleSlope * stored + RescaleIntercept, values below -1024 set to
-1024, resampled in float64 and rounded to int16. pixel_mm is the pixel size after
resampling. Licences: pydicom and pydicom-data are MIT-licensed packages; pydicom's
README says of its test files "I believe there is no restriction on using any of these
files in this manner"; no licence of NEMA's sample images was found (unknown).
pydicom-data's head slice 693_UNCR.dcm is left out on purpose: it comes from the CQ500
data set (CC BY-NC-SA 4.0, non-commercial, share alike), which an MIT-licensed
repository cannot ship.
"""


def pydicom_data_path(name: str) -> str:
    """Path of file ``name`` in the installed pydicom-data package, never downloaded.

    pydicom-data registers itself as a pydicom external data source (entry point
    ``pydicom.data.external_sources``); we ask that source directly rather than
    ``pydicom.data.get_testdata_file``, which would download a missing file.
    Raises ``SystemExit`` with the command that installs it if it is missing.
    """
    from importlib import metadata

    try:
        metadata.distribution("pydicom-data")
    except metadata.PackageNotFoundError:
        raise SystemExit(
            "dltomo ctslices: the pydicom-data package is not installed; it holds one of "
            "the DICOM files (eCT_Supplemental.dcm). Install it with\n"
            "    pip install pydicom-data\n"
            "(only this command needs it; the course itself does not).") from None
    sources = [ep for ep in metadata.entry_points(group="pydicom.data.external_sources")
               if ep.name == "pydicom-data"]
    if not sources:
        raise SystemExit("dltomo ctslices: pydicom-data is installed but registers no "
                         "pydicom data source; reinstall it with "
                         "pip install --force-reinstall pydicom-data")
    return sources[0].load()().get_path(name)


def _rescale(dataset, frame_groups=None):
    """``(slope, intercept)`` of the DICOM rescale from stored values to HU.

    For an enhanced (multi-frame) image the rescale lives in the *Pixel Value
    Transformation Sequence* of the per-frame functional groups (``frame_groups``, the
    frame's item), else of the shared ones; for a classic image, in the dataset itself.
    """
    for groups in (frame_groups, _shared_groups(dataset)):
        if groups is not None and "PixelValueTransformationSequence" in groups:
            item = groups.PixelValueTransformationSequence[0]
            return float(item.RescaleSlope), float(item.RescaleIntercept)
    return float(dataset.get("RescaleSlope", 1.0)), float(dataset.get("RescaleIntercept", 0.0))


def _shared_groups(dataset):
    if "SharedFunctionalGroupsSequence" in dataset:
        return dataset.SharedFunctionalGroupsSequence[0]
    return None


def _frame_value(dataset, frame: int, sequence: str, keyword: str):
    """``keyword`` of a functional-group ``sequence``, per-frame first, else shared."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    for groups in ((per_frame[frame] if per_frame else None), _shared_groups(dataset)):
        if groups is not None and sequence in groups:
            return groups[sequence][0].get(keyword)
    return None


def area_average(image, size: int = SIZE):
    """Mean of ``k x k`` blocks of a square float array, ``k = side / size``."""
    side = image.shape[-1]
    if image.shape != (side, side) or side % size:
        raise ValueError(f"cannot area-average a {image.shape} image to {size} x {size}")
    k = side // size
    return image.reshape(size, k, size, k).mean(axis=(1, 3))


def bilinear_upsample(image, size: int = SIZE):
    """Bilinear interpolation of a square float array to ``size x size``.

    Pixel centres aligned as in ``torch.nn.functional.interpolate(..., mode="bilinear",
    align_corners=False)``: for a factor of 2 each new pixel is ``3/4`` of the old pixel
    it lies in plus ``1/4`` of its nearest neighbour along each axis (edges repeated).
    """
    import numpy as np
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64))[None, None]
    out = torch.nn.functional.interpolate(tensor, size=(size, size), mode="bilinear",
                                          align_corners=False)
    return out[0, 0].numpy()


def _to_size(hu, size: int = SIZE):
    """``(resampled HU, how)``: area average when shrinking, bilinear when growing."""
    if hu.shape[-1] >= size:
        return area_average(hu, size), f"area-averaged {hu.shape[-1]} -> {size}"
    return bilinear_upsample(hu, size), f"bilinear {hu.shape[-1]} -> {size}"


def read_slices():
    """The slices as ``(hu float64 (n, 256, 256), names, sources, pixel_mm, versions)``."""
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file

    # pydicom's own test file: local, never downloaded
    ct_small = get_testdata_file("CT_small.dcm", download=False)
    if ct_small is None:
        raise SystemExit("dltomo ctslices: CT_small.dcm is missing from the installed "
                         "pydicom; reinstall pydicom")
    ect = pydicom_data_path(PYDICOM_DATA_FILE)
    from importlib import metadata
    versions = {"pydicom": pydicom.__version__,
                "pydicom_data": metadata.version("pydicom-data")}

    images, names, sources, pixel_mm = [], [], [], []

    dataset = pydicom.dcmread(ct_small)
    orientation = [round(float(v)) for v in dataset.ImageOrientationPatient]
    if orientation != [1, 0, 0, 0, 1, 0]:
        raise ValueError(f"CT_small: unexpected orientation {orientation}")
    slope, intercept = _rescale(dataset)
    hu = slope * dataset.pixel_array.astype(np.float64) + intercept
    spacing = [float(v) for v in dataset.PixelSpacing]
    hu, how = _to_size(np.maximum(hu, HU_AIR))
    images.append(hu)
    names.append("CT_small")
    sources.append(f"CT_small.dcm (pydicom {versions['pydicom']}); HU = {slope:g} * stored "
                   f"{intercept:+g}; {how}")
    pixel_mm.append(spacing[0] * dataset.Columns / SIZE)

    dataset = pydicom.dcmread(ect)
    stack = dataset.pixel_array                           # (frames, rows, columns)
    spacing = [float(v) for v in dataset.SharedFunctionalGroupsSequence[0]
               .PixelMeasuresSequence[0].PixelSpacing]
    for frame in range(int(dataset.NumberOfFrames)):
        slope, intercept = _rescale(dataset, dataset.PerFrameFunctionalGroupsSequence[frame])
        hu = slope * stack[frame].astype(np.float64) + intercept
        orientation = [round(float(v)) for v in
                       _frame_value(dataset, frame, "PlaneOrientationSequence",
                                    "ImageOrientationPatient")]
        if orientation == [-1, 0, 0, 0, 1, 0]:
            hu, flipped = hu[:, ::-1], "; flipped left-right to the common orientation"
        elif orientation == [1, 0, 0, 0, 1, 0]:
            flipped = ""
        else:
            raise ValueError(f"eCT_Supplemental: unexpected orientation {orientation}")
        hu, how = _to_size(np.maximum(hu, HU_AIR))
        images.append(hu)
        names.append(f"eCT_Supplemental frame {frame}")
        sources.append(f"eCT_Supplemental.dcm frame {frame} of {len(stack)} (pydicom-data "
                       f"{versions['pydicom_data']}); HU = {slope:g} * stored "
                       f"{intercept:+g} (functional groups); {how}{flipped}")
        pixel_mm.append(spacing[0] * stack.shape[-1] / SIZE)
    return np.stack(images), names, sources, pixel_mm, versions


def build(out) -> Path:
    """Read, convert and save the slices to ``out``; returns the path written."""
    import numpy as np

    hu, names, sources, pixel_mm, versions = read_slices()
    hu = np.rint(hu)
    if hu.min() < np.iinfo(np.int16).min or hu.max() > np.iinfo(np.int16).max:
        raise ValueError("Hounsfield units out of the int16 range")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, hu=hu.astype(np.int16), names=np.array(names),
                        sources=np.array(sources),
                        pixel_mm=np.array(pixel_mm, dtype=np.float64),
                        provenance=np.array(PROVENANCE.format(**versions)))
    return out


def main(argv=None) -> int:
    """The rebuild command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="dltomo ctslices",
        description="Read three real CT slices from the DICOM files inside pydicom and "
                    "pydicom-data (pip install pydicom-data), convert them to Hounsfield "
                    "units at 256 x 256 and save them for lesson 12.")
    parser.add_argument("--out", default=str(CT_SLICES_PATH), help="file to write (.npz)")
    args = parser.parse_args(argv)
    path = build(args.out)

    import numpy as np
    with np.load(path) as data:
        for name, mm, image in zip(data["names"], data["pixel_mm"], data["hu"]):
            print(f"  {name:<26} {mm:.3f} mm/pixel, HU {image.min()} to {image.max()}")
    print(f"saved {path} ({path.stat().st_size:,} bytes)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
