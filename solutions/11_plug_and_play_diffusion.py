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
# # Lesson 11: Learned priors inside classical iterations — plug-and-play and diffusion
#
# The networks of lessons 03-07 learn a map from data (or a first reconstruction) to an
# image, for **one** scanner: change the number of angles and they must be trained again.
# Ongie's lecture lists this first among the drawbacks of deep CNNs: "Need to retrain CNN
# for any change in measurements". This lesson keeps the scanner out of the network. A
# network learns only what images look like, by learning to **remove Gaussian noise** from
# clean phantoms, and a classical iteration supplies the physics through $A$. Swapping the
# proximal operator of a regulariser for such a denoiser gives **plug-and-play**
# (Venkatakrishnan, Bouman and Wohlberg 2013). A denoiser trained at every noise level is
# also a **diffusion model** (Ho, Jain and Abbeel 2020): run from pure noise down to a clean
# image, it draws new phantoms; pulled towards the data at every step, it draws *several*
# images that fit one scan, and where they disagree shows what the data do not decide.
#
# **Learning goals.** After this lesson you can
#
# - write the proximal gradient iteration, read its prox as a denoiser, and write the
#   plug-and-play iteration;
# - choose the denoiser's noise level on validation data, and say what it trades;
# - show that one denoiser reconstructs data of several scanners without retraining, where a
#   post-processing U-Net trained for one scanner degrades on the others;
# - explain a diffusion model's forward noising, its training loss, and Tweedie's formula
#   that turns its noise prediction into a denoised image;
# - write one step of diffusion posterior sampling, with the gradient of the data misfit
#   through the network and the CT operator;
# - read the mean and the spread of posterior samples, and check that they fit the data.
#
# **Prerequisites.** Lesson 02 (gradient descent, TV and its proximal step), lesson 03
# (the shared setting, the U-Net, `cu.train`), lesson 08 (a generative prior and its
# range).
#
# **Estimated run time.** CPU quick mode (`COURSE_QUICK=1`, 64 x 64): see the README's
# course map for the measured time, about two to three minutes on a 2-core CPU. Full mode
# (more test images, samples and iterations, still at 64 x 64, the size of the shipped
# diffusion model): 22 minutes, measured once on the same CPU while two or three other
# jobs shared its two cores (2026-12-07). The notebook uses one CPU thread.

# %% [markdown]
# ## 0. Set-up
#
# The data are the shared sparse-view setting (`cu.SparseViewSetting`, lesson 03):
# dival's random ellipses at 64 x 64, 30 parallel-beam angles, data simulated on a 4 times
# finer grid, 2.5 % Gaussian noise. The prior is the course's small diffusion model,
# `data/diffusion_64.pt` (`cu.load_diffusion_prior()`), trained on 4096 other phantoms of
# the same family, with Gaussian noise only: it has never seen a sinogram. `dltomo
# diffusion` rebuilds it (`data/README.md` says how long it takes and how it was made).
# The lesson stays at 64 x 64 in both modes, the size of the shipped model, so its numbers
# are not comparable with the 128 x 128 dival table of the README.

# %%
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

import course_utils as cu

cu.seed_everything(0)
device = cu.device()
QUICK = cu.QUICK
if device.type == "cpu":
    torch.set_num_threads(1)

setting = cu.SparseViewSetting(64, n_train=256 if QUICK else 2000)
setting.tune_fbp()                               # FBP's filter and cut-off, on validation
A, N = setting.A, setting.image_size
train, val, test = setting.train, setting.val, setting.test
prior = cu.load_diffusion_prior(device=device)

N_TUNE = 8 if QUICK else 32                      # validation scans used for tuning
PNP_ITER = 30 if QUICK else 100                  # plug-and-play iterations
SIGMAS = (0.005, 0.01, 0.02, 0.04)               # denoiser noise levels tried (0.005: t = 0)
ANGLES = (15, 30, 60)                            # scanners of section 2
N_POSTERIOR = 8 if QUICK else 32                 # test scans sampled in section 4
N_SAMPLES = 4 if QUICK else 8                    # posterior samples per scan
DDIM_STEPS = 40 if QUICK else 100
print(setting)
print(f"diffusion prior: {cu.count_parameters(prior, trainable_only=False):,} parameters, "
      f"trained with: {prior.metadata.get('command', '?')}")

# %% [markdown]
# ## 1. From the proximal gradient method to plug-and-play
#
# Lesson 02 reconstructed by minimising $\tfrac12\|Ax - y\|^2 + \lambda R(x)$. When $R$ is
# not smooth (TV, a sparsity norm) the **proximal gradient** method (ISTA) alternates a
# gradient step on the data term with the **proximal operator** of the regulariser, as
# in Ducros' lecture (which writes the step $\eta$ and absorbs it into $\lambda$):
#
# $$z^{k} = x^{k-1} - \tau A^T(Ax^{k-1} - y), \qquad
#   x^{k} = \operatorname{prox}_{\tau\lambda R}(z^{k}), \qquad
#   \operatorname{prox}_{\tau\lambda R}(z) = \arg\min_x \tfrac12\|x - z\|^2 + \tau\lambda R(x).$$
#
# Read the prox as a statistician would: if $z = x + n$ with white Gaussian noise of
# variance $\sigma^2 = \tau\lambda$ and a prior $p(x) \propto e^{-R(x)}$, the prox is the
# most probable $x$ (the MAP **denoiser** for that prior). So the iteration alternates
# "move towards the data" with "denoise". **Plug-and-play** keeps the first step and
# replaces the second by any good denoiser $D_\sigma$ of images with noise of level
# $\sigma$:
#
# $$x^{k} = D_\sigma\big(x^{k-1} - \tau A^T(Ax^{k-1} - y)\big).$$
#
# The denoiser carries the prior; with a true prox $\sigma^2 = \tau\lambda$, so with the
# step $\tau$ fixed, $\sigma$ sets the strength of the prior (the role of $\lambda$). The
# scanner enters only through $A$. (DnCNN and DRUNet, Zhang et al. 2017 and 2022, are the
# denoisers most often plugged in; RED, Romano et al. 2017, builds a regulariser from a
# denoiser instead of swapping the prox.) Our denoiser is the diffusion model's (section 3 shows
# how a diffusion model denoises): `prior.denoise(x, sigma)`.
#
# Two cautions. An exact MMSE denoiser is the prox of some, generally non-convex, penalty
# (Gribonval 2011), a trained one only approximately; convergence is proved when the
# denoiser's residual $D_\sigma - I$ is Lipschitz with a small constant and the data term
# is strongly convex (Ryu et al. 2019). Sparse-view CT is not strongly convex ($A^TA$ is
# singular), so no guarantee applies here: we watch the iterates. And
# the step $\tau = 1/\|A\|^2$ keeps the gradient step stable but moves slowly along the
# weak directions of $A$, so we start from the FBP image.

