# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 01: Projection, backprojection and filtered backprojection
#
# A CT scanner never looks inside the body. It sends X-rays through it and measures how
# much of each beam arrives; by the Beer-Lambert law, minus the logarithm of the fraction
# that arrives is the integral of the attenuation along the ray. The set of all these line
# integrals is the **Radon transform** of the image, and turning it back into an image is
# the reconstruction problem that every later lesson attacks with learning. This lesson
# builds the classical answer, **filtered backprojection (FBP)**, from its parts:
# projection, backprojection, the Fourier slice theorem and the ramp filter. Clinical
# scanners today ship iterative and, increasingly, deep-learning reconstructions beside
# it, because FBP pays for its speed with noise and streaks when the dose is low or the
# views are few. That is exactly why we start here:
# FBP is fast, exact in the limit of complete, clean, finely sampled data, still the
# default for many protocols, the input of many networks (lessons 03 and 04), and the
# baseline whose failures (sections 5 and 6) every later method is built to repair.
#
# **Learning goals**
#
# - write the Radon transform as line integrals and read a sinogram (why a point traces a sine);
# - use scikit-image's `radon`/`iradon` and the course's `cu.RadonTransform`, and know their conventions;
# - explain why projecting then backprojecting blurs (the $1/r$ point spread of $A^T A$) and how the Fourier slice
#   theorem leads to the ramp filter $|\nu|$, and why the projections must be zero-padded;
# - implement backprojection, the ramp filter and FBP yourself, and derive FBP's weights
#   for unevenly spaced angles;
# - pick a filter window for the noise/resolution trade-off, and recognise the streaks of too few angles;
# - use the operator `A`, its adjoint `A.T` and autograd through it: the bridge to lesson 02.
#
# **Prerequisites**: none in the course (this is the first lesson). Python and NumPy, a first
# look at PyTorch tensors, and the idea of a Fourier transform.
#
# **Estimated run time**: CPU quick mode (`COURSE_QUICK=1`, what the tests run) about 15 s
# on a 2-core CPU; CPU full mode (256 x 256, 360 angles) about 1 minute and 3.5 GB of
# memory (both measured with `benchmarks/lessons.py`); no GPU needed.

# %% [markdown]
# **How the exercises work** (in every lesson). An exercise has a heading with its
# points, a statement, a hint you can unfold, and a code cell where a
# `raise NotImplementedError` line marks the place for your code. The cell after it
# checks your answer and prints one line: ✅ passed, ⏳ not attempted yet, or ❌ what
# looks wrong, with a hint. The rest of the notebook never uses your answer, so you can
# skip an exercise and come back to it. If your instructor grades the notebook, keep
# your whole answer, helper functions included, inside the exercise's code cell: the
# grader takes only those cells from your notebook.

# %% [markdown]
# ## 0. Set-up
#
# `QUICK` mode (the environment variable `COURSE_QUICK=1`) uses a 128 x 128 phantom and
# 180 angles; full mode 256 x 256 and 360 angles. Everything here is small enough for the
# CPU, so we compute there even when a GPU is available.

# %%
import math
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.ndimage import convolve1d
from skimage.transform import iradon, radon

import course_utils as cu

cu.seed_everything(0)
device = cu.device()
QUICK = cu.QUICK

N = 128 if QUICK else 256                   # Shepp-Logan phantom: N x N pixels
N_DET = math.ceil(math.sqrt(2) * N) + 1     # detector pixels: the image's diagonal fits
N_ANGLES = 180 if QUICK else 360            # the full scan; fewer angles = every k-th one
print(f"QUICK={QUICK}: N={N}, N_DET={N_DET}, N_ANGLES={N_ANGLES} "
      f"(device available: {device}; this lesson computes on the CPU)")

# %% [markdown]
# ## 1. The Radon transform
#
# Take an image $f(x, y)$, the attenuation coefficient at each point, and a direction
# $\theta$. The line
#
# $$L(\theta, s) = \{(x, y) : x\cos\theta + y\sin\theta = s\}$$
#
# is perpendicular to the unit vector $(\cos\theta, \sin\theta)$ and passes at signed
# distance $s$ from the centre. Its line integral is
#
# $$p(\theta, s) = \int_{L(\theta, s)} f\, d\ell
#   = \int_{-\infty}^{\infty} f(s\cos\theta - t\sin\theta,\; s\sin\theta + t\cos\theta)\, dt .$$
#
# For a fixed $\theta$, the function $s \mapsto p(\theta, s)$ is a **projection**: what a
# detector behind the object records for parallel rays in one direction. Stacking the
# projections for $\theta \in [0, \pi)$ row by row gives the **sinogram**. Half a turn is
# enough, because $\theta + \pi$ sees the same lines backwards: $p(\theta + \pi, s) = p(\theta, -s)$.
# Radon (1917) showed that $f$ is determined by its line integrals, and gave an inversion
# formula; the rest of this lesson turns it into an algorithm.
#
# ### 1.1 First contact: scikit-image
#
# As in A. J. Reader's workshop *AI for image reconstruction* (see the references), we
# start with scikit-image: `radon` computes a sinogram and
# `iradon` reconstructs from it, either by plain backprojection (`filter_name=None`) or by
# FBP (`filter_name="ramp"`). The phantom is the Shepp-Logan head (`cu.shepp_logan`,
# values in $[0, 1]$).

# %%
x_true = cu.shepp_logan(N)                              # (N, N) tensor in [0, 1]
theta_degrees = np.linspace(0.0, 180.0, N_ANGLES, endpoint=False)   # skimage uses degrees

sinogram_sk = radon(x_true.numpy(), theta=theta_degrees, circle=False)
bp_sk = iradon(sinogram_sk, theta=theta_degrees, output_size=N, filter_name=None, circle=False)
fbp_sk = iradon(sinogram_sk, theta=theta_degrees, output_size=N, filter_name="ramp",
                circle=False)
print("skimage sinogram:", sinogram_sk.shape, "= (n_detectors, n_angles)")
psnr_fbp_sk = float(cu.psnr(fbp_sk, x_true.numpy(), data_range=1.0))
cu.show_images([x_true, sinogram_sk.T, bp_sk, fbp_sk],
               titles=["phantom", "sinogram (transposed)", "backprojection",
                       f"FBP: {psnr_fbp_sk:.1f} dB"]);
if N == 128 and N_ANGLES == 180:            # the number the text below quotes
    assert 28.5 < psnr_fbp_sk < 29.5

# %% [markdown]
# Three things are already visible: the sinogram is a tangle of sine-shaped bands
# (section 1.3), plain backprojection is a blurred, wrongly scaled version of the object
# (section 2), and the ramp filter makes it sharp (section 3). The number in the title is
# the **PSNR** against the phantom, $10\log_{10}(R^2/\text{MSE})$ with data range $R = 1$;
# higher is better. On this noise-free phantom, FBP reaches about 29 dB at 128 x 128 with
# 180 angles.
#
# **scikit-image's conventions**, worth knowing before you mix it with anything else:
#
# - angles are in **degrees**;
# - the sinogram is **(n_detectors, n_angles)**: one projection per *column*;
# - `circle=True` assumes the object lies inside the image's inscribed circle and uses
#   $N$ detector pixels; `circle=False` first pads the image to its diagonal,
#   $\lceil\sqrt 2 N\rceil$ pixels;
# - the centre of rotation is the pixel `N // 2`, which for an even $N$ is half a pixel
#   away from the geometric centre of the image;
# - its backprojection (`filter_name=None`) has its own scale; only the FBP is
#   calibrated to give back the attenuation values.

