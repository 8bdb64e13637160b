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
# # Lesson 08 — Generative adversarial networks: reconstruction in the range of a generator
#
# A network trained on many images learns what images of a kind look like. A
# **generative adversarial network** (GAN; Goodfellow et al., 2014) learns it in a
# form that can be sampled: a *generator* $G$ turns random numbers $z$ into images, and
# is trained until a second network, the *discriminator*, can no longer tell its images
# from real ones. Once trained, $G$ is a prior that can be plugged into any inverse
# problem: among all images that $G$ can produce, look for the one whose projections
# match the measurements, $\min_z \|A\,G(z) - y\|^2$ (Bora et al., 2017). This works with
# very few measurements, because the generator supplies everything else — and that is
# also its danger: whatever the generator cannot produce, such as a small lesion that
# was never in its training images, is **smoothed over**, and the result still looks
# perfectly plausible. This lesson trains a small GAN on the course's phantoms, watches
# how GAN training can go wrong, reconstructs very sparse-view data (6 angles) in the
# range of a pretrained generator, compares it honestly with FBP and TV, and shows where
# it fails.
#
# **Learning goals.** After this lesson you can
#
# - explain the two-player game of a GAN and write its discriminator step and its
#   (non-saturating) generator step in PyTorch;
# - recognise the typical failure of GAN training, **mode collapse**, and say why it
#   happens;
# - reconstruct by **latent optimisation**, $\min_z \tfrac12\|A\,G(z) - y\|^2 +
#   \tfrac{\mu}{2}\|z\|^2$, with restarts, and read its data-misfit curve;
# - derive the weight $\mu$ that the noise implies (MAP), and tell it apart
#   from a weight tuned on validation, which shrinks $z$ far from where the generator
#   was trained;
# - judge what a generator prior can and cannot do: strong on images like its training
#   set, blind to features outside its **range**; and why an adversarial loss makes
#   images sharper but can make a reader over-confident.
#
# **Prerequisites.** Lesson 02 (sparse-view CT, TV), lesson 03 (training a network with
# Adam), and lesson 05 (the deep image prior: the "opposite" of this lesson, which
# optimises the weights of an untrained network instead of the input of a trained one).
#
# **Estimated run time.** CPU quick mode (`COURSE_QUICK=1`): one to two minutes on a
# 2-core CPU (measured with one torch thread on a quiet machine: 97 s wall-clock, 73 s
# before section 6's repeat at the MAP weight was added; on a busy shared machine 298 s
# without it and 544 s with it, of which the repeat took 126 s). CPU full mode (a longer
# in-notebook GAN training, 32 validation and 32 test images, 8 restarts and 400 steps of
# latent optimisation): 28 minutes wall-clock, repeat included (measured on 2026-12-07
# with one thread while other jobs shared the two cores; the repeat took 12 of them).
# On a GPU, a few minutes. **Both modes work at 64 x 64 pixels**:
# that is the size of the shipped pretrained generator, `data/gan_generator_64.pt`, which
# the command `dltomo generator` rebuilds in about 16 minutes on a 2-core CPU
# (see `data/README.md`).

# %% [markdown]
# ## Set-up
#
# The data are made as in the course's shared experiment (`cu.SparseViewSetting`:
# parallel beam, measurements simulated on a 4 times finer grid than the one we
# reconstruct on, so there is no inverse crime, and white Gaussian noise of 2.5 % of the
# mean absolute sinogram value, fixed seeds), with three changes. **6 angles** instead of
# 30: *very* sparse data, where a strong prior matters most (why 6 and not 4 or 8: see
# section 5). **64 x 64 pixels** in both modes: the size of the shipped generator. And
# **the course's older family of phantoms** (`phantoms="disc"`: a few ellipses inside
# the inscribed disc on a zero background), not dival's 50 ellipses that the other
# learned lessons use, because that older family is what the shipped generator learned.
# A prior must be tested on images from the distribution it learned: only then is
# "outside the generator's range" a property of the generator, and not the effect of a
# change of distribution between its training images and the test images. The networks
# are small; as in lesson 05 one CPU thread is fastest for them on a shared 2-core
# machine.

# %%
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import course_utils as cu

cu.seed_everything(0)
device = cu.device()
QUICK = cu.QUICK
if device.type == "cpu":
    torch.set_num_threads(1)

N_ANGLES = 6
setting = cu.SparseViewSetting(size=64, n_angles=N_ANGLES, phantoms="disc",
                               n_val=16 if QUICK else 32, n_test=8 if QUICK else 32,
                               device=device)
setting.tune_fbp()                       # FBP's filter and cut-off, chosen on validation
A = setting.A
GAN_STEPS = 60 if QUICK else 1500        # steps of the GAN trained in this notebook
LATENT_STEPS = 200 if QUICK else 400     # Adam steps of the latent optimisation
RESTARTS = 4 if QUICK else 8             # random starting points per sinogram
MU = 30.0                                # weight of mu/2 |z|^2, tuned on validation (sec. 4)
LR_Z = 0.05                              # Adam's learning rate for z
print(setting)
print(f"QUICK={QUICK}, device={device}, {torch.get_num_threads()} CPU thread(s); "
      f"GAN training {GAN_STEPS} steps, latent optimisation {LATENT_STEPS} steps x "
      f"{RESTARTS} restarts")

# %% [markdown]
# ## 1. The two-player game
#
# A GAN has two networks. The **generator** $G_\theta$ maps a latent vector
# $z \sim \mathcal N(0, I)$ (here 128 numbers) to an image $G_\theta(z)$. The
# **discriminator** $D_\phi$ maps an image to a score, a logit: $\sigma(D_\phi(x))$ is
# its belief that $x$ is a real training image ($\sigma$ is the logistic sigmoid). The
# original GAN objective is a game,
#
# $$ \min_\theta \max_\phi \;
#    \mathbb E_{x}\big[\log \sigma(D_\phi(x))\big]
#    + \mathbb E_{z}\big[\log\big(1 - \sigma(D_\phi(G_\theta(z)))\big)\big] , $$
#
# in which the discriminator wants to classify correctly and the generator wants to
# fool it. If the discriminator were always optimal, the generator would be minimising
# the Jensen-Shannon divergence between the distribution of its images and that of the
# training images (Goodfellow et al., 2014). In practice both are trained in turn with
# one gradient step each:
#
# - **discriminator step**: with the generator fixed, lower the binary cross-entropy
#   $L_D = -\log\sigma(D(x)) - \log(1 - \sigma(D(G(z))))$, averaged over a batch of real
#   images (label 1) and a batch of generated ones (label 0);
# - **generator step**: with the discriminator fixed, lower
#   $L_G = -\log\sigma(D(G(z)))$: label the generated images as *real*. This
#   **non-saturating** loss replaces the $\log(1 - \sigma(D(G(z))))$ of the game, whose
#   gradient vanishes exactly when the generator is bad and the discriminator rejects
#   its images with confidence — at the start of training.
#
# **The networks** (`cu.Generator`, `cu.Discriminator` in `course_utils/learning/gan.py`)
# follow DCGAN (Radford et al., 2016), shrunk for a CPU: the generator maps $z$ to
# 4 x 4 feature maps and doubles their size four times (nearest-neighbour upsampling,
# a 3 x 3 convolution, batch normalisation, ReLU) up to 64 x 64, ending in a sigmoid so
# that the values lie in (0, 1) like the phantoms; the discriminator is its mirror
# image, with strided convolutions and leaky ReLUs. DCGAN upsamples with transposed
# convolutions; a first version of our generator did too, and after half an hour of
# training its images were covered in a regular hatching pattern, the checkerboard
# artefact of lesson 05 (Odena et al., 2016). The discriminator's layers are
# *spectrally normalised* (Miyato et al., 2018), which keeps it from becoming too sharp
# too fast, the most common reason why GAN training falls apart.