# %% [markdown]
# ### Exercise 1: the plug-and-play iteration (1 point)
#
# Write `pnp(A, y, denoiser, n_iter, sigma, step, x0)`: starting from `x0`, run `n_iter`
# iterations of $x \leftarrow D_\sigma(x - \tau A^T(Ax - y))$, where the denoiser is called
# as `denoiser(v, sigma)` and $\tau$ is `step`; return the last image.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# One line inside a loop: first the gradient step on the data term, then the denoiser on
# its result. `A.T` is the adjoint.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $\nabla_x \tfrac12\|Ax - y\|^2 = A^T(Ax - y)$; the new image is
# $D_\sigma(x - \tau \nabla)$.
# </details>

# %%
def pnp(A, y, denoiser, n_iter, sigma, step, x0):
    """Plug-and-play proximal gradient: n_iter steps x <- D_sigma(x - step A^T(Ax - y))."""
    ### BEGIN SOLUTION
    x = x0
    for _ in range(n_iter):
        x = denoiser(x - step * A.T(A(x) - y), sigma)
    return x
    ### END SOLUTION


# %%
cu.checks.pnp_iterations(pnp);

# %% [markdown]
# From here on the lesson uses the course's version, `cu.pnp_pgd(A, y, denoiser, n_iter,
# sigma=..., step=..., x0=...)`, which is the same loop with a progress bar and a callback.
# First the denoiser alone: noisy phantoms of the validation split, denoised at the noise
# level they have.

# %%
with torch.no_grad():
    clean = val.x[:4]
    noisy = clean + 0.08 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    denoised = prior.denoise(noisy, 0.08)
cu.show_images([noisy[0], denoised[0], clean[0]],
               [f"noisy, σ = 0.08 ({cu.psnr(noisy, clean, data_range=1).mean():.1f} dB)",
                f"prior.denoise ({cu.psnr(denoised, clean, data_range=1).mean():.1f} dB)",
                "clean"], vmin=0, vmax=1, size=3,
               suptitle="The denoiser knows phantoms, not scanners (mean PSNR of 4 images)")

# %% [markdown]
# ### Exercise 2: choosing the noise level on validation (1 point)
#
# $\sigma$ decides how strongly the prior pulls: too small and the noise and streaks of
# the data stay, too large and the image is smoothed into what the denoiser expects.
# Write `choose_sigma(reconstruct, sigmas, y_val, x_val)`: `reconstruct(y, sigma)`
# reconstructs validation sinograms `y_val` with noise level `sigma`; return the `sigma`
# among `sigmas` with the best **mean** PSNR against `x_val` (data range 1). The test
# scans must play no part in the choice; this function never sees them.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Score every candidate with `cu.psnr(..., data_range=1)`, average over the images, and
# keep the candidate, not its score.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $\hat\sigma = \arg\max_{\sigma} \frac1n \sum_i \mathrm{PSNR}(\mathrm{rec}(y_i, \sigma), x_i)$.
# </details>

# %%
def choose_sigma(reconstruct, sigmas, y_val, x_val):
    """The sigma of the best mean validation PSNR."""
    ### BEGIN SOLUTION
    means = [float(cu.psnr(reconstruct(y_val, s), x_val, data_range=1).mean())
             for s in sigmas]
    return sigmas[means.index(max(means))]
    ### END SOLUTION


# %%
cu.checks.choose_sigma(choose_sigma);

# %% [markdown]
# Now plug-and-play on the shared setting: $\tau = 1/\|A\|^2$, `PNP_ITER` iterations from
# the FBP image, $\sigma$ chosen on the first validation scans. We also record the PSNR of
# every iterate, to see whether the iteration settles.

# %%
def pnp_reconstruct(y, sigma, operator=A, fbp=setting.fbp, n_iter=PNP_ITER, callback=None):
    return cu.pnp_pgd(operator, y, prior.denoise, n_iter, sigma=sigma,
                      step=1.0 / operator.norm() ** 2, x0=fbp(y), callback=callback)


sigma_pnp, sigma_scores = cu.choose_on_validation(pnp_reconstruct, SIGMAS, val.y[:N_TUNE],
                                                  val.x[:N_TUNE])
history = []
x_pnp_val = pnp_reconstruct(val.y[:N_TUNE], sigma_pnp, callback=lambda k, x: history.append(
    (k, float(cu.psnr(x, val.x[:N_TUNE], data_range=1).mean()), x[0, 0].clone())))
print(f"mean validation PSNR per σ: { {s: round(v, 2) for s, v in sigma_scores.items()} }")
print(f"σ chosen on validation: {sigma_pnp}; step τ = 1/‖A‖² = {1 / A.norm() ** 2:.2e}")
cu.plot_curves({"plug-and-play": [(k, p) for k, p, _ in history]}, xlabel="iteration",
               ylabel="mean validation PSNR (dB)", title=f"PnP, σ = {sigma_pnp}")

# %% [markdown]
# The widget shows the iterates of the first validation scan.

# %%
def show_iterate(k=PNP_ITER):
    k_, p, image = history[k - 1]
    cu.show_images([image, val.x[0, 0]], [f"iteration {k_}, scan 0 (mean PSNR of "
                                          f"{N_TUNE} scans: {p:.2f} dB)",
                                          "ground truth"], vmin=0, vmax=1, size=3.2)


show_iterate(PNP_ITER)

# %%
cu.interact(show_iterate, k=widgets.IntSlider(value=PNP_ITER, min=1, max=PNP_ITER,
                                              description="iteration"));

