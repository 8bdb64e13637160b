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
# # Lesson 02 — The system matrix and iterative reconstruction
#
# In lesson 01 the Radon transform was an integral and FBP was its inversion formula.
# A computer only ever sees numbers: an image of $n$ pixels and a sinogram of $m$
# detector readings, related by a **matrix**, $y = A x$. Once we write the scanner as
# a matrix, reconstruction becomes linear algebra and optimisation: solve
# $A x \approx y$, in the least-squares sense, with a penalty that keeps the noise
# out. This lesson builds that matrix from the images of single points, looks at it,
# finds out why simply inverting it fails with noisy data, and then runs the classical
# iterative methods — Landweber, SIRT, CGLS, MLEM and total variation — that are still
# the baselines every learned method in the later lessons must beat. Along the way we
# meet an open question that learned methods inherit: **when to stop iterating**
# without knowing the true image.
#
# **Learning goals.** After this lesson you can
#
# - build the system matrix $A$ column by column from point responses, and explain its
#   size, sparsity and why large scanners never store it;
# - verify an adjoint with the dot-product test, and use $A x$ / $A^T y$ as forward and
#   backprojection;
# - explain with the singular values why least squares amplifies noise, and regularise
#   it with Tikhonov's formula;
# - find the null space of an underdetermined (30-angle) system and explain why data
#   alone cannot fill it;
# - choose Landweber's step size from $\|A\|$, write the CGLS loop, state PDHG's updates
#   for TV, observe semi-convergence, and stop or choose the TV weight with the
#   discrepancy principle;
# - compare these classical methods with FBP on the same sparse-view, noisy data.
#
# **Prerequisites.** Lesson 01 (the Radon transform, backprojection and FBP);
# matrix-vector products, transposes and the idea of a least-squares fit.
#
# **Estimated run time.** CPU quick mode (`COURSE_QUICK=1`, 64 x 64): about 25 s on a
# quiet 2-core CPU, a minute or more on a busy one; CPU full mode (128 x 128): about
# 3 min (an earlier measurement on a 2-core CPU); no GPU needed. If it runs many times
# slower on a busy machine, PyTorch's threads are spinning while they wait for each
# other: set the environment variable `OMP_WAIT_POLICY=PASSIVE` (or call
# `torch.set_num_threads(1)`) before starting.

# %% [markdown]
# ## Set-up
#
# Quick mode (the environment variable `COURSE_QUICK=1`, set by the tests) runs the
# iterative part on 64 x 64 images; full mode on 128 x 128 with more iterations. The
# explicit matrix part uses 32 x 32 images in both modes: there we compute a dense
# singular value decomposition, whose cost grows like the cube of the number of pixels.
# The 32 x 32 part stays on the CPU; the iterative part runs on `device`, a GPU if
# there is one (it is not needed: everything here is small).

# %%
import math
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

import course_utils as cu

generator = cu.seed_everything(0)
device = cu.device()
QUICK = cu.QUICK

N_SMALL = 32                 # image size for the explicit matrix (both modes)
N = 64 if QUICK else 128     # image size for the iterative methods
N_ANGLES = 30                # sparse view: far fewer angles than the ~N * pi/2 FBP wants
NOISE = 0.03                 # 3 % relative Gaussian noise on the sinogram
N_ITER = dict(landweber=600 if QUICK else 1500, sirt=300 if QUICK else 500,
              cgls=60 if QUICK else 100, mlem=300 if QUICK else 500,
              tv=300 if QUICK else 500)
print(f"QUICK={QUICK}, device={device}, small problem {N_SMALL}x{N_SMALL}, "
      f"iterative problem {N}x{N} with {N_ANGLES} angles and {NOISE:.0%} noise")
print("iterations:", N_ITER)

# %% [markdown]
# ## 1. The scanner as a matrix
#
# Number the pixels of an $N \times N$ image $j = 0, \dots, n-1$ (row by row, as
# `x.flatten()` does, so $n = N^2$) and the detector readings $i = 0, \dots, m-1$
# (angle by angle, as `y.flatten()` does, $m = n_\text{angles} \cdot n_\text{det}$).
# Projection is linear, so
#
# $$ y_i = \sum_{j=0}^{n-1} a_{ij}\, x_j, \qquad y = A x, \qquad A \in \mathbb{R}^{m \times n}, $$
#
# where $a_{ij}$ is how much pixel $j$ contributes to ray $i$ (roughly the length of
# the ray inside the pixel; `course_utils` uses Joseph's interpolation weights).
#
# **Columns are point responses.** Put a single bright pixel in an empty image: the
# unit image $e_j$. Then $A e_j$ is column $j$ of $A$ — the sinogram of one point,
# a sine curve, which is where the word *sinogram* comes from. Reader's workshop builds
# the matrix exactly like this: one point source at a time. **Rows are rays**: row $i$,
# reshaped to an image, shows which pixels ray $i$ crosses.

# %%
geometry_small = cu.ParallelBeam(n_angles=32, n_detectors=math.ceil(math.sqrt(2) * N_SMALL) + 1)
A_small = cu.RadonTransform(image_size=N_SMALL, geometry=geometry_small)
n_pixels = N_SMALL * N_SMALL
n_rays = geometry_small.n_angles * geometry_small.n_detectors
print(A_small)
print(f"A is {n_rays} x {n_pixels}: {n_rays} rays (rows), {n_pixels} pixels (columns)")

row, col = 8, 20                       # one pixel, up and to the right of the centre
j = row * N_SMALL + col                # its column index in row-major order
e_j = torch.zeros(N_SMALL, N_SMALL)
e_j[row, col] = 1.0
point_response = A_small(e_j)          # the sinogram of a single point

M_sparse = A_small.to_matrix()         # the operator's own matrix (sparse CSR)
column_j = M_sparse.to_dense()[:, j].reshape(geometry_small.sinogram_shape)
print("A(e_j) equals column j of A.to_matrix():", torch.equal(point_response, column_j))
assert torch.allclose(point_response, column_j, atol=1e-6)

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
axes[0].imshow(e_j, cmap="gray")
axes[0].set_title(f"unit image $e_j$, pixel ({row}, {col})")
axes[0].set_axis_off()
cu.show_sinogram(point_response, geometry_small, ax=axes[1],
                 title=f"column j = {j} of A: the sinogram of one point")
ray = 5 * geometry_small.n_detectors + geometry_small.n_detectors // 2 + 6   # angle 5
footprint = M_sparse.to_dense()[ray].reshape(N_SMALL, N_SMALL)
im = axes[2].imshow(footprint, cmap="gray")
fig.colorbar(im, ax=axes[2], shrink=0.8)
axes[2].set_title(f"row i = {ray} of A: the pixels one ray crosses")
axes[2].set_axis_off()
plt.show()

# %% [markdown]
# ### Exercise 1: the system matrix from point responses
#
# Write `system_matrix(A)` that returns the dense matrix of a linear operator `A`
# acting on images of shape `A.domain_shape` $= (N, N)$ and returning sinograms of
# shape `A.range_shape`: a tensor of shape `(n_rays, n_pixels)` whose column `j` is
# the flattened sinogram of the unit image of pixel `j` (row-major numbering, as
# `x.flatten()`). Use only `A(...)`, `A.domain_shape` and `A.range_shape`.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# You need the sinograms of all $n$ unit images. The operator accepts a batch of images
# (leading dimensions are batch dimensions), so you can project them all at once; a double
# loop over the pixels works too, only slower. Then decide which index of the result is
# the column.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# The unit images are the rows of the $n \times n$ identity, reshaped to $N \times N$, and
#
# $$ A_{:, j} = \operatorname{vec}\big(A(e_j)\big), \qquad
#    A = \big[\operatorname{vec} A(e_0)\ \cdots\ \operatorname{vec} A(e_{n-1})\big]
#    \in \mathbb R^{m \times n}, $$
#
# so the stack of flattened sinograms, one per row, is $A^T$.
# </details>

# %%
def system_matrix(A):
    """Dense system matrix ``(n_rays, n_pixels)`` of an operator on ``(N, N)`` images."""
    ### BEGIN SOLUTION
    n_pixels = math.prod(A.domain_shape)
    unit_images = torch.eye(n_pixels).reshape(n_pixels, *A.domain_shape)
    point_responses = A(unit_images)                  # (n_pixels, n_angles, n_det)
    return point_responses.reshape(n_pixels, -1).T    # column j = sinogram of pixel j
    ### END SOLUTION


# %%
cu.checks.system_matrix(system_matrix);

# %% [markdown]
# From here on we take the matrix from `A.to_matrix()` (sparse) and make it dense
# (`.to_dense()`) — at this size that is only 6 MB. Look at it: the first block of
# rows belongs to the first projection angles. Each row has a narrow band of non-zeros
# (the pixels one ray crosses); most entries are zero.

# %%
M = A_small.to_matrix().to_dense().double()          # (n_rays, n_pixels), float64
nnz = int(torch.count_nonzero(M))
density = nnz / M.numel()
print(f"A: {M.shape[0]} x {M.shape[1]}, {nnz} non-zeros, density {density:.2%}, "
      f"{nnz / M.shape[0]:.1f} non-zeros per row (~{nnz / M.shape[0] / N_SMALL:.2f} N)")