# %% [markdown]
# ### 1.2 The course's operator: `cu.ParallelBeam` and `cu.RadonTransform`
#
# The rest of the course uses one operator with the conventions of the ASTRA toolbox and
# `cu.ParallelBeam`:
#
# - the image is centred on the rotation axis and pixels have size 1; pixel `(row, col)`
#   of an $N \times N$ image has its centre at $x = \text{col} + \tfrac12 - \tfrac N2$
#   (to the right) and $y = \tfrac N2 - \tfrac12 - \text{row}$ (upwards: row 0 is the top);
# - detector pixel $k$ has its centre at $u_k = k + \tfrac12 - \tfrac{n_\text{det}}{2}$,
#   and the ray through it at angle $\theta$ is the line $x\cos\theta + y\sin\theta = u_k$;
# - angles are in **radians**, by default $n_\theta$ equally spaced angles in $[0, \pi)$;
# - a sinogram is **(n_angles, n_detectors)**: one projection per *row*.
#
# `cu.RadonTransform(image_size=N, geometry=...)` computes the line integrals with
# Joseph's method (1982): a ray walks through the image one column (or row) at a time and
# interpolates linearly between the two nearest pixel centres. The weights form a sparse
# matrix $A$, so projecting is a matrix product, $y = A x$.

# %%
geometry = cu.ParallelBeam(n_angles=N_ANGLES, n_detectors=N_DET)
A = cu.RadonTransform(image_size=N, geometry=geometry)
y = A(x_true)                                           # (n_angles, n_detectors)
print(A)
print("sinogram:", tuple(y.shape), "= (n_angles, n_detectors)")

# %% [markdown]
# One line and its projection: the red ray $x\cos\theta + y\sin\theta = s$ at
# $\theta = 30°$, and on the right the whole projection $p(30°, \cdot)$, in which that ray
# is one sample (red line). The orange arrow is the detector axis $(\cos\theta, \sin\theta)$.

# %%
theta_0, s_0 = math.radians(30), 20.0
k_0 = int(torch.argmin((geometry.angles - theta_0).abs()))   # the simulated angle nearest 30°
t = np.array([-N, N])
fig, (ax_image, ax_projection) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
ax_image.imshow(x_true, cmap="gray", extent=(-N / 2, N / 2, -N / 2, N / 2))
ax_image.plot(s_0 * math.cos(theta_0) - t * math.sin(theta_0),
              s_0 * math.sin(theta_0) + t * math.cos(theta_0), "r-", label="one ray")
ax_image.arrow(0, 0, 0.4 * N * math.cos(theta_0), 0.4 * N * math.sin(theta_0),
               color="C1", width=0.6, length_includes_head=True, label="detector axis")
ax_image.set(xlim=(-N / 2, N / 2), ylim=(-N / 2, N / 2), xlabel="x (pixels)",
             ylabel="y (pixels)", title=r"$x\cos\theta + y\sin\theta = s$, $\theta = 30°$")
ax_image.legend(loc="lower left")
ax_projection.plot(geometry.detector_positions(), y[k_0])
ax_projection.axvline(s_0, color="r")
ax_projection.set(xlabel="s (pixels)", ylabel=r"$p(\theta, s)$",
                  title=f"projection at θ = {math.degrees(geometry.angles[k_0]):.0f}°")
ax_projection.grid(alpha=0.4)
plt.show()

# %% [markdown]
# The sinograms of the phantom and of a real CT slice (`cu.ct_slice(normalize=True)`, a
# 128 x 128 slice shipped with pydicom, scaled to $[0, 1]$):

# %%
x_ct = cu.ct_slice(normalize=True)
N_CT = x_ct.shape[-1]
if N_CT == N:
    geometry_ct, A_ct = geometry, A
else:
    geometry_ct = cu.ParallelBeam(n_angles=N_ANGLES,
                                  n_detectors=math.ceil(math.sqrt(2) * N_CT) + 1)
    A_ct = cu.RadonTransform(image_size=N_CT, geometry=geometry_ct)
y_ct = A_ct(x_ct)

fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), layout="constrained",
                         gridspec_kw={"width_ratios": [1, 1.25, 1, 1.25]})
for ax, image, sinogram, geom, name in ((axes[:2], x_true, y, geometry, "Shepp-Logan"),
                                         (axes[2:], x_ct, y_ct, geometry_ct, "CT slice")):
    ax[0].imshow(image, cmap="gray")
    ax[0].set_title(name)
    ax[0].set_axis_off()
    cu.show_sinogram(sinogram, geom, ax=ax[1], title=f"sinogram of the {name}")
plt.show()

# %% [markdown]
# ### 1.3 Why "sinogram"? A point traces a sine
#
# A point at $(x_0, y_0)$ lies on the line $x\cos\theta + y\sin\theta = s$ exactly when
#
# $$s(\theta) = x_0\cos\theta + y_0\sin\theta = r_0 \cos(\theta - \varphi_0),$$
#
# a sine whose amplitude $r_0$ is the point's distance from the centre and whose phase
# $\varphi_0$ is its polar angle. A sinogram is the sum of such sines, one per point of
# the image, weighted by $f$. Let us check it with a small disc.

# %%
centres = torch.arange(N) + 0.5 - N / 2
x_grid, y_grid = centres[None, :], -centres[:, None]           # pixel centres (x right, y up)
x_0, y_0 = 0.25 * N, 0.15 * N
disc = (((x_grid - x_0) ** 2 + (y_grid - y_0) ** 2) <= 2.0**2).float()
y_disc = A(disc)
s_predicted = x_0 * torch.cos(geometry.angles) + y_0 * torch.sin(geometry.angles)

ax = cu.show_sinogram(y_disc, geometry, title="sinogram of a small disc")
ax.plot(s_predicted, torch.rad2deg(geometry.angles), "r--", lw=1,
        label=r"$x_0\cos\theta + y_0\sin\theta$")
ax.legend(loc="lower right")
plt.show()

u = geometry.detector_positions().float()
s_measured = (y_disc * u).sum(-1) / y_disc.sum(-1)          # centre of mass of each projection
sine_error = float((s_measured - s_predicted).abs().max())
print(f"largest distance between the disc's trace and the sine: {sine_error:.3f} pixels")
assert sine_error < 0.25

# %% [markdown]
# ### 1.4 One transform, two conventions
#
# Our `A` and scikit-image's `radon` compute the same line integrals, laid out differently.
# To compare them, transpose skimage's sinogram, give it the angles in degrees, and use
# `circle=True` with $N$ detector pixels. For an **odd** $N$ the two centres of rotation
# coincide and the sinograms agree up to the interpolation scheme; for an **even** $N$
# skimage rotates about pixel `N // 2`, half a pixel off, and the difference is much
# larger, although both are correct in their own convention.

# %%
compare_angles = torch.arange(60, dtype=torch.float64) * math.pi / 60   # radians
agreement = {}
for n in (N - 1, N):                                    # an odd and an even size
    phantom = cu.shepp_logan(n)
    A_n = cu.RadonTransform(n, cu.ParallelBeam(angles=compare_angles, n_detectors=n))
    ours = A_n(phantom)
    theirs = radon(phantom.numpy(), theta=np.rad2deg(compare_angles.numpy()), circle=True).T
    agreement[n] = float(np.linalg.norm(ours.numpy() - theirs) / np.linalg.norm(theirs))
    print(f"N = {n:3d} ({'odd' if n % 2 else 'even'}): relative difference "
          f"between A(x) and skimage's radon = {agreement[n]:.2%}")
assert agreement[N - 1] < 0.02                 # same transform
assert agreement[N] > 3 * agreement[N - 1]     # the half-pixel convention shows

# %% [markdown]
# ## 2. Backprojection
#
# The natural first attempt at an inverse: every pixel collects the values of all the rays
# that pass through it,
#
# $$b(x, y) = \int_0^\pi p(\theta,\, x\cos\theta + y\sin\theta)\, d\theta
#   \;\approx\; \frac{\pi}{n_\theta} \sum_{k=1}^{n_\theta} p(\theta_k,\, x\cos\theta_k + y\sin\theta_k),$$
#
# where $p(\theta_k, \cdot)$ between two detector centres is interpolated linearly.
# Each projection is "smeared back" across the image along the direction its rays came
# from. Backprojection is the **adjoint** (transpose) of projection, $A^T$; we come back to
# that in section 8. Here is the backprojection of 1, 4, 16 and all angles:

# %%
def backproject_subset(sinogram, operator, n_used):
    """(π / n_used) A^T y with only n_used equally spaced projections kept."""
    mask = torch.zeros(operator.geometry.n_angles, 1)
    mask[:: operator.geometry.n_angles // n_used] = 1.0
    return math.pi / int(mask.sum()) * operator.T(sinogram * mask)


counts = [1, 4, 16, N_ANGLES]
cu.show_images([backproject_subset(y, A, n) for n in counts],
               titles=[f"backprojection of {n} angle{'s' * (n > 1)}" for n in counts]);

# %% [markdown]
# ### Exercise 1: backprojection
#
# Write `backproject(sinogram, angles, image_size)`: the plain **sum** over the angles
# (no $\pi/n_\theta$ weight yet) of the smeared projections, computed pixel by pixel.
#
# - `sinogram`: tensor `(n_angles, n_detectors)`; `angles`: tensor `(n_angles,)` in radians;
#   returns a tensor `(image_size, image_size)`.
# - Use the course's conventions (section 1.2): pixel centres $x = \text{col} + \tfrac12 - \tfrac N2$,
#   $y = \tfrac N2 - \tfrac12 - \text{row}$; detector centres $u_k = k + \tfrac12 - \tfrac{n_\text{det}}2$;
#   the ray through a pixel at angle $\theta$ hits the detector at $u = x\cos\theta + y\sin\theta$.
# - Read $p(\theta, u)$ by **linear interpolation** between the two detector pixels on
#   either side of $u$; treat the detector as zero outside its pixels.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Loop over the angles, not over the pixels: for one angle, compute for **every** pixel at
# once where its ray lands on the detector (two broadcast grids of pixel centres, one
# along the columns, one along the rows, give the whole image), read the projection there,
# and add the result to the image. The only delicate part is reading a projection between
# its samples, and outside the detector.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# Detector pixel $k$ sits at $u_k = k + \tfrac12 - \tfrac{n_\text{det}}{2}$, so a position
# $u$ corresponds to the fractional index $\kappa = u + \tfrac{n_\text{det}}{2} - \tfrac12$.
# With $k_0 = \lfloor \kappa \rfloor$ and $t = \kappa - k_0 \in [0, 1)$,
#
# $$p(\theta, u) \approx (1 - t)\, p_{k_0} + t\, p_{k_0 + 1},$$
#
# with $p_k = 0$ for $k < 0$ or $k \ge n_\text{det}$ (not the value of the edge pixel).
# NumPy's and PyTorch's interpolation and padding functions can do the bookkeeping.
# </details>

# %%
def backproject(sinogram, angles, image_size):
    """Sum over angles of the projections smeared back across the image (pixel driven)."""
    ### BEGIN SOLUTION (points=2)
    n_detectors = sinogram.shape[1]
    centres = torch.arange(image_size, dtype=sinogram.dtype) + 0.5 - image_size / 2
    x = centres[None, :]                                   # x grows with the column
    y = -centres[:, None]                                  # y grows upwards
    padded = torch.nn.functional.pad(sinogram, (1, 1))     # zeros just outside the detector
    image = torch.zeros(image_size, image_size, dtype=sinogram.dtype)
    for projection, theta in zip(padded, angles):
        u = x * torch.cos(theta) + y * torch.sin(theta)
        k = (u + n_detectors / 2 + 0.5).clamp(0, n_detectors + 1)   # index into `padded`
        k_low = torch.floor(k).long().clamp(max=n_detectors)
        t = k - k_low
        image += (1 - t) * projection[k_low] + t * projection[k_low + 1]
    return image
    ### END SOLUTION


# %%
cu.checks.backproject(backproject);

# %% [markdown]
# From here on the notebook uses the course's operator: `A.T(y)` is the backprojection
# that is the exact transpose of our projector (Joseph's weights instead of your
# pixel-driven interpolation; the two differ only in the details of interpolation).
#
# ### Why backprojection blurs: the $1/r$ point spread
#
# Backproject the sinogram of a single point at the origin. Every projection is a spike
# at $s = 0$, and every spike is smeared into a line through the origin. All the lines
# cross at the point, but they also form a star around it whose density falls off with
# the distance $r$: the backprojection of a point is exactly $b(r) = 1/r$. Backprojection
# alone maps sinograms to images and has no kernel in the image plane; what is shift
# invariant is the composite **project, then backproject**, $A^T A$: moving the point moves
# its star with it. So $A^T A$ is a convolution with the kernel $1/r$, and the
# backprojection of the projections of any image is that image blurred by it,
#
# $$A^T A f = f * \frac{1}{r}.$$
#
# Let us measure it: if $b(r) = 1/r$, then $r\,b(r) = 1$.

# %%
point = torch.zeros(N, N)
point[N // 2, N // 2] = 1.0                                  # a one-pixel "point"
b_point = math.pi / N_ANGLES * A.T(A(point))
r = torch.sqrt((x_grid - x_grid[0, N // 2]) ** 2 + (y_grid - y_grid[N // 2, 0]) ** 2)
radii = torch.arange(2, N // 2 - 4)
r_times_b = torch.stack([(r * b_point)[(r >= a) & (r < a + 1)].mean() for a in radii])

fig, (ax_image, ax_profile) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
ax_image.imshow(torch.log10(b_point[N // 4: 3 * N // 4, N // 4: 3 * N // 4]), cmap="gray")
ax_image.set_title(r"$\log_{10}$ of the backprojection of a point")
ax_image.set_axis_off()
cu.plot_curves({r"$r \cdot b(r)$ (measured)": (radii + 0.5, r_times_b),
                "1 (theory)": (radii + 0.5, torch.ones(len(radii)))},
               xlabel="distance r from the point (pixels)", ylabel=r"$r\, b(r)$",
               title="the point spread of backprojection is 1/r", ax=ax_profile)
ax_profile.set_ylim(0, 1.5)
plt.show()
far = radii >= 3
print(f"r * b(r) for r in [3, {int(radii[-1])}]: between {float(r_times_b[far].min()):.3f} "
      f"and {float(r_times_b[far].max()):.3f}")
assert float((r_times_b[far] - 1).abs().max()) < 0.1

# %% [markdown]
# ## 3. The Fourier slice theorem and the ramp filter
#
# Write $P_\theta(\nu) = \int p(\theta, s)\, e^{-2\pi i \nu s}\, ds$ for the 1D Fourier
# transform of a projection ($\nu$ in cycles per pixel) and $F(\nu_x, \nu_y)$ for the 2D
# Fourier transform of the image. The **Fourier slice theorem** (Bracewell, 1956) says
#
# $$P_\theta(\nu) = F(\nu\cos\theta,\; \nu\sin\theta):$$
#
# the 1D transform of a projection is the slice of the 2D transform of the image through
# the origin, along the detector direction. For $\theta = 0$ the rays are vertical, the
# projection is the sum of each column, and the theorem holds exactly even for the
# discrete Fourier transform:

# %%
x_double = x_true.double()
projection_0 = x_double.sum(dim=0)                 # θ = 0: integrate along y (down the columns)
slice_0 = torch.fft.fft2(x_double)[0, :]           # the ν_y = 0 line of the 2D spectrum
slice_error = float((torch.fft.fft(projection_0) - slice_0).abs().max() / slice_0.abs().max())
print(f"|FFT(projection at 0°) - slice of FFT2(image)| / max = {slice_error:.1e}")
assert slice_error < 1e-12

# %% [markdown]
# Now write the inverse 2D Fourier transform in polar coordinates
# $(\nu_x, \nu_y) = (\nu\cos\theta, \nu\sin\theta)$, $\theta \in [0, \pi)$, $\nu \in \mathbb R$.
# The area element $d\nu_x\, d\nu_y$ becomes $|\nu|\, d\nu\, d\theta$, and with the slice
# theorem:
#
# $$f(x, y) = \int_0^\pi \underbrace{\int_{-\infty}^{\infty} |\nu|\, P_\theta(\nu)\,
#    e^{2\pi i \nu s}\, d\nu}_{q_\theta(s)} \Bigg|_{s = x\cos\theta + y\sin\theta} d\theta .$$
#
# So **$f$ is the backprojection of the projections filtered by the ramp $|\nu|$**. The
# ramp is the Jacobian of polar coordinates: the slices crowd together near the centre of
# Fourier space (left figure), so plain backprojection counts low frequencies too often,
# by a factor $1/|\nu|$. That is the Fourier-domain face of the $1/r$ blur (the 2D
# Fourier transform of $1/r$ is $1/|\nu|$), and the ramp undoes it.

# %%
fig, (ax_polar, ax_ramp) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for theta in np.linspace(0, np.pi, 12, endpoint=False):
    radius = np.linspace(-0.5, 0.5, 17)
    ax_polar.plot(radius * np.cos(theta), radius * np.sin(theta), ".", color="C0", ms=4)
ax_polar.set(aspect="equal", xlabel=r"$\nu_x$", ylabel=r"$\nu_y$",
             title="12 projections sample the 2D spectrum on spokes")
nu = np.linspace(-0.5, 0.5, 201)
ax_ramp.plot(nu, np.abs(nu))
ax_ramp.set(xlabel=r"$\nu$ (cycles per pixel)", ylabel=r"$|\nu|$", title="the ramp filter")
ax_ramp.grid(alpha=0.4)
plt.show()

# %% [markdown]
# ### Zero padding: why the projections must be padded before the FFT
#
# On a computer $P_\theta$ is a discrete Fourier transform (DFT) of length $n$, and
# multiplying DFTs is a **circular** convolution: the DFT treats each projection as one
# period of a periodic signal. The ramp's impulse response (its inverse transform) is not
# short. Sampled on the detector grid it is $h(0) = \tfrac14$, $h(n) = -1/(\pi n)^2$ for odd
# $n$ and 0 for even $n$ (Ramachandran & Lakshminarayanan, 1971): negative tails that
# reach across the whole detector. Without padding, what leaves one end of the projection
# re-enters at the other (**wrap-around**). Padding each projection with zeros to a length
# of at least $2n - 1$ before the FFT makes the circular convolution equal to the ordinary
# one on the $n$ samples we keep.
#
# The same effect, seen in the spatial domain with SciPy's `convolve1d`: `mode="constant"`
# is the ordinary convolution with zeros outside the projection, `mode="wrap"` the circular
# one. Here is one projection of the CT slice filtered both ways:

# %%
kernel = torch.fft.irfft(cu.filter_response(geometry_ct.n_detectors, dtype=torch.float64))
n_det_ct = geometry_ct.n_detectors
h = torch.cat([kernel[-(n_det_ct - 1):], kernel[:n_det_ct]]).numpy()  # h(-(n-1)) ... h(n-1)
p = y_ct[N_ANGLES // 2].double().numpy()                              # the projection at 90°
q_linear = convolve1d(p, h, mode="constant")
q_circular = convolve1d(p, h, mode="wrap")
assert np.allclose(q_linear, cu.filter_sinogram(p), atol=1e-10)        # what cu does (FFT, padded)

u_ct = geometry_ct.detector_positions().numpy()
fig, (ax_p, ax_q) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
ax_p.plot(u_ct, p)
ax_p.set(xlabel="s (pixels)", title="projection of the CT slice at 90°")
ax_q.plot(u_ct, q_linear, label="zero-padded (linear convolution)")
ax_q.plot(u_ct, q_circular, "--", label="no padding (circular: wrap-around)")
ax_q.plot(u_ct, 10 * (q_circular - q_linear), label="difference x 10")
ax_q.set(xlabel="s (pixels)", title="ramp-filtered projection")
ax_q.legend(fontsize=8)
for ax in (ax_p, ax_q):
    ax.grid(alpha=0.4)
plt.show()

# %% [markdown]
# The difference is an offset that varies slowly along the detector: the negative tails of
# the filtered signal, folded back. Backprojected, it becomes a low-frequency error over the
# whole image (a background that should not be there), larger the more of the detector the
# object covers. For the whole CT slice:

# %%
q_all_linear = convolve1d(y_ct.double().numpy(), h, axis=-1, mode="constant")
q_all_circular = convolve1d(y_ct.double().numpy(), h, axis=-1, mode="wrap")
psnr_padding = {}
for name, q in (("zero-padded", q_all_linear), ("no padding", q_all_circular)):
    x_rec = cu.backproject_fbp(A_ct, torch.from_numpy(q).float())   # FBP's weighted backprojection
    psnr_padding[name] = float(cu.psnr(x_rec, x_ct, data_range=1.0))
    print(f"FBP of the CT slice, {name:11s}: PSNR {psnr_padding[name]:.2f} dB")
assert psnr_padding["zero-padded"] > psnr_padding["no padding"] + 5

# %% [markdown]
# Much worse than the small offset in the plot suggests: the wrapped kernel sums to almost
# exactly zero (the ramp's value at $\nu = 0$), so without padding every filtered projection
# has almost zero mean, and the backprojected image loses its average grey level.
#
# ### Exercise 2: the ramp filter
#
# Write `ramp_filter_projections(sinogram)`, which filters every projection (every row,
# i.e. the last axis) by the ramp $|\nu|$ in the Fourier domain:
#
# 1. zero-pad each row to $n_\text{fft} = 2\, n_\text{det}$ samples;
# 2. take the FFT along the last axis and multiply by $|\nu|$, with $\nu$ the DFT
#    frequencies of $n_\text{fft}$ samples **in cycles per pixel** (from $-\tfrac12$ to $\tfrac12$);
# 3. transform back, keep the real part and the first $n_\text{det}$ samples.
#
# Input and output: tensors of shape `(n_angles, n_detectors)`.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# `torch.fft.fft` has an argument that zero-pads for you, and `torch.fft.fftfreq` gives the
# DFT frequencies in the order the FFT returns them (0, the positive, then the negative
# ones). Work along the last axis throughout, and remember what to drop at the end.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# With $\hat p = \mathrm{DFT}_{n_\text{fft}}(p, 0, \dots, 0)$ and
# $\nu_j = \texttt{fftfreq}(n_\text{fft})_j$,
#
# $$q = \operatorname{Re}\,\mathrm{IDFT}_{n_\text{fft}}\big(|\nu_j|\,\hat p_j\big)\big[0 : n_\text{det}\big].$$
#
# (The real-input transforms `rfft`/`irfft` with `rfftfreq` give the same with half the work.)
# </details>

# %%
def ramp_filter_projections(sinogram):
    """Filter each projection (last axis) by |ν| in the Fourier domain, with zero padding."""
    ### BEGIN SOLUTION
    n_detectors = sinogram.shape[-1]
    n_fft = 2 * n_detectors
    nu = torch.fft.fftfreq(n_fft, dtype=sinogram.dtype)         # cycles per pixel
    spectrum = torch.fft.fft(sinogram, n=n_fft, dim=-1)         # zero-padded to n_fft
    filtered = torch.fft.ifft(spectrum * nu.abs(), dim=-1).real
    return filtered[..., :n_detectors]
    ### END SOLUTION


# %%
cu.checks.ramp_filter_projections(ramp_filter_projections);

# %% [markdown]
# ## 4. Filtered backprojection
#
# Put the pieces together and replace $\int_0^\pi d\theta$ by a sum over $n_\theta$ equally
# spaced angles, each worth $\Delta\theta = \pi / n_\theta$:
#
# $$f(x, y) \approx \frac{\pi}{n_\theta} \sum_{k=1}^{n_\theta}
#   q_{\theta_k}(x\cos\theta_k + y\sin\theta_k), \qquad
#   q_\theta = \mathcal F^{-1}\big[\,|\nu|\, \mathcal F p_\theta \big].$$
#
# Because $\nu$ is measured in cycles per pixel and pixels have size 1, no other factor
# appears: the result is directly in the units of the image.
#
# ### Exercise 3: FBP, with weights you derive
#
# The weight $\pi/n_\theta$ assumes that the angles split $[0, \pi)$ evenly. Scans are
# not always like that: a view may be lost, or a protocol may place its views where it
# wants. In general FBP replaces $\int_0^\pi g(\theta)\, d\theta$, with
# $g(\theta) = q_\theta(x\cos\theta + y\sin\theta)$, by a weighted sum
# $\sum_k w_k\, g(\theta_k)$. **Derive the weights**: let each angle stand for the
# interval from halfway to its previous neighbour to halfway to its next one, and decide
# which angles are neighbours, given that $g(\theta + \pi) = g(\theta)$ (the same lines,
# seen from the other side: section 1).
#
# Write `fbp(sinogram, angles, image_size)` from your two functions and these weights.
# `angles` is a sorted tensor of radians in $[0, \pi)$, evenly spaced or not. Two tests of
# your derivation: the weights sum to $\pi$, and for evenly spaced angles each is
# $\pi / n_\theta$. The check compares your FBP with `cu.fbp` on Shepp-Logan sinograms
# (evenly spaced angles), then on a scan with uneven angles.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Filter, weight each filtered projection, backproject. For the weights, draw the angles on
# a half circle whose two ends, $0$ and $\pi$, are glued together (the integrand is
# $\pi$-periodic): the first angle has a neighbour on its left too. If the check reports a
# factor, compare it with $\pi$, $n_\theta$ and $\pi / n_\theta$.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $$w_k = \tfrac12\,(\theta_{k+1} - \theta_{k-1}), \qquad
#   \theta_{-1} = \theta_{n-1} - \pi, \quad \theta_{n} = \theta_0 + \pi, \qquad
#   \text{FBP}(p) = \text{backproject}\big(w_k \cdot \text{ramp}(p)_k\big).$$
# </details>

# %%
def fbp(sinogram, angles, image_size):
    """Filtered backprojection for sorted parallel-beam angles in [0, π), even or not."""
    ### BEGIN SOLUTION
    after = torch.cat([angles[1:], angles[:1] + math.pi])     # θ_(k+1), wrapping past π
    before = torch.cat([angles[-1:] - math.pi, angles[:-1]])  # θ_(k-1), wrapping below 0
    weights = (after - before) / 2                            # π / n_angles if even
    filtered = ramp_filter_projections(sinogram)
    return backproject(filtered * weights[:, None], angles, image_size)
    ### END SOLUTION


# %%
cu.checks.fbp(fbp);

# %% [markdown]
# **A note on the zero frequency.** `cu.fbp` (and `cu.filter_response`) do not sample
# $|\nu|$ directly. They take the DFT of the sampled kernel $h(n)$ of section 3, the ramp
# band-limited to the detector's Nyquist frequency, which equals $|\nu|$ except close to
# $\nu = 0$, where it stays slightly positive. Sampled $|\nu|$ is exactly 0 there, so each
# filtered projection loses a little of its mean and the image comes out a few percent too
# dark: the check above told you by how much. Kak & Slaney (1988, chapter 3) show this "DC
# shift"; the kernel form avoids it.

# %%
n_fft = 2 * (len(cu.filter_response(N_DET)) - 1)
frequencies = torch.fft.rfftfreq(n_fft)
low = frequencies < 0.02
ax = cu.plot_curves({r"sampled $|\nu|$ (your filter)": (frequencies[low], frequencies[low]),
                     "cu.filter_response (from the kernel h)":
                         (frequencies[low], cu.filter_response(N_DET)[low])},
                    xlabel=r"$\nu$ (cycles per pixel)", ylabel="response",
                    title="the two ramps near the zero frequency")
for curve in ax.get_lines():
    curve.set_marker(".")
plt.show()

# %% [markdown]
# `cu.fbp` is for evenly spaced angles, where your weights are all $\pi/n_\theta$.
#
# From here on we use `cu.fbp(A, y, filter=...)`. Plain backprojection against FBP, and
# our FBP against scikit-image's (on its own sinogram), all on the Shepp-Logan phantom.
# We even give the backprojection its best possible scale, computed from the truth.

# %%
def best_scaled(image, reference):
    """image * c with the c that minimises ||c image - reference|| (uses the truth!)."""
    return image * (image * reference).sum() / (image * image).sum()


x_bp = best_scaled(math.pi / N_ANGLES * A.T(y), x_true)
x_fbp = cu.fbp(A, y)
psnr_bp = float(cu.psnr(x_bp, x_true, data_range=1.0))
psnr_fbp = float(cu.psnr(x_fbp, x_true, data_range=1.0))
cu.show_images([x_true, x_bp, x_fbp, fbp_sk],
               titles=["phantom", f"backprojection (best scale): {psnr_bp:.1f} dB",
                       f"cu.fbp: {psnr_fbp:.1f} dB", f"skimage iradon: {psnr_fbp_sk:.1f} dB"]);
print(f"PSNR: backprojection {psnr_bp:.2f} dB, cu.fbp {psnr_fbp:.2f} dB, "
      f"skimage iradon {psnr_fbp_sk:.2f} dB")
assert psnr_fbp > psnr_bp + 10          # plain backprojection is far worse
assert abs(psnr_fbp - psnr_fbp_sk) < 1.5  # two FBPs, two conventions, the same quality

# %% [markdown]
# ## 5. Filters: resolution against noise
#
# The ramp grows with frequency, all the way to the Nyquist frequency $\nu = \tfrac12$.
# Real data carry noise, which is spread evenly over all frequencies (white), while the
# object's signal lives mostly at low frequencies: at high frequencies the ramp amplifies
# mostly noise. FBP filters therefore multiply the ramp by a **window** $W(\nu)$ that
# falls towards $\nu = \tfrac12$, trading resolution for noise:
#
# | filter | $W(\nu)$, $0 \le \nu \le \tfrac12$ |
# |---|---|
# | Ram-Lak (Ramachandran & Lakshminarayanan, 1971) | $1$ |
# | Shepp-Logan (Shepp & Logan, 1974) | $\operatorname{sinc}\nu = \sin(\pi\nu)/(\pi\nu)$ |
# | cosine | $\cos(\pi\nu)$ |
# | Hann | $\tfrac12\,(1 + \cos 2\pi\nu)$ |

# %%
n_fft = 2 * (len(cu.filter_response(N_DET)) - 1)
frequencies = torch.fft.rfftfreq(n_fft)
cu.plot_curves({name: (frequencies, cu.filter_response(N_DET, name)) for name in cu.FILTERS},
               xlabel=r"$\nu$ (cycles per pixel)", ylabel=r"$|\nu|\, W(\nu)$",
               title="FBP filters, from sharpest to smoothest");

# %% [markdown]
# **A second quality measure: SSIM.** From here on, and in every results table of the
# course, images are scored by PSNR and by the **structural similarity index** (SSIM, Wang,
# Bovik, Sheikh and Simoncelli, 2004). PSNR only sees the mean squared error; SSIM compares
# the *local structure* of a reconstruction $x$ with the reference $x^*$. Around every pixel
# it computes, with a Gaussian window (standard deviation 1.5 pixels, 11 x 11), the local
# means $\mu_x, \mu_{x^*}$, variances $\sigma_x^2, \sigma_{x^*}^2$ and covariance
# $\sigma_{x x^*}$, and forms
#
# $$\text{SSIM} = \frac{(2\mu_x\mu_{x^*} + C_1)\,(2\sigma_{x x^*} + C_2)}
#   {(\mu_x^2 + \mu_{x^*}^2 + C_1)\,(\sigma_x^2 + \sigma_{x^*}^2 + C_2)},
#   \qquad C_1 = (0.01\,R)^2,\; C_2 = (0.03\,R)^2,$$
#
# averaged over the image (away from a 5-pixel border). The first factor compares
# brightness, the second contrast and correlation, i.e. whether edges and textures are where
# they should be; the small constants keep flat, dark regions from dividing by zero. $R$ is
# the **data range**, as in PSNR: we always pass `data_range=1.0`, the range of the true
# images, so that scores are comparable between images and methods (letting each image set
# its own $R$ changes the constants and the score). SSIM is 1 for a perfect image and falls
# towards 0 (it can even go negative) as structure is lost; noise and streaks lower it more
# than a smooth bias of the same MSE does. `cu.ssim` matches scikit-image's
# `structural_similarity` with Gaussian weights.
#
# On the CT slice, with clean data and with 2 % Gaussian noise on the sinogram
# (`cu.gaussian_noise(y, 0.02)`: the noise has 2 % of the sinogram's norm):

# %%
NOISE = 0.02
y_ct_noisy = cu.gaussian_noise(y_ct, NOISE, generator=torch.Generator().manual_seed(1))
filter_rows, noisy_images = [], []
for name in cu.FILTERS:
    clean = cu.fbp(A_ct, y_ct, filter=name)
    noisy = cu.fbp(A_ct, y_ct_noisy, filter=name)
    noisy_images.append(noisy)
    filter_rows.append({"filter": name,
                        "PSNR clean (dB)": float(cu.psnr(clean, x_ct, data_range=1.0)),
                        "PSNR noisy (dB)": float(cu.psnr(noisy, x_ct, data_range=1.0)),
                        "SSIM clean": float(cu.ssim(clean, x_ct, data_range=1.0)),
                        "SSIM noisy": float(cu.ssim(noisy, x_ct, data_range=1.0))})
cu.results_table(filter_rows)

# %%
cu.show_images(noisy_images, titles=[f"{row['filter']}: {row['PSNR noisy (dB)']:.1f} dB"
                                     for row in filter_rows],
               vmin=0, vmax=1, suptitle=f"FBP of the CT slice, {NOISE:.0%} noise");
by_filter = {row["filter"]: row for row in filter_rows}
gain_clean = by_filter["ram-lak"]["PSNR clean (dB)"] - by_filter["hann"]["PSNR clean (dB)"]
gain_noisy = by_filter["hann"]["PSNR noisy (dB)"] - by_filter["ram-lak"]["PSNR noisy (dB)"]
print(f"clean data: Ram-Lak beats Hann by {gain_clean:.1f} dB; "
      f"noisy data: Hann beats Ram-Lak by {gain_noisy:.1f} dB")
assert gain_clean > 1.0 and gain_noisy > 1.0
# "the sharpest filter wins without noise, the smoothest with noise" (on this slice)
assert max(by_filter, key=lambda f: by_filter[f]["PSNR clean (dB)"]) == "ram-lak"
assert max(by_filter, key=lambda f: by_filter[f]["PSNR noisy (dB)"]) == "hann"

# %% [markdown]
# Without noise the sharpest filter wins; with noise the smoothest one does. Which window is
# best depends on the noise level, and on what you measure: PSNR rewards a low overall
# error, while a radiologist looking for a small lesion may prefer a sharper, noisier
# image. A learned reconstruction (lesson 04) can find its own filter for the data at hand.
#
# ## 6. How many angles? Streaks
#
# Each projection fills one spoke of the 2D spectrum (section 3). With $n_\theta$ spokes,
# neighbouring spokes are $\pi|\nu|/n_\theta$ apart at radius $|\nu|$; to sample the
# outermost ring, $|\nu| = \tfrac12$, as finely as the detector samples each spoke
# ($1/n_\text{det}$ in frequency), you need roughly $n_\theta \approx \tfrac{\pi}{2} N$
# angles (Kak & Slaney, 1988, section 5.1). With fewer, the gaps alias into **streaks**
# that radiate from sharp edges. Fewer angles mean less dose or a faster scan, which is why
# sparse-view CT is a classic target for learned methods.
#
# We simulate fewer angles by keeping every $k$-th row of the full sinogram: the same
# scanner, with a larger angular step. The operator for the subset is cheap to make, since
# `cu.RadonTransform` builds its matrix only when it is first applied, and `cu.fbp` never
# applies it.

# %%
def keep_angles(sinogram, operator, n_angles):
    """Every k-th projection of ``sinogram`` and the matching operator (k = n_all / n_angles)."""
    n_all = operator.geometry.n_angles
    if n_all % n_angles:
        raise ValueError(f"n_angles must divide {n_all}, got {n_angles}")
    step = n_all // n_angles
    subset = cu.ParallelBeam(angles=operator.geometry.angles[::step],
                             n_detectors=operator.geometry.n_detectors)
    return sinogram[..., ::step, :], cu.RadonTransform(operator.image_size, subset)


ANGLE_COUNTS = [n for n in (10, 12, 15, 18, 20, 30, 36, 45, 60, 90, 120, 180, 360)
                if N_ANGLES % n == 0]
psnr_by_angles = {"Shepp-Logan, clean": [], "CT slice, clean": [],
                  f"CT slice, {NOISE:.0%} noise, Hann": []}
for n_angles in ANGLE_COUNTS:
    y_sub, A_sub = keep_angles(y, A, n_angles)
    y_ct_sub, A_ct_sub = keep_angles(y_ct, A_ct, n_angles)
    y_ct_noisy_sub, _ = keep_angles(y_ct_noisy, A_ct, n_angles)
    for name, x_rec, x_ref in (
            ("Shepp-Logan, clean", cu.fbp(A_sub, y_sub), x_true),
            ("CT slice, clean", cu.fbp(A_ct_sub, y_ct_sub), x_ct),
            (f"CT slice, {NOISE:.0%} noise, Hann", cu.fbp(A_ct_sub, y_ct_noisy_sub, "hann"),
             x_ct)):
        psnr_by_angles[name].append(float(cu.psnr(x_rec, x_ref, data_range=1.0)))

ax = cu.plot_curves({name: (ANGLE_COUNTS, values) for name, values in psnr_by_angles.items()},
                    xlabel="number of angles", ylabel="PSNR (dB)",
                    title="FBP (Ram-Lak unless stated) against the number of angles")
ax.set_xscale("log")
ax.axvline(math.pi / 2 * N, color="grey", ls=":", label=r"$\frac{\pi}{2} N$ angles")
ax.set_xlim(right=1.2 * max(ANGLE_COUNTS[-1], math.pi / 2 * N))
ax.legend()
plt.show()

# %%
streak_counts = [n for n in (N_ANGLES, 60, 30, 15) if n in ANGLE_COUNTS]
streak_images, streak_titles = [], []
for n_angles in streak_counts:
    y_sub, A_sub = keep_angles(y, A, n_angles)
    x_rec = cu.fbp(A_sub, y_sub)
    streak_images.append(x_rec)
    streak_titles.append(f"{n_angles} angles: {float(cu.psnr(x_rec, x_true, data_range=1.0)):.1f} dB")
cu.show_images(streak_images, titles=streak_titles, vmin=0, vmax=1);

sl_psnr = dict(zip(ANGLE_COUNTS, psnr_by_angles["Shepp-Logan, clean"]))
noisy_psnr = dict(zip(ANGLE_COUNTS, psnr_by_angles[f"CT slice, {NOISE:.0%} noise, Hann"]))
print("Shepp-Logan, PSNR by number of angles:", {n: round(v, 2) for n, v in sl_psnr.items()})
gain_sl = sl_psnr[N_ANGLES] - sl_psnr[N_ANGLES // 2]
gain_noisy = noisy_psnr[N_ANGLES] - noisy_psnr[N_ANGLES // 2]
print(f"from {N_ANGLES // 2} to {N_ANGLES} angles: clean Shepp-Logan +{gain_sl:.2f} dB, "
      f"noisy CT slice +{gain_noisy:.2f} dB")
assert sl_psnr[30] < sl_psnr[N_ANGLES] - 5        # 30 angles: streaks cost many dB
assert all(later > earlier - 0.3 for earlier, later in
           zip(psnr_by_angles["Shepp-Logan, clean"], psnr_by_angles["Shepp-Logan, clean"][1:]))
assert gain_noisy > gain_sl                      # with noise, more angles keep helping

# %% [markdown]
# More angles help twice: fewer streaks, and, with noise, more measurements to average
# (from half to all the angles, the noisy curve gains more than the clean Shepp-Logan one).
# Towards $\tfrac{\pi}{2}N$ angles the clean curves flatten: what is left is the blur of the
# detector and pixel sampling and the interpolations, not missing angles.
#
# ## 7. Try it yourself
#
# The function below reconstructs one scan with a given number of angles, filter and noise
# level, and shows the result and its error. Run it once, then move the sliders.

# %%
SCANS = {"Shepp-Logan": (x_true, y, A), "CT slice": (x_ct, y_ct, A_ct)}


def show_fbp(phantom="Shepp-Logan", n_angles=60, filter="ram-lak", noise_level=0.0):
    """FBP of one scan with n_angles of the angles, a filter and relative Gaussian noise."""
    x_ref, y_all, A_all = SCANS[phantom]
    y_sub, A_sub = keep_angles(y_all, A_all, n_angles)
    y_noisy = cu.gaussian_noise(y_sub, noise_level, generator=torch.Generator().manual_seed(0))
    x_rec = cu.fbp(A_sub, y_noisy, filter=filter)
    quality = float(cu.psnr(x_rec, x_ref, data_range=1.0))
    cu.show_images([x_ref, x_rec, x_rec - x_ref],
                   titles=[phantom, f"FBP ({filter}), {n_angles} angles, "
                                    f"{noise_level:.1%} noise", f"error: PSNR {quality:.2f} dB"],
                   size=3.5)
    plt.show()


show_fbp("CT slice", n_angles=30, filter="hann", noise_level=0.02)

# %%
cu.interact(show_fbp,
            phantom=widgets.Dropdown(options=list(SCANS), value="Shepp-Logan"),
            n_angles=widgets.SelectionSlider(options=ANGLE_COUNTS, value=60,
                                             description="angles"),
            filter=widgets.Dropdown(options=list(cu.FILTERS), value="ram-lak"),
            noise_level=widgets.FloatSlider(min=0.0, max=0.1, step=0.005, value=0.0,
                                            readout_format=".3f", description="noise"));

# %% [markdown]
# Things to look for: at 15 angles the streaks come from the bright skull edge; at 5 %
# noise Ram-Lak turns the image into grain, while Hann keeps it readable but softer; on the
# CT slice, with its larger smooth regions, the smooth filters win sooner.
#
# ## 8. The bridge to lesson 02: the operator $A$, its adjoint, and autograd
#
# Everything so far used one object, `A = cu.RadonTransform(...)`. It is a linear map from
# images to sinograms, $y = Ax$, and `A.T` is its adjoint, the backprojection:
#
# $$\langle A x, y \rangle = \langle x, A^T y\rangle \quad\text{for all } x, y.$$
#
# `A.check_adjoint()` tests that identity on random inputs and returns the worst relative
# mismatch. And because `A` is written in PyTorch, **autograd flows through it**: the
# gradient of the data misfit $\tfrac12\|Ax - y\|^2$ with respect to the image is
# $A^T(Ax - y)$, and `loss.backward()` computes it. (The two agree to the last digit because
# `cu.RadonTransform` tells autograd that the derivative of $A$ is $A^T$; a finite difference,
# which knows nothing about $A^T$, confirms it independently.)

# %%
print(A)
print("image (N, N) -> sinogram", tuple(A(x_true).shape), "; A.T: sinogram -> image",
      tuple(A.T(y).shape))
print("a batch works too:", tuple(A(torch.stack([x_true, x_true])).shape))
adjoint_mismatch = A.check_adjoint(torch.float32)   # float32: reuses A's matrices
print(f"adjoint test: |<Ax, y> - <x, A^T y>| / scale = {adjoint_mismatch:.1e}")
assert adjoint_mismatch < 1e-6

# Derivatives are compared in float64, on a small operator: float64 needs its own copy of
# the matrix, and a small one keeps this demonstration light in full mode too.
A_small = cu.RadonTransform(64, cu.ParallelBeam(n_angles=45, n_detectors=93))
y_64 = A_small(cu.shepp_logan(64, dtype=torch.float64))
x = torch.rand(64, 64, dtype=torch.float64, requires_grad=True)   # any image


def misfit(image):
    return 0.5 * ((A_small(image) - y_64) ** 2).sum()


loss = misfit(x)
loss.backward()                                           # autograd through A
gradient_formula = A_small.T(A_small(x.detach()) - y_64)  # the formula A^T (A x - y)
gradient_error = float(torch.linalg.norm(x.grad - gradient_formula)
                       / torch.linalg.norm(gradient_formula))
print(f"relative difference between autograd and A^T(Ax - y): {gradient_error:.1e}")

# An independent test that needs no formula: a finite difference along a random direction d.
d = torch.randn(64, 64, dtype=torch.float64)
epsilon = 1e-3
with torch.no_grad():
    finite_difference = float(misfit(x + epsilon * d) - misfit(x - epsilon * d)) / (2 * epsilon)
directional = float((x.grad * d).sum())
fd_error = abs(finite_difference - directional) / abs(directional)
print(f"directional derivative: autograd {directional:.6e}, finite difference "
      f"{finite_difference:.6e} (relative difference {fd_error:.1e})")
assert gradient_error < 1e-10 and fd_error < 1e-6

# %% [markdown]
# Why a course on learning needs this:
#
# - **Iterative reconstruction** (lesson 02) is gradient descent on $\tfrac12\|Ax - y\|^2$
#   plus a penalty; each step needs $A$ and $A^T$.
# - **Learned methods** put the operator *inside* a network: a learned FBP filter (lesson
#   04), unrolled MLEM (06) or learned primal-dual (07). To train them, the loss gradient
#   must flow back through $A$ and $A^T$, which is what autograd just did.
# - **Self-supervised methods** (deep image prior, lesson 05; neural fields, 09) fit a
#   network so that $A(\text{network output}) \approx y$, again differentiating through $A$.
#
# FBP itself is differentiable too (`cu.fbp` is written in PyTorch): its filter could be a
# tensor with `requires_grad=True`, learned from examples. That is lesson 04.
#
# ## 9. Results
#
# All methods of this lesson on the same data: the CT slice, 1 % noise, with all
# $n_\theta$ angles and with 30. Plain backprojection gets its best possible scale (from
# the truth), which no real method could know.

# %%
RESULT_NOISE = 0.01
y_results = cu.gaussian_noise(y_ct, RESULT_NOISE, generator=torch.Generator().manual_seed(2))
result_rows, result_images, result_titles = [], [], []
for n_angles in (N_ANGLES, 30):
    y_sub, A_sub = keep_angles(y_results, A_ct, n_angles)
    result_images.append(x_ct)
    result_titles.append("ground truth")
    methods = {"backprojection (best scale)":
               lambda: best_scaled(math.pi / n_angles * A_sub.T(y_sub), x_ct)}
    methods.update({f"FBP {name}": (lambda name=name: cu.fbp(A_sub, y_sub, filter=name))
                    for name in cu.FILTERS})
    A_sub.T(y_sub)              # build the operator's matrix once, outside the timing
    for method, reconstruct in methods.items():
        start = time.perf_counter()
        x_rec = reconstruct()
        seconds = time.perf_counter() - start
        result_rows.append({"method": method, "angles": n_angles,
                            "PSNR (dB)": float(cu.psnr(x_rec, x_ct, data_range=1.0)),
                            "SSIM": float(cu.ssim(x_rec, x_ct, data_range=1.0)),
                            "time (s)": seconds})
        result_images.append(x_rec)
        result_titles.append(f"{method.replace(' (best scale)', '')}, {n_angles}: "
                             f"{result_rows[-1]['PSNR (dB)']:.1f} dB")
cu.results_table(result_rows)

# %%
cu.show_images(result_images, titles=result_titles, ncols=6, vmin=0, vmax=1, size=2.6,
               suptitle=f"CT slice, {RESULT_NOISE:.0%} noise: {N_ANGLES} angles (top), 30 (bottom)");

results = {(row["method"], row["angles"]): row["PSNR (dB)"] for row in result_rows}
best_full = max(results[(f"FBP {name}", N_ANGLES)] for name in cu.FILTERS)
best_sparse = max(results[(f"FBP {name}", 30)] for name in cu.FILTERS)
assert best_full > results[("backprojection (best scale)", N_ANGLES)] + 10
assert best_sparse < best_full - 3

# %% [markdown]
# The time column is the reconstruction only (the sinogram is given): FBP takes a fraction
# of a second. Its weaknesses are the two we measured: it has no way to tell noise from
# signal except through a fixed window, and it has no way to fill the gaps between too few
# angles. Both are why scanners now also offer iterative and learned reconstructions, and
# where the next lessons come in.
#
# ## Check your understanding
#
# Click an answer: the feedback is immediate, and nothing is graded.

# %%
cu.checks.quiz(
    "Which operator is shift invariant, with the kernel 1/r?",
    ["the backprojection A^T", "A^T A: project, then backproject", "the ramp filter"],
    answer=1,
    explain="Projecting a point and backprojecting its sinogram gives a star of lines "
            "whose density falls like 1/r, wherever the point is: A^T A is a convolution "
            "with 1/r. A^T alone maps sinograms to images and has no kernel in the image "
            "plane.",
    wrong={0: "A^T takes a sinogram, not an image: the 1/r blur appears only after the "
              "image was projected first.",
           2: "The ramp filter acts on each projection along the detector; it is what "
              "undoes the 1/r blur, not what makes it."})

# %%
cu.checks.quiz(
    "You ramp-filter each projection with FFTs of length n_det, without zero padding. "
    "What goes wrong?",
    ["nothing: the FFT is exact", "the filtered projections wrap around, and the image "
     "loses its mean grey level", "the image comes out upside down"],
    answer=1,
    explain="A product of DFTs is a circular convolution: the ramp's long negative tails "
            "leave one end of the projection and re-enter at the other. Padding to at "
            "least 2 n_det - 1 samples makes it an ordinary convolution (section 3).")

# %%
cu.checks.quiz(
    "Your scan of a 256 x 256 image has 30 angles instead of about (π/2)·256 ≈ 400. "
    "Which window removes the streaks?",
    ["Ram-Lak", "Hann", "none of them"],
    answer=2,
    explain="The streaks come from the gaps between the spokes that the angles sample in "
            "Fourier space; a window only reshapes each spoke, so it trades resolution "
            "for noise but cannot fill the gaps (section 6). Filling them needs prior "
            "knowledge: lessons 02 to 09.",
    wrong={1: "Hann smooths noise along each projection; the streaks come from missing "
              "angles, which no window restores."})

# %%
cu.checks.quiz(
    "Two reconstructions have the same PSNR. One has fine grain all over, the other a "
    "smooth, slightly wrong background. Which has the higher SSIM, most likely?",
    ["the grainy one", "the smooth one", "they must be equal, since the MSE is equal"],
    answer=1,
    explain="SSIM compares local contrast and structure: grain changes the local variances "
            "and destroys the correlation with the reference, while a smooth offset mostly "
            "touches the brightness term. Equal MSE does not mean equal SSIM.")

# %% [markdown]
# ## Takeaways
#
# - The Radon transform maps an image to its line integrals $p(\theta, s)$; a point traces
#   the sine $s = x_0\cos\theta + y_0\sin\theta$, hence "sinogram". Check the conventions
#   (degrees or radians, sinogram layout, centre of rotation) before mixing tools.
# - Backprojection is the adjoint $A^T$, not the inverse: project-then-backproject,
#   $A^T A$, is a convolution with $1/r$.
# - The Fourier slice theorem turns the inversion into "ramp-filter, then backproject",
#   with weight $\pi/n_\theta$; the filter must be applied with zero padding to avoid
#   wrap-around.
# - The window of the ramp trades resolution for noise (Ram-Lak for clean data, Hann for
#   noisy), and too few angles give streaks no filter can remove.
# - `A` is a differentiable PyTorch operator: autograd gives $A^T(Ax - y)$, the building
#   block of every iterative and learned method in this course.
#
# ## What to try next
#
# - Make the detector only as wide as the image (`n_detectors=N_CT`) and reconstruct the CT
#   slice, whose body touches the image border: what happens near the edges, and why?
# - Use a *limited angle* scan (angles in $[0, 2\pi/3)$ only, via
#   `cu.ParallelBeam(angles=...)`) and look at which edges disappear.
# - Add Poisson noise with `cu.poisson_noise(y, photon_count, scale=...)` instead of
#   Gaussian noise, and find the best filter at 1e4 and 1e6 photons.
# - Compare the run time of `cu.fbp` with `iradon` at 256 x 256 and 512 x 512.
# - Read `course_utils/reconstruction/fbp.py` (half of it is documentation): the same three steps as your
#   exercises, plus the few lines that make it work for a fan-beam scanner too.
#
# ## References
#
# - J. Radon (1917). Über die Bestimmung von Funktionen durch ihre Integralwerte längs
#   gewisser Mannigfaltigkeiten. *Berichte über die Verhandlungen der Königlich-Sächsischen
#   Gesellschaft der Wissenschaften zu Leipzig, Math.-Phys. Klasse* 69, 262-277.
# - R. N. Bracewell (1956). Strip integration in radio astronomy. *Australian Journal of
#   Physics* 9(2), 198-217. (The projection-slice theorem.)
# - R. N. Bracewell and A. C. Riddle (1967). Inversion of fan-beam scans in radio astronomy.
#   *The Astrophysical Journal* 150, 427-434. (Convolution and backprojection.)
# - G. N. Ramachandran and A. V. Lakshminarayanan (1971). Three-dimensional reconstruction
#   from radiographs and electron micrographs: application of convolutions instead of
#   Fourier transforms. *Proceedings of the National Academy of Sciences* 68(9), 2236-2240.
# - L. A. Shepp and B. F. Logan (1974). The Fourier reconstruction of a head section.
#   *IEEE Transactions on Nuclear Science* 21(3), 21-43.
# - P. M. Joseph (1982). An improved algorithm for reprojecting rays through pixel images.
#   *IEEE Transactions on Medical Imaging* 1(3), 192-196.
# - A. C. Kak and M. Slaney (1988). *Principles of Computerized Tomographic Imaging*.
#   IEEE Press (reprinted by SIAM, 2001). Chapter 3 (FBP, filters, zero padding) and
#   chapter 5 (aliasing, number of views).
# - A. J. Reader, *AI for image reconstruction: workshop* (King's College London): the
#   "basic FBP" notebook with scikit-image's `radon`/`iradon`; and A. J. Reader, G. Corda,
#   A. Mehranian, C. da Costa-Luis, S. Ellis and J. A. Schnabel (2021). Deep learning for
#   PET image reconstruction. *IEEE Transactions on Radiation and Plasma Medical Sciences*
#   5(1), 1-25.
# - S. Papa (2024). *Deep learning methods for image reconstruction*, lecture at DLinRT
#   2024 (projection and backprojection formulas); N. Ducros, *(A short intro to) Deep
#   learning for image reconstruction*, lecture (analytic inversion by FBP).
# - Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli (2004). Image quality
#   assessment: from error visibility to structural similarity. *IEEE Transactions on
#   Image Processing* 13(4), 600-612. (SSIM.)
# - S. van der Walt et al. (2014). scikit-image: image processing in Python. *PeerJ* 2, e453.
# - W. van Aarle et al. (2016). Fast and flexible X-ray tomography using the ASTRA Toolbox.
#   *Optics Express* 24(22), 25129-25147. (The geometry conventions used here.)