# %% [markdown]
# ## 2. One prior, many scanners
#
# The denoiser has never seen a sinogram, so nothing in it is tied to 30 angles. Here is
# the test: three scanners with 15, 30 and 60 angles (the same test phantoms, the same
# noise model), reconstructed by
#
# - FBP (its filter tuned for each scanner on validation, as always);
# - the **U-Net post-processing** of lesson 03, trained once, at 30 angles, on the
#   training FBPs of the shared setting (256 in quick mode, 2000 in full mode; a short
#   training on 32 x 32 tiles: 400 Adam steps in quick mode, 3000 in full mode). The budgets differ and we say so: the
#   denoiser inside the diffusion model learned from 4096 clean phantoms in 8000 steps
#   (39.5 minutes on a CPU, `data/README.md`);
# - **plug-and-play** with the same denoiser for all three, only $\sigma$ re-chosen on
#   validation for each scanner (no training).

# %%
def tiles(images, size=32):
    """Cut images (n, 1, N, N) into non-overlapping size x size tiles."""
    t = images.unfold(2, size, size).unfold(3, size, size)
    return t.permute(0, 2, 3, 1, 4, 5).reshape(-1, images.shape[1], size, size)


def train_unet(inputs, targets, steps=400, batch=16, seed=0):
    """Lesson 03's residual U-Net, `steps` Adam steps on 32 x 32 tiles of the images."""
    net = cu.UNet(width=16).to(device)
    data = TensorDataset(tiles(inputs), tiles(targets))
    draws = RandomSampler(data, replacement=True, num_samples=steps // 10 * batch,
                          generator=torch.Generator().manual_seed(seed))
    cu.train(net, DataLoader(data, batch_size=batch, sampler=draws), epochs=10,
             lr=1e-3, live_plot=False, seed=seed)
    return net.eval()


unet = train_unet(train.x_fbp, train.x, steps=400 if QUICK else 3000)

scanners, rows_by_angles = {}, {}
for n_angles in ANGLES:
    s = setting if n_angles == setting.n_angles else cu.SparseViewSetting(
        64, n_angles, n_train=0, n_val=N_TUNE, n_test=len(test))
    s.tune_fbp()
    sigma, _ = cu.choose_on_validation(lambda y, sig: pnp_reconstruct(y, sig, s.A, s.fbp),
                                       SIGMAS, s.val.y[:N_TUNE], s.val.x[:N_TUNE])
    scanners[n_angles] = (s, sigma)
    rows_by_angles[n_angles] = {
        "FBP": cu.evaluate(s.fbp, s.test, name=f"FBP, {n_angles} angles"),
        "U-Net (trained at 30)": cu.evaluate(lambda y: unet(s.fbp(y)), s.test,
                                             name=f"U-Net trained at 30, {n_angles} angles",
                                             parameters=cu.count_parameters(unet)),
        "plug-and-play": cu.evaluate(lambda y: pnp_reconstruct(y, sigma, s.A, s.fbp), s.test,
                                     name=f"PnP (σ = {sigma}), {n_angles} angles",
                                     parameters=cu.count_parameters(prior, trainable_only=False)),
    }
    print(f"{n_angles} angles: σ = {sigma}")

cu.results_table([row for rows in rows_by_angles.values() for row in rows.values()])

# %%
pnp_vs_unet = {n: cu.paired_difference(rows["plug-and-play"], rows["U-Net (trained at 30)"])
               for n, rows in rows_by_angles.items()}
unet_vs_fbp = {n: cu.paired_difference(rows["U-Net (trained at 30)"], rows["FBP"])
               for n, rows in rows_by_angles.items()}
pnp_vs_fbp = {n: cu.paired_difference(rows["plug-and-play"], rows["FBP"])
              for n, rows in rows_by_angles.items()}
display(cu.results_table([{"angles": n, "PnP − U-Net (dB)": pnp_vs_unet[n].mean,
                   "95 % low": pnp_vs_unet[n].low, "95 % high": pnp_vs_unet[n].high,
                   "U-Net − FBP (dB)": unet_vs_fbp[n].mean,
                   "PnP − FBP (dB)": pnp_vs_fbp[n].mean} for n in ANGLES]))
fig, ax = plt.subplots(figsize=(6, 4))
for name in ("FBP", "U-Net (trained at 30)", "plug-and-play"):
    means = [rows_by_angles[n][name]["PSNR (dB)"] for n in ANGLES]
    halves = [rows_by_angles[n][name]["PSNR ±95%"] for n in ANGLES]
    ax.errorbar(ANGLES, means, yerr=halves, marker="o", capsize=3, label=name)
ax.set_xlabel("number of angles")
ax.set_ylabel("test PSNR (dB), mean ± 95 %")
ax.set_title("One denoiser for three scanners")
ax.legend()
plt.show()

assert all(pnp_vs_fbp[n].low > 0 for n in ANGLES), "PnP should beat FBP for every scanner"
# The same test phantoms at every angle count: pair PnP − U-Net off-design with on-design.
gap = {n: rows_by_angles[n]["plug-and-play"]["PSNR per image"]
       - rows_by_angles[n]["U-Net (trained at 30)"]["PSNR per image"] for n in ANGLES}
degradation = {n: cu.paired_difference(gap[n], gap[30]) for n in (15, 60)}
print("how much more PnP leads the U-Net than at 30 angles:",
      {n: str(d).split(": ")[-1] for n, d in degradation.items()})
assert all(d.low > 0 for d in degradation.values()), \
    "away from its own scanner, the U-Net should lose ground to the one denoiser"
assert all(pnp_vs_unet[n].low > 0 for n in (15, 60)), \
    "the text says plug-and-play leads the U-Net off its scanner"
if QUICK:     # measured in both modes; the text below gives both
    assert pnp_vs_unet[30].low < 0 < pnp_vs_unet[30].high, \
        "in quick mode PnP and the U-Net were level at 30 angles: update the text"
else:
    assert pnp_vs_unet[30].high < 0, "in full mode the U-Net led PnP at 30 angles: update the text"