# %%
torch.manual_seed(0)
G_small, D_small = cu.Generator().to(device), cu.Discriminator().to(device)
print(f"generator: {cu.count_parameters(G_small):,} weights, latent dimension "
      f"{G_small.latent_dim}; discriminator: {cu.count_parameters(D_small):,} weights")
x_untrained = G_small.sample(8, generator=torch.Generator().manual_seed(0))
cu.show_images(list(setting.train.x[:4]) + list(x_untrained[:4]),
               [f"training image {i}" for i in range(4)]
               + [f"untrained G, sample {i}" for i in range(4)],
               vmin=0, vmax=1, colorbar=False, size=2.2);

# %% [markdown]
# ### Exercise 1: the discriminator step
#
# Write `discriminator_step(G, D, x_real, z, opt_D)`: one gradient step of the
# discriminator on the real batch `x_real` (shape `(B, 1, 64, 64)`) and the generated
# batch `G(z)`. Compute
#
# $$ L_D = \operatorname{mean}_i\big[-\log\sigma(D(x_i))\big]
#        + \operatorname{mean}_j\big[-\log(1-\sigma(D(G(z_j))))\big] $$
#
# with `F.binary_cross_entropy_with_logits` (real images get label 1, generated ones
# label 0; add the two terms), take one step of the optimiser `opt_D` (which holds the
# discriminator's weights only), and return the loss as a number (`loss.item()`). The
# generator must not change, and no gradient should reach it.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# In this step the generator is a constant: cut the graph between the generated images
# and the generator before the discriminator sees them. Then it is an ordinary
# classification step of lesson 03, with two batches whose labels you choose. The
# function `cu.discriminator_loss(logits_real, logits_fake)` computes the same loss: use
# it to test yourself.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# With logits $r_i = D(x_i)$ and $f_j = D(G(z_j))$, $G(z_j)$ held fixed, and
# $\mathrm{BCE}(\ell, t) = -t\log\sigma(\ell) - (1 - t)\log(1 - \sigma(\ell))$:
#
# $$ L_D = \operatorname{mean}_i \mathrm{BCE}(r_i, 1) + \operatorname{mean}_j
#    \mathrm{BCE}(f_j, 0), $$
#
# one step of `opt_D` on fresh gradients, and $L_D$ returned as a Python number.
# </details>

# %%
def discriminator_step(G, D, x_real, z, opt_D):
    """One step of the discriminator on real images x_real and fakes G(z); returns L_D."""
    ### BEGIN SOLUTION
    x_fake = G(z).detach()
    logits_real, logits_fake = D(x_real), D(x_fake)
    loss = (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    return loss.item()
    ### END SOLUTION


# %%
cu.checks.gan_discriminator_step(discriminator_step);

# %% [markdown]
# ### Exercise 2: the generator step
#
# Write `generator_step(G, D, z, opt_G)`: one step of the generator (the optimiser
# `opt_G` holds its weights only) on the non-saturating loss
#
# $$ L_G = \operatorname{mean}_j\big[-\log\sigma(D(G(z_j)))\big] , $$
#
# and return the loss as a number. This time the gradient must flow *through* the
# discriminator into the generator — but only the generator is updated.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# The generator wins when the discriminator calls its images real: score them with the
# *real* label. The gradient has to pass through the discriminator, so nothing may be
# detached. The backward pass also leaves gradients in the discriminator's weights;
# that does no harm, because `opt_G` does not touch them and the next discriminator
# step starts from fresh gradients.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# With $f_j = D(G(z_j))$ and the BCE of exercise 1,
#
# $$ L_G = \operatorname{mean}_j \mathrm{BCE}(f_j, 1)
#        = \operatorname{mean}_j \big[-\log\sigma(f_j)\big], $$
#
# one step of `opt_G` on fresh gradients, $L_G$ returned as a number.
# </details>

# %%
def generator_step(G, D, z, opt_G):
    """One step of the generator on the non-saturating loss; returns L_G."""
    ### BEGIN SOLUTION (points=2)
    logits_fake = D(G(z))
    loss = F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))
    opt_G.zero_grad()
    loss.backward()
    opt_G.step()
    return loss.item()
    ### END SOLUTION


# %%
cu.checks.gan_generator_step(generator_step);

# %% [markdown]
# ## 2. Training a GAN — briefly
#
# `cu.train_gan` alternates the two steps of the exercises (with Adam, learning rate
# $2\cdot10^{-4}$ and $\beta_1 = 0.5$, as in DCGAN) on the setting's training images.
# In quick mode we afford only 60 steps (about 10 s). Watch the two losses: they do not
# go down together like a training loss of lesson 03, because each network's loss is
# defined by the other, moving network. A discriminator loss near $2\log 2 \approx 1.39$
# means it is guessing; near 0, it wins and the generator learns little.

# %%
start = time.perf_counter()
history = cu.train_gan(G_small, D_small, setting.train.x, steps=GAN_STEPS, batch_size=32,
                       seed=0, recalibration_batches=10)
print(f"{GAN_STEPS} GAN steps in {time.perf_counter() - start:.0f} s; last losses "
      f"L_D = {history['loss_D'][-1]:.2f}, L_G = {history['loss_G'][-1]:.2f}")
fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
cu.plot_curves({"discriminator L_D": history["loss_D"], "generator L_G": history["loss_G"]},
               xlabel="step", ylabel="loss", title="GAN losses", ax=ax)
ax.axhline(2 * np.log(2), color="grey", ls=":", label="2 log 2 (D guesses)")
ax.legend()
plt.show()
x_brief = G_small.sample(8, generator=torch.Generator().manual_seed(0))
cu.show_images(x_brief, [f"after {GAN_STEPS} steps, {i}" for i in range(8)], vmin=0,
               vmax=1, colorbar=False, size=2.2, ncols=8);

# %% [markdown]
# After 60 steps (quick mode) the generator makes grey blobs in the middle of a dark
# square: it has learned where objects are and how bright they are on average, not yet
# what ellipses look like. The shipped generator (section 3) was trained the same way
# for 3000 steps
# on 4096 images, about 16 minutes of a 2-core CPU.
#
# ### What mode collapse looks like
#
# The game has a weak point. Suppose the discriminator stood still for a while. The
# best generator against a *fixed* discriminator maps **every** $z$ to the one image
# that this discriminator finds most real: all samples look the same. That is **mode
# collapse** — the generator covers one "mode" of the data and forgets the rest. In
# real training the discriminator then learns to reject that image, the generator jumps
# to another one, and the two can chase each other without ever covering the data.
#
# We provoke it on purpose: freeze the discriminator and take 200 generator steps alone,
# with a 25 times larger learning rate than in training. We measure the **diversity**
# of a batch of samples as the standard deviation over the samples, pixel by pixel,
# averaged over the image: 0 means that all samples are identical.

# %%
def diversity(images):
    """Mean over pixels of the standard deviation over samples; images (n, 1, H, W)."""
    return float(images.std(dim=0).mean())


G_collapse = cu.Generator().to(device)
G_collapse.load_state_dict(G_small.state_dict())
G_collapse.train()
D_small.requires_grad_(False)                      # the discriminator stands still
opt = torch.optim.Adam(G_collapse.parameters(), lr=5e-3, betas=(0.5, 0.999))
g = torch.Generator().manual_seed(1)
for _ in range(200):          # generator steps only (the course's answer to exercise 2)
    z = torch.randn(32, G_collapse.latent_dim, generator=g).to(device)
    cu.checks.lesson08.generator_step_reference(G_collapse, D_small, z, opt)
D_small.requires_grad_(True)
G_collapse.eval()

