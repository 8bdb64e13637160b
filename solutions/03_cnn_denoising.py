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
# # Lesson 03 — CNN denoising and post-processing: learning to clean up FBP
#
# With 30 projection angles and a little noise, filtered backprojection gives an image
# full of streaks and grain (lesson 01). Lesson 02 removed them with an iterative method
# and a hand-made prior, total variation: good images, but an optimisation per image and
# a weight $\lambda$ to tune. This lesson takes the simplest **learned** route instead.
# We keep FBP, and train a convolutional neural network (CNN) on many pairs
# (FBP image, true image) to map the first onto the second. After training, cleaning an
# image costs one pass through the network: milliseconds. This is *learning to enhance a
# classical reconstruction*, the first of the three approaches in Ongie's lecture, and
# with a U-Net it is **FBPConvNet** (Jin, McCann, Froustey and Unser, 2017). We build it
# step by step: a small CNN as in Reader's workshop, a training step written by hand,
# residual learning, the choice of the loss, the U-Net — and then we look for its limits:
# noise it was not trained for, structures it has never seen, and a classical method
# whose prior happens to fit these phantoms very well.
#
# **Learning goals.** After this lesson you can
#
# - set up post-processing as supervised regression on pairs $(x^\text{FBP}, x)$, with
#   training, validation and test splits, each used for one purpose only;
# - write a small PReLU CNN as a `torch.nn.Module` and work out its receptive field and
#   parameter count;
# - write one training step by hand (forward, loss, `zero_grad`, `backward`, `step`),
#   read training and validation curves, and recognise over-fitting and early stopping;
# - explain why **residual learning** (predict the artefacts, add them to the input)
#   trains faster, and why the U-Net sees further than a plain CNN;
# - explain why the MSE loss blurs (it learns a conditional *mean*) and what the L1 loss
#   does instead;
# - evaluate a network correctly (evaluation mode, no gradients, mean PSNR with a fixed
#   data range), compare two methods on the same test images with a **paired** 95 %
#   confidence interval, and repeat a comparison of two trainings over several seeds
#   before believing it;
# - test a trained network off its training distribution: other noise levels, a
#   structure it never saw, a real CT slice — and say what it cannot recover.
#
# **Prerequisites.** Lesson 01 (FBP, streaks from too few angles) and lesson 02 (the
# classical baselines, total variation). PyTorch basics: tensors, autograd,
# `torch.nn.Module`.
#
# **Estimated run time.** CPU quick mode (`COURSE_QUICK=1`, 64 x 64 images, 512
# training images, short training): 3.5 to 5 minutes on a 2-core CPU shared with other
# jobs (206 to 309 s measured with `OMP_NUM_THREADS=1`; up to 10 minutes on a heavily
# loaded machine). About 45 s of it make the data and tune the classical baselines (the
# same in every lesson), about 65 s train the nine small CNNs (three kinds, three seeds
# each) and about 40 s the U-Net. CPU full mode (128 x 128, 2000 training images, a
# U-Net of width 32 trained for up to 20 epochs): 53 minutes measured end to end with
# two threads on a 2-core CPU, partly shared with another job (2026-12-07): 37 of them
# the U-Net's 20 epochs, about 10
# the nine small CNNs, about 5 the classical baselines and the noise study; on one thread
# expect longer (not measured), on a GPU minutes (not measured). If it runs many times
# slower than that, PyTorch's threads may be fighting over the cores: set the variable
# `OMP_NUM_THREADS=1` (or call `torch.set_num_threads(1)`) before starting.

# %% [markdown]
# ## 0. Set-up
#
# All lessons from here on share one experiment, `cu.SparseViewSetting()`: the "ellipses"
# benchmark of the dival library (Leuschner et al.; Baguer et al., 2020).
# Random ellipses anywhere in the square, summed and scaled to [0, 1], so the background
# is usually not zero; a parallel-beam scanner with 30 angles; line integrals computed
# on a 4 times finer grid than the images (no inverse crime, lesson 02); Gaussian noise
# with a standard deviation of 2.5 % of the mean absolute value of each sinogram; and
# fixed training, validation and test splits, so that the results tables of all lessons
# can be compared. Quick mode uses 64 x 64 images and trains briefly; full mode is
# dival's own setting, 128 x 128 images, and trains longer and wider. The data stay on
# the CPU; the networks train on `device` (a GPU if there is one: `cu.train` moves each
# mini-batch there).
#
# The network's input is an FBP image, and FBP has a choice to make: its filter and
# cut-off frequency. `setting.tune_fbp()` makes it in the open, the way every parameter
# in this course is chosen: it tries the 4 filters with 15 cut-offs and keeps the pair
# with the best mean PSNR on the **validation** split. Only then do the splits' FBP
# images, `split.x_fbp`, exist.
#
# The numbers quoted in the text of this lesson are those of quick mode (64 x 64),
# except in the paragraphs marked **Full mode**, which quote one full-mode run
# (2026-12-07). A full-mode run prints its own numbers, and `benchmarks/README.md`
# reports the full-size benchmark.

# %%
import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

import course_utils as cu

cu.seed_everything(0)
device = cu.device()
QUICK = cu.QUICK

BATCH_SIZE, LR = 8, 2e-3                 # mini-batch size and Adam's learning rate
SMALL_EPOCHS = 2 if QUICK else 3         # small CNNs (direct, residual, L1)
UNET_WIDTH = 16 if QUICK else 32         # channels at the U-Net's first level
UNET_EPOCHS = 4 if QUICK else 20         # at most; early stopping may end sooner
PATIENCE = 5                             # early stopping: epochs without improvement
SEEDS = (0, 1, 2)                        # repeat the small-CNN comparisons with 3 seeds
TINY_TRAIN, TINY_EPOCHS = 2, 30 if QUICK else 60   # the over-fitting experiment
TEST_NOISE_LEVELS = (0.0, 0.0125, 0.025, 0.05, 0.075, 0.1)   # the setting's is 0.025

setting = cu.SparseViewSetting()
setting.tune_fbp()          # FBP's filter and cut-off: the best PSNR on the validation split
train, val, test = setting.train, setting.val, setting.test
print(f"QUICK={QUICK}, device={device}")
print(f"batches of {BATCH_SIZE}, learning rate {LR:g}; small CNNs: {SMALL_EPOCHS} epochs; "
      f"U-Net: width {UNET_WIDTH}, up to {UNET_EPOCHS} epochs (patience {PATIENCE})")
display(Markdown(setting.describe()))

# %% [markdown]
# ## 1. Post-processing as supervised learning
#
# The scanner measures $y \approx A x + e$ (our simulator computes the line integrals on a
# finer grid, so the data are not exactly $A x$ plus noise; lesson 02); FBP turns the
# sinogram into an image $x^\text{FBP} = \mathrm{FBP}(y)$ that is close to $x$ but carries
# streaks (too few angles), blur (the filter's cut-off) and grain (noise). We look for a
# network $f_\theta$ with weights $\theta$ such that $f_\theta(x^\text{FBP}) \approx x$,
# and we find $\theta$ from $n$ training pairs by minimising the **empirical risk**
#
# $$ \hat\theta = \arg\min_\theta \; \frac1n \sum_{i=1}^{n}
#    \ell\big(f_\theta(x^\text{FBP}_i),\, x_i\big), $$
#
# with a loss $\ell$, for instance the mean squared error
# $\ell(\hat x, x) = \frac{1}{HW}\|\hat x - x\|_2^2$. The physics enters once, in FBP;
# the network only ever sees images (McCann, Jin and Unser, 2017, review this and other
# ways of putting CNNs into inverse problems). Ducros's slides call this a *direct method*
# $f^* = D_\omega(\tilde f) + \tilde f$ built on an approximate inverse $\tilde f$ —
# the "$+\tilde f$" is residual learning, section 5.
#
# Three splits, three jobs: the **training** images set the weights; the **validation**
# images choose everything else (when to stop, which network, which loss); the **test**
# images are looked at once, at the end, to report. Here is what the network gets and
# what it must return:

# %%
fbp_psnr = cu.psnr(test.x_fbp, test.x, data_range=1.0).flatten()
examples = [0, 1, 2]
cu.show_images(
    [train.x[k, 0] for k in examples] + [train.x_fbp[k, 0] for k in examples]
    + [(train.x_fbp - train.x)[k, 0] for k in examples],
    [f"target x (train {k})" for k in examples]
    + [f"input: FBP, {float(cu.psnr(train.x_fbp[k], train.x[k], data_range=1.0)):.1f} dB"
       for k in examples]
    + ["artefacts: FBP − x" for _ in examples], ncols=3, size=2.6);
fbp_mean, fbp_half = cu.mean_interval(fbp_psnr)
print(f"{setting.fbp_name}, filter and cut-off chosen on validation, on the {len(test)} "
      f"test images: PSNR {fbp_mean:.2f} ± {fbp_half:.2f} dB (95 % interval of the mean)")