# %% [markdown]
# **Reading the figures** (quick mode; a full-mode run prints other numbers, quoted
# below). At 30 angles, the scanner it
# was trained for, the U-Net and plug-and-play are level: PnP − U-Net = −0.08 dB
# [−0.25, +0.09]. At 15 angles the U-Net's gain over FBP falls from 5.47 to 2.28 dB, and
# PnP is 2.97 dB [2.74, 3.20] ahead of it; at 60 angles the U-Net gains 3.38 dB over an
# FBP that is itself better, and PnP is 1.48 dB [1.24, 1.72] ahead. The same denoiser
# gains 4.9 to 5.4 dB over FBP on all three scanners, with only $\sigma$ re-chosen
# (at 60 angles the smallest level tried, 0.005, which is the model's own smallest noise
# level, step $t = 0$). The U-Net is not useless off its scanner, it still beats FBP, but
# it learned the artefacts of 30 angles; to do its best on another scanner it must be
# retrained (not measured here), which is Ongie's point. Paired on the same phantoms, PnP's
# lead over the U-Net grows by +3.05 dB [+2.82, +3.29] from 30 to 15 angles and by
# +1.56 dB [+1.41, +1.71] from 30 to 60 angles. In full mode (one run: the U-Net trained
# on 2000 phantoms for 3000 steps, 100 test scans) the U-Net leads at 30 angles, by
# 0.41 dB [0.33, 0.50], and the pattern holds around it: PnP is 3.98 dB [3.77, 4.18]
# ahead at 15 angles and 1.59 dB [1.42, 1.76] ahead at 60; paired on the same
# phantoms its lead grows by +4.39 dB [4.15, 4.63] from 30 to 15 angles and by
# +2.00 dB [1.80, 2.20] from 30 to 60. The denoiser gains 5.0 to 6.2 dB over FBP on
# the three scanners (σ = 0.01 at 15 angles, 0.005 at 30 and 60).

# %% [markdown]
# ## 3. Diffusion models: a denoiser at every noise level
#
# A diffusion model destroys images step by step with Gaussian noise and learns to undo
# each step. With $\bar\alpha_t$ falling from 1 to almost 0 as $t$ goes from 0 to
# $T = 1000$ (the linear schedule of Ho et al. 2020),
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon, \qquad
#   \varepsilon \sim \mathcal N(0, I),$$
#
# and a network $\varepsilon_\theta(x_t, t)$ is trained to predict the noise, by the
# loss $\mathbb E\,\|\varepsilon_\theta(x_t, t) - \varepsilon\|^2$ over images, steps and
# noise. From its prediction comes the best estimate of the clean image (**Tweedie's
# formula**, the posterior mean of $x_0$ given $x_t$):
#
# $$\hat x_0(x_t) = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta(x_t, t)}
#   {\sqrt{\bar\alpha_t}}.$$
#
# That is a Gaussian denoiser for every noise level at once: an image with noise of level
# $\sigma$, scaled by $\sqrt{\bar\alpha_t}$, *is* an $x_t$ for the $t$ with
# $(1 - \bar\alpha_t)/\bar\alpha_t = (2\sigma)^2$ for $\sigma$ in image units (the model
# works on $2x - 1$); the smallest noise level it knows, at $t = 0$, is $\sigma \approx 0.005$.
# This is what
# `prior.denoise` does, and what section 1 used. The forward process, on one phantom:

# %%
steps_shown = (0, 50, 150, 300, 600, 999)
with torch.no_grad():
    x0 = val.x[:1]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))
    noised = [(prior.noisy(x0, t, noise) + 1) / 2 for t in steps_shown]
cu.show_images([im[0] for im in noised],
               [f"t = {t}, ᾱ = {float(prior.alpha_bar[t]):.3f}" for t in steps_shown],
               ncols=6, size=2.2, suptitle="Forward noising (shown in [0, 1] units)")

# %% [markdown]
# Training it is the slow part: the shipped model took the minutes given in
# `data/README.md` on a 2-core CPU. To see that the loss falls, we train a fresh copy
# for a few dozen steps here (the shipped weights are not touched).

# %%
fresh = cu.DiffusionPrior(prior.width, prior.depth, prior.n_timesteps)
losses = cu.train_diffusion(fresh, train.x, steps=60 if QUICK else 400, log_every=10,
                            progress=True)
shipped = prior.metadata.get("losses", [])
cu.plot_curves({"fresh model, this notebook": losses}, xlabel="steps / 10",
               ylabel="training loss", logy=True,
               title=f"Loss of a fresh model (the shipped one ended at "
                     f"{shipped[-1]:.3f})" if shipped else "Loss of a fresh model")
assert losses[-1] < losses[0], "the diffusion loss should fall"

# %% [markdown]
# **Sampling.** Starting from pure noise $x_{T-1}$, a step from $t$ down to an earlier
# $t'$ takes the denoised estimate $\hat x_0(x_t)$ and re-noises it to the level of
# $t'$ with the noise the network predicted,
# $x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}}\,\hat\varepsilon$
# (the deterministic DDIM step of Song, Meng and Ermon 2021, which needs tens of steps
# instead of a thousand; the code clips $\hat x_0$ to [-1, 1] and uses the noise consistent
# with the clipped $\hat x_0$). Samples of the shipped model, next to training phantoms. Be
# warned: they are piecewise smooth blobs, not ellipses. Our model is a good denoiser at
# small noise levels (section 1) but has not learned, in its short training, how the
# large shapes of a phantom are decided at high noise levels (section 5 comes back to
# this).

# %%
samples = prior.sample(6, N, n_steps=DDIM_STEPS, generator=torch.Generator().manual_seed(3))
cu.show_images(list(samples[:, 0]) + list(train.x[:6, 0]),
               [f"sample {i}" for i in range(6)] + [f"phantom {i}" for i in range(6)],
               ncols=6, vmin=0, vmax=1, size=2.2,
               suptitle=f"Samples of the diffusion model ({DDIM_STEPS} DDIM steps), and "
                        f"training phantoms")