x_before = G_small.sample(64, generator=torch.Generator().manual_seed(0))
x_collapsed = G_collapse.sample(64, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    score_before, score_after = (float(D_small(x).mean()) for x in (x_before, x_collapsed))
print(f"the frozen discriminator's mean logit for generated images: {score_before:.1f} "
      f"before, {score_after:.1f} after (positive: 'real')")
spread = {"training images": diversity(setting.train.x[:64]),
          f"G after {GAN_STEPS} steps": diversity(x_before),
          "G collapsed": diversity(x_collapsed)}
for name, value in spread.items():
    print(f"diversity of {name:22s} {value:.3f}")
cu.show_images(x_collapsed[:8], [f"collapsed, sample {i}" for i in range(8)], vmin=0,
               vmax="shared", colorbar=False, size=2.2, ncols=8);
assert score_after > max(0.0, score_before), "the frozen discriminator should be fooled"
if QUICK:     # measured: quick mode collapses; full mode (1500 training steps) much less
    assert spread["G collapsed"] < 0.5 * spread[f"G after {GAN_STEPS} steps"], \
        "the generator alone against a frozen discriminator should collapse"
else:
    assert spread["G collapsed"] < spread[f"G after {GAN_STEPS} steps"], \
        "the generator alone against a frozen discriminator should lose diversity"

# %% [markdown]
# The generator has found what this one discriminator accepts — it now scores the
# generated images as real — and sends every $z$ there: a dark square with the same
# faint frame, and only faint traces of objects that differ little from sample to
# sample (the grey levels above are stretched to make anything visible at all; in
# quick mode the diversity fell from about 0.07 to about 0.01). Real images look
# nothing like this: the generator exploits a blind spot of a discriminator that no
# longer learns. Collapse is the end point, though, not a rule for every budget: in full
# mode, after 1500 training steps, the same 200 steps fooled the discriminator just as
# thoroughly (its mean logit went from −1.2 to 10.9) while the diversity fell only from
# 0.094 to 0.074 (measured once, on 2026-12-07). A better-trained generator can find a
# blind spot without giving up its variety within 200 steps; the assertion above checks
# the collapse in quick mode and only a loss of diversity in full mode. The cures used in practice all keep the discriminator informative and
# the game balanced: alternate single steps (as `cu.train_gan` does),
# keep the discriminator smooth (spectral normalisation, or the gradient penalty of
# WGAN-GP, Gulrajani et al., 2017), use the Wasserstein loss (Arjovsky et al., 2017), or
# show the discriminator whole batches so that it can notice a lack of variety. A cheap
# help against the oscillations of the game is to keep a running average of the
# generator's weights over the steps (Yazıcı et al., 2019): `cu.train_gan` returns that
# average.

# %% [markdown]
# ## 3. The pretrained generator
#
# GAN training is slow and fragile on a CPU, so the course ships a generator trained
# for longer: `cu.load_generator()` reads `data/gan_generator_64.pt` (it never downloads
# anything; if the file is missing it tells you the command that rebuilds it). It was
# trained on 4096 images of this lesson's family of phantoms, drawn with the seed of the
# setting's *training* split (`cu.EllipsesDataset(4096, 64, seed=0, style="disc")`; the
# same ellipses as today's, rasterised then with 2 x 2 instead of 4 x 4 samples per
# pixel, which changes only pixels on the edges); the validation and test images of
# this lesson were never seen.

# %%
G = cu.load_generator(device=device)
print(f"pretrained generator: {cu.count_parameters(G, trainable_only=False):,} weights; "
      f"trained with: {G.metadata.get('command')} ({G.metadata.get('minutes')} min)")
x_samples = G.sample(64, generator=torch.Generator().manual_seed(0))
print(f"diversity of its samples: {diversity(x_samples):.3f} "
      f"(training images: {spread['training images']:.3f})")
cu.show_images(list(x_samples[:8]) + list(setting.train.x[4:8]),
               [f"G(z), sample {i}" for i in range(8)]
               + [f"training image {i}" for i in range(4, 8)],
               vmin=0, vmax=1, colorbar=False, size=2.2, ncols=6);

# %% [markdown]
# The samples are objects of the right size, in the right place, with edges made of
# curved pieces: plausible at a glance. But they are much simpler than the training
# images, with their many overlapping ellipses of different grey levels: most samples
# have one grey level, ragged edges, and here and there a thin stripe that no phantom
# has. A small network trained for a quarter of an hour cannot do better — and this
# gap between the generator's range and the real images will limit the reconstructions
# below.
#
# ### Explore: walking in latent space
#
# A generator is a smooth map: nearby latent vectors give similar images. Move along
# the straight line $z_t = (1-t)\,z_a + t\,z_b$ between two random latent vectors and
# watch one image morph into another. (Straight lines pass close to the origin, where
# $\|z\|$ is smaller than for typical samples; a spherical interpolation avoids that.)

# %%
z_pair = torch.randn(2, G.latent_dim, generator=torch.Generator().manual_seed(3)).to(device)


def show_interpolation(t=0.5, pair_seed=3):
    """G((1 - t) z_a + t z_b) for two random latent vectors drawn with pair_seed."""
    z_a, z_b = torch.randn(2, G.latent_dim,
                           generator=torch.Generator().manual_seed(pair_seed)).to(device)
    with torch.no_grad():
        images = G(torch.stack([z_a, (1 - t) * z_a + t * z_b, z_b]))
    cu.show_images(images, ["z_a", f"t = {t:.2f}", "z_b"], vmin=0, vmax=1, size=3)
    plt.show()


show_interpolation()

# %%
cu.interact(show_interpolation,
            t=widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05,
                                  description="t", continuous_update=False),
            pair_seed=widgets.IntSlider(value=3, min=0, max=20, description="pair"));

# %% [markdown]
# ## 4. Reconstruction in the range of the generator
#
# Ongie's lecture puts the idea in one line: find the image **in the range of the
# generator** that best fits the measurements, $\min_{x \in \operatorname{range}(G)}
# \|A x - y\|^2$, that is, $\min_z \|A\,G(z) - y\|^2$. We add a penalty on $z$
# (discussed below):
#
# $$ \hat z = \arg\min_z \; \tfrac12 \|A\,G(z) - y\|_2^2 + \tfrac{\mu}{2}\|z\|_2^2 ,
#    \qquad \hat x = G(\hat z) . $$
#
# The unknown has only 128 numbers instead of $64^2 = 4096$ pixels, so even 6 angles
# ($6 \times 93 = 558$ readings) over-determine it. The problem is not convex (the
# generator is a deep network), so gradient descent can get stuck: we start from a few
# random $z$ and keep the best fit. Bora et al. (2017) showed that with a good generator
# this needs far fewer measurements than sparsity-based compressed sensing.
#
# **The weight $\mu$.** The second term comes from the distribution $z \sim \mathcal
# N(0, I)$ that the generator was trained with. Read as a maximum a posteriori (MAP)
# estimate, with Gaussian noise of standard deviation $\sigma$ in every reading, its
# weight is fixed by the noise (exercise 4 derives it); here that weight is about 0.009.
# We use $\mu = 30$ instead, the best of $\{1, 10, 30, 100, 300\}$ on 8 validation
# images (20.2 dB for 30, 18.8 dB for 1): thousands of times the MAP weight. Such a
# weight does **not** keep $z$ where the generator was trained. In 128 dimensions a
# vector drawn from $\mathcal N(0, I)$ has $\|z\| \approx \sqrt{128} \approx 11.3$
# (a high-dimensional Gaussian puts its mass on a thin shell, not near its centre), and
# the generator saw almost only such vectors. With $\mu = 30$ the optimisation ends at
# $\|\hat z\| \approx 4$ (printed below), deep inside that shell, where the generator
# never got an input. What the weight does is **shrink** $z$ towards 0, where this
# generator makes smoother, averaged blobs: when it cannot produce the true image
# anyway, a smooth guess costs less in PSNR than a sharp wrong one, and the penalty
# also makes the landscape easier for Adam. It is a regulariser tuned on validation,
# not a probability. Section 6 repeats its key experiment at the MAP weight.
#
# ### Exercise 3: the latent optimisation
#
# Write `latent_optimisation(G, A, y, z0, n_iter, lr, mu)`: starting from `z0` (shape
# `(B, latent_dim)`), run `n_iter` steps of Adam (learning rate `lr`) over $z$ only on
# the loss $\tfrac12\|A\,G(z) - y\|^2 + \tfrac{\mu}{2}\|z\|^2$ (sums over all entries and
# the batch), and return the final $z$, detached. Leave `z0` and the generator's weights
# unchanged.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# This is lesson 05's loop with the roles swapped: there the weights moved and the input
# stayed fixed; here only $z$ moves. So $z$ must be a new tensor that autograd tracks
# (a copy of `z0`, never `z0` itself), and the optimiser is given $z$ alone. Use the
# arguments `lr`, `mu` and `n_iter`, not the notebook's `LR_Z` and `MU`.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# Each step lowers
#
# $$ L(z) = \tfrac12 \sum_{b,i} \big(A\,G(z)_b - y_b\big)_i^2
#    + \tfrac{\mu}{2} \sum_{b,k} z_{bk}^2 , $$
#
# with fresh gradients; after `n_iter` steps, return $z$ without its graph.
# </details>