# %% [markdown]
# The artefact images (bottom row) are what the network must remove. The setting's FBP
# has its window and cut-off tuned on validation (a cosine window cut off at 0.7 of the
# Nyquist frequency in quick mode), which trades sharpness for less noise: its largest
# errors are the blurred edges of the ellipses, with faint streaks along the 30
# projection directions, a mottled grain, and a rim along the border of the image. They
# are not random: they follow the edges of the object, which is what makes them
# learnable. In PSNR the FBP input scores 24.6 dB on the test images.
#
# ## 2. A small CNN
#
# A convolutional layer applies the same small filter everywhere, so it can look for a
# local pattern (an edge, a streak) wherever it occurs. With $C_\text{in}$ input channels
# and $C_\text{out}$ output channels, layer $l$ computes
#
# $$ h^{(l+1)}_c = \phi\Big( b_c + \sum_{c'} w_{c,c'} * h^{(l)}_{c'} \Big),
#    \qquad c = 1, \dots, C_\text{out}, $$
#
# with $3 \times 3$ kernels $w_{c,c'}$, a bias $b_c$ and a non-linearity $\phi$. Reader's
# workshop uses the **PReLU** (He et al., 2015), a ReLU whose slope for negative inputs
# is learned:
#
# $$ \phi(t) = \max(t, 0) + a \min(t, 0) . $$
#
# With $a = 0$ it is the ReLU, with $a = 1$ the identity. Why not a plain ReLU? Not
# because the artefacts have both signs: the sign of the output is the business of the
# **last** convolution, which has no activation after it, so that any network of this
# kind can return negative values (and a residual network negative corrections, section
# 5). The activation acts on the *hidden* channels. A ReLU sets every negative hidden
# value to zero, and with it the gradient there: a channel whose input stays negative
# stops learning (a "dead" unit). The PReLU lets a learned fraction $a$ through, so no
# unit dies, and a layer can be close to linear where that suits the data ($a$ near 1).
# It is a convenience, not a necessity: a ReLU network of the same size would also learn
# this task. Three numbers describe such a network:
#
# - **shape**: a $3\times3$ convolution with one pixel of padding keeps $H \times W$, so
#   the output has the size of the input, whatever that size is;
# - **receptive field**: the side of the square patch of the input that one output pixel
#   depends on; a $3 \times 3$ layer widens the view by one pixel on each side;
# - **parameters**: a convolution from $C_\text{in}$ to $C_\text{out}$ channels has
#   $9 C_\text{in} C_\text{out}$ weights and $C_\text{out}$ biases, and `nn.PReLU()`
#   learns one slope $a$, shared by all its channels.
#
# The network in Reader's workshop is of this kind — five $3\times3$ layers with PReLU
# (and many more channels), trained with MSE and Adam to denoise a single image; it also
# puts a PReLU after its last layer, which we leave out so that the output can take any
# value. Below, the PReLU for three values of $a$:

# %%
t = torch.linspace(-2, 2, 201)
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
for a in (0.0, 0.25, 1.0):
    ax.plot(t, torch.where(t > 0, t, a * t), label=f"a = {a:g}" + (" (ReLU)" if a == 0 else
                                                                    " (identity)" if a == 1
                                                                    else ""))
ax.set(xlabel="t", ylabel=r"$\phi(t)$", title="PReLU: the slope a is learned")
ax.grid(alpha=0.4)
ax.legend()
plt.show()