# %% [markdown]
# ## 4. Diffusion posterior sampling
#
# To sample images that fit a scan $y$, every reverse step is followed by a pull towards
# the data: a step down the gradient of the misfit of the denoised estimate, **through
# the network**,
#
# $$x_{t'} \leftarrow x_{t'} - \zeta_t\, g, \qquad g = \nabla_{x_t}\, \|A\,\hat x_0(x_t) - y\|,
#   \qquad \zeta_t = \gamma\, \frac{\|A\hat x_0(x_t) - y\|}{\|g\|^2}:$$
#
# a variant of diffusion posterior sampling (Chung et al. 2023, who use ancestral DDPM
# steps and a step $\zeta' / \|A\hat x_0 - y\|$ on the squared misfit): here on
# deterministic DDIM steps with a Polyak step, which would remove the fraction $\gamma$
# (`guidance`) of the misfit of $\hat x_0(x_t)$ to first order, whatever the units of
# the data. Different
# starting noise gives different samples; their mean and spread approximate those of the
# posterior (DPS is not an exact sampler, and our prior is small), and the spread shows
# where the data leave the image open. Hendriksen's thesis points to exactly this:
# "To prevent overconfidence in a single result, multiple results can be sampled
# instead."

# %% [markdown]
# ### Exercise 3: one guided reverse-diffusion step (2 points)
#
# Write `guided_step(prior, x_t, t, t_next, A, y, guidance)`. `x_t` has shape
# `(B, 1, N, N)` in the model's units ([-1, 1]); return $x_{t'}$:
#
# 1. the plain step: `x_next, _ = prior.ddim_step(x_t, t, t_next)`;
# 2. the misfit of the denoised estimate, per image: `prior.denoised(x_t, t)` is in the
#    model's [-1, 1] units (not `prior.denoise` of section 1, which takes images in
#    [0, 1] and a σ): convert it to [0, 1], the units of `A`, keep it attached to `x_t`,
#    and take $m_b = \|A \hat x_0 - y\|$ for each image $b$;
# 3. the gradient $g$ of $\sum_b m_b$ with respect to `x_t` (`torch.autograd.grad`);
# 4. `x_next - zeta * g` with $\zeta_b = \gamma\, m_b / \|g_b\|^2$ per image.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# The sampler runs without gradients: switch them back on for this step, and
# differentiate with respect to a fresh copy of $x_t$ that requires them, so that the
# gradient flows through the network. The per-image $\zeta$ must broadcast over each
# image.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $x_{t'} = \mathrm{DDIM}(x_t) - \gamma\, \frac{m_b}{\|g_b\|^2}\, g_b$ with
# $g = \nabla_{x_t} \sum_b \|A\,\tfrac12(\hat x_0(x_t) + 1) - y\|$; do not detach
# $\hat x_0$, and subtract.
# </details>

# %%
def guided_step(prior, x_t, t, t_next, A, y, guidance):
    """One DDIM step of the prior, pulled towards the data by the misfit gradient."""
    ### BEGIN SOLUTION
    x_next, _ = prior.ddim_step(x_t, t, t_next)
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        x0 = (prior.denoised(x, t) + 1) / 2
        misfit = torch.linalg.vector_norm((A(x0) - y).flatten(1), dim=1)
        g, = torch.autograd.grad(misfit.sum(), x)
    zeta = guidance * misfit.detach() / torch.linalg.vector_norm(g.flatten(1), dim=1) ** 2
    return x_next.detach() - zeta.reshape(-1, 1, 1, 1) * g
    ### END SOLUTION


# %%
cu.checks.guided_step(guided_step);

# %% [markdown]
# The course's sampler, `prior.posterior_sample(A, y, n_steps=..., guidance=...)`, runs
# these steps from pure noise. DPS only approximates the likelihood (through $\hat x_0$),
# and its samples keep a misfit larger than the noise (measured below), so
# we finish each sample with an **exact data-consistency step** (as Song et al. 2022 do
# at every step of theirs): CGLS iterations from the
# sample (lesson 02), stopped by the discrepancy principle at the first iterate whose
# misfit is at most the noise level $\delta$ (`delta=...`; at most 10). We choose the
# guidance on validation scans, like every other knob, then draw `N_SAMPLES` samples for
# each of the first `N_POSTERIOR` test scans.

# %%
def posterior(y, guidance, n_samples=N_SAMPLES, seed=0, scanner=setting, unfinished=False):
    """n_samples posterior samples of each sinogram: (n_samples, B, 1, N, N)
    (with unfinished=True also the samples before the data-consistency finish)."""
    repeated = y.repeat(n_samples, 1, 1, 1)
    x, raw = prior.posterior_sample(scanner.A, repeated, n_steps=DDIM_STEPS,
                                    guidance=guidance,
                                    delta=scanner.noise_norm(repeated).flatten(),
                                    generator=torch.Generator().manual_seed(seed),
                                    return_unfinished=True)
    x, raw = (v.reshape(n_samples, *y.shape[:1], *v.shape[1:]) for v in (x, raw))
    return (x, raw) if unfinished else x


GUIDANCES = (0.1, 0.2, 0.5)
guidance, guidance_scores = cu.choose_on_validation(lambda y, g: posterior(y, g, 2).mean(0),
                                                    GUIDANCES, val.y[:4], val.x[:4])
print(f"guidance chosen on 4 validation scans: {guidance} "
      f"(PSNR of the 2-sample mean: {guidance_scores})")

y_post, x_post = test.y[:N_POSTERIOR], test.x[:N_POSTERIOR]
start = time.perf_counter()
draws, draws_dps = posterior(y_post, guidance, unfinished=True)   # (N_SAMPLES, N_POSTERIOR, 1, N, N)
seconds_per_scan = (time.perf_counter() - start) / N_POSTERIOR
post_mean, post_std = draws.mean(0), draws.std(0)
print(f"{N_SAMPLES} samples of {N_POSTERIOR} scans: {seconds_per_scan:.1f} s per scan")

# %% [markdown]
# **Do the samples fit the data?** A sample consistent with the data should leave a
# misfit about the size of the noise, $\|A\hat x - y\| \approx \delta$ (the discrepancy
# principle of lesson 02; here $\delta = \sqrt m\,\sigma_{noise}$ from the setting). The
# finishing step brings every sample to at most $\delta$ by construction; the question
# worth asking is what DPS alone leaves.

# %%
delta = setting.noise_norm(y_post).flatten()


