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
# # Lesson 05 — The deep image prior: a network as the regulariser, without training data
#
# Lessons 03 and 04 learned reconstruction from hundreds of (sinogram, image) pairs. Often
# there are none: a new scanner, a rare protocol, a patient unlike any in the training
# set. The **deep image prior** (Ulyanov, Vedaldi and Lempitsky, 2018) needs no training
# data at all. It takes a randomly initialised convolutional network $f_\theta$, feeds it
# a *fixed* random input $z$, and adjusts the weights $\theta$ until the projections of
# its output match the one measured sinogram: $\min_\theta \|A f_\theta(z) - y\|^2$.
# Nothing in that objective says "be a clean image", and a network with more weights than
# there are measurements can fit the noise too — yet on the way it fits the *structure*
# of the image first and the noise only later. The architecture itself acts as the
# prior, and **when to stop** becomes the regularisation parameter, the same open
# question we met with CGLS and MLEM in lesson 02. This lesson builds the method with the
# system model $A$ (as in Reader's workshop), watches it semi-converge, stops it with the
# discrepancy principle, stabilises it with a total-variation term, and compares it
# honestly with FBP and TV on the course's shared sparse-view data.
#
# **Learning goals.** After this lesson you can
#
# - explain how an untrained network with a fixed random input regularises an inverse
#   problem, and how the deep image prior differs from supervised learning (lessons 03
#   and 04) and from reconstruction with a *trained* generator;
# - write the fitting loop $\min_\theta \tfrac12\|A f_\theta(z) - y\|^2$ with Adam, and
#   recognise its typical bugs (optimising $z$, re-drawing $z$, $A^T$ for $A$, a missing
#   `zero_grad`, a detached output);
# - read the PSNR and data-misfit curves of a fit: structure first, noise later, and why
#   the last iterate is not the best one;
# - stop the fit without the true image by the discrepancy principle (you write the
#   stopping rule), and judge how well that works;
# - add a total-variation term (DIP + TV), explain why it makes the result robust to
#   the stopping point, and why its weight must be tuned for DIP + TV itself (with TV's
#   own weight it can at best reproduce TV);
# - place DIP among FBP, TV and the other baselines, with its cost: one network fit per
#   image.
#
# **Prerequisites.** Lesson 02 (the system matrix, semi-convergence, TV, the discrepancy
# principle) and lesson 03 (a U-Net in PyTorch, a training loop with Adam).
#
# **Estimated run time.** CPU quick mode (`COURSE_QUICK=1`: 64 x 64 images, 2 test
# images, 1500 fitting steps each, and three fits on one validation image to choose the
# weight of DIP + TV): 133 s measured on an otherwise idle 2-core CPU with one thread
# (`python benchmarks/lessons.py 05`, before the output layer became a sigmoid; 3
# minutes after it while other jobs shared the cores); half a minute of it tunes the
# classical baselines. CPU full mode (128 x 128,
# 6 test images, 3000 steps each, six validation fits): 46 minutes (measured on
# 2026-12-07 with one thread, while other jobs shared the two cores; about 38 ms per
# fitting step there); on a GPU full mode is faster (not measured). The deep image
# prior fits one network per image, so it is slow by design. The notebook uses one CPU thread, which is fastest for its
# small convolutions (see the set-up).

# %% [markdown]
# ## Set-up
#
# The data come from the course's shared experiment (`cu.SparseViewSetting`, dival's
# "ellipses" benchmark): random ellipse phantoms, 30 parallel-beam angles, white Gaussian
# noise with a standard deviation of 2.5 % of the mean absolute value of each sinogram,
# and data simulated on a 4 times finer grid than the one we reconstruct on (no inverse
# crime) — the same test images as in every learned lesson. Quick mode uses 64 x 64
# images, full mode 128 x 128.
#
# The networks of this lesson are tiny (20 thousand weights) and are fitted to one image
# at a time, so each convolution is far too small to share among CPU threads: threads
# that wait for each other cost more than they gain. We use **one thread** on the CPU
# (measured on a 2-core machine that was also running another job: 12 ms per fitting
# step with one thread, 29 ms with two). In full mode on a machine with many idle cores,
# `torch.set_num_threads(4)` may be worth a try.

# %%
import math
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

import course_utils as cu

cu.seed_everything(0)
device = cu.device()
QUICK = cu.QUICK
if device.type == "cpu":
    torch.set_num_threads(1)

setting = cu.SparseViewSetting(device=device)
setting.tune_fbp()                   # FBP's filter and cut-off, chosen on validation
A = setting.A
N = setting.image_size
N_SUBSET = 2 if QUICK else 6         # test images for the results table (DIP is slow)
N_ITER = 1500 if QUICK else 3000     # Adam steps per image
LR = 1e-2                            # Adam's learning rate
Z_CHANNELS = 32                      # channels of the random input z
TAU = 1.0                            # safety factor of the discrepancy principle
STORE_EVERY = 10                     # keep every 10th image of a fit for the widget
print(setting)
print(f"QUICK={QUICK}, device={device}, {torch.get_num_threads()} CPU thread(s); "
      f"{N_ITER} steps per image, {N_SUBSET} test images")

# %% [markdown]
# ## 1. A network as the prior
#
# Every reconstruction method so far combined the data with some prior knowledge: FBP a
# band limit, TV piecewise constancy, FBPConvNet (lesson 03) what the training images
# look like. The deep image prior (DIP) puts the prior into the **parametrisation** of
# the image. Draw a random input $z$ once and keep it fixed; look only for images that a
# convolutional network $f_\theta$ can produce from it, $x = f_\theta(z)$; and choose the
# weights so that the image explains the data:
#
# $$ \hat\theta = \arg\min_\theta \; \tfrac12 \big\|A f_\theta(z) - y\big\|_2^2 ,
#    \qquad \hat x = f_{\hat\theta}(z) . $$
#
# There are no training pairs: the only data are the measurements $y$ of this one scan
# (Reader's workshop calls such a data-fidelity loss *self-supervised*: the loss lives
# in the data space, the system model $A$ links it to the image). Compare it with reconstruction by a **trained** generator
# $G$ (Ongie's lecture, after Bora et al. 2017): there $G$ is learned from many images,
# frozen, and one searches its *input*, $\min_z \|A G(z) - y\|^2$. The deep image prior
# does the opposite: the input is fixed and the *weights* of an untrained network are
# searched.
#
# Why should that give anything but a least-squares solution? Our network has about 20
# thousand weights, and in quick mode the sinogram has $30 \times 93 = 2790$ readings,
# fewer than the $64 \times 64 = 4096$ pixels: many images fit the data exactly, noise
# included.
# Ulyanov and co-authors observed that gradient descent on the weights of a convolutional
# network produces smooth, structured images **much faster** than noise — the network
# "resists" noise. Fitting therefore passes through a good image before it ends in a
# noisy one: the deep image prior is a *semi-convergent* method, like CGLS in lesson 02,
# and the number of steps is its regularisation parameter.
#
# **The network.** An encoder-decoder with skip connections, like the U-Net of
# lesson 03 but smaller (three scales with 8, 16 and 32 channels; one convolution per
# scale on the way down, two on the way up: in quick mode seven fits of 1500 steps
# must run in a few minutes), with choices that matter for an untrained prior:
#
# - **nearest-neighbour upsampling followed by a convolution** instead of transposed
#   convolutions. Transposed convolutions with stride 2 put uneven weight on even and odd
#   pixels, and a fit from random weights turns that into a **checkerboard** pattern
#   (Odena et al. 2016). `cu.UNet` uses them; it is fine for a trained network, but
#   as a deep image prior it gave checkerboard images for some random seeds here (the
#   course's benchmark still uses it for DIP, as dival does; its images were not
#   inspected for checkerboards);
# - batch normalisation and leaky ReLUs, as in the original deep image prior;
# - a **sigmoid output** $1/(1 + e^{-t})$: every pixel lies in $(0, 1)$, the range of
#   these normalised phantoms, as in dival's deep image prior for this benchmark. That
#   is a prior of its own — the network knows the scale of the data — so data in other
#   units must be scaled first. Unlike a ReLU output, no pixel gets a gradient of exactly
#   zero (with a ReLU output, one of our fits never left the black image). We first used
#   a **softplus** $\log(1 + e^{10 t})/10$, which only asks for a non-negative image.
#   With it, whole regions of the image sank to zero and stayed there, and the best step
#   on test image 0 reached 21.88 dB in quick mode (the sigmoid: 25.09 dB) and, in full
#   mode at 128 x 128, only 17.42 dB (the sigmoid: 26.82 dB); one fit each, with this
#   lesson's settings, measured with a separate script. Why, we did not test: both
#   outputs flatten near zero (the softplus's slope at an output value $v$ is about
#   $10 v$, the sigmoid's about $v$), but the sigmoid starts at 0.5 and the softplus
#   near 0.07. An output layer is part of the prior ("What to try next" puts the softplus
#   back).