fig, axes = plt.subplots(1, 2, figsize=(13, 3.6), layout="constrained")
block = M[: 4 * geometry_small.n_detectors]          # the rays of the first 4 angles
im = axes[0].imshow(block, cmap="gray", aspect="auto", interpolation="nearest")
fig.colorbar(im, ax=axes[0])
axes[0].set(title="rows of the first 4 angles", xlabel="pixel j", ylabel="ray i")
axes[1].imshow(M != 0, cmap="gray_r", aspect="auto", interpolation="antialiased")
axes[1].set(title=f"where A is non-zero (density {density:.1%})", xlabel="pixel j",
            ylabel="ray i")
plt.show()

# %% [markdown]
# **Why nobody stores $A$ for a real scanner.** The density falls like $1/N$ (each ray
# crosses about $N$ of the $N^2$ pixels), but the number of entries grows like $N^4$.
# We measure the non-zeros per ray at three sizes (with the angle count of a 512 x 512
# scanner that takes ~700 views, scaled down) and extrapolate to 512 x 512.

# %%
per_row = {}
for size in (32, 64, 128):
    geometry = cu.ParallelBeam(n_angles=round(700 * size / 512),
                               n_detectors=math.ceil(math.sqrt(2) * size) + 1)
    values = cu.RadonTransform(image_size=size, geometry=geometry).to_matrix().values()
    per_row[size] = int(torch.count_nonzero(values)) / (geometry.n_angles * geometry.n_detectors)
    print(f"N = {size:3d}: {per_row[size]:6.1f} non-zeros per ray = {per_row[size] / size:.2f} N")

n_big, angles_big = 512, 700
rays_big = angles_big * (math.ceil(math.sqrt(2) * n_big) + 1)
dense_gb = rays_big * n_big**2 * 4 / 1e9                       # float32
nnz_big = per_row[128] / 128 * n_big * rays_big
sparse_gb = nnz_big * (4 + 4) / 1e9                            # float32 value + int32 index
print(f"\n512 x 512 image, {angles_big} angles: A is {rays_big:,} x {n_big**2:,}")
print(f"dense float32: {dense_gb:,.0f} GB;  sparse (CSR): {nnz_big:.2e} non-zeros, "
      f"about {sparse_gb:.1f} GB (twice that with a stored transpose)")

# %% [markdown]
# Half a terabyte dense, still gigabytes sparse — and a 3-D cone-beam scan
# ($512^3$ voxels, hundreds of $512^2$ projections) has hundreds of times more rays, each
# crossing as many voxels, so even its sparse matrix would need on the order of a
# terabyte.
# That is why ASTRA, tomosipo or the custom CUDA projectors of LIRE (Papa's lecture)
# never store $A$: they compute $A x$ and $A^T y$ **on the fly**, ray by ray or
# voxel by voxel. `course_utils` stores the sparse matrix because our images are small
# — it makes the adjoint exact and autograd easy. Everything below only ever uses
# `A(x)` and `A.T(y)`, so it would work unchanged with an on-the-fly projector.

# %% [markdown]
# ### Forward and backprojection are $A x$ and $A^T y$; the adjoint test
#
# With the matrix, projecting is `M @ x.flatten()` and backprojecting is
# `M.T @ y.flatten()`. The transpose is the **adjoint**: for all $x$ and $y$
#
# $$ \langle A x, y \rangle = \langle x, A^T y \rangle . $$
#
# For an explicit matrix this holds by construction. Fast projectors compute $A$ and
# $A^T$ with two different programs, and a backprojector that is *not* the exact
# adjoint makes iterative methods converge to the wrong image or not at all. The
# dot-product test with random $x, y$ catches that; `A.check_adjoint()` runs it.

# %%
x_small = cu.shepp_logan(N_SMALL, dtype=torch.float64)
y_small = A_small(x_small)
print("A x   with the matrix vs the operator:",
      float((M @ x_small.flatten() - y_small.flatten()).abs().max()))
print("A^T y with the matrix vs the operator:",
      float((M.T @ y_small.flatten() - A_small.T(y_small).flatten()).abs().max()))

x_rand = torch.rand(n_pixels, generator=generator, dtype=torch.float64)
y_rand = torch.rand(n_rays, generator=generator, dtype=torch.float64)
lhs, rhs = torch.dot(M @ x_rand, y_rand), torch.dot(x_rand, M.T @ y_rand)
adjoint_error = A_small.check_adjoint()
print(f"<Ax, y> = {float(lhs):.10f},  <x, A^T y> = {float(rhs):.10f}")
print(f"operator's dot-product test: relative error {adjoint_error:.1e}")
assert abs(float(lhs - rhs)) <= 1e-10 * abs(float(lhs))
assert adjoint_error < 1e-5

# %% [markdown]
# ### Rows one at a time: ART
#
# The oldest iterative method uses the rows directly. Every row is one equation
# $\langle a_i, x \rangle = y_i$, a hyperplane in image space; ART (Kaczmarz's method,
# Gordon, Bender and Herman 1970) projects the current image onto one hyperplane after
# the other:
#
# $$ x \leftarrow x + \frac{y_i - \langle a_i, x\rangle}{\|a_i\|^2}\, a_i . $$
#
# This is the picture in Ducros's slides: with two lines $L_1, L_2$ the iterates zig-zag
# towards their intersection — and with noise the lines move, and so does the answer.

# %%
def art(M, y, n_sweeps):
    """Kaczmarz / ART: project onto each row's hyperplane in turn, n_sweeps times."""
    M, y = M.numpy(), y.numpy()
    row_norms = (M**2).sum(axis=1)
    x = np.zeros(M.shape[1])
    for _ in range(n_sweeps):
        for i in np.flatnonzero(row_norms):
            x += (y[i] - M[i] @ x) / row_norms[i] * M[i]
    return torch.from_numpy(x)


x_art = art(M, y_small.flatten(), n_sweeps=5).reshape(N_SMALL, N_SMALL)
print(f"ART, 5 sweeps over the {n_rays} rays, exact data: "
      f"PSNR {float(cu.psnr(x_art, x_small, data_range=1.0)):.1f} dB")

# %% [markdown]
# ## 2. Least squares, and why it breaks with noise
#
# Our small system has more equations than unknowns ($m = 1504 > n = 1024$), so we
# ask for the least-squares solution
#
# $$ x_\text{LS} = \arg\min_x \|A x - y\|_2^2, \qquad A^T A\, x_\text{LS} = A^T y . $$
#
# The **singular value decomposition** $A = U \Sigma V^T$ (orthonormal columns $u_i$,
# $v_i$, singular values $s_1 \ge s_2 \ge \dots \ge s_n > 0$) says what that does:
#
# $$ x_\text{LS} = \sum_{i=1}^{n} \frac{u_i^T y}{s_i}\, v_i . $$
#
# With noisy data $y = A x^* + e$, the noise component $u_i^T e$ is divided by $s_i$.
# The small singular values belong to fine, oscillating patterns that projections
# barely see, and their noise is amplified by up to $1/s_n$. The ratio
# $\kappa = s_1 / s_n$ is the **condition number**: the worst-case factor by which a
# relative error in the data becomes a relative error in the image.

# %%
U, s, Vh = torch.linalg.svd(M, full_matrices=False)   # M = U diag(s) Vh
kappa = float(s[0] / s[-1])
print(f"s_1 = {float(s[0]):.2f} (= ||A||, the power method gives {A_small.norm():.2f}), "
      f"s_n = {float(s[-1]):.4f}, condition number {kappa:.0f}")

noise_small = 0.01                                       # only 1 % noise
y_noisy_small = cu.gaussian_noise(y_small, noise_small, generator=generator)
beta_clean = U.T @ y_small.flatten()                     # coefficients u_i^T y
beta_noisy = U.T @ y_noisy_small.flatten()

fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
ax.semilogy(s, label="singular values $s_i$")
ax.semilogy(beta_clean.abs(), ".", ms=2, alpha=0.5, label=r"$|u_i^T y|$, exact data")
ax.semilogy(beta_noisy.abs(), ".", ms=2, alpha=0.5, label=r"$|u_i^T y|$, 1 % noise")
ax.set(xlabel="index i", title="spectrum of A and the data in its singular basis")
ax.grid(True, alpha=0.4)
ax.legend()
plt.show()

# %% [markdown]
# The exact data's coefficients fall faster than $s_i$ (the *discrete Picard
# condition*, Hansen 2010), so every ratio $u_i^T y / s_i$ stays small. The noise puts a
# floor under the coefficients, and for large $i$ the ratio of that floor to a tiny
# $s_i$ is huge. Least squares reconstructs exact data perfectly and noisy data
# terribly:

# %%
def least_squares(beta):
    """x_LS = sum_i (u_i^T y / s_i) v_i from the coefficients beta = U^T y."""
    return (Vh.T @ (beta / s)).reshape(N_SMALL, N_SMALL)


x_ls_clean = least_squares(beta_clean)
x_ls_noisy = least_squares(beta_noisy)
psnr_ls_clean = float(cu.psnr(x_ls_clean, x_small, data_range=1.0))
psnr_ls_noisy = float(cu.psnr(x_ls_noisy, x_small, data_range=1.0))
print(f"least squares, exact data: PSNR {psnr_ls_clean:.0f} dB (float64 round-off)")
print(f"least squares, 1 % noise:   PSNR {psnr_ls_noisy:.1f} dB, values from "
      f"{float(x_ls_noisy.min()):.1f} to {float(x_ls_noisy.max()):.1f} (true: 0 to 1)")