def misfit_ratio(images):
    """‖A x − y‖ / δ for images (..., B, 1, N, N) of the scans y_post."""
    return torch.linalg.vector_norm((A(images) - y_post).flatten(-2), dim=-1).flatten(-2) / delta


ratio, dps_ratio = misfit_ratio(draws), misfit_ratio(draws_dps)
print(f"misfit / noise level over {ratio.numel()} samples: DPS alone median "
      f"{dps_ratio.median():.2f}; after the finishing step median {ratio.median():.2f} "
      f"(range {ratio.min():.2f} to {ratio.max():.2f})")
print(f"for comparison: the true images {misfit_ratio(x_post).median():.2f} (they do not "
      f"fit the crime-free data exactly either), the FBP images "
      f"{misfit_ratio(setting.fbp(y_post)).median():.2f}")
assert float(dps_ratio.median()) > 1.0, "DPS alone should leave a misfit above the noise"
assert 0.5 < float(ratio.median()) <= 1.0, "finished samples should fit the data to the noise level"

# %%
def show_posterior(scan=0, sample=0):
    images = [x_post[scan, 0], draws[sample, scan, 0], post_mean[scan, 0], post_std[scan, 0],
              (post_mean[scan, 0] - x_post[scan, 0]).abs()]
    titles = ["ground truth", f"sample {sample}", f"mean of {N_SAMPLES} samples",
              "standard deviation", "|mean − truth|"]
    cu.show_images(images, titles, ncols=5, size=2.6, vmin=None, vmax=None,
                   suptitle=f"Posterior samples of test scan {scan} (30 angles)")


show_posterior(0, 0)

# %%
cu.interact(show_posterior,
            scan=widgets.IntSlider(value=0, min=0, max=N_POSTERIOR - 1, description="scan"),
            sample=widgets.IntSlider(value=0, min=0, max=N_SAMPLES - 1, description="sample"));

# %% [markdown]
# **Where the samples disagree.** With 30 angles the samples agree almost everywhere. Take
# away most of the data and the prior has to decide more: 6 angles over the half circle.

# %%
sparse = cu.SparseViewSetting(64, 6, n_train=0, n_val=0, n_test=N_POSTERIOR)
draws_sparse = posterior(sparse.test.y[:2], guidance, n_samples=N_SAMPLES, scanner=sparse)
spread = {"30 angles": float(draws[:, :2].std(0).mean()),
          "6 angles": float(draws_sparse.std(0).mean())}
print(f"mean per-pixel standard deviation of the samples: {spread}")
cu.show_images(list(draws_sparse[:, 0, 0]) + [draws_sparse[:, 0, 0].std(0), sparse.test.x[0, 0]],
               [f"sample {i}" for i in range(N_SAMPLES)] + ["standard deviation",
                                                             "ground truth"],
               ncols=N_SAMPLES + 2, size=2.2, suptitle="6 angles: the samples disagree")
assert spread["6 angles"] > spread["30 angles"]

# %% [markdown]
# In quick mode the mean per-pixel standard deviation of the samples is 0.023 with 30
# angles and 0.047 with 6 angles (first 2 test scans): twice the spread where the data
# are a fifth (in full mode 0.030 and 0.057). Where the standard deviation map is bright, the samples draw different
# structures, each of them consistent with the data; a single reconstruction would show
# one of them, with no sign that it was a choice.

# %% [markdown]
# ## 5. Results on the shared test set
#
# FBP, TV (its weight tuned on validation, run to convergence), the U-Net of section 2,
# plug-and-play, and the mean of the posterior samples, all at 30 angles. The diffusion
# rows are on the first `N_POSTERIOR` test scans only (sampling is slow), so every
# difference with them is paired on those scans.

# %%
lam, _ = cu.tune_tv_weight(A, val.y[:N_TUNE], val.x[:N_TUNE], start=N / 20, tol=1e-4,
                           max_iter=3000)


def tv(y):
    return cu.tv_pdhg(A, y, 3000, lam=lam, tol=1e-4)


rows_30 = rows_by_angles[30]
rows = [rows_30["FBP"], cu.evaluate(tv, test, name=f"TV (λ = {lam:.3g})"),
        rows_30["U-Net (trained at 30)"], rows_30["plug-and-play"]]
display(cu.results_table(rows))

subset = (y_post, x_post)
sub_rows = [cu.evaluate(setting.fbp, subset, name=f"FBP, first {N_POSTERIOR}"),
            cu.evaluate(tv, subset, name=f"TV, first {N_POSTERIOR}"),
            cu.evaluate(lambda y: pnp_reconstruct(y, scanners[30][1]), subset,
                        name=f"PnP, first {N_POSTERIOR}",
                        parameters=cu.count_parameters(prior, trainable_only=False)),
            cu.evaluate(lambda y: post_mean, subset,
                        name=f"posterior mean of {N_SAMPLES} samples, first {N_POSTERIOR}",
                        parameters=cu.count_parameters(prior, trainable_only=False),
                        batch_size=N_POSTERIOR),
            cu.evaluate(lambda y: draws[0], subset, name="one posterior sample",
                        batch_size=N_POSTERIOR)]
# the sampling ran once above: its time, not the time of reading the stored samples
sub_rows[3]["time / image (ms)"] = 1000 * seconds_per_scan
sub_rows[4]["time / image (ms)"] = 1000 * seconds_per_scan / N_SAMPLES
sub_rows[3]["spread (mean per-pixel std)"] = float(post_std.mean())
display(cu.results_table(sub_rows))
print(f"spread of the samples: mean per-pixel standard deviation {post_std.mean():.4f}")

# %%
versus = {
    "PnP − FBP (all test scans)": cu.paired_difference(rows[3], rows[0]),
    "PnP − U-Net (all)": cu.paired_difference(rows[3], rows[2]),
    "PnP − TV (all)": cu.paired_difference(rows[3], rows[1]),
    "posterior mean − FBP (subset)": cu.paired_difference(sub_rows[3], sub_rows[0]),
    "posterior mean − PnP (subset)": cu.paired_difference(sub_rows[3], sub_rows[2]),
    "posterior mean − one sample (subset)": cu.paired_difference(sub_rows[3], sub_rows[4]),
}
cu.results_table([{"comparison": k, "Δ PSNR (dB)": d.mean, "95 % low": d.low,
                   "95 % high": d.high} for k, d in versus.items()])