# %%
def latent_optimisation(G, A, y, z0, n_iter, lr, mu):
    """Adam over z on ½‖A G(z) − y‖² + μ/2 ‖z‖², from z0; returns the final z."""
    ### BEGIN SOLUTION (points=2)
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    for _ in range(n_iter):
        loss = 0.5 * (A(G(z)) - y).pow(2).sum() + 0.5 * mu * z.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return z.detach()
    ### END SOLUTION


# %%
cu.checks.latent_optimisation(latent_optimisation);

# %% [markdown]
# ### Exercise 4: the weight that the noise implies
#
# Derive the MAP weight. The setting adds to every reading Gaussian noise of standard
# deviation $\sigma = \text{noise level} \times \text{mean}\,|y|$ (dival's convention),
# and the generator's latent vectors are $z \sim \mathcal N(0, I)$. Write
# $-\log p(z \mid y)$ up to a constant, bring it to the lesson's form
# $\tfrac12\|A\,G(z) - y\|^2 + \tfrac{\mu}{2}\|z\|^2$, and read off $\mu$. Then write
# `noise_consistent_mu(y, noise_level)`: that $\mu$ for the sinograms `y` (one number;
# take the mean of $|y|$ over all their entries).
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Bayes: $p(z \mid y) \propto p(y \mid z)\,p(z)$. Both factors are Gaussians, so their
# negative logarithms are quadratics. Scaling an objective by a positive constant does
# not change its minimiser.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $$ -\log p(z \mid y) = \frac{1}{2\sigma^2}\|A\,G(z) - y\|^2 + \frac12\|z\|^2
#    + \text{const}; \quad \text{multiply by } \sigma^2 . $$
# </details>

# %%
def noise_consistent_mu(y, noise_level):
    """The MAP weight μ of ½‖A G(z) − y‖² + μ/2‖z‖² for Gaussian noise and z ~ N(0, I)."""
    ### BEGIN SOLUTION
    sigma = noise_level * y.abs().mean()
    return float(sigma ** 2)
    ### END SOLUTION


# %%
cu.checks.noise_consistent_mu(noise_consistent_mu);

# %% [markdown]
# For this lesson's data we take $\sigma$ from the validation sinograms, with the
# course's reference answer:

# %%
MU_MAP = cu.checks.lesson08.map_weight(setting.val.y, setting.noise_level)
print(f"noise-consistent (MAP) weight μ = σ² = {MU_MAP:.4f}; the tuned MU = {MU:g} is "
      f"{MU / MU_MAP:.0f} times larger")

# %% [markdown]
# From here on we use `cu.latent_reconstruction`: the same loop, run on all restarts
# and images at once as one batch, keeping the restart with the lowest final objective
# and recording the data misfit $\|A\,G(z_k) - y\|$ at every step. First the first test
# image; we also keep the image every 10 steps of the chosen restart, to watch the
# optimisation.

# %%
test = setting.test
x_true, y = test.x[:1], test.y[:1]
path = {}


def keep_iterates(k, z):
    if k % 10 == 0:
        with torch.no_grad():
            path[k] = G(z[:, 0]).cpu()          # every restart, first image


start = time.perf_counter()
result = cu.latent_reconstruction(G, A, y, n_iter=LATENT_STEPS, lr=LR_Z, mu=MU,
                                  n_restarts=RESTARTS, callback=keep_iterates)
seconds = time.perf_counter() - start
x_gan = result["x"]
misfit = result["misfit"][:, 0]
noise_norm = float(setting.noise_norm(y))                  # expected ‖e‖
misfit_truth = float(torch.linalg.vector_norm(A(x_true) - y))   # noise + model error
print(f"latent optimisation: {seconds:.1f} s; data misfit {misfit[0]:.1f} → "
      f"{misfit[-1]:.1f} (noise: {noise_norm:.1f}; the true image: {misfit_truth:.1f}); "
      f"PSNR "
      f"{float(cu.psnr(x_gan, x_true, data_range=1.0)):.2f} dB (FBP "
      f"{float(cu.psnr(test.x_fbp[:1], x_true, data_range=1.0)):.2f} dB)")
print(f"‖ẑ‖ = {float(result['z'].norm()):.2f}, while z ~ N(0, I) has ‖z‖ ≈ √d = "
      f"{G.latent_dim ** 0.5:.2f}: μ = {MU:g} pulled ẑ deep inside the shell the "
      f"generator was trained on")
assert float(result["z"].norm()) < 0.5 * G.latent_dim ** 0.5, \
    "with the tuned weight, ẑ should end far inside the shell ‖z‖ ≈ √d"

fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
cu.plot_curves({"‖A G(z_k) − y‖": misfit.cpu()}, xlabel="step k", ylabel="data misfit",
               title="latent optimisation, test image 0", logy=True, ax=ax)
ax.axhline(noise_norm, color="grey", ls=":", label="noise level ‖e‖")
ax.axhline(misfit_truth, color="C2", ls="--", label="‖A x_true − y‖")
ax.legend()
plt.show()
assert misfit[-1] <= 0.5 * misfit[0], "the latent optimisation should halve the misfit"
assert misfit[-1] > 2 * misfit_truth, "the generator's range should not explain the data"