# %%
def conv_block(in_channels, out_channels):
    """3 x 3 convolution, batch normalisation, leaky ReLU; the image size is kept."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect"),
        nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2))


class DIPNet(nn.Module):
    """Encoder-decoder for the deep image prior: z (B, C, N, N) -> images (B, 1, N, N) in (0, 1).

    ``depth`` levels with ``width * 2**level`` channels; N must be divisible by
    ``2**(depth - 1)``.
    """

    def __init__(self, in_channels=Z_CHANNELS, width=8, depth=3):
        super().__init__()
        channels = [width * 2**level for level in range(depth)]       # 8, 16, 32
        self.down = nn.ModuleList()
        previous = in_channels
        for c in channels:
            self.down.append(conv_block(previous, c))
            previous = c
        self.reduce = nn.ModuleList()     # after upsampling: 2c -> c channels
        self.up = nn.ModuleList()         # after concatenating the skip: 2c -> c
        for c in reversed(channels[:-1]):
            self.reduce.append(nn.Conv2d(2 * c, c, 3, padding=1))
            self.up.append(conv_block(2 * c, c))
        self.output = nn.Conv2d(channels[0], 1, kernel_size=1)

    def forward(self, z):
        h, skips = z, []
        for level, block in enumerate(self.down):
            if level > 0:
                h = F.max_pool2d(h, 2)
            h = block(h)
            skips.append(h)
        skips.pop()                       # the coarsest level has no skip connection
        for reduce, block in zip(self.reduce, self.up):
            h = reduce(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = block(torch.cat([skips.pop(), h], dim=1))
        return torch.sigmoid(self.output(h))


def new_dip(seed=0):
    """A freshly initialised DIPNet and its fixed input z, the same for the same seed."""
    torch.manual_seed(seed)
    net = DIPNet().to(device)
    generator = torch.Generator().manual_seed(seed)
    z = 0.1 * torch.rand(1, Z_CHANNELS, N, N, generator=generator)   # as in Ulyanov et al.
    return net, z.to(device)


net, z = new_dip()
n_parameters = cu.count_parameters(net)
print(f"DIPNet: {n_parameters:,} weights; the sinogram has {math.prod(A.range_shape):,} "
      f"readings, the image {N * N:,} pixels")

# %% [markdown]
# The first test image of the shared setting, its noisy sinogram (the only thing DIP
# gets to see), one channel of the random input $z$ and what the untrained network makes
# of it: faint speckle, nothing of the object yet. Everything the fit will produce comes
# from the data, shaped by the network.

# %%
test = setting.test
x_true, y = test.x[:1], test.y[:1]                      # (1, 1, N, N), (1, 1, 30, n_det)
with torch.no_grad():
    x_init = net(z)
fig, axes = plt.subplots(1, 4, figsize=(15, 3.4), layout="constrained")
for ax, image, title in [(axes[0], x_true, "test image 0 (unknown to DIP)"),
                         (axes[2], z[0, 0], "one channel of the input z"),
                         (axes[3], x_init, "untrained network f_θ(z)")]:
    im = ax.imshow(image.squeeze().cpu(), cmap="gray")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title)
    ax.set_axis_off()
cu.show_sinogram(y.squeeze().cpu(), setting.geometry, ax=axes[1],
                 title="measured sinogram y (2.5 % noise)")
plt.show()

# %% [markdown]
# ### Exercise 1: the deep-image-prior fitting loop
#
# Write `fit_dip(net, z, y, A, n_iter, lr, callback=None)`: fit the weights of `net`
# to the sinogram `y` with `n_iter` steps of Adam (learning rate `lr`) on the loss
#
# $$ L(\theta) = \tfrac12 \big\| A f_\theta(z) - y \big\|_2^2
#    \quad \text{(the sum of squares over all readings)}. $$
#
# After step $k = 1, \dots, n_\text{iter}$ call `callback(k, x)` (if a callback was
# given) with that step's output `x` detached from the graph. Return the network's
# output `net(z)` at the end. The input `z` stays **fixed**: it is not optimised and not
# re-drawn. (With Adam, the scale of the loss hardly matters — the mean instead of the
# sum gives almost the same steps — but we keep the $\tfrac12$-sum, as in lesson 02.)
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# It is the training loop of lesson 03 with one "training pair": the input is always the
# same `z`, and the loss compares the *projection* of the output with the sinogram. What
# does Adam update, and what must stay out of its list? Which three calls make one step?
# Only the callback gets a detached copy of the output.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# Step $k$: $x_k = f_{\theta_{k-1}}(z)$,
# $L = \tfrac12 \sum_i \big((A x_k)_i - y_i\big)^2$,
# $\theta_k = \mathrm{Adam}(\theta_{k-1}, \nabla_\theta L)$ with the gradients of this
# step only; the answer is $f_{\theta_{n}}(z)$, computed without a graph.
# </details>

# %%
def fit_dip(net, z, y, A, n_iter, lr, callback=None):
    """Fit net's weights so that A(net(z)) ≈ y: n_iter Adam steps; return net(z)."""
    ### BEGIN SOLUTION (points=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    for k in range(1, n_iter + 1):
        x = net(z)
        loss = 0.5 * ((A(x) - y) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if callback is not None:
            callback(k, x.detach())
    with torch.no_grad():
        return net(z)
    ### END SOLUTION


# %%
cu.checks.fit_dip(fit_dip);

# %% [markdown]
# ## 2. One scan: structure first, noise later
#
# The rest of the notebook fits with `run_dip` below, which calls
# `cu.checks.lesson05.record_fit`: the loop of the exercise, with bookkeeping (open
# `course_utils/checks/lesson05.py` once you have solved the exercises). At every step
# it records the **data misfit** $\|A x_k - y\|$, which we can always compute, and the
# **PSNR** against the true image, which we can only compute because this is a
# simulation. It keeps every 10th image, the best one (by PSNR: the *oracle*, which needs
# the truth) and the first one whose misfit reaches the noise level (the discrepancy
# principle of section 3). The optional `lam` adds the TV term of section 4.

# %%
def run_dip(y, x_true, *, lam=0.0, n_iter=N_ITER, lr=LR, seed=0, noise_norm=None,
            tau=TAU, store_every=STORE_EVERY, desc="DIP"):
    """Fit a fresh DIPNet (seed) to one sinogram y (1, 1, n_angles, n_det), recorded.

    ``x_true`` (1, 1, N, N) is used only to score each step (PSNR), never to fit.
    """
    net, z = new_dip(seed)
    return cu.checks.lesson05.record_fit(
        net, z, y, A, x_true, lam=lam, n_iter=n_iter, lr=lr, noise_norm=noise_norm,
        tau=tau, store_every=store_every,
        progress=lambda steps: tqdm(steps, desc=desc, leave=False))


delta = float(setting.noise_norm(y))       # the expected noise norm, from the data alone
y_clean = setting.split("test", noise_level=0).y[:1]      # known only in a simulation
print(f"noise level from the data: δ = {delta:.2f}; the true ‖e‖ = "
      f"{float(torch.linalg.vector_norm(y - y_clean)):.2f}; the misfit of the true image, "
      f"‖A x* − y‖ = {float(torch.linalg.vector_norm(A(x_true) - y)):.2f} "
      f"(both known only in a simulation)")
dip = run_dip(y, x_true, noise_norm=delta)
psnr_fbp = float(cu.psnr(test.x_fbp[:1], x_true, data_range=1.0))
print(f"DIP, {N_ITER} steps in {dip['seconds'][-1]:.1f} s: best PSNR "
      f"{dip['psnr'][dip['k_best'] - 1]:.2f} dB at step {dip['k_best']}, last "
      f"{dip['psnr'][-1]:.2f} dB; FBP {psnr_fbp:.2f} dB")

# %% [markdown]
# The two curves tell the story. The misfit falls all the time — the optimiser does its
# job — and goes on falling below the noise level $\delta$: from there on the network
# explains the noise too. The PSNR rises quickly (the large structures), then slowly (the
# edges), peaks, and **falls** once the fit starts to reproduce the noise. The spikes in
# both curves are Adam's: now and then a step overshoots, and the next few dozen steps
# recover. Below, the images at a few steps: blurred blobs first, then edges, then grain.
#
# Note the level, too. On this image the best step (in quick mode 25.09 dB at step 319)
# is 3 dB above FBP (22.10 dB), and the curve stays above FBP for a few hundred steps;
# by step 1500 it has fallen to 16.10 dB, far below (in full mode the last of 3000 steps
# ends 1.55 dB below FBP). dival's phantoms are busy: 50
# overlapping ellipses, many small or thin, on a background that fills the whole
# square, and by the time the network has found the thin ellipses it has begun to fit
# noise elsewhere. Our network is tiny (20 thousand weights, 1500 steps) so that a fit
# takes well under a minute. Baguer et al. (2020) fitted an encoder-decoder with 5
# scales of 128 channels for 5000 Adam steps (their published settings for this
# benchmark, in their `dip-ct-benchmark` repository): hundreds of times more computation
# per image than we can afford here.

# %%
def by_step(values):
    """(steps 1..K, values) for cu.plot_curves."""
    return (np.arange(1, len(values) + 1), values)


fig, axes = plt.subplots(1, 2, figsize=(13, 3.6), layout="constrained")
cu.plot_curves({"DIP": by_step(dip["psnr"])}, xlabel="step", ylabel="PSNR (dB)",
               title="PSNR against the true image", ax=axes[0])
axes[0].axhline(psnr_fbp, color="grey", ls=":", label="FBP")
axes[0].axvline(dip["k_best"], color="C3", ls="--", label=f"best step {dip['k_best']}")
axes[0].legend()
cu.plot_curves({"DIP": by_step(np.array(dip["misfit"]) / delta)}, xlabel="step",
               ylabel="‖A x_k − y‖ / δ", title="data misfit (in units of the noise level)",
               logy=True, ax=axes[1])
axes[1].axhline(TAU, color="grey", ls=":", label="noise level δ")
axes[1].legend()
plt.show()

steps = [50, 200, dip["k_best"], N_ITER]
snapshots = [dip["iterates"][50], dip["iterates"][200], dip["x_best"], dip["x_last"]]
cu.show_images([x_true.cpu()] + snapshots,
               ["truth"] + [f"step {k}: {dip['psnr'][k - 1]:.1f} dB" for k in steps],
               vmin=0, vmax=1, ncols=5, size=2.6);

# %%
drop = dip["psnr"][dip["k_best"] - 1] - dip["psnr"][-1]
print(f"PSNR: best {dip['psnr'][dip['k_best'] - 1]:.2f} dB at step {dip['k_best']} of "
      f"{N_ITER}; the last step is {drop:.2f} dB worse")
assert dip["k_best"] < 0.9 * N_ITER, "the PSNR should peak well before the end"
assert dip["psnr"][dip["k_best"] - 1] > psnr_fbp + 1, "at its best step DIP beats FBP here"
assert drop > 0.5, "fitting on should lose PSNR: the network starts to fit the noise"

# %% [markdown]
# ## 3. When to stop? The discrepancy principle again
#
# The best step depends on the image and the noise, and in practice there is no true
# image to compute a PSNR against. (Papa's lecture lists the termination condition of
# iterative reconstruction as an open problem; the deep image prior inherits it.) The
# misfit curve, however, is always available, and lesson 02 gave a rule for it:
# **Morozov's discrepancy principle**. Even the true image leaves a misfit
# $\|A x^* - y\| \approx \|e\| \approx \delta$; an image that fits the data more closely
# than that fits noise. So stop at the first step with
#
# $$ \|A f_{\theta_k}(z) - y\| \le \tau\, \delta . $$
#
# The noise level $\delta$ comes from the physics of the scanner, not from the true image.
# Each reading carries noise of standard deviation $\sigma = 0.025 \cdot
# \overline{|y_\text{clean}|}$, and the mean absolute value of the noisy data is that of
# the clean data to a fraction of a per cent, so $\delta = \sqrt m\,\sigma \approx
# 0.025\,\overline{|y|}\,\sqrt m$ for $m$ readings: `setting.noise_norm(y)` above.
# `run_dip` applied the rule during the fit, with $\tau = 1$, fixed before we looked at
# any result — and stopping there would also have saved the rest of the computation.
#
# ### Exercise 2: the stopping step
#
# The rule is a decision made from the misfit curve alone. Write
# `discrepancy_stop(misfits, delta, tau)`: `misfits` is the list of misfits
# $\|A x_k - y\|$ after steps $k = 1, 2, \dots$ (so `misfits[0]` belongs to step 1);
# return the step $k$ at which the discrepancy principle stops. Adam's misfit curve
# wiggles, so it can cross the threshold, rise above it and cross again: decide which
# crossing counts. If the misfit never reaches the threshold, the fit runs to the end:
# return the last step.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Walk along the curve and stop at the first moment the condition holds; mind that step
# numbers start at 1 while list positions start at 0, and that "reaches" includes
# equality.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $k_\text{stop} = \min\{k \ge 1 : \|A x_k - y\| \le \tau\delta\}$, and
# $k_\text{stop} = K$ (the number of steps) when that set is empty.
# </details>

# %%
def discrepancy_stop(misfits, delta, tau):
    """The first step k (from 1) with misfits[k - 1] <= tau * delta, else len(misfits)."""
    ### BEGIN SOLUTION
    for k, misfit in enumerate(misfits, start=1):
        if misfit <= tau * delta:
            return k
    return len(misfits)
    ### END SOLUTION


# %%
cu.checks.discrepancy_stop(discrepancy_stop);

# %%
k_stop, k_best = dip["k_stop"], dip["k_best"]
psnr_stop, psnr_best = dip["psnr"][k_stop - 1], dip["psnr"][k_best - 1]
print(f"discrepancy principle: stop at step {k_stop} ({dip['seconds'][k_stop - 1]:.1f} s), "
      f"PSNR {psnr_stop:.2f} dB")
print(f"oracle (needs the truth): step {k_best}, PSNR {psnr_best:.2f} dB, misfit "
      f"{dip['misfit'][k_best - 1] / delta:.2f} δ;  last step {N_ITER}: "
      f"{dip['psnr'][-1]:.2f} dB;  FBP {psnr_fbp:.2f} dB")
assert k_stop > k_best, "on this image the discrepancy stop comes after the best step"
assert psnr_best - 1.0 < psnr_stop, "the stop should cost less than 1 dB on this image"
assert psnr_stop > dip["psnr"][-1] + 3, "stopping should beat running to the end"
if QUICK:     # measured: 0.74 dB in quick mode, 0.27 dB in full mode
    assert psnr_stop < psnr_best - 0.5, "in quick mode the stop costs more than 0.5 dB"

# %% [markdown]
# The rule misses the best step on this image. In quick mode it stops **late**: at step
# 424, 0.74 dB below the oracle's best step (319), though still 8.25 dB better than
# running to the end. At its best step the network's image still misfits the data by
# 1.07 $\delta$. (In full mode, 128 x 128 and 3000 steps, measured once on this image,
# the rule did much better: the best step came at 263 with 26.82 dB, and the misfit
# reached $\delta$ at step 282, 0.27 dB lower; the best image misfit by 1.03 $\delta$.
# How well the rule works depends on the image size, the noise and the network.) Two
# things keep the best images above $\delta$:
#
# - the **model error**. Our data are simulated on a grid 4 times finer than the one
#   $A$ works on (no inverse crime), so even the true image misfits by 1.05 $\delta$
#   here (40.92 against $\delta$ = 39.11); a method that reaches $\delta$ with $A$ is
#   already explaining some noise;
# - the **prior is imperfect**. The best DIP image is smoother than the truth and
#   does not explain all of the fine structure of these busy phantoms; by the time the
#   misfit reaches $\delta$, the network has started to reproduce the noise in other
#   places.
#
# The rule is not a free lunch, then. It needs the noise level (here we know it; for
# Poisson data it follows from the counts, as in lesson 02) and a safety factor
# $\tau$: Morozov's $\tau > 1$ exists for exactly these reasons, and the honest way to
# set it would be on validation images, at the cost of one network fit per image (in
# *What to try next*). The misfit also wiggles from step to step (Adam is not a monotone
# method), so a crossing can come a few steps too early or too late. Other stopping
# rules for DIP watch the images instead of the data, for example the variance of the
# recent iterates (Wang et al. 2023, also in *What to try next*).

# %% [markdown]
# ## 4. A regulariser on top: DIP + TV
#
# Early stopping is a fragile regulariser: stop too late and noise creeps back. Liu et al.
# (2019) and Baguer et al. (2020, for CT) add an explicit penalty to the fit, total
# variation:
#
# $$ \hat\theta = \arg\min_\theta \; \tfrac12 \big\|A f_\theta(z) - y\big\|_2^2
#    + \lambda\, \mathrm{TV}\big(f_\theta(z)\big), \qquad
#    \mathrm{TV}(x) = \sum_{i,j} \sqrt{(\partial_1 x)_{ij}^2 + (\partial_2 x)_{ij}^2} , $$
#
# the **isotropic** TV of lesson 02 (forward differences, zero past the last row and
# column: `cu.image_gradient`; Baguer et al.'s code uses the anisotropic
# $\sum |\partial_1 x| + |\partial_2 x|$ instead). Now fitting the noise *costs* something: the optimum of
# the combined objective no longer fits the data exactly, and running longer does little
# harm. The network still shapes the path; TV shapes the end point.
#
# Look at that objective once more: as a function of the image $x = f_\theta(z)$ it is
# *exactly* TV's objective of lesson 02, $\tfrac12\|Ax - y\|^2 + \lambda\,\mathrm{TV}(x)$,
# and the sigmoid output keeps $0 < x < 1$, where `cu.tv_pdhg` imposes only $x \ge 0$.
# The network only changes the *parametrisation* of the search. So with TV's own
# $\lambda$, a fit run to convergence reaches the minimiser of TV's objective over the
# box $[0, 1]$, which is TV's own image whenever that lies in $[0, 1]$, as it does
# almost everywhere here. A fit *stopped on the way* can score a little above or below
# TV in PSNR, since PSNR is not the objective; but whatever separates it from TV comes
# from the path and the box, not from a better prior at the end point. The same holds
# for any weight: run to convergence, DIP + TV with $\lambda$ reaches that minimiser for
# that $\lambda$. What the network adds, it adds
# through the *path*: a fit stopped after a fixed number of steps, whose image still
# carries the network's preference for structure. A **smaller** $\lambda$ than TV's
# own leaves more of the work to that preference, the TV term only removing what the
# network lets through; whether that pays depends on the network and the step budget.
# So $\lambda$ must be tuned for DIP + TV itself, with its own budget, on validation
# images. (Baguer et al. (2020) tuned DIP + TV's weight separately from TV's; their two
# objectives are scaled differently — a mean over the readings for DIP + TV, ODL's
# cell-weighted sum for TV — so their two published weights cannot be compared
# directly.)
#
# ### Exercise 3: the DIP + TV loss
#
# Write `dip_tv_loss(x, y, A, lam)` for images `x` of shape `(..., N, N)` and sinograms
# `y` of shape `(..., n_angles, n_detectors)`: return the scalar tensor
# $\tfrac12\|A x - y\|^2 + \lambda\, \mathrm{TV}(x)$, with sums (not means) over all
# readings, pixels and images of the batch, and the isotropic TV. It must be
# differentiable: the network is trained through it.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# `cu.image_gradient(x)` gives the two differences at each pixel, stacked in a new axis
# just before the image axes, shape `(..., 2, N, N)`. The isotropic TV adds up, pixel by
# pixel, the *length* of that 2-vector (not the sum of the two absolute values, which is
# the anisotropic TV). A square root has an infinite slope at 0, where the image is flat:
# pick a way to compute the length whose gradient stays finite there.
# `cu.total_variation(x)` computes the same TV per image: use it to test yourself.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $\mathrm{loss} = \tfrac12 \sum_i \big((A x)_i - y_i\big)^2
#  + \lambda \sum_{b,p,q} \big\|(\nabla x_b)_{pq}\big\|_2$, a sum over every reading $i$
# of the batch's sinograms, every image $b$ of the batch and every pixel $(p, q)$.
# </details>

# %%
def dip_tv_loss(x, y, A, lam):
    """½‖A x − y‖² + lam · TV(x): a scalar tensor, summed over the batch."""
    ### BEGIN SOLUTION
    g = cu.image_gradient(x)                                # (..., 2, N, N)
    tv = torch.linalg.vector_norm(g, dim=-3).sum()          # isotropic TV
    return 0.5 * ((A(x) - y) ** 2).sum() + lam * tv
    ### END SOLUTION


# %%
cu.checks.dip_tv_loss(dip_tv_loss);

# %% [markdown]
# **Tuning $\lambda$ for DIP + TV.** `cu.classical_methods` picks TV's own weight
# $\lambda_\text{TV}$ on the validation images (a fine logarithmic grid, TV run to
# convergence each time; about half a minute in quick mode, and the results table of
# section 6 needs it anyway). For DIP + TV every candidate costs a network fit per
# image, so the search is small: $\lambda \in \{\lambda_\text{TV},\,
# \lambda_\text{TV}/3,\, \lambda_\text{TV}/10\}$, scored by the PSNR of the last step
# (the one the method reports) on the first validation image in quick mode (three extra
# fits, about a minute of CPU time: a coarse choice from one image) and on the first two
# in full mode. Nothing here is chosen on the test images. Then we fit the test image
# with the chosen weight, from the same initial network and input as plain DIP.

# %%
classical = cu.classical_methods(setting)       # FBP, SIRT, CGLS, TV: tuned on validation
LAM_TV = classical.tuning["TV weight"]
print(f"TV weight tuned on the validation split: λ_TV = {LAM_TV:g}")
N_TUNE = 1 if QUICK else 2                      # validation images for DIP + TV's weight
val_tune = setting.val[:N_TUNE]
dip_tv_tuning = {}
for factor in (1, 1 / 3, 1 / 10):
    lam = LAM_TV * factor
    scores = [run_dip(val_tune.y[i:i + 1], val_tune.x[i:i + 1], lam=lam,
                      store_every=N_ITER, desc=f"DIP + TV, λ = {lam:.3g}")["psnr"][-1]
              for i in range(N_TUNE)]
    dip_tv_tuning[lam] = float(np.mean(scores))
    print(f"DIP + TV with λ = λ_TV/{1 / factor:.0f} = {lam:.3g}: last step "
          f"{dip_tv_tuning[lam]:.2f} dB on {N_TUNE} validation image(s)")
LAM_DIP_TV = max(dip_tv_tuning, key=dip_tv_tuning.get)
print(f"chosen for DIP + TV: λ = {LAM_DIP_TV:.3g} (λ_TV / {LAM_TV / LAM_DIP_TV:.0f})")
dip_tv = run_dip(y, x_true, lam=LAM_DIP_TV, noise_norm=delta, desc="DIP + TV")
x_tv = next(method for label, method in classical.items() if label.startswith("TV"))(y)
psnr_tv = float(cu.psnr(x_tv, x_true, data_range=1.0))
print(f"TV alone (λ = {LAM_TV:g}, Chambolle-Pock to convergence): {psnr_tv:.2f} dB")
for name, h in [("DIP", dip), ("DIP + TV", dip_tv)]:
    print(f"{name:9s} best {h['psnr'][h['k_best'] - 1]:.2f} dB at step {h['k_best']:4d}, "
          f"last {h['psnr'][-1]:.2f} dB (best − last: "
          f"{h['psnr'][h['k_best'] - 1] - h['psnr'][-1]:.2f} dB), discrepancy stop "
          f"{h['psnr'][h['k_stop'] - 1]:.2f} dB at step {h['k_stop']}")

fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
cu.plot_curves({"DIP": by_step(dip["psnr"]), "DIP + TV": by_step(dip_tv["psnr"])},
               xlabel="step", ylabel="PSNR (dB)", title="PSNR during the fit", ax=ax)
ax.axhline(psnr_fbp, color="grey", ls=":", label="FBP")
ax.axhline(psnr_tv, color="black", ls="--", label="TV alone")
ax.set_ylim(psnr_fbp - 6, None)
ax.legend()
plt.show()

drop_tv = dip_tv["psnr"][dip_tv["k_best"] - 1] - dip_tv["psnr"][-1]
assert drop_tv < drop, "with TV, running on should cost less than without (this image)"
assert dip_tv["psnr"][-1] > dip["psnr"][-1] + 0.5, \
    "on this image, DIP + TV should beat plain DIP at the last step"
assert LAM_DIP_TV == LAM_TV, "the text reads the search as keeping TV's own weight"
assert abs(dip_tv["psnr"][-1] - psnr_tv) < 0.5, "the text says DIP + TV ends level with TV"

# %% [markdown]
# **The weight.** On the validation image, the last step scored 30.21 dB with
# $\lambda_\text{TV} = 3.2$, 28.28 dB with $\lambda_\text{TV}/3$ and 27.86 dB with
# $\lambda_\text{TV}/10$ (quick mode, one fit each): on our budget the smaller weights
# do *not* pay, and the search picks $\lambda_\text{TV}$ itself, the edge of the grid
# (larger weights were not tried). In full mode the search on 2 validation images chose
# $\lambda_\text{TV}$ too (31.46, 30.59 and 27.83 dB). That is consistent with a tiny
# network and a short fit whose bias adds nothing the TV term cannot, so that the
# stronger pull towards TV's end point helps most; three fits per mode cannot show more.
# Baguer et al.'s network is much larger and runs 10 000 steps for DIP + TV
# (sections 2 and 6). So with the chosen weight DIP + TV minimises TV's objective (over
# the box $[0, 1]$), and whatever separates it from TV below comes from the path and
# the box, not from a difference between priors at the end point.
#
# With the TV term the curve keeps climbing instead of turning down (in quick mode: best
# 27.77 dB at step 1474, last 27.74 dB), and the last step is 11.6 dB better than plain
# DIP's last step, and 2.65 dB better than its best one: the result no longer hinges on
# stopping at the right moment. TV alone, solving the same problem to convergence by
# Chambolle-Pock, scores 27.70 dB on this image in quick mode (the dashed line): DIP +
# TV's last step scores the same (0.04 dB above), as a fit that has come close to TV's
# minimiser by another road would; equal PSNR does not prove equal images, and we did
# not compare the images themselves. (In full mode, measured once on this image with the weight chosen the
# same way, again $\lambda_\text{TV}$: DIP + TV's last step 29.40 dB, TV 29.15 dB,
# plain DIP's best and last steps 26.82 and 21.60 dB: a stopped fit a little above TV.)
# The price is a second knob, $\lambda$, the TV flavour
# in the images (flat regions, sharp edges — exactly what these phantoms are made of),
# and a network fit per image where TV needs a fraction of a second. This is one image
# and one fit; section 6 puts the methods side by side on the test subset.

# %% [markdown]
# ## 5. Explore: the fit step by step
#
# Move the step $k$ and watch the image of that step, with a marker on the PSNR and
# misfit curves. Switch between DIP and DIP + TV. Where does the noise appear in the
# image? At which misfit? (Every 10th step was stored during the fit; the widget only
# draws.)

# %%
fits = {"DIP": dip, "DIP + TV": dip_tv}


k_start = max(STORE_EVERY, dip["k_stop"] // STORE_EVERY * STORE_EVERY)   # a stored step


def show_step(k=k_start, method="DIP"):
    """The image of step k of a fit, and where step k lies on its PSNR and misfit curves."""
    h = fits[method]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
    im = axes[0].imshow(h["iterates"][k].squeeze(), cmap="gray", vmin=0, vmax=1)
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    axes[0].set_title(f"{method}, step {k}: {h['psnr'][k - 1]:.2f} dB")
    axes[0].set_axis_off()
    cu.plot_curves({method: by_step(h["psnr"])}, xlabel="step", ylabel="PSNR (dB)",
                   title="PSNR", ax=axes[1])
    axes[1].set_ylim(psnr_fbp - 6, None)
    cu.plot_curves({method: by_step(np.array(h["misfit"]) / delta)}, xlabel="step",
                   ylabel="‖A x_k − y‖ / δ", title="data misfit", logy=True, ax=axes[2])
    axes[2].axhline(TAU, color="grey", ls=":")
    for ax, values in ((axes[1], h["psnr"]), (axes[2], np.array(h["misfit"]) / delta)):
        ax.axvline(k, color="C3", ls="--")
        ax.plot(k, values[k - 1], "o", color="C3")
    plt.show()


show_step()

# %%
cu.interact(
    show_step,
    k=widgets.IntSlider(value=k_start, min=STORE_EVERY, max=N_ITER, step=STORE_EVERY,
                        description="step k", continuous_update=False),
    method=widgets.ToggleButtons(options=list(fits), description="method"));

# %% [markdown]
# ## 6. Results on a subset of the test split
#
# The deep image prior fits one network per image, so we run it on the **first few
# test images only** (2 in quick mode, 6 in full mode) — a subset, so its
# numbers are far less certain than those of the other lessons' tables, which use the
# whole test split. The classical baselines (FBP, SIRT, CGLS, TV, each tuned on the
# validation split by `cu.classical_baselines`) are scored on the *same* subset. For DIP
# we report three ways to choose the step: the last one, the best one (an oracle that
# needs the truth, an upper bound, not a method), and the discrepancy principle; and
# DIP + TV at its last step. Every DIP row is one fit per image of `N_ITER` Adam steps
# from the same seed, with no training data; the classical rows have no training either.
# Times are per image: for DIP the whole fit (for the discrepancy principle, the fit up
# to the stop). The ± columns are 95 % confidence intervals of the mean over the images
# of the subset.

# %%
subset = test[:N_SUBSET]
rows = cu.classical_baselines(setting, split=subset)
fits_subset = {"DIP": [dip], "DIP + TV": [dip_tv]}     # test image 0 is fitted already
for i in range(1, N_SUBSET):
    y_i, x_i = subset.y[i:i + 1], subset.x[i:i + 1]
    delta_i = float(setting.noise_norm(y_i))
    fits_subset["DIP"].append(run_dip(y_i, x_i, noise_norm=delta_i, desc=f"DIP {i}"))
    fits_subset["DIP + TV"].append(run_dip(y_i, x_i, lam=LAM_DIP_TV, noise_norm=delta_i,
                                           desc=f"DIP + TV {i}"))


def dip_row(name, images, seconds):
    """A results-table row scored like cu.evaluate, with the measured fitting time."""
    row = cu.evaluate(lambda x: x, (torch.cat(images).to(subset.x.device), subset.x),
                      name=name, parameters=n_parameters)
    row["time / image (ms)"] = 1000 * float(np.mean(seconds))
    return row


dips, dip_tvs = fits_subset["DIP"], fits_subset["DIP + TV"]
dip_rows = {
    "last": dip_row(f"DIP (last, {N_ITER} steps)", [h["x_last"] for h in dips],
                    [h["seconds"][-1] for h in dips]),
    "best": dip_row("DIP (best step, oracle)", [h["x_best"] for h in dips],
                    [h["seconds"][-1] for h in dips]),
    "stop": dip_row("DIP (discrepancy stop)", [h["x_stop"] for h in dips],
                    [h["seconds"][h["k_stop"] - 1] for h in dips]),
    "tv": dip_row(f"DIP + TV (last, λ={LAM_DIP_TV:.3g})", [h["x_last"] for h in dip_tvs],
                  [h["seconds"][-1] for h in dip_tvs]),
}
print(f"First {N_SUBSET} images of the test split ({N}x{N}, {setting.n_angles} angles, "
      f"2.5 % noise) — a SUBSET: DIP fits one network per image")
cu.results_table(rows + list(dip_rows.values()))

# %%
i = N_SUBSET - 1     # the last image of the subset: not the one we looked at so far
fbp_label, tv_label = (next(row["method"] for row in rows if row["method"].startswith(name))
                       for name in ("FBP", "TV"))   # e.g. "FBP (cosine, cut-off 0.7)"
x_tv_i = classical[tv_label](subset.y[i:i + 1])
images = {"truth": subset.x[i], fbp_label: subset.x_fbp[i], tv_label: x_tv_i,
          "DIP (discrepancy stop)": dips[i]["x_stop"], "DIP (last step)": dips[i]["x_last"],
          "DIP + TV (last step)": dip_tvs[i]["x_last"]}
images = {name: image.squeeze().cpu() for name, image in images.items()}
cu.show_images(list(images.values()),
               [name if name == "truth" else
                f"{name}: {float(cu.psnr(image, images['truth'], data_range=1.0)):.1f} dB"
                for name, image in images.items()],
               vmin=0, vmax=1, ncols=3, suptitle=f"test image {i}");

# %% [markdown]
# Which differences does the table support? Both methods of a pair are scored on the
# same images, so we look at the per-image differences and their 95 % interval
# (`cu.paired_difference`), not at two means. With only 2 images the interval is
# Student's $t$ with one degree of freedom: its half-width is 12.7 times the standard
# error, so even a difference of several dB that points the same way on both images can
# come with an interval that includes zero.

# %%
by_name = {row["method"]: row for row in rows}
fbp_row, tv_row = by_name[fbp_label], by_name[tv_label]
comparisons = {"DIP (discrepancy stop) vs FBP": (dip_rows["stop"], fbp_row),
               "DIP (best step, oracle) vs FBP": (dip_rows["best"], fbp_row),
               "DIP + TV vs DIP, both at the last step": (dip_rows["tv"], dip_rows["last"]),
               "TV vs DIP + TV": (tv_row, dip_rows["tv"]),
               "TV vs DIP (best step, oracle)": (tv_row, dip_rows["best"])}
differences = {}
for title, (a, b) in comparisons.items():
    differences[title] = d = cu.paired_difference(a, b)
    per_image = a["PSNR per image"] - b["PSNR per image"]
    print(f"{title:40s} {d.mean:+6.2f} dB, 95 % CI [{d.low:+7.2f}, {d.high:+7.2f}];  "
          f"per image: " + ", ".join(f"{float(v):+.2f}" for v in per_image))
supported = [title for title, d in differences.items() if d.low > 0 or d.high < 0]
print(f"differences whose 95 % interval excludes 0 on these {N_SUBSET} images: "
      f"{', '.join(supported) if supported else 'none'}")

# %% [markdown]
# **Reading the table honestly.** On these two images the deep image prior, without a
# single training image, beats FBP at its best step: the oracle step is 3.18 dB above
# FBP on average (25.72 against 22.54 dB), and the discrepancy stop 2.57 dB (25.11 dB).
# But the last step, where a fit without a stopping rule ends, is 6 dB *below* FBP
# (16.60 dB). DIP + TV at its last step (28.96 dB) is level with TV (28.89 dB; TV − DIP +
# TV = −0.07 dB, [−0.53, +0.39]): with TV's own weight it solves TV's problem. No DIP
# row is ahead of TV on a paired interval, and plain DIP, even at its oracle step, is
# 3.17 dB behind it on average. That is no accident: these
# phantoms are sums of constant ellipses, exactly the images TV is built for, so TV is
# close to an ideal prior for them. The network's bias — "smooth, structured images come
# first" — is more general and less sharp, and our network is small and briefly fitted
# (section 2).
#
# **What quick mode cannot tell.** Two images are far too few to rank methods. Of the
# five paired comparisons above, two intervals exclude zero in this run: the oracle DIP
# against FBP ([+0.78, +5.58] dB, its per-image differences +2.99 and +3.37 happen to be
# close) and DIP + TV against plain DIP's last step (+11.63 and +13.08 dB). The
# discrepancy stop is ahead of FBP on both images (+2.25 and +2.89 dB), yet its interval
# reaches down to −1.50 dB. So this section asserts no ranking: its numbers describe two
# images, not the methods. (Sections 2 to 4 assert only what one fit on one image
# shows.) DIP's numbers are also random: another seed, that is another $z$ and other
# initial weights, gives another curve (try it, below). In full mode (128 x 128, the
# first 6 test images, one run on 2026-12-07) six images support more: the discrepancy
# stop beat FBP by 2.87 dB [1.47, 4.27] and the oracle step by 3.26 dB [2.26, 4.26],
# TV stayed ahead of the oracle DIP by 3.19 dB [2.70, 3.67], and DIP + TV's last step
# was not separated from TV (TV − DIP + TV = +0.16 dB [−0.18, +0.50]). The discrepancy
# stop fell 0.39 dB below the oracle step on average (27.59 against 27.98 dB), from
# 0.07 to 1.30 dB per image. For the
# full-size benchmark (128 x 128, the first 100 test images of dival's ellipses),
# Baguer et al. (2020)
# report TV 27.96 dB, DIP 28.24 dB and DIP + TV 28.94 dB, with their large network and
# 5000 (DIP) or 10 000 (DIP + TV) Adam steps per image: there the deep image prior edges
# past TV. The course's own full-mode benchmark (`benchmarks/README.md`, section "The
# ellipses benchmark"; lesson 14) runs DIP and DIP + TV on the first 20 test images on
# a CPU, with dival's recipe: `cu.UNet` (29,481 weights, two convolutions per scale,
# transposed convolutions) with a sigmoid output and one channel of Gaussian noise as input;
# its learning rate, TV weight and number of steps were chosen on 3 validation images:
# plain DIP (110 steps) is level with FBP in PSNR and 5.88 dB [5.10, 6.67] behind TV,
# and DIP + TV (λ = TV's own weight, 2910 steps, 75 s per image)
# is not separated from TV (−0.24 dB [−0.58, +0.10]). Its plain DIP stops every image
# after the same number of steps; a second row stops each fit by this lesson's
# discrepancy principle instead ($\tau = 1$, chosen on the 3 validation images), and
# that gains 1.06 dB [0.35, 1.77] with the same network: 1.58 dB [0.79, 2.37] above FBP
# on the 20 images, level with 4-iteration CGLS in PSNR, 4.82 dB behind TV. On the 6
# images of this lesson's full-mode run, the stop is worth 1.82 dB [0.31, 3.33] to the
# benchmark's network, and this lesson's network with the same rule scored 0.49 dB
# [−0.45, +1.43] above it: not separated. Most of the distance between the benchmark's
# fixed-step DIP and this lesson's figure goes with the stopping rule, though 6 images
# leave room for a network effect of up to about 1.4 dB. On real anatomy, with
# texture, fine detail and smooth gradients, TV's staircase is a poor model; on real CT
# data Baguer et al. (2020) found DIP + TV ahead of TV, and competitive with trained
# networks when only few training images exist. Mind the cost: DIP fits a whole network
# for every image (here about 20 seconds per image, 1500 steps of about 12 ms; 75 s for
# DIP + TV's 2910 steps at full size in the benchmark), where FBP
# takes a millisecond, TV a fraction of a second and a trained network (lesson 03) one
# forward pass.

# %% [markdown]
# ## Check your understanding
#
# Click an answer: you see at once whether it is right, and why.

# %%
cu.checks.quiz(
    "A deep-image-prior fit has a misfit well below the noise level δ after many steps. "
    "What does that tell you?",
    ["the reconstruction is excellent", "the network has started to explain the noise",
     "the learning rate is too small"],
    answer=1,
    explain="Even the true image leaves a misfit of about δ. Fitting the data more closely "
            "than that means reproducing noise: the PSNR falls while the misfit keeps "
            "going down.",
    wrong={0: "A small misfit is what the optimiser achieves, not what the truth has: the "
              "true image misfits by about δ.",
           2: "A small learning rate slows the fit down; it does not push the misfit "
              "below the noise."});

# %%
cu.checks.quiz(
    "DIP + TV uses exactly TV's weight λ_TV and is run to convergence. What can it reach "
    "at best?",
    ["more than TV, because the network adds its own prior",
     "TV's own minimiser: the objective in the image is TV's objective",
     "the true image"],
    answer=1,
    explain="As a function of x = f_θ(z) the loss is ½||Ax − y||² + λ TV(x) with 0 < x < 1, "
            "TV's problem. The network changes the path, not the end point; it can only "
            "add something through a fit that is stopped before convergence, so λ is "
            "tuned for DIP + TV and its step budget, on validation images.",
    wrong={0: "At convergence only the objective matters, and it is TV's (over the box "
              "[0, 1], which does not bind when TV's image lies inside it); a stopped fit "
              "can differ from TV through its path, not through a better end point.",
           2: "The true image does not minimise TV's objective: its misfit is about δ and "
              "its TV is not minimal."});

# %%
cu.checks.quiz(
    "Why can the discrepancy principle stop a deep-image-prior fit late, after the best "
    "step?",
    ["because δ is estimated from the clean data",
     "because model error (data simulated on a finer grid) and an imperfect prior keep "
     "the best images' misfit above δ",
     "because Adam's misfit always decreases monotonically"],
    answer=1,
    explain="Even the true image misfits the crime-free data by more than δ with our A, "
            "and the best DIP image does not explain all fine structure: by the time the "
            "misfit reaches δ, noise is being fitted elsewhere.",
    wrong={0: "δ comes from the noisy data and the noise model, not the clean data.",
           2: "Adam's misfit wiggles; it is not monotone, which is a further reason for "
              "care."});

# %%
cu.checks.quiz(
    "On two test images, the discrepancy stop is above FBP on both (by 2.3 and 2.9 dB), "
    "yet the paired 95 % interval contains zero. Why?",
    ["the difference is not real", "with 2 images, Student's t has one degree of freedom: "
     "the interval is 12.7 standard errors wide on each side",
     "paired intervals ignore the per-image differences"],
    answer=1,
    explain="Two images give a very uncertain estimate of the spread; the interval says "
            "these images cannot rank the methods, not that they are equal.",
    wrong={0: "An interval containing zero means the data cannot show a difference, not "
              "that there is none.",
           2: "A paired interval is built precisely from the per-image differences."});

# %% [markdown]
# ## Takeaways
#
# - The deep image prior reconstructs from one sinogram and no training data:
#   $\min_\theta \tfrac12\|A f_\theta(z) - y\|^2$ over the weights of an untrained network
#   with a fixed random input. The architecture is the prior (and details matter:
#   transposed convolutions leave checkerboards, a ReLU output can die, a softplus
#   output let whole regions sink to zero where a sigmoid did not).
# - It semi-converges: structure first, noise later. The last iterate is not the best
#   one, and the number of steps is the regularisation parameter.
# - Without ground truth, the discrepancy principle (stop when the misfit reaches the
#   noise level) gives a stopping step from the data alone, if the noise level is known.
#   Here it missed the best step, by 0.74 dB in quick mode and 0.27 dB in full mode
#   on the image of section 3: the model error of
#   crime-free data and an imperfect prior keep the best images above the noise level,
#   so the safety factor $\tau$ matters, and should be chosen on validation data.
# - Adding TV to the loss makes the fit robust to the stopping point and improves it.
#   With TV's own weight, DIP + TV minimises TV's objective, so run to convergence it
#   reaches TV's minimiser; a fit stopped earlier can score a little above or below TV,
#   through its path, not through a better prior. Its weight has to be tuned for DIP + TV on
#   validation (here the search kept TV's weight, and DIP + TV ended level with TV; the
#   published full-size DIP + TV, with its own tuned weight, a large network and long
#   fits, edges past TV).
# - Two test images support no ranking: a paired 95 % interval on 2 images is 12.7
#   standard errors wide on each side. Say what the data show, and no more.
# - DIP pays with compute: one network fit per image.
#
# ## What to try next
#
# - Run `run_dip` with other seeds (`seed=1, 2, ...`) on the same image: how much do the
#   best PSNR, the best step and the discrepancy stop move?
# - Choose the safety factor $\tau$ of the discrepancy principle on a few *validation*
#   images (`setting.val`, one fit each): which $\tau$ stops closest to the best step,
#   and does it carry over to the test images?
# - Make the network larger (`DIPNet(width=16, depth=4)`) or fit longer: how close does
#   plain DIP get to TV, and at what cost per image?
# - Replace `DIPNet` by `cu.UNet(in_channels=Z_CHANNELS, residual=False)` (transposed
#   convolutions) followed by a sigmoid, and try a few seeds: look for the
#   checkerboard.
# - Put the softplus back (`F.softplus(self.output(h), beta=10)` in `DIPNet.forward`)
#   and watch the image of the widget: where does it go black, and does it come back?
# - Re-draw `z` at every step, or add small fresh noise to it ($z + \sigma\,\epsilon_k$,
#   which Ulyanov et al. use as an extra regulariser for some tasks): what happens to the
#   fit and to the PSNR curve?
# - Feed a meaningful input instead of noise: the FBP image, or, as Gong et al. (2019)
#   do for PET, an image of the same patient from another modality.
# - Stop without the noise level: track the variance of the last few iterates and stop
#   where it is smallest (Wang et al. 2023), and compare with the discrepancy principle.
# - Try an under-parametrised network that cannot fit the noise at all, the deep decoder
#   (Heckel and Hand 2019): a few 1 x 1 convolutions and upsamplings.
# - Use the real slice `cu.ct_slice(normalize=True)` with the setting's scanner
#   (`setting.measure`): does DIP + TV now beat TV?
#
# ## References
#
# - D. Ulyanov, A. Vedaldi and V. Lempitsky (2018). Deep image prior. *IEEE/CVF
#   Conference on Computer Vision and Pattern Recognition (CVPR)*, 9446–9454.
# - D. Ulyanov, A. Vedaldi and V. Lempitsky (2020). Deep image prior. *International
#   Journal of Computer Vision* 128, 1867–1888.
# - K. Gong, C. Catana, J. Qi and Q. Li (2019). PET image reconstruction using deep
#   image prior. *IEEE Transactions on Medical Imaging* 38(7), 1655–1665.
# - J. Liu, Y. Sun, X. Xu and U. S. Kamilov (2019). Image restoration using total
#   variation regularized deep image prior. *IEEE International Conference on Acoustics,
#   Speech and Signal Processing (ICASSP)*, 7715–7719.
# - D. Otero Baguer, J. Leuschner and M. Schmidt (2020). Computed tomography
#   reconstruction using deep image prior and learned reconstruction methods. *Inverse
#   Problems* 36(9), 094004.
# - R. Heckel and P. Hand (2019). Deep decoder: concise image representations from
#   untrained non-convolutional networks. *International Conference on Learning
#   Representations (ICLR)*.
# - F. Hashimoto, K. Ote and Y. Onishi (2022). PET image reconstruction incorporating
#   deep image prior and a forward projection model. *IEEE Transactions on Radiation and
#   Plasma Medical Sciences* 6(8), 841–846.
# - A. Bora, A. Jalal, E. Price and A. G. Dimakis (2017). Compressed sensing using
#   generative models. *International Conference on Machine Learning (ICML)*, 537–546.
# - A. Odena, V. Dumoulin and C. Olah (2016). Deconvolution and checkerboard artifacts.
#   *Distill*.
# - H. Wang, T. Li, Z. Zhuang, T. Chen, H. Liang and J. Sun (2023). Early stopping for
#   deep image prior. *Transactions on Machine Learning Research*.
# - V. A. Morozov (1966). On the solution of functional equations by the method of
#   regularization. *Soviet Mathematics Doklady* 7, 414–417.
# - A. J. Reader, G. Corda, A. Mehranian, C. da Costa-Luis, S. Ellis and
#   J. A. Schnabel (2021). Deep learning for PET image reconstruction. *IEEE
#   Transactions on Radiation and Plasma Medical Sciences* 5(1), 1–25. (The deep image
#   prior with the system model follows Reader's workshop.)
# - G. Ongie (2019). *Deep learning in biomedical imaging: analysis and reconstruction*
#   (guest lecture, University of Chicago): reconstruction with trained generators.
# - S. Papa (2024). *Deep learning methods for image reconstruction* (lecture, DLinRT
#   2024): regularised iterative reconstruction and the open termination problem.