# %%
assert versus["PnP − FBP (all test scans)"].low > 0, "PnP should beat FBP"
assert versus["PnP − TV (all)"].high < 0, "the text says TV beats plug-and-play"
assert versus["posterior mean − FBP (subset)"].low > 0, "the text says the mean beats FBP"
assert versus["posterior mean − PnP (subset)"].high < 0, \
    "the text says the posterior mean trails plug-and-play"
assert versus["posterior mean − one sample (subset)"].low > 0, \
    "the text says averaging samples beats one sample"

with torch.no_grad():
    y0, x0_true = test.y[:1], test.x[:1]
    shown = {"ground truth": x0_true[0, 0], "FBP": setting.fbp(y0)[0, 0], "TV": tv(y0)[0, 0],
             "U-Net": unet(setting.fbp(y0))[0, 0],
             "plug-and-play": pnp_reconstruct(y0, scanners[30][1])[0, 0],
             "posterior mean": post_mean[0, 0]}
cu.show_images(list(shown.values()) + [post_std[0, 0]],
               list(shown) + ["posterior std"], ncols=7, size=2.3,
               suptitle="Test scan 0, 30 angles (the std has its own colour scale)")

# %% [markdown]
# **Reading the tables** (quick mode; one diffusion model, one U-Net training, so the
# intervals cover the test images, not retraining):
#
# - Plug-and-play beats FBP by +5.38 dB [+4.95, +5.82] on all 32 test scans and is level
#   with the U-Net trained for this scanner (−0.08 dB [−0.25, +0.09]).
# - **TV wins**: 0.97 dB [0.80, 1.14] ahead of plug-and-play. The phantoms are TV's own
#   model (piecewise constant); our denoiser, 40 minutes of CPU training, knows them less
#   well than TV's one line of prior does.
# - The posterior mean (4 samples, first 8 scans) is +3.21 dB [+2.46, +3.97] above FBP
#   but 1.51 dB [1.17, 1.85] below plug-and-play with the same network, and lower than
#   FBP in SSIM on these scans (0.765 against 0.789). It beats a single sample by
#   +0.85 dB [+0.49, +1.21]: averaging samples approaches the posterior mean, which is
#   what minimises the squared error. It costs 2.3 s per scan for 4 samples, against
#   0.15 s for plug-and-play.
# - Fit to the data: DPS alone leaves a median misfit of 1.80 δ; the finishing step
#   brings the samples to 0.87 δ (0.77 to 1.00). The true images leave 1.04 δ (the data
#   carry model error too, no inverse crime), so the discrepancy principle with τ = 1
#   stops a little late, slightly inside the noise; FBP leaves 1.52 δ.
# - Why sampling trails: plug-and-play uses the network only at small noise levels
#   ($\sigma \approx 0.01$, the first steps of the schedule), where it denoises well
#   (section 1). Sampling starts from pure noise and relies on the large noise levels,
#   where the global shape of a phantom is decided, and there our short training left
#   the model weak: its unconditional samples in section 3 are blobs, not ellipses. A
#   better-trained model (`dltomo diffusion --steps 30000`, not measured) is the first
#   thing to try; the spread of the samples is still informative as it is.
#
# **Full mode** (one run on 2026-12-07, still at 64 x 64: the U-Net trained on 2000
# phantoms for 3000 steps, 100 test scans, 100 plug-and-play iterations, 8 samples of
# the first 32 scans with 100 DDIM steps each) keeps the order of FBP, the posterior
# mean, plug-and-play and TV, and moves the margins. Two quick-mode statements change:
# the better-trained U-Net leads plug-and-play at 30 angles, and the posterior mean is
# above FBP in SSIM (0.790 against 0.759 on the first 32 scans).
#
# - Plug-and-play beats FBP by +6.20 dB [5.99, 6.41] and trails the better-trained
#   U-Net by 0.41 dB [0.33, 0.50].
# - TV still beats plug-and-play, by a smaller margin: 0.28 dB [0.22, 0.34] (the U-Net,
#   31.29 dB, is nominally ahead of TV's 31.16 here; this lesson does not pair those
#   two). Validation chose $\sigma = 0.005$ (30.86 dB on validation, less at every
#   larger σ), the smallest level tried and the model's own smallest ($t = 0$): the best
#   σ may lie below what this denoiser offers (a larger step τ would also weaken the
#   prior; not tried).
# - The posterior mean of 8 samples is 4.53 dB [4.10, 4.96] above FBP, 1.52 dB
#   [1.27, 1.78] below plug-and-play and 1.89 dB [1.39, 2.38] above one sample, at
#   17.7 s per scan for 8 samples (plug-and-play: 0.36 s per scan on the same 32, with
#   100 iterations).
# - DPS alone leaves a median misfit of 1.24 δ, the finishing step 0.92 δ (0.68 to
#   1.00); the true images leave 1.03 δ, FBP 1.51 δ.
#
# **At 128²**, in the course's benchmark (lesson 14), a model of the same kind trained
# there (one more level, 8000 steps of 8 of the 2000 clean training images; the
# guidance, and whether to keep the CGLS finish, chosen on 3 validation scans: the
# finish lost there) gave a posterior mean of 4 samples 0.69 dB [0.53, 0.85] behind TV
# on the first 20 test images (here in full mode the two steps above add up to about
# 1.8 dB, 1.52 + 0.28, not a paired figure), and 4.00 dB ahead of the benchmark's
# plug-and-play, whose denoiser is a U-Net trained with under a fifth of the image
# draws and stopped after 11 iterations. Which of the two generative methods is ahead
# depends on how each was built and trained.

# %% [markdown]
# ## Check your understanding

# %%
cu.checks.quiz(
    "In plug-and-play, what plays the role of the regularisation weight λ?",
    ["the step size τ", "the denoiser's noise level σ", "the number of iterations"],
    answer=1,
    explain="The prox of τλR is a MAP denoiser for noise of variance σ² = τλ: with τ "
            "fixed, the denoiser's σ sets how strongly the prior pulls, as λ does. Changing "
            "τ at fixed σ also changes the effective weight σ²/τ.",
    wrong={0: "τ is the step of the data term; with a true prox, λ and τ appear together "
              "as τλ, and that product is the denoiser's σ².",
           2: "The number of iterations matters when the iteration is stopped early, but "
              "the strength of the prior at a fixed point is set by σ."});