assert psnr_ls_clean > 100 and psnr_ls_noisy < 15

# %% [markdown]
# ### Tikhonov regularisation
#
# Tikhonov (1963) adds a penalty on the size of the image:
#
# $$ x_\alpha = \arg\min_x \|A x - y\|_2^2 + \alpha \|x\|_2^2
#    = (A^T A + \alpha I)^{-1} A^T y
#    = \sum_i \frac{s_i^2}{s_i^2 + \alpha}\, \frac{u_i^T y}{s_i}\, v_i . $$
#
# The *filter factors* $s_i^2 / (s_i^2 + \alpha)$ are close to 1 where $s_i^2 \gg \alpha$
# and damp the components with $s_i^2 \ll \alpha$, where the noise lives. Large
# $\alpha$ removes noise and detail alike; small $\alpha$ brings the noise back. The same
# solution can also be written $x_\alpha = A^T (A A^T + \alpha I)^{-1} y$, the form in
# Ducros's slides: the two formulas are equal for **any** shape of $A$, because
# $A^T (A A^T + \alpha I) = (A^T A + \alpha I) A^T$. Which one to use is a matter of cost:
# the second solves an $m \times m$ system instead of an $n \times n$ one, so it is cheaper
# when there are fewer equations than unknowns, $m < n$.
#
# At 32 x 32 we can solve the normal equations directly, and check that the SVD formula
# agrees:

# %%
alpha = 1.0
x_tik = torch.linalg.solve(M.T @ M + alpha * torch.eye(n_pixels, dtype=torch.float64),
                           M.T @ y_noisy_small.flatten()).reshape(N_SMALL, N_SMALL)


def tikhonov_svd(beta, alpha):
    """Tikhonov solution from the SVD: filter factors s^2 / (s^2 + alpha)."""
    return (Vh.T @ (s / (s**2 + alpha) * beta)).reshape(N_SMALL, N_SMALL)


print("normal equations vs SVD formula, largest difference:",
      float((x_tik - tikhonov_svd(beta_noisy, alpha)).abs().max()))

# %% [markdown]
# Now sweep $\alpha$. Two views: the PSNR (needs the true image, so only possible in a
# simulation) and the **L-curve** (Hansen): the size of the image $\|x_\alpha\|$ against
# the misfit $\|A x_\alpha - y\|$ on log-log axes. Its corner balances the two and needs
# no ground truth.

# %%
alphas = torch.logspace(-4, 3, 36, dtype=torch.float64)
sweep = torch.stack([tikhonov_svd(beta_noisy, a) for a in alphas])
psnr_tik = cu.psnr(sweep, x_small.expand_as(sweep), data_range=1.0)
misfit = torch.linalg.vector_norm(A_small(sweep) - y_noisy_small, dim=(-2, -1))
image_norm = torch.linalg.vector_norm(sweep, dim=(-2, -1))
best = int(torch.argmax(psnr_tik))
alpha_best, psnr_tik_best = float(alphas[best]), float(psnr_tik[best])

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
cu.plot_curves({"Tikhonov": (alphas, psnr_tik)}, xlabel=r"$\alpha$", ylabel="PSNR (dB)",
               title="PSNR against the regularisation weight", ax=axes[0])
axes[0].axhline(psnr_ls_noisy, color="gray", ls="--", label="least squares")
axes[0].set_xscale("log")
axes[0].legend()
axes[1].loglog(misfit, image_norm, ".-")
axes[1].loglog(misfit[best], image_norm[best], "o", color="C3",
               label=rf"best $\alpha$ = {alpha_best:.2g}")
axes[1].set(xlabel=r"misfit $\|A x_\alpha - y\|$", ylabel=r"size $\|x_\alpha\|$",
            title="L-curve")
axes[1].legend()
axes[1].grid(True, alpha=0.4)
plt.show()
print(f"best alpha {alpha_best:.3g}: PSNR {psnr_tik_best:.1f} dB vs least squares "
      f"{psnr_ls_noisy:.1f} dB")
assert psnr_tik_best > psnr_ls_noisy + 15

# %%
cu.show_images([x_small, x_ls_noisy, sweep[best], sweep[-5]],
               ["truth", f"least squares ({psnr_ls_noisy:.1f} dB)",
                rf"Tikhonov, $\alpha$={alpha_best:.2g} ({psnr_tik_best:.1f} dB)",
                rf"Tikhonov, $\alpha$={float(alphas[-5]):.2g} ({float(psnr_tik[-5]):.1f} dB)"]);

# %% [markdown]
# ### Fewer equations than unknowns: the null space
#
# The system above has more rays than pixels. The sparse-view scans of section 3 and of
# the later lessons have **fewer**: 30 angles. Then $m < n$, and at most $m$ singular
# values are non-zero: the matrix has a **null space**
# $\mathcal N(A) = \{x : A x = 0\}$ of dimension at least $n - m$, spanned by the right
# singular vectors $v_i$ whose $s_i$ vanish. An image in the null space is invisible to the
# scanner: $x^* + z$ with $z \in \mathcal N(A)$ has exactly the same data as $x^*$, and **no
# method that only looks at the data can tell them apart**. The minimum-norm least-squares
# solution simply sets the null-space part to zero; Tikhonov, TV and every learned method
# of this course differ in what they put there instead, i.e. in their prior knowledge.
#
# We take a 48 x 48 image and 30 angles ($m = 30 \cdot 69 = 2070$ rays for $n = 2304$
# pixels), compute all singular values, and count those that are zero up to rounding.

# %%
N_NULL = 48
A_30 = cu.RadonTransform(N_NULL, cu.ParallelBeam(
    n_angles=30, n_detectors=math.ceil(math.sqrt(2) * N_NULL) + 1))
M_30 = A_30.to_matrix().to_dense().double()                  # (2070, 2304)
m_30, n_30 = M_30.shape
_, s_30, Vh_30 = torch.linalg.svd(M_30, full_matrices=False)  # m singular values
rank_30 = int((s_30 > 1e-10 * s_30[0]).sum())                # numerical rank
null_dimension = n_30 - rank_30
print(f"A: {m_30} x {n_30}; numerical rank {rank_30}; null space of dimension "
      f"{null_dimension} (at least n - m = {n_30 - m_30})")

z = Vh_30[-1].reshape(N_NULL, N_NULL)   # right singular vector of s_m = 0: in the null space
x_48 = cu.shepp_logan(N_NULL, dtype=torch.float64)
invisible = float(torch.linalg.vector_norm(A_30(z))) / (float(s_30[0]) * float(
    torch.linalg.vector_norm(z)))
same_data = float(torch.linalg.vector_norm(A_30(x_48 + 0.5 * z / z.abs().max()) - A_30(x_48))
                  / torch.linalg.vector_norm(A_30(x_48)))
print(f"||A z|| / (||A|| ||z||) = {invisible:.1e}: z is invisible; x and x + z have data "
      f"that differ by {same_data:.1e} (relative)")
assert null_dimension >= n_30 - m_30 > 0 and invisible < 1e-10 and same_data < 1e-10
assert rank_30 < m_30      # even the m equations are not independent (see below)

fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), layout="constrained",
                         gridspec_kw={"width_ratios": [1.4, 1, 1, 1]})
axes[0].semilogy(s_30[:rank_30], label="non-zero $s_i$")
axes[0].axvline(rank_30, color="C3", ls="--", label=f"rank {rank_30}")
axes[0].set(xlabel="index i", xlim=(0, n_30), title=f"30 angles: singular values of "
            f"a {m_30} x {n_30} A")
axes[0].legend()
axes[0].grid(True, alpha=0.4)
for ax, image, title in [(axes[1], z, "z in the null space: A z ≈ 0"),
                         (axes[2], x_48, "x"),
                         (axes[3], x_48 + 0.5 * z / z.abs().max(), "x + z: the same data")]:
    im = ax.imshow(image, cmap="gray")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title)
    ax.set_axis_off()
plt.show()

# %% [markdown]
# The null-space image is a fine, oscillating pattern: every one of the 30 projections
# sums it to zero along every ray. Sparse-view reconstruction is therefore not only about
# noise (the small singular values of the previous section) but about **missing
# information** (the zero ones): the data say nothing about $n - \text{rank}$ directions
# of the image, and the streaks of FBP in lesson 01 are one particular, bad choice of
# that part. The numerical rank is even below $m$, so the null space is larger than the
# count $n - m$ (both printed above): with only 30 directions, many ray sums repeat
# information that other rays already carry. Lesson 04 comes back to the null space when
# it asks what a network can add.
#
# A dense SVD costs $O(m n^2)$: seconds at 32 x 32, a day at 256 x 256. For real sizes
# we need methods that only apply $A$ and $A^T$ — iterative methods.
#
# ## 3. Iterative reconstruction of sparse-view, noisy data
#
# The test problem from here on: the Shepp-Logan phantom, only 30 projection angles
# (FBP would want about $\frac{\pi}{2} N$) and 3 % relative Gaussian noise. The data
# are **not** computed with the matrix $A$ we reconstruct with: the phantom is drawn on
# a grid 4 times finer and projected there (`cu.fine_grid_sinogram`), as a real
# scanner measures the continuous object, not our pixels. Section 5 shows what goes
# wrong when one cuts that corner. With
# $30 \times 92 = 2760$ readings for $64^2 = 4096$ pixels (quick mode; $5490$ for
# $16384$ in full mode) the system is *under*-determined: infinitely many images fit
# the data exactly.
#
# We give FBP its best chance: all four filters, keeping the best (which uses the
# ground truth — an optimistic baseline).