# %%
best = int(result["restart"][0])
steps_shown = [10, LATENT_STEPS // 4, LATENT_STEPS // 2, LATENT_STEPS]
cu.show_images([x_true[0, 0].cpu(), test.x_fbp[0, 0].cpu()]
               + [path[k][best, 0] for k in steps_shown],
               ["truth", "FBP"] + [f"G(z_k), k = {k}" for k in steps_shown],
               vmin=0, vmax=1, ncols=6, size=2.4, colorbar=False);

# %% [markdown]
# The misfit falls fast and then levels off **far above the noise level**. Not even the
# true image explains the data to within the noise: the data were simulated on a finer
# grid than the operator $A$ we reconstruct with (no inverse crime), so
# $\|A x_{\text{true}} - y\|$ holds the model error as well as the noise. But the
# generator's best image misses the data by several times more than the truth does: no
# image in its range explains them. That gap is the *representation error* of the
# generator, and it dominates here — the reconstruction has the right blobs in the
# right places, but not the fine structure of the truth. FBP, tuned on validation,
# smooths so strongly at 6 angles (it keeps frequencies only up to 0.3 of Nyquist)
# that little is left of its streaks, and of the edges.
#
# ## 5. Results on very sparse data
#
# We score on the first test images (8 in quick mode, 32 in full mode) of the 6-angle
# setting: FBP, SIRT, CGLS and TV tuned on the validation split by
# `cu.classical_baselines`, the GAN prior, and one remedy for its representation error
# that we meet in section 6: **GAN prior + correction**, which lets the image leave the
# range of the generator by a deviation $v$ that must have small total variation
# (in the spirit of Dhar et al., 2018, who allow sparse deviations):
#
# $$ \min_{z, v} \; \tfrac12\|A\,(G(z) + v) - y\|^2 + \tfrac{\mu}{2}\|z\|^2
#    + \lambda\,\mathrm{TV}(v), \qquad \hat x = G(\hat z) + \hat v , $$
#
# started from the GAN reconstruction ($v = 0$) and run for 150 Adam steps. Its weight
# $\lambda = 1$ was chosen among $\{0.3, 1, 3\}$ on 8 validation images (22.5, 24.1,
# 23.2 dB).

# %%
LAM_V = 1.0


def gan_plus_correction(y, lam=LAM_V, n_iter=150, z0=None):
    """GAN prior, then min over (z, v) of ½‖A(G(z) + v) − y‖² + μ/2‖z‖² + λ TV(v).

    ``z0``: the latent vectors of the GAN prior, if already computed.
    """
    if z0 is None:
        z0 = cu.latent_reconstruction(G, A, y, n_iter=LATENT_STEPS, lr=LR_Z, mu=MU,
                                      n_restarts=RESTARTS)["z"]
    return cu.checks.lesson08.correction_reconstruction(G, A, y, z0, mu=MU, lam=lam,
                                                        n_iter=n_iter, lr=0.01)


# %% [markdown]
# Both methods optimise, so each runs once on the whole subset and is timed here;
# `cu.evaluate` then only scores the images (as in lesson 05). The correction's time
# includes the latent optimisation it starts from.

# %%
subset = test
rows = cu.classical_baselines(setting, split=subset)
n_weights = cu.count_parameters(G, trainable_only=False)

start = time.perf_counter()
gan_subset = cu.latent_reconstruction(G, A, subset.y, n_iter=LATENT_STEPS, lr=LR_Z, mu=MU,
                                      n_restarts=RESTARTS)
seconds_gan = time.perf_counter() - start
x_corr_subset = gan_plus_correction(subset.y, z0=gan_subset["z"])
seconds_corr = time.perf_counter() - start


def scored_row(name, x_hat, seconds):
    """A results-table row for images computed already, with their measured time."""
    row = cu.evaluate(lambda x: x, (x_hat, subset.x), name=name, parameters=n_weights)
    row["time / image (ms)"] = 1000 * seconds / len(subset)
    return row


rows.append(scored_row("GAN prior (latent opt.)", gan_subset["x"], seconds_gan))
rows.append(scored_row(f"GAN prior + TV correction (λ={LAM_V:g})", x_corr_subset,
                       seconds_corr))
print(f"{len(subset)} test images ({setting.image_size}x{setting.image_size}, "
      f"{N_ANGLES} angles, noise {100 * setting.noise_level:g} % of mean |y|); "
      f"mean ± half-width of the 95 % interval")
cu.results_table(rows)

# %%
by_name = {row["method"].split(" (")[0]: row for row in rows}
fbp_row, sirt_row, tv_row = by_name["FBP"], by_name["SIRT"], by_name["TV"]
gan_row, corr_row = rows[-2], rows[-1]
tv_method = cu.classical_methods(setting)[tv_row["method"]]
x_tv_subset = tv_method(subset.y)
x_all = {"truth": subset.x[:4], fbp_row["method"]: subset.x_fbp[:4],
         tv_row["method"]: x_tv_subset[:4], "GAN prior": gan_subset["x"][:4],
         "GAN + correction": x_corr_subset[:4]}
images, titles = [], []
for i in range(4):
    for name, x in x_all.items():
        images.append(x[i, 0].cpu())
        titles.append(name if name == "truth" else
                      f"{name}: {float(cu.psnr(x[i], x_all['truth'][i], data_range=1.0)):.1f} dB")
cu.show_images(images, titles, vmin=0, vmax=1, ncols=5, size=2.5, colorbar=False);

# %%
# paired differences: the same images, so the image-to-image spread cancels
gan_vs_fbp = cu.paired_difference(gan_row, fbp_row)
gan_vs_fbp_ssim = cu.paired_difference(gan_row, fbp_row, metric="SSIM")
tv_vs_gan = cu.paired_difference(tv_row, gan_row)
sirt_vs_gan = cu.paired_difference(sirt_row, gan_row)
corr_vs_gan = cu.paired_difference(corr_row, gan_row)
for d in (gan_vs_fbp, gan_vs_fbp_ssim, tv_vs_gan, sirt_vs_gan, corr_vs_gan):
    print(d)
assert gan_vs_fbp_ssim.low > 0, "the GAN prior should beat FBP in SSIM"
assert tv_vs_gan.low > 0, "TV should beat the GAN prior"
assert corr_vs_gan.low > 0, "the correction should repair part of the representation error"

# %% [markdown]
# **Reading the table honestly.** All comparisons are paired: the same images, so the
# image-to-image spread cancels, and a claim is made only where the lower end of the
# paired 95 % interval is above zero. On 6 angles the GAN prior is **level with FBP in
# PSNR** (−0.1 dB, 95 % interval [−1.6, +1.4] dB on the 8 quick-mode images; +0.2 dB,
# [−0.2, +0.7], on the 32 images of full mode: no claim either way) and far ahead in SSIM
# (+0.29, [+0.18, +0.39]): its images have the right kind of objects in the right places,
# with sharp edges, where FBP, tuned on validation, is a blur. It loses clearly to **TV**,
# by 8.7 dB ([+6.4, +10.9]), and even to SIRT (by 5.8 dB, [+4.6, +7.0]), and the reason is
# the representation error we saw in section 4: our small generator, trained for a quarter
# of an hour, cannot produce the many overlapping ellipses of these phantoms, while TV is
# an almost ideal prior for them — they are piecewise constant, exactly TV's own model —
# and has no range to leave. Letting the image leave the range with a TV-regularised
# correction wins back part of the gap in PSNR (+3.5 dB over the GAN prior, [+1.6, +5.4];
# not in SSIM, where its mean is a little lower: the correction also adds faint streaks).
# None of this is a verdict on GAN priors in general, only on this one: a GAN prior pays
# off when the generator is good — a large network trained on a large, representative data
# set — and when the images are too rich for a hand-made prior like TV. Bora et al.
# (2017) trained their face generator on CelebA, about 200,000 face photographs;
# NVIDIA's style-based face generator, which Ongie's lecture shows (Karras et al.,
# 2019), was trained on FFHQ, 70,000 high-resolution faces. (Ongie's slide puts the
# NVIDIA faces at "~200,000 training examples", which is the size of CelebA, not of
# FFHQ.) Our generator saw 4096 phantoms. Note the cost column too: hundreds of
# generator evaluations per image, like the deep image prior of lesson 05, where FBP
# takes a fraction of a millisecond. (This lesson
# is not part of the course's benchmark table, `benchmarks/README.md`, "The ellipses
# benchmark": that table is for dival's phantoms, which this generator never saw.)
#
# **Why 6 angles?** The GAN prior's error hardly depends on the number of angles: it is
# set by the generator's range. FBP improves quickly with more angles. On 8 validation
# images (FBP tuned for each number of angles) the GAN prior scored 19.5, 20.2, 20.5 and
# 20.7 dB at 4, 6, 8 and 10 angles, FBP 18.2, 21.1, 22.7 and 23.9 dB: in PSNR the
# GAN prior is ahead only at 4 angles, while in SSIM it stays far ahead at all four
# (0.57-0.63 against 0.22-0.45). We keep 6 angles, where the two are level in PSNR and
# the images still show what a generator prior does. The better the generator, the
# further the crossing point moves — try it with a generator of your own (see *What to
# try next*).

# %% [markdown]
# ## 6. Where it fails: features outside the range
#
# Ongie's warning, as his slide puts it: "If patient has abnormality not contained in
# training set, the abnormality may be “smoothed over” by the GAN". We add a small,
# bright, round "lesion" (radius 2 pixels, always at the same place) to each test image
# of section 5, simulate its 6-angle scan with the same noise, and reconstruct. To see
# what each method makes of the lesion
# alone, we compare the reconstructions of the scans with and without it (same noise;
# the scans without it are those of section 5) and look at the **difference**. How much
# of the lesion's true contrast a method shows is the mean of that difference over the
# lesion's pixels, divided by the lesion's own mean there: one number per image and
# method, which we compare between methods on the same images. A method can also change
# its image where there is no lesion at all, so we measure the same number on a
# **control** disc of the same size, at the mirrored position, where nothing was added.

# %%
def add_lesion(x, centre=(38, 26), radius=2.0, contrast=0.6):
    """Images x (n, 1, N, N) plus a small disc of the given contrast, clipped to [0, 1]."""
    rows_, cols_ = torch.meshgrid(torch.arange(x.shape[-2]), torch.arange(x.shape[-1]),
                                  indexing="ij")
    disc = ((rows_ - centre[0]) ** 2 + (cols_ - centre[1]) ** 2 <= radius**2).float()
    return (x + contrast * disc.to(x.device)).clamp(0, 1), disc.bool().to(x.device)


x_plain = subset.x
x_lesion, disc = add_lesion(x_plain)
control = disc.T                                     # the same disc at (26, 38): no lesion
# the same scans plus the lesion's own (crime-free) projections: the noise is the same
y_lesion = subset.y + setting.clean_sinogram(x_lesion - x_plain)
gan_lesion = cu.latent_reconstruction(G, A, y_lesion, n_iter=LATENT_STEPS, lr=LR_Z, mu=MU,
                                      n_restarts=RESTARTS)   # the same starting points
recon = {"FBP": (subset.x_fbp, setting.fbp(y_lesion)),
         "TV": (x_tv_subset, tv_method(y_lesion)),
         "GAN prior": (gan_subset["x"], gan_lesion["x"]),
         "GAN + correction": (x_corr_subset,
                              gan_plus_correction(y_lesion, z0=gan_lesion["z"]))}


def contrast_on(where, x_without, x_with):
    """Mean of (with − without) on the pixels `where`, per image, over the lesion's."""
    true = (x_lesion - x_plain)[..., disc].mean(dim=(1, 2))
    return ((x_with - x_without)[..., where].mean(dim=(1, 2)) / true).cpu()


recovered = {name: contrast_on(disc, *pair) for name, pair in recon.items()}
at_control = {name: contrast_on(control, *pair) for name, pair in recon.items()}
print(f"share of the lesion's contrast, mean ± 95 % interval over {len(subset)} images:")
for name in recon:
    m, h = cu.mean_interval(recovered[name])
    mc, hc = cu.mean_interval(at_control[name])
    print(f"  {name:17s} on the lesion {100 * m:5.1f} ± {100 * h:4.1f} %, "
          f"on the control disc {100 * mc:5.1f} ± {100 * hc:4.1f} %")

# %%
k = 2                                                # the image we look at
images = [x_lesion[k, 0].cpu(), (x_lesion - x_plain)[k, 0].cpu()]
titles = [f"test image {k} with lesion", "the lesion alone"]
for name, (without, with_) in recon.items():
    images += [with_[k, 0].cpu()]
    titles += [f"{name}"]
for name, (without, with_) in recon.items():
    images += [(with_ - without)[k, 0].cpu()]
    titles += [f"{name}: with − without"]
cu.show_images(images[:6], titles[:6], vmin=0, vmax=1, ncols=6, size=2.5, colorbar=False)
cu.show_images(images[6:], titles[6:], vmin=-0.3, vmax=0.6, ncols=4, size=2.5);

# %% [markdown]
# The GAN reconstruction draws **no lesion**: a small bright disc is not in the range of
# the generator. The lesion's projections change the data a little, and the latent
# optimisation answers with what the generator *can* make: it reshapes its blobs — on
# test image 2 over much of the object — and the lesion's pixels get brighter only
# where a reshaped blob happens to cover them. Over the 8 images that change averages
# about a fifth of the lesion's contrast, as much as FBP's, but it scatters widely from
# image to image (the ± above), and it is near zero on the control disc: the GAN does
# react to the lesion's data, just not with a lesion, and nothing in its picture warns
# the reader. FBP shows the lesion, blurred (its cut-off at 0.3 of Nyquist spreads the
# small disc over a much larger area, so only about a fifth of the contrast stays on the
# lesion's pixels; FBP is linear, so that share is nearly the same on every image: only
# the clipping to [0, 1] changes the lesion from one image to the next). TV shows
# the lesion at its place, with more than half of its contrast. The correction term,
# which is not bound to the generator's range, brings back part of it on average, but
# on the 8 images of quick mode that gain is not distinguishable from zero (the paired
# intervals below); on the 32 images of full mode it is (+21 points, [+17, +26]).
#
# Is there a warning sign in the *data*? In principle yes: the GAN image does not
# explain the lesion's projections, so they stay in the residual $A\,G(\hat z) - y$ as
# the trace of a small object in a sinogram. Here that trace is hard to see, because
# the residual is dominated by the generator's representation error (section 4), of
# which the lesion's projections are only a part.

# %%
x_gan_lesion = recon["GAN prior"][1][k]
residual_with = (A(x_gan_lesion) - y_lesion[k])[0].cpu()
lesion_sinogram = setting.clean_sinogram(x_lesion - x_plain)[k, 0].cpu()
print(f"test image {k}: ‖projections of the lesion‖ = {float(lesion_sinogram.norm()):.1f},"
      f" ‖A G(ẑ) − y‖ = {float(residual_with.norm()):.1f}")
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
cu.show_sinogram(lesion_sinogram, setting.geometry, ax=axes[0],
                 title="projections of the lesion alone")
cu.show_sinogram(residual_with, setting.geometry, ax=axes[1],
                 title="residual A G(ẑ) − y (with lesion)")
plt.show()

# %%
# paired differences in percentage points of the lesion's contrast, on the same images
comparisons = {
    "TV − GAN prior, on the lesion": (recovered["TV"], recovered["GAN prior"]),
    "TV, lesion − control": (recovered["TV"], at_control["TV"]),
    "GAN prior, lesion − control": (recovered["GAN prior"], at_control["GAN prior"]),
    "GAN + correction − GAN prior, on the lesion": (recovered["GAN + correction"],
                                                     recovered["GAN prior"]),
}
lesion_tests = {}
for name, (a, b) in comparisons.items():
    d = lesion_tests[name] = cu.paired_difference(100 * a, 100 * b)
    print(f"{name}: {d.mean:+.1f} points, 95 % CI [{d.low:+.1f}, {d.high:+.1f}], "
          f"{d.n} images")
assert lesion_tests["TV − GAN prior, on the lesion"].low > 0, \
    "the GAN prior should show less of the lesion than TV"
assert lesion_tests["TV, lesion − control"].low > 0, \
    "TV should show the lesion at its place"

# %% [markdown]
# ### Outside the range, or pulled by the prior?
#
# Section 4 showed that $\mu = 30$ pulls $\hat z$ far from where the generator was
# trained. Is the lesion missing because the generator cannot draw it, or because so
# strong a pull towards $z = 0$ flattens every detail? We repeat the reconstructions,
# with and without the lesion, at the MAP weight $\mu = \sigma^2$ of exercise 4, which
# leaves $z$ free to go where the data want.

# %%
both = torch.cat([subset.y, y_lesion])               # one batch: without, then with
start = time.perf_counter()
gan_map = cu.latent_reconstruction(G, A, both, n_iter=LATENT_STEPS, lr=LR_Z, mu=MU_MAP,
                                   n_restarts=RESTARTS)
seconds_map = time.perf_counter() - start
x_map_without, x_map_with = gan_map["x"].split(len(subset))
z_norms = gan_map["z"][:len(subset)].norm(dim=1)
recovered["GAN prior, μ = σ²"] = contrast_on(disc, x_map_without, x_map_with)
at_control["GAN prior, μ = σ²"] = contrast_on(control, x_map_without, x_map_with)
psnr_map = cu.psnr(x_map_without, subset.x, data_range=1.0)
psnr_tuned = cu.psnr(gan_subset["x"], subset.x, data_range=1.0)
print(f"μ = σ² = {MU_MAP:.4f} ({seconds_map:.0f} s): ‖ẑ‖ from {float(z_norms.min()):.1f} to "
      f"{float(z_norms.max()):.1f} (√d = {G.latent_dim ** 0.5:.1f}); PSNR "
      f"{float(psnr_map.mean()):.2f} dB against {float(psnr_tuned.mean()):.2f} dB with "
      f"μ = {MU:g}")
for name in ("GAN prior", "GAN prior, μ = σ²"):
    m, h = cu.mean_interval(recovered[name])
    mc, hc = cu.mean_interval(at_control[name])
    print(f"  {name:17s} on the lesion {100 * m:5.1f} ± {100 * h:4.1f} %, "
          f"on the control disc {100 * mc:5.1f} ± {100 * hc:4.1f} %")
map_tests = {
    "TV − GAN prior (μ = σ²), on the lesion": cu.paired_difference(
        100 * recovered["TV"], 100 * recovered["GAN prior, μ = σ²"]),
    "GAN prior: μ = σ² − μ = 30, on the lesion": cu.paired_difference(
        100 * recovered["GAN prior, μ = σ²"], 100 * recovered["GAN prior"]),
    "GAN prior, PSNR: μ = 30 − μ = σ² (dB)": cu.paired_difference(psnr_tuned, psnr_map),
}
for name, d in map_tests.items():
    print(f"{name}: {d.mean:+.1f}, 95 % CI [{d.low:+.1f}, {d.high:+.1f}], {d.n} images")
assert float(z_norms.mean()) > 0.75 * G.latent_dim ** 0.5, \
    "at the MAP weight, ẑ should stay near the shell ‖z‖ ≈ √d"
assert map_tests["TV − GAN prior (μ = σ²), on the lesion"].low > 0, \
    "the GAN prior should show less of the lesion than TV at the MAP weight too"
assert map_tests["GAN prior, PSNR: μ = 30 − μ = σ² (dB)"].low > 0, \
    "the tuned weight should buy PSNR over the MAP weight"
cu.show_images([x_lesion[k, 0].cpu(), x_map_with[k, 0].cpu()],
               [f"test image {k} with lesion", "GAN prior, μ = σ²"],
               vmin=0, vmax=1, ncols=2, size=2.5, colorbar=False)
cu.show_images([(x_map_with - x_map_without)[k, 0].cpu()],
               ["GAN prior, μ = σ²: with − without"], vmin=-0.3, vmax=0.6, size=2.5);

# %% [markdown]
# At the MAP weight, $\hat z$ stays where the generator was trained ($\|\hat z\|$ from
# 9.7 to 14.8 on the 8 quick-mode images, against $\sqrt d = 11.3$), and the lesion is
# still not drawn. The GAN prior shows 22.0 ± 24.2 % of the lesion's contrast on its
# pixels, as with $\mu = 30$ (22.2 %; paired difference −0.2 points,
# [−8.4, +8.0]: no difference that 8 images can see), and 36 points less than TV
# ([+12.5, +59.4]). So the lesion is missing because it lies **outside the generator's
# range**, not because the prior pulls $z$ towards 0: freeing $z$ lets the generator
# reshape its blobs differently, not draw a small bright disc. What the tuned weight
# does buy is PSNR: $\mu = 30$ scores 1.8 dB above the MAP weight ([+1.0, +2.5]), the
# shrinkage towards smooth, averaged images of section 4. (One run of 200 steps and 4
# restarts per weight; the optimisation is not convex, and a weaker penalty also makes
# it harder.)

# %% [markdown]
# ### Adversarial losses beyond priors: sharper, but be careful
#
# Ongie's list of drawbacks cites Antun et al. (the 2019 preprint, published in 2020),
# who showed that deep-learning reconstructions can be unstable: a tiny, carefully
# chosen perturbation of the data, or a small structure that the training set did not
# contain, can produce large artefacts
# or vanish from the image. The lesion above is the GAN prior's version of the second
# failure, without any adversarial search: a detail outside the range is replaced by
# what the generator can draw.
#
# GANs appear in reconstruction in a second role: as a **loss** for post-processing
# networks like the U-Net of lesson 03. Hendriksen (2022) explains why a network trained
# with the mean-squared error blurs: it learns the *conditional mean* of the clean image
# given its input, and where the data allow two different images, it returns their
# average. Adding an adversarial term (a discriminator that judges the output, as in
# SRGAN, Ledig et al., 2017, or in low-dose CT, Q. Yang et al., 2018) pushes the output
# towards *one* likely-looking image instead: sharper and more realistic, but not
# necessarily the true one, and with a lower PSNR (the perception-distortion trade-off
# of Blau and Michaeli, 2018). DAGAN (G. Yang et al., 2018), the example in Ongie's
# lecture, trains a U-Net for compressed-sensing MRI with such an adversarial term added
# to its
# image-domain, frequency-domain and perceptual losses. A third role that Ongie mentions is not reconstruction at
# all: Shin et al. (2018) generate synthetic brain MRI with tumours, to enlarge and
# anonymise training sets. Hendriksen's caution applies to this whole lesson: a
# method that always returns a single, realistic-looking image when the measurements
# support several can make its user **over-confident**. Our lesion experiment is the
# same effect seen from a prior: the result looks clean, and is wrong exactly where it
# matters.
#
# ## Check your understanding

# %%
cu.checks.quiz(
    "In the discriminator step, why is the generated batch detached, G(z).detach()?",
    ["So that the discriminator's loss cannot change the generator",
     "Because binary cross-entropy needs tensors without gradients",
     "To make the generated images real"],
    answer=0,
    explain="The discriminator step updates D only; without the detach its backward pass "
            "also computes gradients for G (wasted work, and they pollute G's next step).",
    wrong={1: "The loss is differentiated with respect to D's weights: gradients are "
              "needed, just not into G."})

# %%
cu.checks.quiz(
    "A generator keeps producing the same image for every z. What happened?",
    ["Mode collapse: it found one image that the discriminator accepts",
     "The latent dimension is too small", "The discriminator learned too slowly to "
     "matter, so G converged to the data mean"],
    answer=0,
    explain="Against a discriminator that stands still, the best generator sends every z "
            "to the one image that discriminator finds most real.",
    wrong={2: "A slow discriminator is the cause, but the result is not the data mean: "
              "it is whatever image exploits the discriminator's blind spot."})

# %%
cu.checks.quiz(
    "With noise of standard deviation σ and z ~ N(0, I), which weight μ in "
    "½‖A G(z) − y‖² + μ/2‖z‖² gives the MAP estimate?",
    ["μ = 1", "μ = σ²", "μ = 1/σ²", "the μ of the best validation PSNR"],
    answer=1,
    explain="−log p(z|y) = ‖A G(z) − y‖²/(2σ²) + ‖z‖²/2 + const; multiplied by σ² it is "
            "the lesson's form with μ = σ² (about 0.009 here).",
    wrong={2: "That would be the weight of the DATA term if the prior's weight were 1.",
           3: "That is how we chose MU = 30, thousands of times the MAP weight: a tuned "
              "regulariser, not a MAP estimate."})

# %%
cu.checks.quiz(
    "With μ = 30, ‖ẑ‖ ends near 4, while random latent vectors have ‖z‖ ≈ √128 ≈ 11.3. "
    "What does that say?",
    ["ẑ is a typical latent vector of the generator",
     "The strong prior shrank ẑ into a region the generator never saw in training",
     "The generator was trained with ‖z‖ ≈ 4"],
    answer=1,
    explain="A 128-dimensional standard Gaussian puts its mass on a shell of radius "
            "≈ 11.3; vectors of norm 4 practically never occur in training.",
    wrong={0: "Typical vectors have ‖z‖ ≈ √d ≈ 11.3: a norm of 4 is far inside that "
              "shell."})

# %%
cu.checks.quiz(
    "The GAN reconstruction of a scan with a small lesion shows no lesion. Where can a "
    "reader find a warning?",
    ["Nowhere: the image looks plausible, and so does the data",
     "In the data residual A G(ẑ) − y, which keeps the lesion's unexplained projections",
     "In the discriminator's score of the reconstruction"],
    answer=1,
    explain="What the range cannot explain stays in the residual; here it is hidden by "
            "the generator's larger representation error, so it is a weak warning.",
    wrong={2: "The discriminator judges realism: a clean, lesion-free image looks real."})

# %% [markdown]
# ## Takeaways
#
# - A GAN trains a generator against a discriminator: a discriminator step on real and
#   generated batches (generated images detached), then a generator step on the
#   non-saturating loss, with gradients flowing through the discriminator.
# - GAN training is fragile: against a discriminator that stands still, the generator
#   collapses to a single image (mode collapse); spectral normalisation, alternating
#   single steps and Wasserstein losses keep the game balanced.
# - A trained generator is a prior: $\min_z \tfrac12\|A\,G(z) - y\|^2 +
#   \tfrac{\mu}{2}\|z\|^2$ needs few measurements, but its accuracy is capped by the
#   generator's representation error. Here, on 6 angles, it is level with a tuned FBP in
#   PSNR (far ahead in SSIM) and loses to TV by about 9 dB.
# - Anything outside the generator's range, like a small lesion, is not drawn: the
#   generator reshapes its blobs instead, and the image looks as plausible as before.
#   This is the range, not the prior's weight: at the noise-consistent (MAP) weight
#   $\mu = \sigma^2$, with $\hat z$ back on the shell $\|z\| \approx \sqrt d$, the lesion
#   is just as absent. The tuned $\mu = 30$ is a shrinkage that buys PSNR, not a
#   probability. The data residual is where to look for the lesion (here the
#   generator's representation error hides it); TV, which has no range, shows it. A correction term that may
#   leave the range brings part of it back (clearly on full mode's 32 images, not
#   distinguishably from zero on quick mode's 8).
# - Adversarial losses sharpen learned reconstructions but can invent detail: realistic
#   is not the same as correct.
#
# ## What to try next
#
# - Rebuild the generator with more steps or a wider network
#   (`dltomo generator --steps 20000 --width 16 --out my_generator.pt`, best on
#   a GPU) and load it with `cu.load_generator("my_generator.pt")`: how much closer does
#   the GAN prior come to TV?
# - Change `MU` (0, `MU_MAP`, 1, 10) and `RESTARTS` (1, 16): where does $\|\hat z\|$
#   end, what happens to the PSNR, and how much do restarts matter for a non-convex
#   problem? Or replace the penalty by a constraint: after every Adam step, rescale each
#   $z$ to the shell $\|z\| = \sqrt d$.
# - Change `N_ANGLES` (4, 8, 10): from how many angles on does FBP beat the GAN prior
#   in PSNR, and in SSIM? What happens to its gap to TV?
# - Replace the straight-line interpolation of the widget by a spherical one and
#   compare the images halfway.
# - Put the lesion on a dark background, or make it larger: when does the generator
#   start to "see" it?
# - Train a WGAN-GP (Gulrajani et al., 2017) instead: replace the two losses and add
#   the gradient penalty; is training more stable?
#
# ## References
#
# - I. Goodfellow, J. Pouget-Abadie, M. Mirza, B. Xu, D. Warde-Farley, S. Ozair,
#   A. Courville and Y. Bengio (2014). Generative adversarial nets. *Advances in Neural
#   Information Processing Systems (NeurIPS)* 27.
# - A. Radford, L. Metz and S. Chintala (2016). Unsupervised representation learning
#   with deep convolutional generative adversarial networks. *International Conference
#   on Learning Representations (ICLR)*.
# - T. Miyato, T. Kataoka, M. Koyama and Y. Yoshida (2018). Spectral normalization for
#   generative adversarial networks. *ICLR*.
# - M. Arjovsky, S. Chintala and L. Bottou (2017). Wasserstein generative adversarial
#   networks. *International Conference on Machine Learning (ICML)*, 214–223.
# - I. Gulrajani, F. Ahmed, M. Arjovsky, V. Dumoulin and A. Courville (2017). Improved
#   training of Wasserstein GANs. *NeurIPS* 30.
# - T. Karras, S. Laine and T. Aila (2019). A style-based generator architecture for
#   generative adversarial networks. *IEEE/CVF Conference on Computer Vision and Pattern
#   Recognition (CVPR)*, 4401–4410 (trained on FFHQ, 70,000 faces).
# - A. Bora, A. Jalal, E. Price and A. G. Dimakis (2017). Compressed sensing using
#   generative models. *ICML*, 537–546.
# - M. Dhar, A. Grover and S. Ermon (2018). Modeling sparse deviations for compressed
#   sensing using generative models. *ICML*, 1214–1223.
# - C. Ledig, L. Theis, F. Huszár, J. Caballero, A. Cunningham, A. Acosta, A. Aitken,
#   A. Tejani, J. Totz, Z. Wang and W. Shi (2017). Photo-realistic single image
#   super-resolution using a generative adversarial network. *IEEE Conference on
#   Computer Vision and Pattern Recognition (CVPR)*, 4681–4690.
# - Y. Yazıcı, C.-S. Foo, S. Winkler, K.-H. Yap, G. Piliouras and V. Chandrasekhar
#   (2019). The unusual effectiveness of averaging in GAN training. *ICLR*.
# - A. Odena, V. Dumoulin and C. Olah (2016). Deconvolution and checkerboard artifacts.
#   *Distill*.
# - H.-C. Shin, N. A. Tenenholtz, J. K. Rogers, C. G. Schwarz, M. L. Senjem,
#   J. L. Gunter, K. P. Andriole and M. Michalski (2018). Medical image synthesis for
#   data augmentation and anonymization using generative adversarial networks.
#   *Simulation and Synthesis in Medical Imaging (SASHIMI), MICCAI workshop*, 1–11.
# - G. Yang, S. Yu, H. Dong, G. Slabaugh, P. L. Dragotti, X. Ye, F. Liu, S. Arridge,
#   J. Keegan, Y. Guo and D. Firmin (2018). DAGAN: deep de-aliasing generative
#   adversarial networks for fast compressed sensing MRI reconstruction. *IEEE
#   Transactions on Medical Imaging* 37(6), 1310–1321.
# - Q. Yang, P. Yan, Y. Zhang, H. Yu, Y. Shi, X. Mou, M. K. Kalra, Y. Zhang, L. Sun and
#   G. Wang (2018). Low-dose CT image denoising using a generative adversarial network
#   with Wasserstein distance and perceptual loss. *IEEE Transactions on Medical
#   Imaging* 37(6), 1348–1357.
# - Y. Blau and T. Michaeli (2018). The perception-distortion tradeoff. *CVPR*,
#   6228–6237.
# - V. Antun, F. Renna, C. Poon, B. Adcock and A. C. Hansen (2020). On instabilities of
#   deep learning in image reconstruction and the potential costs of AI. *Proceedings
#   of the National Academy of Sciences* 117(48), 30088–30095.
# - A. A. Hendriksen (2022). *Deep learning for tomographic reconstruction with limited
#   data*. PhD thesis, Leiden University.
# - G. Ongie (2019). *Deep learning in biomedical imaging: analysis and reconstruction*
#   (guest lecture, University of Chicago): GANs and reconstruction in the range of a
#   generator, and their drawbacks.