# %% [markdown]
# ### Exercise 1: a small PReLU CNN
#
# Write the class `SmallCNN(channels=16, n_layers=5, residual=False)`, a `nn.Module`
# that maps images of shape `(B, 1, H, W)` to images of the same shape:
#
# - `n_layers` convolutions with $3 \times 3$ kernels and `padding=1`: the first maps 1
#   channel to `channels`, the middle ones `channels` to `channels`, the last one
#   `channels` to 1;
# - an `nn.PReLU()` after every convolution except the last (the output must be free to
#   take any value);
# - with `residual=True`, `forward` returns `x + layers(x)` instead of `layers(x)` (we
#   use this in section 5).
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Build the layers once, in `__init__`, and store them as an attribute of the module (a
# container of layers, not a plain Python list), so that PyTorch finds their parameters.
# Only the first and the last convolution differ from the others. The input is already a
# batch `(B, 1, H, W)`, which is what `nn.Conv2d` wants: unlike the workshop's network, do
# not add dimensions.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# With $c_l$ the convolutions and $\phi_l$ the PReLUs,
# $g(x) = c_L \circ \phi_{L-1} \circ c_{L-1} \circ \dots \circ \phi_1 \circ c_1 (x)$,
# with $c_1: 1 \to C$, $c_2, \dots, c_{L-1}: C \to C$, $c_L: C \to 1$ channels; `forward`
# returns $g(x)$, or $x + g(x)$ with `residual=True`.
# </details>

# %%
class SmallCNN(nn.Module):
    """n_layers 3x3 convolutions with PReLU: images (B, 1, H, W) -> (B, 1, H, W)."""

    def __init__(self, channels=16, n_layers=5, residual=False):
        super().__init__()
        ### BEGIN SOLUTION (points=2)
        self.residual = residual
        layers = [nn.Conv2d(1, channels, 3, padding=1), nn.PReLU()]
        for _ in range(n_layers - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU()]
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.layers = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = self.layers(x)
        return x + out if self.residual else out
        ### END SOLUTION


# %%
cu.checks.small_cnn(SmallCNN);

# %% [markdown]
# ### Exercise 2: receptive field and parameter count
#
# Before training a network, know what it can see and how big it is. Write
# `cnn_size(channels, n_layers)` that returns the pair `(receptive_field, n_parameters)`
# for the network of Exercise 1 (`residual` changes neither): the side, in pixels, of the
# square patch of the input that one output pixel depends on, and the number of trainable
# numbers, PReLU slopes included. Derive both as formulas in `channels` and `n_layers`;
# do not build the network. Then read off the two numbers for our network, 16 channels
# and 5 layers.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Start from one output pixel and walk back through the layers: how much does each
# $3 \times 3$ layer add to the patch? For the count, treat the first, the middle and the
# last convolution separately, and do not forget what is learned besides the kernels.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# The patch grows from $1$ by $2$ per layer. A convolution $C_\text{in} \to C_\text{out}$
# has $9 C_\text{in} C_\text{out} + C_\text{out}$ parameters; the layers are
# $1 \to C$, then $L - 2$ times $C \to C$, then $C \to 1$; and there are $L - 1$
# PReLUs of one slope each.
# </details>

# %%
def cnn_size(channels, n_layers):
    """(receptive-field side in pixels, trainable parameters) of SmallCNN(channels, n_layers)."""
    ### BEGIN SOLUTION
    receptive_field = 2 * n_layers + 1
    first = 9 * channels + channels
    middle = (n_layers - 2) * (9 * channels * channels + channels)
    last = 9 * channels + 1
    return receptive_field, first + middle + last + (n_layers - 1)
    ### END SOLUTION


# %%
cu.checks.cnn_size(cnn_size);

# %% [markdown]
# The rest of the notebook has to run whether or not your answers are finished, so from
# here on it builds the same network with two small helpers of `course_utils` (read them
# at the end of `course_utils/checks/lesson03.py`): `reference_cnn` makes the stack of
# layers, and `Residual` wraps any image-to-image network $g$ into $x \mapsto x + g(x)$.
# Our network of 16 channels and 5 layers sees an $11 \times 11$ patch and has 7269
# parameters; the cell below counts them with `cu.count_parameters`.
#
# A remark on padding: the workshop pads by reflection (`padding_mode="reflect"`). We keep
# the default zero padding, which on a CPU is almost twice as fast. Our phantoms are
# usually not zero at the border, so each zero-padded layer sees a false edge there; the
# network learns to live with it (with residual learning, section 5, it mostly has to
# leave the border alone), but it is one reason why errors gather along the border.

# %%
from course_utils.checks.lesson03 import (Residual, apply_network, reference_cnn,
                                          reference_train_step)

cu.seed_everything(0)
print(reference_cnn())
print("parameters:", cu.count_parameters(reference_cnn()))
assert cu.count_parameters(reference_cnn()) == 7269

# %% [markdown]
# ## 3. Training: one step, then many
#
# Training minimises the empirical risk by **mini-batch** gradient descent: each step
# takes a batch of $B$ pairs, computes the loss on it, its gradient with respect to all
# weights by backpropagation, and moves the weights a little downhill. We use **Adam**
# (Kingma and Ba, 2015), which scales each weight's step by running averages of its
# gradients. In PyTorch one step is five lines, and each matters:
#
# 1. `model.train()` — layers such as batch normalisation or dropout behave differently
#    during training and evaluation; after a validation pass the model may still be in
#    evaluation mode;
# 2. `loss = loss_fn(model(x_in), x_target)` — the forward pass records the graph of
#    operations;
# 3. `optimizer.zero_grad()` — PyTorch **adds** new gradients to the `.grad` of each
#    weight; without this line each step would use the sum of all earlier gradients;
# 4. `loss.backward()` — backpropagation fills `.grad`;
# 5. `optimizer.step()` — the update.
#
# An **epoch** is one pass over the training set in shuffled mini-batches.
#
# ### Exercise 3: one training step
#
# Write `train_step(model, optimizer, x_in, x_target, loss_fn)` that performs one
# optimisation step on the batch `(x_in, x_target)` with the loss function `loss_fn`
# (called as `loss_fn(output, target)`, e.g. `F.mse_loss`) and returns the loss of the
# batch, computed **before** the update, as a Python `float`.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Follow the five steps above; only where `zero_grad` goes has some freedom (anywhere
# before `backward`). For the value you return, ask what keeping a tensor that is part of
# a graph costs: store a thousand of them in a list and memory runs out.
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# One step of gradient descent with the optimiser's rule:
# $\theta \leftarrow \theta - \eta\, \nabla_\theta \ell\big(f_\theta(x_\text{in}),
# x_\text{target}\big)$, where the gradient is that of **this** batch alone (so the old
# gradients must be cleared first), and the number returned is
# $\ell\big(f_\theta(x_\text{in}), x_\text{target}\big)$ at the old $\theta$, as a
# plain number, detached from the graph.
# </details>

# %%
def train_step(model, optimizer, x_in, x_target, loss_fn):
    """One optimisation step on a mini-batch; returns the batch loss (before the step)."""
    ### BEGIN SOLUTION
    model.train()
    loss = loss_fn(model(x_in), x_target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %%
cu.checks.cnn_train_step(train_step);

# %% [markdown]
# `cu.train` wraps this step in the loop a real experiment needs (read it in
# `course_utils/learning/training.py`, it is short): shuffled mini-batches, Adam, the
# validation loss and PSNR after every epoch, a progress bar, a live plot of the curves,
# and at the end it gives the model the weights of its **best validation epoch**. We use
# batches of 8 and a learning rate of $2 \cdot 10^{-3}$: with a budget of a few epochs,
# more (if noisier) steps per epoch beat fewer, larger ones. Our first network predicts
# the clean image directly from the FBP image:

# %%
cu.seed_everything(0)
cnn_direct = reference_cnn()
history_direct = cu.train(cnn_direct, (train.x_fbp, train.x), (val.x_fbp, val.x),
                          epochs=SMALL_EPOCHS, batch_size=BATCH_SIZE, lr=LR, device=device)
print(history_direct)

# %% [markdown]
# ## 4. Scoring on the test set
#
# Two habits make an evaluation right. First, `model.eval()`: batch normalisation then
# uses the statistics it collected during training instead of those of the test batch
# (and does not update them), and dropout is switched off. Second, `torch.no_grad()`:
# no graph is recorded, which saves memory and time. And one definition: the score of a
# method is the **mean over the test images of each image's PSNR**,
#
# $$ \overline{\text{PSNR}} = \frac1m \sum_{i=1}^m 10 \log_{10}
#    \frac{R^2}{\text{MSE}(\hat x_i, x_i)}, \qquad R = 1, $$
#
# with a fixed data range $R = 1$ (our images lie in $[0, 1]$), not each image's own
# max − min. It is not the same as the PSNR of the mean MSE: the logarithm is concave,
# so averaging the MSE first gives a lower number, dominated by the worst images.
#
# ### Exercise 4: the test-set PSNR
#
# Write `test_psnr(model, split)` that returns the mean PSNR (in dB, a Python `float`)
# of the post-processing network `model` on a split of the setting: inputs
# `split.x_fbp`, targets `split.x`, both `(n, 1, N, N)`, data range 1, in evaluation
# mode and without gradients.
#
# <details><summary>Hint 1 (a nudge)</summary>
#
# Two habits from the paragraph above come first, one a method of the model and one a
# context manager. `cu.psnr` takes a `data_range` and returns one value per image, not
# one for the batch. (On a GPU, move the inputs to the model's device and the outputs
# back.)
# </details>
#
# <details><summary>Hint 2 (the key equation)</summary>
#
# $\overline{\text{PSNR}} = \frac1m \sum_{i=1}^m 10 \log_{10}
# \big(1 / \text{MSE}(f_\theta(x^\text{FBP}_i), x_i)\big)$ with $f_\theta$ in
# evaluation mode and no graph recorded: the mean of the per-image values, not the PSNR
# of the mean MSE.
# </details>

# %%
def test_psnr(model, split):
    """Mean over the images of PSNR(model(split.x_fbp), split.x), data range 1, in dB."""
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        x_hat = model(split.x_fbp)
    return float(cu.psnr(x_hat, split.x, data_range=1.0).mean())
    ### END SOLUTION


# %%
cu.checks.test_set_psnr(test_psnr);

# %% [markdown]
# For the tables, `cu.evaluate` does the same and more: the mean PSNR and SSIM with the
# half-width of their 95 % confidence intervals, every image's score (for the paired
# comparisons below), the time per image and the parameter count. The fair comparison with
# the classical methods starts from the *sinogram*, so the time includes the FBP. Two
# helpers keep that in one place; the first applies a network for evaluation with
# `course_utils`' `apply_network` (the habits of Exercise 4, in batches):

# %%
def denoise(net, x_fbp):
    """A trained network applied to FBP images (n, 1, N, N), for evaluation, on the CPU."""
    return apply_network(net, x_fbp, device)


def score(net, name, data=test):
    """One results-table row for 'FBP, then net' on a split (sinograms to images)."""
    return cu.evaluate(lambda y: denoise(net, setting.fbp(y)), data, name=name,
                       parameters=cu.count_parameters(net))


row_direct = score(cnn_direct, "small CNN, direct")
print(f"FBP: {float(fbp_psnr.mean()):.2f} dB;  small CNN after {SMALL_EPOCHS} epochs: "
      f"{row_direct['PSNR (dB)']:.2f} dB")

# %% [markdown]
# ## 5. Residual learning
#
# The direct network must first learn to *copy* its input — the identity, which is hard
# to build from random convolutions and PReLUs — before it can improve on it. After a
# short training it may even be worse than the FBP it started from. **Residual
# learning** asks for less: let the layers $g_\theta$ predict only the correction,
#
# $$ f_\theta(x^\text{FBP}) = x^\text{FBP} + g_\theta(x^\text{FBP}),
#    \qquad g_\theta(x^\text{FBP}) \approx x - x^\text{FBP} = -\text{artefacts}. $$
#
# At initialisation $f_\theta$ is already close to the identity, and the target of
# $g_\theta$, the artefact image, is small and simple (streaks and grain, no anatomy).
# DnCNN (Zhang et al., 2017) made this the standard for denoising, RED-CNN (Chen et al.,
# 2017) used it for low-dose CT, and FBPConvNet adds the FBP input to the U-Net's output
# for the same reason. Same layers, same training
# budget, one `+`:

# %%
cu.seed_everything(0)
cnn_residual = Residual(reference_cnn())
history_residual = cu.train(cnn_residual, (train.x_fbp, train.x), (val.x_fbp, val.x),
                            epochs=SMALL_EPOCHS, batch_size=BATCH_SIZE, lr=LR,
                            device=device)
row_residual = score(cnn_residual, "small CNN, residual")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
epochs = history_direct.epochs
cu.plot_curves({"direct, training": (epochs, history_direct.train_loss),
                "direct, validation": (epochs, history_direct.val_loss),
                "residual, training": (epochs, history_residual.train_loss),
                "residual, validation": (epochs, history_residual.val_loss)},
               xlabel="epoch", ylabel="MSE", logy=True, title="Loss", ax=axes[0])
cu.plot_curves({"direct": (epochs, history_direct.val_psnr),
                "residual": (epochs, history_residual.val_psnr)},
               xlabel="epoch", ylabel="PSNR (dB)", title="Validation PSNR", ax=axes[1])
axes[1].axhline(float(cu.psnr(val.x_fbp, val.x, data_range=1.0).mean()), color="gray",
                ls="--", label="FBP (the input)")
axes[1].legend()
plt.show()
print(f"test PSNR: direct {row_direct['PSNR (dB)']:.2f} dB, residual "
      f"{row_residual['PSNR (dB)']:.2f} dB, FBP {fbp_mean:.2f} dB")
print(cu.paired_difference(row_residual, row_direct))

# %% [markdown]
# The residual network is far ahead — in this run. But one training run is one random
# draw: the initial weights and the order of the mini-batches come from the seed, and
# another seed gives another network. Before calling the difference a result we train
# both networks twice more, with seeds 1 and 2 and the same budget, and compare them on
# the same test images, seed by seed. Each comparison is **paired**: the difference of the
# two networks' PSNR image by image, its mean and its 95 % confidence interval
# (`cu.paired_difference`). Some phantoms are simply harder than others for every method;
# that spread cancels in the differences, so the paired interval is much narrower than the
# intervals of the two means.

# %%
def train_small(net, seed, loss="mse"):
    """Train a small CNN quietly with this section's budget, from the given seed."""
    cu.train(net, (train.x_fbp, train.x), (val.x_fbp, val.x), loss=loss,
             epochs=SMALL_EPOCHS, batch_size=BATCH_SIZE, lr=LR, device=device, seed=seed,
             live_plot=False, progress=False)
    return net


nets = {"direct": {0: cnn_direct}, "residual": {0: cnn_residual}}
seed_rows = {"direct": {0: row_direct}, "residual": {0: row_residual}}
for seed in SEEDS[1:]:
    for kind in ("direct", "residual"):
        cu.seed_everything(seed)                         # the initial weights
        body = reference_cnn()
        nets[kind][seed] = train_small(body if kind == "direct" else Residual(body), seed)
        seed_rows[kind][seed] = score(nets[kind][seed], f"small CNN, {kind}, seed {seed}")

residual_gain = {seed: cu.paired_difference(seed_rows["residual"][seed],
                                            seed_rows["direct"][seed]) for seed in SEEDS}
residual_vs_fbp = {seed: cu.paired_difference(seed_rows["residual"][seed]["PSNR per image"],
                                              fbp_psnr) for seed in SEEDS}
direct_vs_fbp = {seed: cu.paired_difference(seed_rows["direct"][seed]["PSNR per image"],
                                            fbp_psnr) for seed in SEEDS}
for seed in SEEDS:
    print(f"seed {seed}: direct {seed_rows['direct'][seed]['PSNR (dB)']:.2f} dB, residual "
          f"{seed_rows['residual'][seed]['PSNR (dB)']:.2f} dB; residual - direct "
          f"{residual_gain[seed].mean:+.2f} dB [{residual_gain[seed].low:+.2f}, "
          f"{residual_gain[seed].high:+.2f}]; residual - FBP {residual_vs_fbp[seed].mean:+.2f} "
          f"dB [{residual_vs_fbp[seed].low:+.2f}, {residual_vs_fbp[seed].high:+.2f}]; "
          f"direct - FBP {direct_vs_fbp[seed].mean:+.2f} dB [{direct_vs_fbp[seed].low:+.2f}, "
          f"{direct_vs_fbp[seed].high:+.2f}]")
assert all(d.low > 0 for d in residual_vs_fbp.values()), "residual should beat its input"
if QUICK:   # the margins the text states (quick mode; longer training may narrow them)
    assert all(d.low > 2.0 for d in residual_gain.values()), "residual should beat direct"
    assert all(d.low > 2.0 for d in residual_vs_fbp.values())
    assert all(d.high < 0 for d in direct_vs_fbp.values()), "direct should still be below FBP"
else:       # full mode: the margins of the full-mode run quoted below the cell
    assert all(d.low > 1.0 for d in residual_gain.values()), "residual should beat direct"
    assert all(d.low > 2.0 for d in direct_vs_fbp.values()), "with more steps direct beats FBP"

# %% [markdown]
# The result holds in every seed: the residual network is ahead of the direct one by 4.3
# to 7.2 dB, each paired interval far above zero, and it gains 3.8 to 4.0 dB over its FBP
# input, while after two epochs the direct network is still *below* the FBP image it was
# given (21.4 to 24.2 dB against 24.6 dB, every interval below zero). Look also at the
# spread between seeds: 2.8 dB for the direct network, 0.1 dB for the residual one. The
# residual network starts where the direct one wants to arrive, at the FBP image, and
# improves on it from the first epoch; the direct one must first learn to copy, and how
# fast it does depends on where it starts. Whether it catches up with longer training is
# left to you (raise `SMALL_EPOCHS`); with a short budget residual learning is clearly
# better, and it is what we use from now on.
#
# **Full mode** (one run per seed, 2026-12-07) gives a hint: 3 epochs of 2000 training
# images make 750 optimiser steps instead of 128 — but the images are also 128 x 128 and
# four times as many, so the number of steps is not isolated. The order is the same, the
# gap much smaller: residual minus direct is +1.27, +1.40 and +1.40 dB, every interval's
# lower end at +1.20 dB or more. The direct network has learned to copy and is now 3.5 to
# 3.7 dB *above* FBP (the residual one 4.8 to 5.1 dB), and the spread between seeds is
# about 0.2 dB for both. This suggests that much of quick mode's 4 to 7 dB is the direct
# network's slow start: the gap shrinks, without closing in this budget.
#
# ## 6. Which loss? MSE learns a mean, L1 a median
#
# Training with the MSE loss has a precise meaning (Hendriksen's thesis, chapter 6):
# with enough data and a flexible enough network, the minimiser of the expected MSE is
# the **conditional mean**
#
# $$ f^*(x^\text{FBP}) = \arg\min_{\hat x} \mathbb{E}\big[\|\hat x - x\|^2 \,\big|\,
#    x^\text{FBP}\big] = \mathbb{E}[x \mid x^\text{FBP}] , $$
#
# while the L1 loss $\mathbb{E}\,|\hat x - x|$ leads to the conditional **median**, pixel
# by pixel. When the input cannot decide between two clean images — an edge here, or two
# pixels further — the mean is their average: a blurred edge that never occurs in the
# data. The median picks the more likely one.
#
# A toy version makes this exact. Take 1-D "images" with one edge; the same input comes
# with the edge at position 12 seven times out of ten and at position 18 three times.
# The best the network can do is output one fixed signal $\hat x$ for this input, so we
# train just that signal, once with each loss:

# %%
positions = torch.arange(32)
edge_early = (positions >= 12).float()
edge_late = (positions >= 18).float()
targets = torch.stack([edge_early] * 7 + [edge_late] * 3)      # 10 equally ambiguous pairs

class OneSignal(nn.Module):
    """The best a network can do for one input: return one fixed signal, whatever it gets."""

    def __init__(self):
        super().__init__()
        self.signal = nn.Parameter(torch.full((32,), 0.5))

    def forward(self, x):
        return self.signal.expand_as(x)


toy = {}
for name, loss_fn in (("MSE", F.mse_loss), ("L1", F.l1_loss)):
    model = OneSignal()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(400):        # the training step of Exercise 3, from course_utils
        reference_train_step(model, optimizer, targets, targets, loss_fn)
    toy[name] = model.signal.detach()

fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
ax.step(positions, edge_early, ":", where="mid", color="gray", label="targets (7× and 3×)")
ax.step(positions, edge_late, ":", where="mid", color="gray")
ax.step(positions, toy["MSE"], where="mid", lw=2, label="trained with MSE: the mean")
ax.step(positions, toy["L1"], "--", where="mid", lw=2, label="trained with L1: the median")
ax.set(xlabel="pixel", ylabel="value", title="One input, two possible edges")
ax.legend()
plt.show()
mean_target, median_target = targets.mean(0), targets.median(0).values
print(f"MSE result vs mean of the targets:   largest difference "
      f"{float((toy['MSE'] - mean_target).abs().max()):.3f}")
print(f"L1 result vs median of the targets:  largest difference "
      f"{float((toy['L1'] - median_target).abs().max()):.3f}")
assert torch.allclose(toy["MSE"], mean_target, atol=0.02)
assert torch.allclose(toy["L1"], median_target, atol=0.05)

# %% [markdown]
# MSE draws a staircase: 0.7 between the two edge positions, a grey band that none of the
# targets has. That is the blur of MSE-trained networks, and the reason super-resolution
# moved to adversarial losses (lesson 08) — with the risk Hendriksen points out: a sharp
# answer can be confidently wrong.
#
# On our data the ambiguity is smaller, but the two losses still behave differently. We
# train the residual CNN again with L1, same budget:

# %%
cu.seed_everything(0)
cnn_l1 = Residual(reference_cnn())
history_l1 = cu.train(cnn_l1, (train.x_fbp, train.x), (val.x_fbp, val.x), loss="l1",
                      epochs=SMALL_EPOCHS, batch_size=BATCH_SIZE, lr=LR, device=device)
row_l1 = score(cnn_l1, "small CNN, residual, L1 loss")

# %%
errors = {"MSE": (denoise(cnn_residual, test.x_fbp) - test.x).abs().flatten(),
          "L1": (denoise(cnn_l1, test.x_fbp) - test.x).abs().flatten()}
k = 3
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
for ax, name, net in ((axes[0], "MSE", cnn_residual), (axes[1], "L1", cnn_l1)):
    im = ax.imshow((denoise(net, test.x_fbp[k:k + 1]) - test.x[k:k + 1])[0, 0], cmap="gray",
                   vmin=-0.1, vmax=0.1)
    ax.set_title(f"error of the {name}-trained CNN (test {k})")
    ax.set_axis_off()
    fig.colorbar(im, ax=ax, shrink=0.8)
thresholds = torch.logspace(-4, 0, 60)
cu.plot_curves({name: (thresholds, [float((e <= t).float().mean()) for t in thresholds])
                for name, e in errors.items()},
               xlabel="error threshold t", ylabel="fraction of pixels with |error| ≤ t",
               title="All test pixels", ax=axes[2])
axes[2].set_xscale("log")
plt.show()

# %% [markdown]
# One run again; so we train the L1 network with seeds 1 and 2 as well (the MSE networks of
# those seeds are the residual ones of section 5) and measure, for each seed, the median
# error, the share of pixels within 0.01 of the truth, and the 99th percentile of the
# error, over all test pixels, along with PSNR and SSIM.

# %%
nets["L1"], seed_rows["L1"] = {0: cnn_l1}, {0: row_l1}
for seed in SEEDS[1:]:
    cu.seed_everything(seed)
    nets["L1"][seed] = train_small(Residual(reference_cnn()), seed, loss="l1")
    seed_rows["L1"][seed] = score(nets["L1"][seed], f"small CNN, residual, L1 loss, seed {seed}")


def error_stats(net):
    """Median, share within 0.01 and 99th percentile of |error| over all test pixels."""
    e = (denoise(net, test.x_fbp) - test.x).abs().flatten()
    return dict(median=float(e.median()), within=float((e <= 0.01).float().mean()),
                p99=float(e.quantile(0.99)))


stats = {(loss, seed): error_stats(nets[key][seed])
         for loss, key in (("MSE", "residual"), ("L1", "L1")) for seed in SEEDS}
cu.results_table([{"loss": loss, "seed": seed,
                   "PSNR (dB)": seed_rows[key][seed]["PSNR (dB)"],
                   "SSIM": seed_rows[key][seed]["SSIM"],
                   "median |error|": stats[loss, seed]["median"],
                   "% within 0.01": 100 * stats[loss, seed]["within"],
                   "99th percentile": stats[loss, seed]["p99"]}
                  for loss, key in (("MSE", "residual"), ("L1", "L1")) for seed in SEEDS])

# %%
l1_psnr = {seed: cu.paired_difference(seed_rows["L1"][seed], seed_rows["residual"][seed])
           for seed in SEEDS}
l1_ssim = {seed: cu.paired_difference(seed_rows["L1"][seed], seed_rows["residual"][seed],
                                      metric="SSIM") for seed in SEEDS}
for seed in SEEDS:
    print(f"seed {seed}, L1 - MSE: PSNR {l1_psnr[seed].mean:+.2f} dB [{l1_psnr[seed].low:+.2f}, "
          f"{l1_psnr[seed].high:+.2f}], SSIM {l1_ssim[seed].mean:+.3f} "
          f"[{l1_ssim[seed].low:+.3f}, {l1_ssim[seed].high:+.3f}]")
if QUICK:   # what the text below reports, in every seed (quick mode)
    assert all(stats["L1", k]["median"] < stats["MSE", k]["median"] for k in SEEDS), \
        "L1 should make typical errors smaller"
    assert all(stats["MSE", k]["p99"] < stats["L1", k]["p99"] for k in SEEDS), \
        "MSE should make the largest errors smaller"
    assert all(d.low > 0 for d in l1_ssim.values()), "L1 should give the higher SSIM"
else:       # full mode: the kinds of error stay; the SSIM advantage in two seeds of three
    assert all(stats["L1", k]["median"] < stats["MSE", k]["median"] for k in SEEDS), \
        "L1 should make typical errors smaller"
    assert all(stats["MSE", k]["p99"] < stats["L1", k]["p99"] for k in SEEDS), \
        "MSE should make the largest errors smaller"
    assert sum(d.low > 0 for d in l1_ssim.values()) >= 2, "L1's SSIM lead in 2 seeds of 3"
assert all(stats["L1", k]["within"] > stats["MSE", k]["within"] for k in SEEDS), \
    "L1 should get more pixels within 0.01 of the truth (both modes)"

# %% [markdown]
# In all three seeds the two networks make different *kinds* of errors. The L1 network
# gets more pixels almost exactly right — a median error of 0.016 against 0.018 to 0.019,
# and 34 % of the pixels within 0.01 of the truth against 29 to 30 % — while the MSE
# network keeps its worst errors smaller (a 99th percentile of 0.132 to 0.133 against
# 0.137 to 0.140). That is the median and the mean again. Squared errors punish a few large
# errors far more than many small ones, so MSE spreads small errors everywhere to avoid
# large ones; absolute errors count every error alike, so L1 drives the many small ones
# to zero and accepts a few large ones — at edges, where the input is ambiguous.
#
# The scores need the seeds most. In PSNR, the MSE in decibels and so the MSE network's
# own measure, the two losses are level: L1 minus MSE is −0.01, −0.14 and −0.00 dB, and
# only one of the three intervals (seed 1) excludes zero. Seed 1 alone would have told us
# that MSE gives the better PSNR; the other two seeds say it does not matter. SSIM, which
# looks at local structure and so at the flat regions that L1 cleans up, prefers the L1
# network in every seed, by 0.014 to 0.026, every interval above zero.
# Which errors are worse depends on what the image is for; many post-processing
# networks train with L1 or a mix of the two (Zhao et al., 2017, compare losses for
# image restoration).
#
# **Full mode** (one run per seed, 2026-12-07) keeps the kinds of error: in all three
# seeds the L1 network has the smaller median error (0.0134 to 0.0139 against 0.0138 to
# 0.0143) and more pixels within 0.01 of the truth (39.1 to 40.3 % against 38.1 to
# 39.2 %; in seed 1 barely, 39.22 against 39.16 %), and the MSE network the smaller 99th
# percentile (0.1246 to 0.1277 against 0.1285 to 0.1309). These pixel statistics have
# no interval. In PSNR the differences do not shrink: L1 minus MSE is +0.10, −0.20 and
# −0.14 dB, every interval excluding zero, but seed 0 puts L1 ahead and seeds 1 and 2
# put MSE ahead. Each interval covers the test images, not the training, so any one
# seed alone would have named a winner, and seed 0 the other one. In SSIM L1's lead
# shrinks, to +0.006, +0.003 and +0.000, the last interval including zero: it holds in
# two seeds of three.
#
# ## 7. FBPConvNet: the U-Net
#
# The small CNN sees an $11 \times 11$ patch. Sparse-view streaks run across the whole
# image, and whether a faint line is a streak or an edge is clearer from further away.
# The **U-Net** (Ronneberger et al., 2015) sees further at little cost: the encoder halves
# the image size at every level while doubling the channels, so a $3 \times 3$
# convolution at a coarse level covers a larger patch of the image, and the decoder goes
# back up, with **skip connections** that hand over the fine detail of each level. Jin et
# al. (2017) put it after FBP, with the residual connection, and called it FBPConvNet;
# `cu.UNet` follows it (read `course_utils/learning/networks.py`). We use 3 levels and
# 16 channels at the first level (32 in full mode). FBPConvNet itself has 5 levels, for
# 512 x 512 images; with our 3 levels one output pixel depends on a $44 \times 44$
# patch, at 64 x 64 and at 128 x 128 alike: most of the small image, but not all of it,
# and a third of the side of the full-mode image. Each further level doubles the reach of
# the coarsest convolutions.
#
# How far each network looks can be *measured*: the gradient of one output pixel with
# respect to every input pixel is non-zero exactly on its receptive field. We compute it
# for the trained small CNN and, after training, for the U-Net.

# %%
def receptive_field(net, size):
    """|d output[centre] / d input| for a random input image of shape (1, 1, size, size)."""
    net.eval()
    x = torch.rand(1, 1, size, size, device=device, requires_grad=True)
    net(x)[0, 0, size // 2, size // 2].backward()
    return x.grad[0, 0].abs().cpu()


cu.seed_everything(0)
unet = cu.UNet(width=UNET_WIDTH)
print(f"U-Net: depth {unet.depth}, width {UNET_WIDTH}, "
      f"{cu.count_parameters(unet):,} parameters (small CNN: "
      f"{cu.count_parameters(cnn_residual):,}, "
      f"the U-Net has {cu.count_parameters(unet) / cu.count_parameters(cnn_residual):.0f} "
      f"times as many)")
history_unet = cu.train(unet, (train.x_fbp, train.x), (val.x_fbp, val.x),
                        epochs=UNET_EPOCHS, batch_size=BATCH_SIZE, lr=LR, patience=PATIENCE,
                        device=device)
print(history_unet)
row_unet = score(unet, f"U-Net (FBPConvNet), width {UNET_WIDTH}")

# %%
N = setting.image_size
fields = {"small CNN": receptive_field(cnn_residual, N), "U-Net": receptive_field(unet, N)}
cu.show_images([torch.log10(f + 1e-8) for f in fields.values()],
               [f"{name}: log10 |∂ out(centre) / ∂ input|" for name in fields],
               vmin=-6, vmax=0, size=3.5);
extent = {}
for name, f in fields.items():
    rows, cols = torch.nonzero(f > 1e-6 * f.max(), as_tuple=True)
    extent[name] = (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)
    print(f"{name}: the centre pixel depends on a {extent[name][0]} x {extent[name][1]} "
          f"pixel region of the input")
assert extent["small CNN"] == (11, 11)
assert extent["U-Net"] == (44, 44), "the depth-3 U-Net's receptive field is 44 x 44 pixels"

# %%
psnr_unet, psnr_fbp = row_unet["PSNR (dB)"], fbp_mean
unet_vs_fbp = cu.paired_difference(row_unet["PSNR per image"], fbp_psnr)
unet_vs_cnn = cu.paired_difference(row_unet, row_residual)
print(f"test PSNR: FBP {psnr_fbp:.2f} dB, small residual CNN {row_residual['PSNR (dB)']:.2f} "
      f"dB, U-Net {psnr_unet:.2f} dB")
print(f"U-Net - FBP: {unet_vs_fbp.mean:+.2f} dB, 95 % CI [{unet_vs_fbp.low:+.2f}, "
      f"{unet_vs_fbp.high:+.2f}]")
print(unet_vs_cnn)
assert unet_vs_fbp.low > 2.0, "FBPConvNet should beat FBP by at least 2 dB"
assert unet_vs_cnn.low > 1.0, "the U-Net should beat the small CNN by at least 1 dB"

# %% [markdown]
# The U-Net sees a 44 x 44 region of the 64 x 64 image (the small CNN 11 x 11), and it
# removes artefacts that the small network cannot tell from edges: 1.9 dB more than the
# small CNN (paired interval 1.7 to 2.0 dB) and 5.8 dB more than FBP. It has 16 times the
# parameters in quick mode (117 073 against 7269, width 16) and 64 times in full mode
# (466 593, width 32) — but most of them sit in the small, coarse levels, so the time per
# image grows much less than that (see the table in section 12). This is one U-Net
# run, and the paired interval covers only the spread over test images, not over
# trainings. We did not repeat the U-Net with other seeds; the small residual CNN varied
# by only 0.1 dB between seeds, which suggests, but does not prove, that 1.9 dB is well
# clear of that noise.
#
# **Full mode** (one run): the U-Net of width 32 is 2.60 dB ahead of the small CNN
# (interval 2.47 to 2.73; the small CNN's seeds spread by 0.2 dB at this size) and 7.44
# dB ahead of FBP (7.18 to 7.71). Its best validation epoch was the 17th of 20, so early
# stopping never ended the run, and it may still have been improving.
#
# ## 8. Over-fitting and early stopping
#
# Our U-Net has more than a hundred thousand weights. With hundreds of training images
# that is fine; with very few it is not. We train the same kind of network (width 8, to keep it
# quick) on only **two** training images — each epoch shows them 8 times — with a
# larger learning rate, and watch both curves.

# %%
tiny_inputs = train.x_fbp[:TINY_TRAIN].repeat(8, 1, 1, 1)
tiny_targets = train.x[:TINY_TRAIN].repeat(8, 1, 1, 1)
cu.seed_everything(0)
unet_tiny = cu.UNet(width=8)
history_tiny = cu.train(unet_tiny, (tiny_inputs, tiny_targets), (val.x_fbp[:16], val.x[:16]),
                        epochs=TINY_EPOCHS, lr=1e-2, batch_size=TINY_TRAIN, device=device,
                        live_plot=False)              # the curves are drawn below
best = history_tiny.best_epoch
print(history_tiny)

# %%
fig = history_tiny.plot()
fig.suptitle(f"U-Net trained on {TINY_TRAIN} images")
plt.show()
train_drop = history_tiny.train_loss[best - 1] / history_tiny.train_loss[-1]
val_rise = history_tiny.val_loss[-1] / history_tiny.val_loss[best - 1]
print(f"after the best epoch ({best}): training loss ÷{train_drop:.1f}, "
      f"validation loss ×{val_rise:.2f}")
row_tiny = score(unet_tiny, f"U-Net, {TINY_TRAIN} training images")
print(f"test PSNR of the best epoch's weights: {row_tiny['PSNR (dB)']:.2f} dB "
      f"(U-Net trained on all {len(train)} images: {psnr_unet:.2f} dB)")
more_data = cu.paired_difference(row_unet, row_tiny)
print(more_data)
assert best < TINY_EPOCHS - 5, "the validation loss should stop improving well before the end"
assert train_drop > 2 and val_rise > 1.05
assert more_data.low > 0, "the U-Net trained on the whole training set should be ahead"

# %% [markdown]
# The training loss keeps falling — the network learns these two images by heart,
# streaks and noise included — while the validation loss stops improving after a few
# epochs and then rises: **over-fitting**. What it learns about two particular images
# does not carry over to others. Three remedies:
#
# - **more data** (here: the U-Net trained on the whole training set is 3.7 dB better,
#   see above, though it is also wider and trained differently. **Full mode**, one run:
#   4.96 dB, interval 4.74 to 5.18, against a network 4 times narrower; the best
#   epoch is the 9th of 60, after which the training loss falls 7.7 times while the
#   validation loss rises 9 %);
# - **early stopping**: keep the weights of the best validation epoch. `cu.train` does
#   this by default (`restore_best=True`), and with `patience=k` it stops once the
#   validation loss has not improved for $k$ epochs, which also saves the time;
# - a smaller network, weight decay, or data augmentation (flips and rotations of the
#   training pairs — for CT only those that respect the scan geometry).
#
# The validation split is what makes early stopping possible, and why the test split
# must stay untouched: choosing the epoch on the test images would make the test score
# optimistic.
#
# ## 9. Noise robustness: a network knows the noise it was trained on
#
# Our networks saw one noise level during training: a standard deviation of 2.5 % of
# the mean absolute sinogram value. A scanner set to a lower dose gives more noise; a
# different scanner gives another kind. We keep the trained weights (and the FBP filter
# and cut-off, and TV's $\lambda$, all tuned for 2.5 %) and test on the same test images
# with other noise levels, from none to four times as much
# (`setting.split("test", noise_level=...)`):

# %%
classical = cu.classical_methods(setting)           # tuned on validation, kept
tv_name, tv = [(name, method) for name, method in classical.items() if name.startswith("TV")][0]
robustness = {"FBP": {}, "small CNN (residual)": {}, "U-Net": {}, tv_name: {}}
outputs = {}                                         # for the widget below
for level in TEST_NOISE_LEVELS:
    split = setting.split("test", noise_level=level)
    x_unet = denoise(unet, split.x_fbp)
    outputs[level] = dict(fbp=split.x_fbp, unet=x_unet)
    for name, x_hat in [("FBP", split.x_fbp),
                        ("small CNN (residual)", denoise(cnn_residual, split.x_fbp)),
                        ("U-Net", x_unet), (tv_name, tv(split.y))]:
        robustness[name][level] = cu.psnr(x_hat, split.x, data_range=1.0).flatten()

levels_percent = [100 * level for level in TEST_NOISE_LEVELS]
ax = cu.plot_curves({name: (levels_percent, [float(v.mean()) for v in values.values()])
                     for name, values in robustness.items()},
                    xlabel="test noise level (% of mean |y|)", ylabel="mean test PSNR (dB)",
                    title=f"Trained (and tuned) at {100 * setting.noise_level:g} % noise, "
                          f"tested at other levels")
ax.axvline(100 * setting.noise_level, color="gray", ls=":")
plt.show()
for name, values in robustness.items():
    print(f"{name:22s}" + "  ".join(f"{lv:5.2f} %: {float(v.mean()):5.2f}" for lv, v in
                                    zip(levels_percent, values.values())))

# %%
TRAINED, HIGH = setting.noise_level, max(TEST_NOISE_LEVELS)
unet_psnr, fbp_at = robustness["U-Net"], robustness["FBP"]
unet_drop = cu.paired_difference(unet_psnr[TRAINED], unet_psnr[HIGH])
gain = {level: unet_psnr[level] - fbp_at[level] for level in TEST_NOISE_LEVELS}
gain_shrinks = cu.paired_difference(gain[TRAINED], gain[HIGH])
print(f"U-Net, {100 * TRAINED:g} % minus {100 * HIGH:g} % noise: {unet_drop.mean:.2f} dB "
      f"[{unet_drop.low:.2f}, {unet_drop.high:.2f}]")
print("U-Net minus FBP: " + ", ".join(f"{float(g.mean()):+.2f} dB at {100 * lv:g} %"
                                      for lv, g in gain.items()))
print(f"the gain at {100 * TRAINED:g} % minus the gain at {100 * HIGH:g} %: "
      f"{gain_shrinks.mean:+.2f} dB [{gain_shrinks.low:+.2f}, {gain_shrinks.high:+.2f}]")
unet_vs_tv_at_5 = cu.paired_difference(unet_psnr[0.05], robustness[tv_name][0.05])
tv_vs_fbp_at_high = cu.paired_difference(robustness[tv_name][HIGH], fbp_at[HIGH])
print(f"at 5 % noise, U-Net minus TV: {unet_vs_tv_at_5.mean:+.2f} dB "
      f"[{unet_vs_tv_at_5.low:+.2f}, {unet_vs_tv_at_5.high:+.2f}]; at {100 * HIGH:g} %, "
      f"TV minus FBP: {tv_vs_fbp_at_high.mean:+.2f} dB [{tv_vs_fbp_at_high.low:+.2f}, "
      f"{tv_vs_fbp_at_high.high:+.2f}]")
assert unet_drop.low > 3, "more noise than in training should cost the network several dB"
assert gain_shrinks.low > 1, "the network's advantage should shrink off its training noise"
assert unet_vs_tv_at_5.low > 0, "at twice the noise TV's fixed weight is too small"
assert tv_vs_fbp_at_high.high < 0, "at four times the noise TV should fall below FBP"

# %% [markdown]
# Every method here was tuned at 2.5 %, and every one suffers away from it, each in its
# own way:
#
# - **More noise.** The U-Net meets stronger grain than anything it saw, lets part of it
#   through, and loses more than its own input does: 8.6 dB from 2.5 % to 10 % (paired
#   interval 8.1 to 9.1 dB), where FBP loses 4.9 dB. Its advantage over FBP shrinks from
#   5.8 dB to 2.1 dB (the shrinking: 3.7 dB, interval 3.3 to 4.1 dB). TV with its fixed
#   $\lambda$ loses faster still — $\lambda$ should grow with the noise — from 31.0 dB to
#   17.5 dB, 2.2 dB below FBP at 10 %. At 5 % the U-Net is already ahead of TV, by 1.3 dB
#   (interval 0.8 to 1.7 dB).
# - **Less noise.** Without noise the U-Net gains only 1.4 dB (to 31.9 dB): it was never
#   shown cleaner inputs, and what limits it is what the noise-free FBP input still has,
#   the streaks of 30 angles and the blur of a cut-off chosen for noisy data. TV, whose
#   model fits these piecewise-constant images, gains 2.2 dB (to 33.2 dB).
#
# **Full mode** (one run) tells the same story about what more noise costs, with a
# larger lead for the U-Net over FBP at every level and slightly smaller drops. From
# 2.5 % to 10 % the U-Net loses 7.3 dB (interval 7.1 to 7.6 dB) where FBP loses 4.0 dB,
# and its gain over FBP shrinks from 7.4 to 4.1 dB (by 3.3 dB, 3.1 to 3.5). TV falls from
# 31.3 to 17.5 dB, 3.0 dB below FBP at 10 %, and at 5 % the U-Net is 2.4 dB ahead of it
# (2.1 to 2.7). Unlike quick mode, the U-Net is ahead of TV at 1.25 and 2.5 % too (see
# section 12). Without noise TV gains more (2.1 dB against 1.5) but only draws level
# with the U-Net (33.45 against 33.48 dB).
#
# Ducros's slides draw the practical conclusion: **train with the noise you will meet**
# (or a range of levels), and test on levels you did not train on before trusting a
# network on a new scanner.
#
# ## 10. What the network has never seen
#
# A trained network turns every input into something that looks like its training
# images. That is its strength — the prior is learned — and its danger: it may erase
# what it has not seen, or invent what is not there (a *hallucination*). Two
# experiments:
#
# 1. a test phantom with a structure that no training image has: four thin vertical
#    bars, one pixel wide and two apart, like a line of text or a fine fracture;
# 2. a real CT slice (`cu.ct_slice(normalize=True)`, resized to $N \times N$): texture,
#    fine detail, anatomy — nothing like ellipses.
#
# Both are scanned with the setting's scanner and noise, reconstructed by FBP, then by
# the U-Net, and by TV for comparison.

# %%
x_plain = test.x[:1].clone()
x_bars = x_plain.clone()
bars = torch.zeros_like(x_plain, dtype=torch.bool)
for column in (26, 29, 32, 35):                      # 1-pixel bars, 2 pixels apart
    bars[..., 38 * N // 64:46 * N // 64, column * N // 64] = True
x_bars[bars] = (x_bars[bars] + 0.5).clamp(max=1.0)
x_real = F.interpolate(cu.ct_slice(normalize=True)[None, None], size=(N, N), mode="area")


def reconstruct_all(x, seed=7):
    """Scan x with the setting's noise (fixed seed); FBP, U-Net and TV reconstructions."""
    y = setting.measure(x, generator=torch.Generator().manual_seed(seed))
    x_fbp = setting.fbp(y)
    return {"FBP": x_fbp, "U-Net": denoise(unet, x_fbp), "TV": tv(y)}


recon_plain, recon_bars, recon_real = (reconstruct_all(x) for x in (x_plain, x_bars, x_real))

# %%
images, titles = [], []
for x, recon, label in ((x_bars, recon_bars, "bars"), (x_real, recon_real, "CT slice")):
    images += [x[0, 0]] + [recon[m][0, 0] for m in ("FBP", "U-Net", "TV")]
    titles += [f"truth ({label})"] + [f"{m}: {float(cu.psnr(recon[m], x, data_range=1.0)):.1f} dB"
                                      for m in ("FBP", "U-Net", "TV")]
    images.append((recon["U-Net"] - x)[0, 0])
    titles.append("U-Net − truth")
cu.show_images(images, titles, ncols=5, size=2.8);

# %% [markdown]
# Look at the bars. In the U-Net's output they are gone: a smooth patch of raised grey
# where the truth has four bars, and the error image shows all four. To measure what
# happened, we subtract the reconstruction of the same phantom *without* bars (same
# noise): on the bars' pixels this difference tells how much of their contrast a method
# kept (1 = all of it), and in a region above the bars, where the truth does not change,
# whatever a method shows was caused by the bars somewhere else — a ghost.

# %%
above = (slice(None), slice(None), slice(12 * N // 64, 22 * N // 64),
         slice(24 * N // 64, 37 * N // 64))
caused = {m: recon_bars[m] - recon_plain[m] for m in ("FBP", "U-Net", "TV")}
kept = {m: float(d[bars].mean() / (x_bars - x_plain)[bars].mean()) for m, d in caused.items()}
ghost = {m: float(d[above].abs().mean()) for m, d in caused.items()}
real_gain = float(cu.psnr(recon_real["U-Net"], x_real, data_range=1.0)
                  - cu.psnr(recon_real["FBP"], x_real, data_range=1.0))
test_gain = row_unet["PSNR per image"] - fbp_psnr
print("share of the bars' contrast kept: "
      + ", ".join(f"{m} {v:.2f}" for m, v in kept.items()))
print("change caused by the bars in the region above them (mean |difference|): "
      + ", ".join(f"{m} {v:.4f}" for m, v in ghost.items()))
print(f"real CT slice: U-Net {real_gain:+.2f} dB over FBP (ellipse test images: "
      f"{float(test_gain.min()):+.2f} to {float(test_gain.max()):+.2f} dB, median "
      f"{float(test_gain.median()):+.2f} dB)")
# one image each; what the text below reports, in quick mode and in the full-mode run
assert max(kept.values()) < 0.5, "no method should get the thin bars back"
assert kept["U-Net"] <= kept["FBP"], "the network keeps no more than its input"
assert ghost["U-Net"] < ghost["FBP"], "the network invents no ghosts above the bars"
assert float(test_gain.min()) < real_gain < float(test_gain.median()), \
    "on a real slice the gain should lie in the test range, below its median"

# %% [markdown]
# **The bars.** FBP keeps about a third of their contrast (0.35): bars one pixel wide and
# two apart are finer than what its cut-off lets through. The U-Net keeps no more (0.32):
# a post-processing network cannot bring back what its input has lost, and having never
# seen bars, it has no reason to try; it draws the smooth ellipse it expects. It does
# not invent ghosts either: above the bars it changes less than FBP (0.0027 against
# 0.0038). TV, a global optimisation, is moved a little everywhere by the bars (0.012)
# and keeps slightly more of them (0.37) — all three fail on this structure.
#
# **The real slice.** The U-Net gains 4.6 dB over FBP, inside the range of its gains on
# the ellipse test images (3.3 to 7.8 dB) but below their median (5.7 dB), and TV does
# about as well. dival's ellipses — many, overlapping, up to the border, on a grey
# background — are a broad enough prior to carry over to this slice in PSNR. The error
# image shows what does not carry over: the fine texture of the bone and of the soft
# tissue, and the sharp outline of the vertebra, are smoothed away, because nothing like
# them was in the training set. (One slice and one noise draw: read these numbers as an
# illustration, not as a measurement of "real data".)
#
# **Full mode** (one run) agrees on the U-Net. The bars, still one pixel wide, now five
# apart, fare worse: FBP keeps 0.22 of their contrast and the U-Net 0.15, and above them
# the U-Net changes less than FBP (0.0042 against 0.0098). On the real slice the U-Net
# gains 5.1 dB over FBP, inside its range on the test images (3.5 to 10.9 dB) and below
# their median (7.3 dB). TV does not repeat its quick-mode behaviour: it keeps less of
# the bars than FBP (0.19) and changes less above them (0.0082).
#
# In neither experiment does the output warn about what is missing: it looks just as
# confident as on the test set. Both experiments are **distribution shift**: the test
# images come from another distribution than the training images (a structure that no
# training image had, or anatomy instead of ellipses), and the network, which learned a
# prior from its training set, falls back on that prior. The remedy is training data
# that cover what the scanner will see.
#
# That is a different failure from the **instability** that Antun et al. (2020) showed
# in published networks: a tiny perturbation of the input, often invisible and chosen on
# purpose (by gradient ascent, as in "What to try next"), that changes the output a lot,
# with artefacts or hallucinated detail, on images *from* the training distribution.
# Distribution shift is about *which* inputs the network has seen; instability is about
# how much the output moves when the input moves a little. We measured only the first
# here; more training data does not cure the second. Against both, checks of **data
# consistency** help (does $A f_\theta(x^\text{FBP})$ agree with $y$? — the learned
# iterative methods of lessons 06 and 07 build this in), and so do uncertainty
# estimates; hallucinated features close Ongie's lecture as an open question.
#
# ## 11. Explore: noise level and test image
#
# Move the test noise level (the U-Net was trained at 2.5 %) and the test image, and
# compare the FBP input, the U-Net output and its error. All outputs were computed in
# section 9; the widget only draws.

# %%
def show_denoising(noise_level=setting.noise_level, index=0):
    """FBP input, U-Net output, error and truth for one test image and noise level."""
    x = test.x[index, 0]
    x_fbp = outputs[noise_level]["fbp"][index, 0]
    x_unet = outputs[noise_level]["unet"][index, 0]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), layout="constrained")
    panels = [(x_fbp, f"input: FBP, {float(cu.psnr(x_fbp, x, data_range=1.0)):.2f} dB"),
              (x_unet, f"U-Net: {float(cu.psnr(x_unet, x, data_range=1.0)):.2f} dB"),
              (x_unet - x, "error: U-Net − truth"), (x, f"truth (test image {index})")]
    for ax, (image, title) in zip(axes, panels):
        error = title.startswith("error")
        im = ax.imshow(image, cmap="gray", vmin=-0.2 if error else 0, vmax=0.2 if error else 1)
        ax.set_title(title)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"test noise {100 * noise_level:g} % (training noise: "
                 f"{100 * setting.noise_level:g} %)")
    plt.show()


show_denoising(0.075, 0)

# %%
cu.interact(
    show_denoising,
    noise_level=widgets.SelectionSlider(
        options=[(f"{100 * level:g} %", level) for level in TEST_NOISE_LEVELS],
        value=setting.noise_level,
        description="noise"),
    index=widgets.IntSlider(value=0, min=0, max=len(test) - 1, description="test image"));

# %% [markdown]
# ## 12. Results on the shared test split
#
# The classical baselines of lesson 02, tuned on the validation split
# (`cu.classical_baselines`), and this lesson's networks (seed 0 of the small CNNs), all
# on the same test images. The PSNR and SSIM columns are means with the half-widths of
# their 95 % confidence intervals; the last column is each method's training budget. The
# FBP row is also the input of every network; a network's time per image includes that
# FBP.

# %%
rows = cu.classical_baselines(setting)
steps_per_epoch = -(-len(train) // BATCH_SIZE)
for row in rows:
    row["training"] = "none (tuned on validation)"
for row in (row_direct, row_residual, row_l1):
    row["training"] = f"{SMALL_EPOCHS} epochs, {SMALL_EPOCHS * steps_per_epoch} steps"
unet_epochs = len(history_unet.train_loss)
row_unet["training"] = f"{unet_epochs} epochs, {unet_epochs * steps_per_epoch} steps"
rows += [row_direct, row_residual, row_l1, row_unet]
cu.results_table(rows)

# %%
tv_row = [row for row in rows if row["method"].startswith("TV")][0]
print(f"U-Net {psnr_unet:.2f} dB in {row_unet['time / image (ms)']:.2f} ms per image; "
      f"TV {tv_row['PSNR (dB)']:.2f} dB in {tv_row['time / image (ms)']:.1f} ms per image")
unet_vs_tv = {metric: cu.paired_difference(row_unet, tv_row, metric=metric)
              for metric in ("PSNR (dB)", "SSIM")}
for d in unet_vs_tv.values():
    print(d)
if QUICK:     # in quick mode TV is ahead (see the text below)
    assert unet_vs_tv["PSNR (dB)"].high < 0, "in quick mode TV should be ahead in PSNR"
    assert unet_vs_tv["SSIM"].high < 0, "... and in SSIM"
else:         # full mode: the wider, longer-trained U-Net is ahead (the text's figures)
    assert unet_vs_tv["PSNR (dB)"].low > 0.3, "in full mode the U-Net should lead TV"
    assert unet_vs_tv["SSIM"].low > 0, "... and in SSIM"

# %%
chosen = [0, 5, 9]
x_tv = tv(test.y[chosen])
x_cnn = denoise(cnn_residual, test.x_fbp[chosen])
x_unet = denoise(unet, test.x_fbp[chosen])
images, titles = [], []
for i, k in enumerate(chosen):
    target = test.x[k:k + 1]
    for name, x_hat in [("FBP", test.x_fbp[k:k + 1]), ("TV", x_tv[i:i + 1]),
                        ("small CNN", x_cnn[i:i + 1]), ("U-Net", x_unet[i:i + 1])]:
        images.append(x_hat[0, 0])
        titles.append(f"{name}: {float(cu.psnr(x_hat, target, data_range=1.0)):.1f} dB")
    images.append(target[0, 0])
    titles.append(f"truth (test {k})")
cu.show_images(images, titles, ncols=5, vmin=0, vmax=1, size=2.8);

# %% [markdown]
# **Where the U-Net stands.** In quick mode it beats FBP by 5.8 dB and the small CNN by
# 1.9 dB (full mode: 7.4 and 2.6 dB). Once trained, it needs one network pass per image
# (about 10 ms in quick mode, the FBP included; 27 ms in full mode); TV iterates until
# it converges, each iteration a projection and a backprojection (50 to 110 ms per image
# in our quick-mode runs on a busy machine, 144 ms in full mode). For realistic image
# sizes, 3-D volumes and GPUs, where every projection is expensive, that gap grows by
# orders of magnitude.
#
# **In image quality, TV wins in quick mode**, and the paired intervals leave no doubt:
# the U-Net is 0.54 dB behind in PSNR (interval 0.40 to 0.67 dB) and 0.006 behind in
# SSIM (0.003 to 0.010). Three reasons, all of them in this setting rather than in the
# method:
#
# - dival's ellipses are piecewise constant, which is *exactly* the image model TV
#   assumes, so its hand-made prior is close to perfect here — and its weight $\lambda$
#   was tuned on validation with care, with every run converged;
# - the network has to learn that prior from examples, and 512 training images of
#   64 x 64 are few;
# - four short epochs of a U-Net of width 16 do not get all the way: the validation
#   PSNR was still rising at the last epoch.
#
# **Full mode: in our run the order reverses.** This lesson's full-mode run (one
# training, 2026-12-07: 128 x 128, the U-Net of width 32 trained on 2000 images for 20
# epochs, 5000 steps, 37 minutes on two CPU threads) is ahead of the same carefully tuned
# TV on the same 100 test images: by 0.59 dB in PSNR (interval 0.50 to 0.68 dB) and by
# 0.014 in SSIM (0.012 to 0.017), in 27 ms per image against TV's 144 ms. The interval
# covers the test images, not the training: the U-Net was trained once (the small
# CNNs' seeds spread by 0.2 dB at this size). The course's full-size benchmark
# (`benchmarks/README.md`, section "The ellipses benchmark"), whose U-Net has width 16
# and was trained 6 epochs on the same 2000 images, finds it only level with TV (+0.04
# dB, interval −0.04 to +0.12). The two runs differ in width and in training length,
# one run each, so we cannot tell which of the two made the difference.
#
# Read the published numbers with the same care. On dival's full setting, Baguer et al.
# (2020) report 29.36 dB for FBP + U-Net, trained on all 32 000 training pairs, against
# 27.96 dB for TV. Our TV, tuned on validation and run to convergence, scores well above
# that published TV, and our margin for the U-Net is 0.6 dB, not their 1.4 dB: the
# published gap may owe part of its size to a less tuned TV, or to differences in the
# data that the benchmark's notes discuss. Away from the training noise (section 9) the
# picture changes as well: at twice the noise the U-Net is ahead of TV with its fixed
# $\lambda$, in both modes. On images
# that are not piecewise constant, TV's prior is wrong, and the network's is only as
# good as its training images (section 10). Learned methods win where the training data
# describe the images better than any formula does, and where there are enough of them;
# lessons 06 and 07 put the scanner model back into the network.
#
# ## Check your understanding
#
# Click an answer: the feedback is immediate, and nothing is graded.

# %%
cu.checks.quiz(
    "A residual CNN, x + g(x), must be able to make the image darker as well as lighter. "
    "What makes that possible?",
    ["the PReLU, since its negative slope lets negative values through",
     "the last convolution, which has no activation after it",
     "the batch normalisation"],
    answer=1,
    explain="The correction g(x) is the output of the last convolution, a linear map "
            "whose weights and bias can take either sign; nothing after it clips the "
            "sign. The PReLUs act on the hidden channels, where they keep units from "
            "dying; a ReLU network could also return negative corrections.",
    wrong={0: "The activations only shape the hidden channels. Even with ReLUs there, "
              "the last convolution can combine them with negative weights."})

# %%
cu.checks.quiz(
    "You double the number of 3 x 3 layers of the small CNN, from 5 to 10. Its receptive "
    "field goes from 11 x 11 to ...",
    ["21 x 21", "22 x 22", "121 x 121"],
    answer=0,
    explain="Each 3 x 3 layer adds one pixel on each side: 2 L + 1 = 21. A plain CNN's "
            "view grows only linearly with depth, which is why the U-Net pools.",
    wrong={2: "The side grows by 2 per layer; 121 is the number of pixels of the old "
              "11 x 11 patch."})

# %%
cu.checks.quiz(
    "Trained with MSE, the network is unsure whether an edge lies here or two pixels "
    "further. What does it output?",
    ["the more likely of the two edges", "the average of the two: a blurred edge",
     "a random one of the two"],
    answer=1,
    explain="The minimiser of the expected squared error is the conditional mean, "
            "E[x | x_FBP], a blend of the possible answers (section 6). The L1 loss gives "
            "the median, which picks the more likely edge pixel by pixel.")

# %%
cu.checks.quiz(
    "The U-Net smooths away the fine bone texture of a real CT slice. Which failure is "
    "this?",
    ["an instability in the sense of Antun et al.: a tiny perturbation changes the output "
     "a lot", "distribution shift: the slice is unlike the training images",
     "over-fitting to the two training images of section 8"],
    answer=1,
    explain="Nothing was perturbed on purpose: the input is simply from another "
            "distribution than the ellipses the network was trained on, so it falls back "
            "on its learned prior. Instability is a large output change for a small "
            "input change, even on images like the training ones.",
    wrong={0: "Antun et al.'s instabilities are about small, often adversarial "
              "perturbations of an input; here the whole kind of image changed."})

# %% [markdown]
# ## Takeaways
#
# - Post-processing is supervised regression from FBP images to true images. The
#   physics is used once (FBP); the prior is learned from the training pairs, and it is
#   only as good as they are.
# - A training step is forward, loss, `zero_grad`, `backward`, `step` (in train mode);
#   evaluation is `eval()` plus `no_grad()`, with a fixed data range. The validation
#   split chooses when to stop; the test split only reports.
# - One training run is one random draw. Compare two trainings over several seeds, and
#   two methods image by image, with the paired interval: in this lesson's quick mode
#   one seed alone would have shown MSE ahead of L1 in PSNR, where the other two show a
#   tie; in full mode every seed's interval excludes zero, one with L1 ahead and two
#   with MSE ahead.
# - Residual learning (predict the artefacts, add the input) trains much faster than
#   predicting the image (4 to 7 dB ahead after two epochs, in every seed; 1.3 to 1.4
#   dB after three epochs at full size, where the direct network has caught up more);
#   the U-Net's multi-scale view removes artefacts that a small CNN cannot tell from
#   edges.
# - MSE training learns a conditional mean and blurs what is ambiguous; L1 learns a
#   median: more pixels almost exact, a few larger errors, a higher SSIM (in two seeds of
#   three at full size), a PSNR within 0.2 dB whose sign depends on the seed.
# - A hand-made prior that fits the images is hard to beat with little data: on dival's
#   piecewise-constant ellipses, TV is ahead of our quickly trained U-Net. At full size,
#   with 2000 training images, a U-Net of width 32 trained for 20 epochs was 0.6 dB
#   ahead of a carefully tuned TV (this lesson's full mode, one run), a U-Net of width
#   16 trained for 6 epochs only level with it (the course's benchmark); the
#   published benchmark, with 32 000 pairs, puts it 1.4 dB ahead of a TV that scores
#   well below ours.
# - A network is reliable only near its training distribution: more noise than in
#   training costs it several dB, and structures it never saw, or that its input has
#   lost, are smoothed away — without any warning in the output.
#
# ## What to try next
#
# - Train the U-Net with noise levels drawn at random between 1 % and 10 % (build the
#   training pairs from `setting.split("train", noise_level=...)`), and redo the
#   noise-robustness plot: what does robustness cost at 2.5 %?
# - In quick mode, train the U-Net longer (`UNET_EPOCHS = 20`) or wider
#   (`UNET_WIDTH = 32`): when does it pass TV at 64 x 64 (check with
#   `cu.paired_difference`), and what does that cost on your machine?
# - Replace the loss by `1 - cu.ssim(output, target, data_range=1.0).mean()`, or by a mix
#   of L1 and MSE, and compare the table columns.
# - Augment the training pairs with flips and 90° rotations (they map our 30 evenly
#   spaced angles onto themselves) and repeat the over-fitting experiment.
# - Add the bars (or a small bright square) to a few *training* phantoms: does the U-Net
#   keep more of their contrast? Make the bars two pixels wide: how much does FBP keep
#   now, and the U-Net?
# - Look for a small perturbation of one FBP input that changes the U-Net output a lot
#   (a few steps of gradient ascent on $\|f_\theta(x + \delta) - f_\theta(x)\|$ with
#   $\|\delta\|$ kept small), as Antun et al. did.
#
# ## References
#
# - O. Ronneberger, P. Fischer and T. Brox (2015). U-Net: convolutional networks for
#   biomedical image segmentation. *MICCAI 2015*, LNCS 9351, 234–241.
# - K. He, X. Zhang, S. Ren and J. Sun (2015). Delving deep into rectifiers: surpassing
#   human-level performance on ImageNet classification. *ICCV 2015*, 1026–1034. (PReLU)
# - D. P. Kingma and J. Ba (2015). Adam: a method for stochastic optimization. *ICLR
#   2015*.
# - K. H. Jin, M. T. McCann, E. Froustey and M. Unser (2017). Deep convolutional neural
#   network for inverse problems in imaging. *IEEE Transactions on Image Processing*
#   26(9), 4509–4522. (FBPConvNet)
# - H. Chen, Y. Zhang, M. K. Kalra, F. Lin, Y. Chen, P. Liao, J. Zhou and G. Wang (2017).
#   Low-dose CT with a residual encoder-decoder convolutional neural network. *IEEE
#   Transactions on Medical Imaging* 36(12), 2524–2535. (RED-CNN)
# - K. Zhang, W. Zuo, Y. Chen, D. Meng and L. Zhang (2017). Beyond a Gaussian denoiser:
#   residual learning of deep CNN for image denoising. *IEEE Transactions on Image
#   Processing* 26(7), 3142–3155. (DnCNN)
# - M. T. McCann, K. H. Jin and M. Unser (2017). Convolutional neural networks for
#   inverse problems in imaging: a review. *IEEE Signal Processing Magazine* 34(6),
#   85–95.
# - H. Zhao, O. Gallo, I. Frosio and J. Kautz (2017). Loss functions for image
#   restoration with neural networks. *IEEE Transactions on Computational Imaging* 3(1),
#   47–57.
# - J. Leuschner, M. Schmidt, D. Otero Baguer and P. Maass. *dival: deep inversion
#   validation library*, https://github.com/jleuschn/dival. (The "ellipses" data set and
#   its geometry, our shared setting.)
# - D. Otero Baguer, J. Leuschner and M. Schmidt (2020). Computed tomography
#   reconstruction using deep image prior and learned reconstruction methods. *Inverse
#   Problems* 36(9), 094004. (The published results on dival's ellipses.)
# - J. Adler and O. Öktem (2018). Learned primal-dual reconstruction. *IEEE Transactions
#   on Medical Imaging* 37(6), 1322–1332. (FBP + U-Net as a baseline on random
#   ellipses.)
# - V. Antun, F. Renna, C. Poon, B. Adcock and A. C. Hansen (2020). On instabilities of
#   deep learning in image reconstruction and the potential costs of AI. *Proceedings of
#   the National Academy of Sciences* 117(48), 30088–30095.
# - A. J. Reader, G. Corda, A. Mehranian, C. da Costa-Luis, S. Ellis and J. A. Schnabel
#   (2021). Deep learning for PET image reconstruction. *IEEE Transactions on Radiation
#   and Plasma Medical Sciences* 5(1), 1–25. (The small PReLU CNN and its training loop
#   follow Reader's workshop *AI for image reconstruction*.)
# - A. A. Hendriksen (2022). *Deep learning for tomographic reconstruction with limited
#   data*. PhD thesis, Leiden University. (Chapter 6: why MSE training blurs.)
# - G. Ongie (2019). *Deep learning in biomedical imaging: analysis and reconstruction*
#   (guest lecture, University of Chicago): learning to enhance a classical
#   reconstruction, and the question of hallucinated features.
# - N. Ducros. *A short intro to deep learning for image reconstruction* (lecture,
#   CREATIS Lyon): direct methods on an approximate inverse, and noise robustness.