# %%
geometry = cu.ParallelBeam(n_angles=N_ANGLES, n_detectors=math.ceil(math.sqrt(2) * N) + 1)
A = cu.RadonTransform(image_size=N, geometry=geometry, device=device)
x_fine = cu.shepp_logan(4 * N, supersample=1, device=device)    # 4 x 4 samples per pixel
x_true = torch.nn.functional.avg_pool2d(x_fine[None], 4)[0]       # the pixel averages
y_clean = cu.fine_grid_sinogram(x_fine, geometry)                 # not A(x_true)
y = cu.gaussian_noise(y_clean, NOISE, generator=generator)
noise_norm = NOISE * float(torch.linalg.vector_norm(y_clean))   # what the noise level implies
print(A)
print(f"{y.numel()} readings for {x_true.numel()} pixels; expected noise norm "
      f"{noise_norm:.2f} (this draw: {float(torch.linalg.vector_norm(y - y_clean)):.2f})")
model_error = float(torch.linalg.vector_norm(A(x_true) - y_clean))
# the misfit even the true image leaves: noise and model error, independent of each other
delta = math.sqrt(noise_norm**2 + model_error**2)
print(f"model error ||A x_true - y_clean|| = {model_error:.2f} "
      f"({model_error / float(torch.linalg.vector_norm(y_clean)):.1%} of the data); "
      f"total error level delta = {delta:.2f}")


def psnr_of(x):
    return float(cu.psnr(x, x_true, data_range=1.0))


def timed(fn, *args, **kwargs):
    """Run fn and return (result, seconds), waiting for the GPU if there is one."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


fbp_psnr = {name: psnr_of(cu.fbp(A, y, filter=name)) for name in cu.FILTERS}
fbp_filter = max(fbp_psnr, key=fbp_psnr.get)
x_fbp, time_fbp = timed(cu.fbp, A, y, filter=fbp_filter)
print("FBP PSNR by filter:", {k: round(v, 2) for k, v in fbp_psnr.items()},
      f"-> {fbp_filter}")

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
for ax, image, title in [(axes[0], x_true, "truth"),
                         (axes[2], x_fbp, f"FBP ({fbp_filter}), {psnr_of(x_fbp):.1f} dB")]:
    im = ax.imshow(image.cpu(), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_axis_off()
    fig.colorbar(im, ax=ax, shrink=0.8)
cu.show_sinogram(y, geometry, ax=axes[1], title=f"{N_ANGLES} noisy projections")
plt.show()

# %% [markdown]
# Every iterative method below takes a `callback(k, x)` that it calls after iteration
# $k$. We use it to record the PSNR (needs the truth, so only in simulations) and the
# data misfit $\|A x_k - y\|$ (always available).

# %%
def recorder(A, y, keep_iterates=False):
    """A callback that records PSNR and misfit per iteration, and its history dict."""
    history = {"psnr": [], "misfit": [], "iterates": []}

    def callback(k, x):
        history["psnr"].append(psnr_of(x))
        history["misfit"].append(float(torch.linalg.vector_norm(A(x) - y)))
        if keep_iterates:
            history["iterates"].append(x.cpu())

    return callback, history


# %% [markdown]
# ### 3.1 Landweber: gradient descent on the least-squares misfit
#
# The gradient of $f(x) = \tfrac12 \|A x - y\|^2$ is $A^T (A x - y)$: backproject the
# residual. Walking downhill with step $\omega$ is the Landweber iteration (1951):
#
# $$ x_{k+1} = x_k + \omega\, A^T (y - A x_k) . $$
#
# **Step size.** The gradient changes at most by $\|A\|^2 \|\Delta x\|$ when $x$
# changes by $\Delta x$ ($\|A\| = s_1$, the largest singular value): it is Lipschitz
# with constant $L = \|A\|^2$. Along the direction $v_1$ each step multiplies the error
# by $1 - \omega s_1^2$, so the iteration converges for $0 < \omega < 2 / \|A\|^2$ and
# blows up beyond. `A.norm()` estimates $\|A\|$ by the power method (no SVD needed).
# Which step inside that range to take is the decision of the next exercise.

# %% [markdown]
# ### Exercise 2: Landweber, with a step size you choose
#
# Write `landweber(A, y, n_iter)`: start from the zero image, run `n_iter` Landweber
# steps and return the last image. `A` is a `course_utils` operator: use `A(x)`,
# `A.T(...)` and `A.norm()`. **Choose the step size $\omega$** yourself: the one that
# *guarantees the largest decrease* of $f(x) = \tfrac12\|Ax - y\|^2$ in every step, for
# any data (derive it from the bound below).
#
# For a function whose gradient is Lipschitz with constant $L$, a gradient step
# $x^+ = x - \omega \nabla f(x)$ satisfies the *descent lemma*
#
# $$ f(x^+) \le f(x) - \omega\Big(1 - \frac{\omega L}{2}\Big)\, \|\nabla f(x)\|^2 . $$
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# The guaranteed decrease is the factor in front of $\|\nabla f(x)\|^2$, a parabola in
# $\omega$: find its maximum. The loop itself needs one residual, one backprojection and
# one update per iteration; make a new image in each step rather than changing one in
# place.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $\frac{d}{d\omega}\,\omega(1 - \omega L / 2) = 1 - \omega L = 0$ gives
# $\omega = 1/L = 1/\|A\|^2$ (half the stability limit), and then
#
# $$ x_0 = 0, \qquad x_{k+1} = x_k + \frac{1}{\|A\|^2}\, A^T (y - A x_k),
#    \quad k = 0, \dots, n_\text{iter} - 1 . $$
# </details>

# %%
def landweber(A, y, n_iter):
    """n_iter Landweber steps from zero with the step 1 / ||A||^2; the last image."""
    ### BEGIN SOLUTION (points=2)
    step = 1.0 / A.norm() ** 2               # maximises the guaranteed decrease
    x = torch.zeros(A.domain_shape, dtype=y.dtype, device=y.device)
    for _ in range(n_iter):
        x = x + step * A.T(y - A(x))
    return x
    ### END SOLUTION


# %%
cu.checks.landweber(landweber);

# %% [markdown]
# `cu.landweber` runs the same loop (its default step is $1/\|A\|^2$). How much the
# choice matters: just above the limit $2/\|A\|^2$ the misfit explodes, below it
# falls.

# %%
norm_A = A.norm()
print(f"||A|| = {norm_A:.2f}, so steps must stay below 2/||A||^2 = {2 / norm_A**2:.2e}")
misfit_after = {}
for factor in (1.0, 1.9, 2.2):
    x20 = cu.landweber(A, y, 20, step=factor / norm_A**2)
    misfit_after[factor] = float(torch.linalg.vector_norm(A(x20) - y))
    print(f"step = {factor}/||A||^2: misfit after 20 steps {misfit_after[factor]:.3g} "
          f"(at the start: {float(torch.linalg.vector_norm(y)):.3g})")
assert misfit_after[2.2] > float(torch.linalg.vector_norm(y)) > misfit_after[1.0]

# %%
callback, landweber_history = recorder(A, y)
x_landweber = cu.landweber(A, y, N_ITER["landweber"], callback=callback, progress=True)

# %% [markdown]
# ### 3.2 SIRT and CGLS
#
# **SIRT** (Gilbert 1972) is Landweber with two diagonal weights taken from the matrix:
# each ray's residual is divided by its length $\sum_j a_{ij}$ (row sum), each pixel's
# update by how much it is seen $\sum_i a_{ij}$ (column sum):
#
# $$ x_{k+1} = x_k + C A^T R\, (y - A x_k), \quad R = \mathrm{diag}\frac{1}{A\mathbf 1},\;
#    C = \mathrm{diag}\frac{1}{A^T \mathbf 1}. $$
#
# Where ART handles one ray at a time, SIRT averages the corrections of all rays
# *simultaneously* — hence the name, and why it parallelises so well on GPUs (ASTRA's
# and TIGRE's workhorse). `cu.sirt` also clips negative values, a cheap piece of prior
# knowledge.
#
# **CGLS** (conjugate gradients, Hestenes and Stiefel 1952, applied to the normal
# equations $A^T A x = A^T y$) chooses the best step length along each direction, and
# makes each new direction conjugate to all earlier ones, so no step undoes the progress
# of another. It reaches in tens of iterations what Landweber needs hundreds for.

# %%
callback, sirt_history = recorder(A, y)
x_sirt = cu.sirt(A, y, N_ITER["sirt"], callback=callback, progress=True)
callback, cgls_history = recorder(A, y, keep_iterates=True)
x_cgls = cu.cgls(A, y, N_ITER["cgls"], callback=callback, progress=True)

# %% [markdown]
# ### 3.3 Semi-convergence
#
# Plot the error of every iterate. The misfit keeps falling — that is what the methods
# minimise — but the image quality first rises and then falls: **semi-convergence**.
# The early iterations fit the large singular components (the image), the late ones the
# small components (the noise), just like the filter factors of Tikhonov. Stopping
# early *is* a regularisation, with the iteration number in the role of $\alpha$.

# %%
histories = {"Landweber": landweber_history, "SIRT (x ≥ 0)": sirt_history,
             "CGLS": cgls_history}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
def by_iteration(values):
    """(iterations 1, 2, ..., values): the callback's iteration count starts at 1."""
    return np.arange(1, len(values) + 1), values