# %%
cu.checks.quiz(
    "Why can the same denoiser reconstruct 15-, 30- and 60-angle data?",
    ["it was trained on all three scanners",
     "it never sees the data: the scanner enters only through A in the gradient step",
     "plug-and-play retrains it for each scanner"],
    answer=1,
    explain="The denoiser learned images with Gaussian noise; the iteration asks it only to "
            "clean images. The physics of each scanner is in A and Aᵀ.",
    wrong={0: "It was trained on phantoms with Gaussian noise only; it has never seen a "
              "sinogram.",
           2: "Nothing is retrained; only σ is re-chosen on validation scans."});

# %%
cu.checks.quiz(
    "Tweedie's formula turns the predicted noise ε̂ into x̂0 = (x_t − √(1−ᾱ) ε̂) / √ᾱ. "
    "What is x̂0?",
    ["a sample of the clean image", "the posterior mean of the clean image given x_t",
     "the most probable clean image given x_t"],
    answer=1,
    explain="Trained with a squared loss, the network predicts the conditional mean of the "
            "noise, so x̂0 is the conditional mean of x0: a blurred average early in the "
            "reverse process, a sharp image near t = 0.",
    wrong={0: "Samples come from running the whole reverse process; one x̂0 is an average.",
           2: "A squared loss gives the mean, not the mode."});

# %%
cu.checks.quiz(
    "Eight posterior samples of a 6-angle scan disagree strongly in one region. What does "
    "that tell you?",
    ["the sampler is broken", "the data do not determine that region; the prior fills it, "
     "differently each time", "the noise level is too high"],
    answer=1,
    explain="All samples fit the data; where they differ, the data leave the image open and "
            "the prior chooses. A single reconstruction would hide that choice.",
    wrong={0: "Disagreement where data are missing is what a posterior should show.",
           2: "More noise widens the spread everywhere; a region that varies much more than "
              "the rest is where the projections carry little information."});

# %% [markdown]
# ## Takeaways
#
# - The proximal step of ISTA is a denoiser; plug-and-play swaps it for a learned one and
#   keeps the physics in the gradient step. Its noise level $\sigma$ is the regularisation
#   weight: choose it on validation.
# - One denoiser serves every scanner: no retraining when the number of angles changes,
#   where a post-processing network trained for one scanner degrades on others.
# - A diffusion model is a denoiser at every noise level. Run in reverse from noise it
#   samples images; pulled by the gradient of the data misfit through the network and $A$,
#   it samples images that fit a scan.
# - Several samples give a mean and a spread: the spread grows where the data say little,
#   which a single reconstruction would hide. Check that samples fit the data to the noise
#   level.
# - It costs: tens of network evaluations (with gradients) per sample, several samples
#   per scan; "applying a neural network a thousand times might be too computationally
#   demanding" (Hendriksen's thesis).
#
# ## What to try next
#
# - Plug the TV prox (lesson 02) in place of the denoiser: `cu.pnp_pgd` with a function
#   that runs a few TV denoising steps. How far is it from the diffusion denoiser?
# - Run PnP for many more iterations: does it settle, drift or oscillate? Try a smaller
#   step or a slowly decreasing σ.
# - Change `guidance` and watch the misfit of the samples: too weak and they ignore the
#   data, too strong and they fit the noise.
# - Limited angle: keep the 30 angles of the first 90°, `cu.ParallelBeam(angles=...)`,
#   and look where the samples disagree.
# - Rebuild the diffusion model with more steps (`dltomo diffusion --steps 30000`) and
#   compare its samples and its PnP results.
#
# ## References
#
# - S. V. Venkatakrishnan, C. A. Bouman and B. Wohlberg (2013). Plug-and-play priors for
#   model based reconstruction. *IEEE Global Conference on Signal and Information
#   Processing (GlobalSIP)*, 945-948.
# - Y. Romano, M. Elad and P. Milanfar (2017). The little engine that could:
#   regularization by denoising (RED). *SIAM Journal on Imaging Sciences* 10(4), 1804-1844.
# - K. Zhang, W. Zuo, Y. Chen, D. Meng and L. Zhang (2017). Beyond a Gaussian denoiser:
#   residual learning of deep CNN for image denoising (DnCNN). *IEEE Transactions on Image
#   Processing* 26(7), 3142-3155; and K. Zhang, Y. Li, W. Zuo, L. Zhang, L. Van Gool and
#   R. Timofte (2022). Plug-and-play image restoration with deep denoiser prior (DPIR).
#   *IEEE Transactions on Pattern Analysis and Machine Intelligence* 44(10), 6360-6376.
# - R. Gribonval (2011). Should penalized least squares regression be interpreted as
#   maximum a posteriori estimation? *IEEE Transactions on Signal Processing* 59(5),
#   2405-2410.
# - E. Ryu, J. Liu, S. Wang, X. Chen, Z. Wang and W. Yin (2019). Plug-and-play methods
#   provably converge with properly trained denoisers. *ICML*, PMLR 97, 5546-5557.
# - J. Ho, A. Jain and P. Abbeel (2020). Denoising diffusion probabilistic models.
#   *NeurIPS* 33, 6840-6851.
# - J. Song, C. Meng and S. Ermon (2021). Denoising diffusion implicit models. *ICLR*.
# - Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon and B. Poole (2021).
#   Score-based generative modeling through stochastic differential equations. *ICLR*.
# - H. Chung, J. Kim, M. T. McCann, M. L. Klasky and J. C. Ye (2023). Diffusion posterior
#   sampling for general noisy inverse problems. *ICLR*.
# - Y. Song, L. Shen, L. Xing and S. Ermon (2022). Solving inverse problems in medical
#   imaging with score-based generative models. *ICLR*.
# - B. Efron (2011). Tweedie's formula and selection bias. *Journal of the American
#   Statistical Association* 106(496), 1602-1614.