cu.plot_curves({name: by_iteration(h["psnr"]) for name, h in histories.items()},
               ylabel="PSNR (dB)",
               title="image quality (needs the truth)", ax=axes[0])
axes[0].axhline(psnr_of(x_fbp), color="gray", ls="--", label="FBP")
axes[0].set_xscale("log")
axes[0].legend()
cu.plot_curves({name: by_iteration(h["misfit"]) for name, h in histories.items()},
               ylabel=r"misfit $\|A x_k - y\|$", title="data misfit (always available)",
               logy=True, ax=axes[1])
axes[1].axhline(delta, color="gray", ls=":", label="error level δ")
axes[1].set_xscale("log")
axes[1].legend()
plt.show()

for name, h in histories.items():
    k_best = int(np.argmax(h["psnr"])) + 1
    print(f"{name:13s} best PSNR {max(h['psnr']):.2f} dB at iteration {k_best:4d}, "
          f"last ({len(h['psnr'])}) {h['psnr'][-1]:.2f} dB")

cgls_best = max(cgls_history["psnr"])
assert cgls_best > cgls_history["psnr"][-1] + 3, "CGLS should semi-converge on noisy data"
assert max(landweber_history["psnr"]) > landweber_history["psnr"][-1]

# %% [markdown]
# CGLS peaks within a few iterations and then falls fast. Landweber and SIRT peak later
# (tens to about a hundred iterations) and decay more slowly, so their stopping point is
# less critical — but they do over-fit: in quick mode Landweber falls from 23.4 dB at
# iteration 62 to 20.8 dB at its last, and SIRT from 28.6 dB at iteration 97 to 24.9 dB
# at its last.
# SIRT, with its weights and the non-negativity constraint, reaches by far the highest
# peak: knowing that attenuation is never negative is a strong prior for an image that is
# mostly empty background.

# %% [markdown]
# ### 3.4 MLEM for Poisson data
#
# In emission tomography (PET, SPECT) the detectors **count** photons, and the count in
# bin $i$ is Poisson distributed with mean $(A x)_i$, where $x$ is the activity. The
# maximum-likelihood image maximises $\sum_i y_i \log (A x)_i - (A x)_i$, and the EM
# algorithm of Shepp and Vardi (1982) does so with a **multiplicative** update (the
# formula in Reader's workshop):
#
# $$ x_{k+1} = \frac{x_k}{A^T \mathbf 1}\; A^T\!\left(\frac{y}{A x_k}\right). $$
#
# Forward-project the current image, compare with the data as a *ratio*, backproject
# the ratio, and normalise by the **sensitivity image** $s = A^T \mathbf 1$ (how much
# each pixel is seen). A ratio of 1 everywhere means the image explains the data and
# stays put. Starting from a positive image, the iterates stay non-negative for free.
#
# **Which data?** MLEM is the exact maximum-likelihood method for emission counts, so
# we simulate those: counts $\sim \text{Poisson}(c\, A x^*)$ with `cu.poisson_counts`,
# with the count level $c$ chosen so that the relative noise is the same 3 % as in our
# Gaussian data. (Transmission CT measures $e^{-(A x)_i}$ and takes a logarithm, after
# which the data are no longer Poisson with mean $A x$; there MLEM is only a heuristic.)
# We divide the counts by $c$ again, so images stay in the units of the phantom.

# %%
count_level = float(y_clean.sum() / (NOISE**2 * y_clean.pow(2).sum()))
counts = cu.poisson_counts(count_level * y_clean, generator=generator)
y_poisson = counts / count_level
poisson_noise_norm = math.sqrt(float(counts.sum())) / count_level   # Var = mean for Poisson
poisson_delta = math.sqrt(poisson_noise_norm**2 + model_error**2)
relative_noise = torch.linalg.vector_norm(y_poisson - y_clean) / torch.linalg.vector_norm(y_clean)
print(f"count level {count_level:.1f} counts per unit: {float(counts.sum()):.3g} counts in "
      f"total, at most {float(counts.max()):.0f} in one bin; relative noise "
      f"{float(relative_noise):.3f}")

# %% [markdown]
# ### Exercise 3: the MLEM update
#
# Write `mlem_update(x, A, y, sensitivity)` that returns
# $\frac{x}{s} \, A^T\!\left(\frac{y}{A x}\right)$ with `sensitivity` $= s = A^T \mathbf 1$,
# as a new image. Two divisions can hit zero: a ray that crosses no activity has
# $(A x)_i = 0$ (use a ratio of 0 there), and a pixel that no ray sees has $s_j = 0$
# (set it to 0).
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Work in the order of the formula: a ratio in data space, back to image space, then the
# multiplicative correction of $x$. Guard each division with an element-wise choice
# (PyTorch has a function that picks from two tensors by a condition), and never divide
# by an exact zero, not even in the branch you throw away.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $$ \rho_i = \begin{cases} y_i / (Ax)_i & (Ax)_i > 0 \\ 0 & \text{otherwise}\end{cases},
#    \qquad
#    x^+_j = \begin{cases} x_j\, (A^T \rho)_j / s_j & s_j > 0 \\ 0 & \text{otherwise.}\end{cases} $$
# </details>

# %%
def mlem_update(x, A, y, sensitivity):
    """One MLEM update x / s * A^T(y / A x), with 0 where a denominator is 0."""
    ### BEGIN SOLUTION (points=2)
    forward = A(x)
    ratio = torch.where(forward > 0, y / forward.clamp(min=1e-12), 0.0)
    correction = A.T(ratio)
    return torch.where(sensitivity > 0, x * correction / sensitivity.clamp(min=1e-12), 0.0)
    ### END SOLUTION


# %%
cu.checks.mlem_update(mlem_update);

# %% [markdown]
# `cu.mlem` loops over this update, starting from an image of ones. MLEM semi-converges
# too: with noisy counts, late iterations grow noise.

# %%
callback, mlem_history = recorder(A, y_poisson)
x_mlem = cu.mlem(A, y_poisson, N_ITER["mlem"], callback=callback, progress=True)
k_best = int(np.argmax(mlem_history["psnr"])) + 1
print(f"MLEM: best PSNR {max(mlem_history['psnr']):.2f} dB at iteration {k_best}, "
      f"last {mlem_history['psnr'][-1]:.2f} dB")
assert max(mlem_history["psnr"]) > mlem_history["psnr"][-1] + 1

# %% [markdown]
# ### 3.5 Total variation with Chambolle-Pock
#
# Stopping early damps the noise, but also the edges. A regulariser that knows what
# images look like does better. **Total variation** (Rudin, Osher and Fatemi 1992)
# penalises the summed length of the image gradient, which is small for
# piecewise-constant images with sharp edges — exactly the Shepp-Logan phantom:
#
# $$ x_\lambda = \arg\min_{x \ge 0} \tfrac12 \|A x - y\|^2 + \lambda \sum_{p}
#    \|(\nabla x)_p\|_2 . $$
#
# This objective is convex but not differentiable, so gradient descent does not apply
# directly. The primal-dual hybrid gradient algorithm (PDHG) of Chambolle and Pock (2011)
# alternates simple steps on the image and on dual variables for the two terms (Sidky
# and Pan showed how well TV does on sparse-view CT, 2008; Papa's lecture builds the
# *learned* primal-dual method on the same splitting, lesson 07).
#
# **The updates.** Write the problem as $\min_x F(Kx) + G(x)$ with
# $K x = (A x,\ D x)$ ($D$ the image gradient, $D^T = -\operatorname{div}$),
# $F(z, w) = \tfrac12\|z - y\|^2 + \lambda \|w\|_{2,1}$ and $G$ the indicator of
# $x \ge 0$. PDHG keeps a dual variable for each term, $p$ (a sinogram) and $q$ (a
# gradient field), and with step sizes $\sigma, \tau > 0$, $\sigma\tau\|K\|^2 < 1$,
# repeats
#
# $$ \begin{aligned}
#   p &\leftarrow \frac{p + \sigma (A \bar x - y)}{1 + \sigma}
#       && \text{(prox of } \sigma F_1^*\text{, the dual of the data term)}\\
#   q &\leftarrow \Pi_{\lambda}\big(q + \sigma D \bar x\big)
#       && \text{(prox of } \sigma F_2^*\text{: each pixel's 2-vector projected onto the disc of radius } \lambda)\\
#   x^+ &\leftarrow \max\big(0,\ x - \tau (A^T p + D^T q)\big)
#       && \text{(prox of } \tau G\text{: a gradient-like step, then clipping)}\\
#   \bar x &\leftarrow 2 x^+ - x, \qquad x \leftarrow x^+
#       && \text{(extrapolation)}
# \end{aligned} $$
#
# The first line comes from the convex conjugate of $\tfrac12\|z - y\|^2$, which is
# $\tfrac12\|p\|^2 + \langle p, y\rangle$; the second from that of $\lambda\|w\|_{2,1}$,
# which is the indicator of $\{\|q_p\|_2 \le \lambda \text{ for every pixel } p\}$.
# `cu.tv_pdhg` runs exactly these steps, with one refinement: it uses $\mu D$ instead of
# $D$ (and the radius $\lambda/\mu$), with $\mu = \|A\|/\|D\|$, so that both blocks of $K$
# have the same size and $\sigma = \tau = 1/\|K\|$ suits both (read its docstring).
# Lesson 07 replaces the two proximal steps by small networks. Here is a sweep of
# $\lambda$:

# %%
lams = [0.025 * 2**k for k in range(8)]             # 0.025 ... 3.2
tv_results = {}
for lam in lams:
    x_tv, seconds = timed(cu.tv_pdhg, A, y, N_ITER["tv"], lam=lam)
    tv_results[lam] = dict(x=x_tv.cpu(), psnr=psnr_of(x_tv), seconds=seconds,
                           misfit=float(torch.linalg.vector_norm(A(x_tv) - y)))
    print(f"lambda = {lam:6.3f}: PSNR {tv_results[lam]['psnr']:.2f} dB, misfit / error "
          f"level {tv_results[lam]['misfit'] / delta:.3f}  ({seconds:.1f} s)")
lam_oracle = max(lams, key=lambda lam: tv_results[lam]["psnr"])

# %% [markdown]
# ### 3.6 When to stop, which $\lambda$? The discrepancy principle
#
# Every method above has a knob — the iteration number, $\alpha$, $\lambda$ — and so far
# we set it by looking at the PSNR, which needs the true image. In practice there is
# none. Papa's slides list the termination condition of iterative methods as an
# **open problem**, and it stays open for learned iterative methods too.
#
# One classical answer needs only the error level of the data. If
# $y = \mathcal P x^* + e$ (the scanner $\mathcal P$, our matrix $A$ only approximates
# it), even the true image leaves a misfit
# $\|A x^* - y\| = \|(A x^* - \mathcal P x^*) - e\| \approx \delta$, with
# $\delta^2 = \|e\|^2 + \|A x^* - \mathcal P x^*\|^2$: the noise **and the model error**.
# Fitting the data more closely than that means fitting noise. **Morozov's discrepancy
# principle**: order the candidates from the most to the least regularised (iteration
# 1, 2, 3, ...; or $\lambda$ from large to small) and take the **first** one whose
# misfit is within the error level,
#
# $$ \|A x_k - y\| \le \tau\, \delta , $$
#
# with a safety factor $\tau \ge 1$. The noise part comes from the physics of the
# scanner: $0.03\,\|\mathcal P x^*\| \approx 0.03\,\|y\|$ for the Gaussian data, and
# $\sqrt{\sum_i y_i}$ (in counts) for Poisson data, whose variance equals their mean.
# The model error is harder: here we know it because we simulated the scan (it is
# about twice the noise for this sharp-edged phantom at 64 x 64, printed in section 3),
# on a real scanner it must be estimated. With the criminal data of section 5 it would
# be zero, and the rule would look better than it is.
#
# ### Exercise 4: CGLS with the discrepancy stop
#
# Write the CGLS loop yourself and stop it by the rule:
# `cgls_discrepancy(A, y, delta, tau=1.0, max_iter=100)` starts from the zero image, runs
# CGLS and stops after the **first** iteration $k \ge 1$ whose misfit
# $\|y - A x_k\| \le \tau\delta$ (or after `max_iter` iterations if none does). It
# returns the pair `(x, k)`: the iterate $x_k$ and the number $k$ of iterations run.
# CGLS (section 3.2) in formulas: with $x_0 = 0$, $r_0 = y$, $s_0 = p_0 = A^T r_0$ and
# $\gamma_0 = \|s_0\|^2$, iteration $k = 0, 1, \dots$ does
#
# $$ q_k = A p_k,\quad \alpha_k = \frac{\gamma_k}{\|q_k\|^2},\quad
#    x_{k+1} = x_k + \alpha_k p_k,\quad r_{k+1} = r_k - \alpha_k q_k, $$
# $$ s_{k+1} = A^T r_{k+1},\quad \gamma_{k+1} = \|s_{k+1}\|^2,\quad
#    p_{k+1} = s_{k+1} + \frac{\gamma_{k+1}}{\gamma_k}\, p_k . $$
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Keep $x$, $r$, $p$ and $\gamma$ between iterations; each iteration needs one $A$ and
# one $A^T$. The stopping test needs no extra projection: look at what $r$ is.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# By induction $r_k = y - A x_k$ (both sides change by $-\alpha_k A p_k$), so the test
# after the update of iteration $k$ is
#
# $$ \|r_k\| \le \tau\,\delta \quad\Longrightarrow\quad \text{return } (x_k, k), $$
#
# with $k$ counted from 1; after `max_iter` iterations return $(x_{\text{max\_iter}}, \text{max\_iter})$.
# </details>

# %%
def cgls_discrepancy(A, y, delta, tau=1.0, max_iter=100):
    """CGLS from zero, stopped at the first k with ||y - A x_k|| <= tau * delta: (x_k, k)."""
    ### BEGIN SOLUTION (points=2)
    x = torch.zeros(A.domain_shape, dtype=y.dtype, device=y.device)
    r = y.clone()
    s = A.T(r)
    p = s
    gamma = (s * s).sum()
    for k in range(1, max_iter + 1):
        q = A(p)
        alpha = gamma / (q * q).sum()
        x = x + alpha * p
        r = r - alpha * q                      # r = y - A x, without another projection
        if torch.linalg.vector_norm(r) <= tau * delta:
            return x, k
        s = A.T(r)
        gamma_new = (s * s).sum()
        p = s + gamma_new / gamma * p
        gamma = gamma_new
    return x, max_iter
    ### END SOLUTION


# %%
cu.checks.cgls_discrepancy(cgls_discrepancy);

# %% [markdown]
# We apply the rule to the recorded misfits (iteration $k$ sits at position $k-1$ of
# the lists) with $\tau = 1$, and to the TV sweep read from the largest $\lambda$ down,
# and compare each choice with the oracle — the best PSNR, which needs the truth.

# %%
TAU = 1.0


# the rule of Exercise 4, from course_utils: the position of the first misfit <= level
first_within_noise = cu.checks.lesson02.first_within_noise


choices = {}
for name, history, level in [("SIRT", sirt_history, delta),
                             ("CGLS", cgls_history, delta),
                             ("MLEM", mlem_history, poisson_delta)]:
    k = first_within_noise(history["misfit"], TAU * level) + 1
    choices[name] = dict(k=k, psnr=history["psnr"][k - 1], oracle=max(history["psnr"]),
                         k_oracle=int(np.argmax(history["psnr"])) + 1)
lams_down = sorted(lams, reverse=True)
lam_dp = lams_down[first_within_noise([tv_results[lam]["misfit"] for lam in lams_down],
                                      TAU * delta)]
choices["TV"] = dict(lam=lam_dp, psnr=tv_results[lam_dp]["psnr"],
                     oracle=tv_results[lam_oracle]["psnr"], lam_oracle=lam_oracle)
for name, c in choices.items():
    setting = (f"lambda = {c['lam']:.3g} (oracle {c['lam_oracle']:.3g})" if name == "TV"
               else f"k = {c['k']} (oracle {c['k_oracle']})")
    print(f"{name:5s} discrepancy principle: {setting:32s} PSNR {c['psnr']:.2f} dB, "
          f"oracle {c['oracle']:.2f} dB")
for name in ("CGLS", "MLEM"):   # the methods that over-fit when run too long
    assert choices[name]["psnr"] > choices[name]["oracle"] - 1.5, name
for name in ("SIRT", "MLEM", "TV"):
    assert choices[name]["psnr"] > psnr_of(x_fbp) + 1, name

# %% [markdown]
# Without ever looking at the true image, the discrepancy principle picks the best
# iteration of CGLS and the best $\lambda$ of TV on our grid, and stops SIRT and MLEM
# within about a dB of their best iteration (SIRT at 71 iterations instead of 97, MLEM
# at 33 instead of 21, in quick mode). It only works because $\delta$ includes the
# model error: with the noise alone ($\delta \approx 11.8$ here, against a model
# error of 21.7) no SIRT or MLEM iterate and no TV weight comes within the level, so the
# rule would run SIRT and MLEM to their last, noisiest iterate and pick TV's smallest
# $\lambda$; CGLS, which can fit this under-determined system ever more closely, reaches
# the level only at iteration 9, past its best (21.7 dB instead of 22.9 dB, measured in
# quick mode). The rule needs a trustworthy error level, and
# other rules — the L-curve corner, generalised cross-validation, Stein's unbiased
# risk estimate — trade different assumptions.
# Deep learning does not remove the question: the deep image prior (lesson 05)
# semi-converges just like CGLS and needs a stopping rule too.

# %% [markdown]
# ## 4. Explore: iteration number and regularisation weight
#
# Move the CGLS iteration $k$ and the TV weight $\lambda$ and watch the image and the
# PSNR. All iterates were computed above, so the widget only draws.

# %%
def show_choice(k=choices["CGLS"]["k"], lam=lam_dp):
    """CGLS iterate k and the TV reconstruction for lambda, with their PSNR."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    for ax, image, title in [
            (axes[0], cgls_history["iterates"][k - 1],
             f"CGLS, iteration {k}: {cgls_history['psnr'][k - 1]:.2f} dB"),
            (axes[1], tv_results[lam]["x"],
             f"TV, λ = {lam:.3g}: {tv_results[lam]['psnr']:.2f} dB")]:
        im = ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.8)
    cu.plot_curves({"CGLS": by_iteration(cgls_history["psnr"])},
                   ylabel="PSNR (dB)", title="CGLS: semi-convergence", ax=axes[2])
    axes[2].axvline(k, color="C3", ls="--")
    plt.show()


show_choice()

# %%
cu.interact(
    show_choice,
    k=widgets.IntSlider(value=choices["CGLS"]["k"], min=1, max=len(cgls_history["iterates"]),
                        description="CGLS k"),
    lam=widgets.SelectionSlider(options=[(f"{lam:.3g}", lam) for lam in lams], value=lam_dp,
                                description="TV λ"));

# %% [markdown]
# ## 5. The inverse crime
#
# Simulated data make it tempting to compute $y = A x + e$ with the very matrix $A$
# that the reconstruction uses. Then the data lie exactly in the range of $A$: the
# model is *perfect*, which no real scanner is (the object is continuous, detectors have
# a width, rays are not lines). Colton and Kress (1992) called this the **inverse
# crime**; Kaipio and Somersalo (2007) showed how it makes methods look far better than
# they are. Every data set in this course is therefore simulated more finely than it
# is reconstructed: the Shepp-Logan data above on a 4 times finer grid, and the shared
# setting of the learned lessons (`cu.SparseViewSetting`, dival's ellipses benchmark)
# the same way.
#
# How much does the crime flatter a method? We take 8 images of that shared setting and
# reconstruct two versions of the same scan: the honest data (fine grid) and the
# criminal ones, $A x$ plus **the same noise draw**. Each method is tuned on 8
# validation images of its own kind of data (the FBP filter and cut-off, the CGLS
# iteration, the TV weight), so both get their best shot.

# %%
crime_setting = cu.SparseViewSetting(size=N, n_train=0, n_val=8, n_test=8, device=device)
A_s = crime_setting.A


def scan(split, level, crime):
    """Sinograms of a split at a noise level: honest (fine grid) or criminal (A x)."""
    clean = crime_setting.split(split, noise_level=0.0)
    noise = crime_setting.split(split, noise_level=level).y - clean.y if level else 0.0
    return (A_s(clean.x) if crime else clean.y) + noise, clean.x


def tuned_methods(level, crime):
    """FBP, CGLS and TV tuned on validation data of the same kind."""
    y_val, x_val = scan("val", level, crime)
    score = lambda x: float(cu.psnr(x, x_val, data_range=1.0).mean())
    fbp_choice = max(((f, c) for f in cu.FILTERS for c in (0.4, 0.6, 0.8, 1.0)),
                     key=lambda fc: score(cu.fbp(A_s, y_val, *fc)))
    cgls_scores = []
    cu.cgls(A_s, y_val, 100, callback=lambda k, x: cgls_scores.append(score(x)))
    k = 1 + int(np.argmax(cgls_scores))
    lam, _ = cu.tune_tv_weight(A_s, y_val, x_val, start=N / 20, finest_ratio=2 ** 0.5)
    return {"FBP": lambda y: cu.fbp(A_s, y, *fbp_choice),
            "CGLS": lambda y: cu.cgls(A_s, y, k),
            "TV": lambda y: cu.tv_pdhg(A_s, y, 3000, lam=lam, tol=1e-4)}


crime_rows, crime_psnr = [], {}
for level in (0.0, crime_setting.noise_level):
    for crime in (True, False):
        y_test, x_test = scan("test", level, crime)
        for name, method in tuned_methods(level, crime).items():
            row = cu.evaluate(method, (y_test, x_test),
                              name=f"{name}, {'A x (crime)' if crime else 'fine grid'}")
            crime_psnr[level, crime, name] = row
            crime_rows.append({"noise": f"{level:.1%}", **row})
cu.results_table(crime_rows, columns=["noise", "method", "PSNR (dB)", "PSNR ±95%", "SSIM"])

# %%
flattery = {(level, name): cu.paired_difference(crime_psnr[level, True, name],
                                                 crime_psnr[level, False, name])
            for level in (0.0, crime_setting.noise_level) for name in ("FBP", "CGLS", "TV")}
for (level, name), d in flattery.items():
    print(f"noise {level:.1%}: {d}")
# Without noise the crime is worth several dB to TV and a clear gain to CGLS, the
# methods that fit the data (CGLS: about 2 dB at 64², 0.7 dB at 128²); FBP, which does
# not fit the data, gains far less.
assert flattery[0.0, "TV"].low > 2 and flattery[0.0, "CGLS"].low > 0.3
assert flattery[0.0, "TV"].low > flattery[0.0, "FBP"].high + 1
# With the benchmark's noise the effect on TV is much smaller (and can change sign).
level = crime_setting.noise_level
assert abs(flattery[level, "TV"].mean) < flattery[0.0, "TV"].low

# %% [markdown]
# With clean data the crime is worth several dB to TV (about 6.6 dB in quick mode) and
# about 2 dB to CGLS, the methods that fit the data: a perfect model lets them
# reproduce the image almost exactly, while FBP, which does not fit the data, gains
# only 0.2 dB. The comparison between the methods is distorted, not only their scores.
# (Full mode, 128 x 128, measured on 2026-12-07: TV +4.22 dB [3.28, 5.16], CGLS
# +0.72 dB [0.59, 0.85], FBP +0.04 dB [0.01, 0.07]; with 2.5 % noise TV −0.43 dB
# [−0.51, −0.36], CGLS −0.05 dB and FBP −0.03 dB.)
#
# With the benchmark's 2.5 % noise the noise is about five times the model error
# (0.5 % of the data at 64 x 64), and the picture changes: here the criminal data even
# give TV about 0.8 dB *less*. Our reading (not proven here): $A$ interpolates between
# pixel averages, so $A x$ is a blurrier sinogram than the line integrals of the sharp
# ellipses, while the noise is equally white in both; the honest data carry a little
# more signal at high frequencies, where TV places its edges. So the crime does not
# always flatter; it always *changes* the experiment. A learned method trained and
# tested on criminal data never meets the model error it would meet on a real scanner,
# and a model-based baseline on criminal data is measured on a problem no scanner
# poses. Neither happens in this course.

# %% [markdown]
# ## 6. Results: the classical baselines
#
# The same phantom and geometry for every method. FBP, SIRT, CGLS and TV reconstruct the
# Gaussian-noise sinogram; MLEM the Poisson counts with the same relative noise level
# (emission data, its natural noise model). Iteration numbers and $\lambda$ come from
# the discrepancy principle; the oracle column shows the best that could be reached
# with the truth. Times are for one reconstruction with the chosen setting.

# %%
x_sirt_dp, time_sirt = timed(cu.sirt, A, y, choices["SIRT"]["k"])
x_cgls_dp, time_cgls = timed(cu.cgls, A, y, choices["CGLS"]["k"])
x_mlem_dp, time_mlem = timed(cu.mlem, A, y_poisson, choices["MLEM"]["k"])
x_tv_dp, time_tv = timed(cu.tv_pdhg, A, y, N_ITER["tv"], lam=lam_dp)

recons = {"FBP": x_fbp, "SIRT": x_sirt_dp, "CGLS": x_cgls_dp, "MLEM": x_mlem_dp,
          "TV (Chambolle-Pock)": x_tv_dp}
settings = {"FBP": f"{fbp_filter} filter (best of 4)",
            "SIRT": f"{choices['SIRT']['k']} iterations",
            "CGLS": f"{choices['CGLS']['k']} iterations",
            "MLEM": f"{choices['MLEM']['k']} iterations",
            "TV (Chambolle-Pock)": f"λ = {lam_dp:.3g}, {N_ITER['tv']} iterations"}
oracle = {"FBP": psnr_of(x_fbp), "SIRT": choices["SIRT"]["oracle"],
          "CGLS": choices["CGLS"]["oracle"], "MLEM": choices["MLEM"]["oracle"],
          "TV (Chambolle-Pock)": choices["TV"]["oracle"]}
times = {"FBP": time_fbp, "SIRT": time_sirt, "CGLS": time_cgls, "MLEM": time_mlem,
         "TV (Chambolle-Pock)": time_tv}
rows = [{"method": name,
         "data": "Poisson counts" if name == "MLEM" else f"Gaussian {NOISE:.0%}",
         "setting": settings[name],
         "PSNR (dB)": psnr_of(x),
         "SSIM": float(cu.ssim(x, x_true, data_range=1.0)),
         "oracle PSNR (dB)": oracle[name],
         "time (s)": times[name]} for name, x in recons.items()]
cu.results_table(rows)

# %%
cu.show_images([x_true] + list(recons.values()),
               ["truth"] + [f"{name}: {psnr_of(x):.1f} dB" for name, x in recons.items()],
               vmin=0, vmax=1, ncols=3,
               suptitle=f"{N}x{N}, {N_ANGLES} angles, {NOISE:.0%} noise");

# %%
psnr_tv, psnr_fbp = psnr_of(x_tv_dp), psnr_of(x_fbp)
print(f"TV {psnr_tv:.2f} dB vs FBP {psnr_fbp:.2f} dB: {psnr_tv - psnr_fbp:+.2f} dB")
assert psnr_tv > psnr_fbp + 4, "TV should clearly beat FBP on sparse, noisy data"
assert psnr_of(x_cgls_dp) > psnr_fbp - 1 and psnr_of(x_sirt_dp) > psnr_fbp

# %% [markdown]
# **This table is this lesson's, not the course's shared baseline.** It uses one
# Shepp-Logan phantom, and it chooses iteration numbers and $\lambda$ by the discrepancy
# principle, with no interval (one image). From lesson 03 on, the learned methods are
# compared with the **shared baselines**: `cu.classical_methods(setting)` on the shared
# setting `cu.SparseViewSetting` (dival's ellipses benchmark: 30 angles, 2.5 % noise, data
# from a finer grid), with FBP, SIRT, CGLS and TV tuned on validation images and scored as
# mean ± 95 % interval over the test images; lesson 03's results table is the first to
# show them. The later lessons — a CNN after FBP, a learned filter, the deep image prior,
# unrolled MLEM, learned primal-dual — must beat *that* table (TV above all) to be worth
# their training. What carries over from this one is the ranking and the reasons for it.
#
# ## Check your understanding
#
# Click an answer: the feedback is immediate, and nothing is graded.

# %%
cu.checks.quiz(
    "A 30-angle scan has m = 2070 rays for n = 2304 pixels. Which statement is true?",
    ["with enough iterations, CGLS finds the true image from exact data",
     "images in the null space of A give zero data, so the data cannot tell x from x + z",
     "Tikhonov regularisation recovers the null-space part of the image"],
    answer=1,
    explain="A z = 0 means x and x + z have identical data. Least squares (and CGLS from "
            "zero) leaves the null-space part at zero; Tikhonov keeps it at zero too. Only "
            "prior knowledge (TV, a trained network) puts something there.",
    wrong={0: "CGLS from zero converges to the minimum-norm solution: its null-space part "
              "is zero, whatever the true image had there.",
           2: "Tikhonov's filter factors act on the non-zero singular values; in the null "
              "space it picks zero, like least squares."})

# %%
cu.checks.quiz(
    "Landweber with step ω = 2.2/‖A‖² on noise-free data: what happens?",
    ["it converges, only more slowly", "it converges faster than with 1/‖A‖²",
     "the error along the top singular vector grows every step"],
    answer=2,
    explain="Along v_1 each step multiplies the error by 1 − ω s_1² = −1.2: its size grows "
            "by 20 % per step. Stability needs ω < 2/‖A‖²; the best guaranteed decrease "
            "is at ω = 1/‖A‖².")

# %%
cu.checks.quiz(
    "You stop CGLS by the discrepancy principle but use the noise norm alone as δ, on "
    "data whose model error is twice the noise. What do you expect?",
    ["it stops too early, with an over-smoothed image",
     "it stops too late, or never, deep in semi-convergence",
     "nothing changes: the model error does not matter"],
    answer=1,
    explain="Even the true image leaves a misfit of about √(noise² + model error²). A level "
            "below that is reached only by fitting noise and model error, late (CGLS on "
            "our under-determined 30-angle system: iteration 9 instead of 6), or never "
            "(SIRT and MLEM here), so the rule stops past the best iterate (section 3.6).")

# %%
cu.checks.quiz(
    "In PDHG for TV, what does the dual update of the gradient variable q do?",
    ["a gradient step on the data misfit",
     "it projects each pixel's 2-vector q + σ D x̄ onto the disc of radius λ",
     "it clips negative pixel values"],
    answer=1,
    explain="The convex conjugate of λ‖·‖_{2,1} is the indicator of those discs, and the "
            "prox of an indicator is the projection onto its set. Clipping is the primal "
            "prox of x ≥ 0; the data term has its own dual variable p.")

# %% [markdown]
# ## Takeaways
#
# - A tomograph is a matrix: column $j$ is the sinogram of pixel $j$, row $i$ the
#   footprint of ray $i$. It is very sparse, yet far too large to store for real
#   scanners, so practical codes apply $A$ and $A^T$ on the fly — and must pass the
#   adjoint test.
# - Least squares divides the data by the singular values; the small ones amplify
#   noise by up to the condition number. Regularisation (Tikhonov, TV, early stopping)
#   trades a little bias for a lot less noise.
# - Landweber, SIRT, CGLS and MLEM semi-converge: the iteration number is a
#   regularisation parameter. CGLS is fastest and most sensitive to it; MLEM is the
#   maximum-likelihood method for Poisson counts.
# - TV fits piecewise-constant images and beats FBP by several dB on sparse, noisy
#   data — at the price of an iterative solve and a weight $\lambda$ to choose.
# - Choosing the knob without ground truth is an open problem; the discrepancy
#   principle (stop when the misfit reaches the error level of the data, noise *and*
#   model error) is a good classical answer when that level is known.
#
# ## What to try next
#
# - Make the data harder or easier: 15 or 90 angles, 1 % or 10 % noise. Which method
#   gains most from more angles? How does the best $\lambda$ move with the noise?
# - Replace the Shepp-Logan phantom by the real slice `cu.ct_slice(normalize=True)`:
#   does TV still win so clearly on a less cartoon-like image?
# - Run `cu.landweber(..., nonneg=True)` and `cu.sirt(..., nonneg=False)` and compare the
#   semi-convergence curves: how much of SIRT's higher peak is the non-negativity?
# - Find the corner of the L-curve automatically (the point of largest curvature) and
#   compare its $\alpha$ with the best one.
# - Try $\tau = 1.1$ in the discrepancy principle, or a noise level that is off by
#   20 %: how robust is the choice?
#
# ## References
#
# - S. Kaczmarz (1937). Angenäherte Auflösung von Systemen linearer Gleichungen.
#   *Bulletin International de l'Académie Polonaise des Sciences et des Lettres, Classe
#   des Sciences Mathématiques et Naturelles, Série A* 35, 355–357.
# - L. Landweber (1951). An iteration formula for Fredholm integral equations of the
#   first kind. *American Journal of Mathematics* 73(3), 615–624.
# - M. R. Hestenes and E. Stiefel (1952). Methods of conjugate gradients for solving
#   linear systems. *Journal of Research of the National Bureau of Standards* 49(6),
#   409–436.
# - A. N. Tikhonov (1963). Solution of incorrectly formulated problems and the
#   regularization method. *Soviet Mathematics Doklady* 4, 1035–1038.
# - V. A. Morozov (1966). On the solution of functional equations by the method of
#   regularization. *Soviet Mathematics Doklady* 7, 414–417.
# - R. Gordon, R. Bender and G. T. Herman (1970). Algebraic reconstruction techniques
#   (ART) for three-dimensional electron microscopy and X-ray photography. *Journal of
#   Theoretical Biology* 29(3), 471–481.
# - P. Gilbert (1972). Iterative methods for the three-dimensional reconstruction of an
#   object from projections. *Journal of Theoretical Biology* 36(1), 105–117.
# - L. A. Shepp and Y. Vardi (1982). Maximum likelihood reconstruction for emission
#   tomography. *IEEE Transactions on Medical Imaging* 1(2), 113–122.
# - P. M. Joseph (1982). An improved algorithm for reprojecting rays through pixel
#   images. *IEEE Transactions on Medical Imaging* 1(3), 192–196.
# - L. I. Rudin, S. Osher and E. Fatemi (1992). Nonlinear total variation based noise
#   removal algorithms. *Physica D* 60(1–4), 259–268.
# - E. Y. Sidky and X. Pan (2008). Image reconstruction in circular cone-beam computed
#   tomography by constrained, total-variation minimization. *Physics in Medicine and
#   Biology* 53(17), 4777–4807.
# - D. Colton and R. Kress (1992). *Inverse Acoustic and Electromagnetic Scattering
#   Theory*. Springer (where the term "inverse crime" was coined).
# - J. Kaipio and E. Somersalo (2007). Statistical inverse problems: discretization,
#   model reduction and inverse crimes. *Journal of Computational and Applied
#   Mathematics* 198(2), 493–504.
# - P. C. Hansen (2010). *Discrete Inverse Problems: Insight and Algorithms*. SIAM.
# - A. Chambolle and T. Pock (2011). A first-order primal-dual algorithm for convex
#   problems with applications to imaging. *Journal of Mathematical Imaging and Vision*
#   40(1), 120–145.
# - A. J. Reader, G. Corda, A. Mehranian, C. da Costa-Luis, S. Ellis and
#   J. A. Schnabel (2021). Deep learning for PET image reconstruction. *IEEE
#   Transactions on Radiation and Plasma Medical Sciences* 5(1), 1–25. (The system
#   matrix from point sources and MLEM follow Reader's workshop.)
# - A. J. Reader and G. Schramm (2021). Artificial intelligence for PET image
#   reconstruction. *Journal of Nuclear Medicine* 62(10), 1330–1333.
# - N. Ducros. *(A short intro to) Deep learning for image reconstruction* (lecture,
#   CREATIS Lyon): inversion as optimisation, Tikhonov and sparsity regularisation.
# - S. Papa (2024). *Deep learning methods for image reconstruction* (lecture,
#   DLinRT 2024): regularised iterative reconstruction and the open termination problem.
