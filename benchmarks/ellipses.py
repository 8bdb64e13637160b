"""The course's methods on dival's "ellipses" benchmark, next to the published table.

Runs the full-mode shared setting (``cu.SparseViewSetting(size=128)``: 128 x 128 dival
ellipses, 30 angles, 183 detector pixels, 2.5 % noise, data simulated on a 4x finer
grid) and scores every method on the first 100 test images (the deep image prior and the
neural field, which fit one network per image, and diffusion posterior sampling, which
draws several samples per image, on the first 20) with dival's metrics
(PSNR and SSIM with the data range max - min of each ground-truth image, which is 1 here).
Every hyper-parameter is tuned on the validation split.  It prints, and writes as CSV
and Markdown, one row per method in the columns of the cone-beam lecture's results
table: PSNR and SSIM (mean ± std and the 95 % interval of the mean), time per image,
training time, peak memory, parameters and training images, next to the published
numbers of Baguer, Leuschner and Schmidt (2020), Table 1 ("ellipses").

Run::

    python benchmarks/ellipses.py --budget small          # CPU: hours, see benchmarks/README.md
    python benchmarks/ellipses.py --budget full           # GPU: more images and epochs
    python benchmarks/ellipses.py --methods classical unet   # only these groups of rows
    python benchmarks/ellipses.py --sampling point        # dival's own construction

Results go to ``benchmarks/results/ellipses_<budget>_<sampling>.csv`` and ``.md``, and
every image's scores to ``..._per_image.csv`` (``cu.load_results`` attaches them to the
rows, for paired comparisons).  A row already in the CSV is not computed again,
so an interrupted run resumes where it stopped (delete the CSV, or pass ``--fresh``, to
start over).  Two runs with different ``--methods`` may share the files: each writes
its rows under a lock, next to the other's.

The learned rows are trained here with the stated budget (epochs, training images);
their numbers are what that budget gives, not the published ones, which used all
32,000 training images of dival and a GPU.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import fcntl
import json
import math
import platform
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course_utils as cu  # noqa: E402

#: Baguer, Leuschner and Schmidt (2020), Table 1, "ellipses" (PSNR dB, SSIM), first 100
#: test images of dival's ellipses data set.
PUBLISHED = {
    "FBP": (24.18, 0.594),
    "TV": (27.96, 0.862),
    "DIP": (28.24, 0.862),
    "DIP + TV": (28.94, 0.886),
    "FBP + U-Net": (29.36, 0.899),
    "learned gradient descent": (30.30, 0.916),
    "learned primal-dual": (32.27, 0.940),
}

#: Training budgets: images, widths and epochs of the learned rows; for the deep image
#: prior (one network fitted per image, no training) the network, the most Adam steps,
#: the grid of step counts tried on validation, and how many validation and test images
#: it is fitted to (a subset: the per-image fit is slow); for diffusion posterior sampling
#: the model, its training steps and batch, the DDIM steps, the samples per image and the
#: validation and test images it is run on.  "small" is for a CPU: about an
#: hour for the groups up to "n2i" on two cores, then about 10 min for "dip", 4 min for
#: "dipstop", 45 min for "diptv", 30 min for "nf" and 65 min for "dps" (52 of them
#: training its diffusion model) on one thread each
#: (benchmarks/README.md has the measured times); "full" is for a GPU.
BUDGETS = {
    "small": dict(n_train=2000, unet_width=16, unet_epochs=6, lpd_epochs=6, lpd_iterations=5,
                  lpd_width=16, lgd_epochs=6, lgd_iterations=5, lgd_width=16, lfbp_epochs=20, n2i_epochs=3,
                  dip_width=8, dip_depth=3, dip_steps=3000, dip_every=10, dip_val=3, dip_test=20,
                  pnp_epochs=6, pnp_iterations=100, pnp_val=20,
                  dps_width=16, dps_depth=5, dps_steps=8000, dps_batch=8, dps_ddim=100,
                  dps_samples=4, dps_val=3, dps_test=20,
                  nf_steps=3000, nf_every=50, nf_rays=256, nf_val=3, nf_test=20),
    # seconds on a CPU, to check that the script runs (tests/test_benchmarks.py); its
    # numbers mean nothing
    "smoke": dict(n_train=16, unet_width=4, unet_epochs=1, lpd_epochs=1, lpd_iterations=2,
                  lpd_width=4, lgd_epochs=1, lgd_iterations=2, lgd_width=4, lfbp_epochs=1, n2i_epochs=1,
                  dip_width=2, dip_depth=2, dip_steps=4, dip_every=2, dip_val=1, dip_test=2,
                  pnp_epochs=1, pnp_iterations=3, pnp_val=2,
                  dps_width=2, dps_depth=2, dps_steps=4, dps_batch=2, dps_ddim=3,
                  dps_samples=2, dps_val=1, dps_test=2,
                  nf_steps=4, nf_every=2, nf_rays=16, nf_val=1, nf_test=2),
    "full": dict(n_train=2000, unet_width=32, unet_epochs=50, lpd_epochs=30, lpd_iterations=10,
                 lpd_width=32, lgd_epochs=30, lgd_iterations=10, lgd_width=32, lfbp_epochs=50, n2i_epochs=25,
                 dip_width=32, dip_depth=5, dip_steps=5000, dip_every=10, dip_val=5, dip_test=100,
                 pnp_epochs=50, pnp_iterations=200, pnp_val=100,
                 dps_width=32, dps_depth=5, dps_steps=40000, dps_batch=16, dps_ddim=100,
                 dps_samples=8, dps_val=5, dps_test=100,
                 nf_steps=5000, nf_every=10, nf_rays=512, nf_val=5, nf_test=100),
}

COLUMNS = ["method", "family", "PSNR (dB)", "PSNR std", "PSNR ±95%", "SSIM", "SSIM std",
           "SSIM ±95%", "SSIM (dival)", "time / image (ms)", "training time (s)", "peak memory (MB)",
           "parameters", "training images", "budget", "published PSNR", "published SSIM"]


# --- helpers ---------------------------------------------------------------------------
def _peak_memory_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # the process's peak resident memory (Linux reports kilobytes)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _row(name, family, scores, *, training_time=0.0, parameters=0, training_images=0,
         budget="", published=None, device=None):
    p, s = scores["PSNR per image"], scores["SSIM per image"]
    row = {
        "method": name, "family": family,
        "PSNR (dB)": float(p.mean()), "PSNR std": float(p.std()),
        "PSNR ±95%": scores["PSNR ±95%"],
        "SSIM": float(s.mean()), "SSIM std": float(s.std()), "SSIM ±95%": scores["SSIM ±95%"],
        "SSIM (dival)": scores["SSIM (dival)"],
        "time / image (ms)": scores["time / image (ms)"],
        "training time (s)": training_time,
        "peak memory (MB)": _peak_memory_mb(device),
        "parameters": parameters, "training images": training_images, "budget": budget,
        "published PSNR": published[0] if published else "",
        "published SSIM": published[1] if published else "",
    }
    row["per image"] = {"PSNR (dB)": p.tolist(), "SSIM": s.tolist(),
                        "SSIM (dival)": scores["SSIM (dival) per image"].tolist()}
    return row


def _dival_scores(reconstruct, split, name, parameters=0):
    """cu.evaluate, plus SSIM as dival computes it.

    dival scores with the data range max - min of each ground truth (1 for every image
    here, checked) and with ``skimage.metrics.structural_similarity``'s defaults: a 7 x 7
    uniform window with the sample covariance, where ``cu.ssim`` uses Wang et al.'s
    11 x 11 Gaussian window; the two give different numbers for the same images.
    """
    from skimage.metrics import structural_similarity

    outputs = []

    def keep(y):
        x_hat = reconstruct(y)
        outputs.append(x_hat.detach().cpu())
        return x_hat

    row = cu.evaluate(keep, split, name=name, parameters=parameters)
    truth = split[1] if isinstance(split, tuple) else split.x
    ranges = (truth.amax(dim=(-2, -1)) - truth.amin(dim=(-2, -1))).flatten()
    if not torch.allclose(ranges, torch.ones_like(ranges)):
        raise RuntimeError("the ground truths do not span [0, 1]: rescore with their ranges")
    x_hat, x = torch.cat(outputs).double().numpy(), truth.cpu().double().numpy()
    row["SSIM (dival) per image"] = torch.tensor(
        [structural_similarity(x_hat[i, 0], x[i, 0], data_range=1.0) for i in range(len(x))])
    row["SSIM (dival)"] = float(row["SSIM (dival) per image"].mean())
    return row


# --- the methods ----------------------------------------------------------------------
def classical_rows(setting, budget, device):
    methods = cu.classical_methods(setting)
    tuning = methods.tuning
    rows = []
    for label, method in methods.items():
        short = label.split()[0]
        scores = _dival_scores(method, setting.test, label)
        note = {"FBP": "filter and cut-off tuned on validation",
                "SIRT": "iterations tuned on validation",
                "CGLS": "iterations tuned on validation",
                "TV": f"λ tuned on validation (grid ratio 1.19), to convergence "
                      f"(tol 1e-4); {len(tuning['TV scores'])} weights tried"}[short]
        rows.append(_row(label, "classical", scores, budget=note,
                         published=PUBLISHED.get(short), device=device))
    return rows


def unet_row(setting, budget, device):
    cu.seed_everything(0)
    unet = cu.UNet(width=budget["unet_width"]).to(device)
    start = time.perf_counter()
    history = cu.train(unet, (setting.train.x_fbp, setting.train.x),
                       (setting.val.x_fbp, setting.val.x), epochs=budget["unet_epochs"],
                       batch_size=16, lr=1e-3, live_plot=False, device=device)
    training_time = time.perf_counter() - start
    unet.eval()
    scores = _dival_scores(lambda y: unet(setting.fbp(y).to(device)).cpu(), setting.test,
                           "FBP + U-Net", parameters=cu.count_parameters(unet))
    return [_row("FBP + U-Net", "post-processing", scores, training_time=training_time,
                 parameters=cu.count_parameters(unet), training_images=len(setting.train),
                 budget=f"width {budget['unet_width']}, {budget['unet_epochs']} epochs, "
                        f"best on validation (epoch {history.best_epoch})",
                 published=PUBLISHED["FBP + U-Net"], device=device)]


def _train_and_score(name, family, model, inputs, budget_note, epochs, batch_size, lr,
                     setting, device, published=None):
    """Train ``model`` on (inputs(train), x) with cu.train, keep its best validation epoch,
    score it on the test split: one row."""
    start = time.perf_counter()
    history = cu.train(model, (inputs(setting.train), setting.train.x),
                       (inputs(setting.val), setting.val.x), epochs=epochs,
                       batch_size=batch_size, lr=lr, live_plot=False, device=device)
    training_time = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        scores = _dival_scores(lambda y: model(y.to(device)).cpu(), setting.test, name,
                               parameters=cu.count_parameters(model))
    return [_row(name, family, scores, training_time=training_time,
                 parameters=cu.count_parameters(model), training_images=len(setting.train),
                 budget=f"{budget_note}, {epochs} epochs, best on validation "
                        f"(epoch {history.best_epoch})",
                 published=published, device=device)]


def _operator(setting, device):
    return cu.RadonTransform(image_size=setting.image_size, geometry=setting.geometry,
                             device=device)


def lpd_row(setting, budget, device):
    """Learned primal-dual (Adler and Öktem 2018), ``cu.LearnedPrimalDual`` (lesson 07)."""
    cu.seed_everything(0)
    lpd = cu.LearnedPrimalDual(_operator(setting, device), budget["lpd_iterations"],
                               budget["lpd_width"], fbp_filter=setting.fbp_filter,
                               fbp_cutoff=setting.fbp_cutoff).to(device)
    return _train_and_score(
        "learned primal-dual", "learned iterative", lpd, lambda split: split.y,
        f"{budget['lpd_iterations']} iterations x {budget['lpd_width']} channels",
        budget["lpd_epochs"], 8, 1e-3, setting, device, PUBLISHED["learned primal-dual"])


class _FromFBP(nn.Module):
    """Learned gradient descent started at the setting's FBP: sinograms -> images."""

    def __init__(self, lgd, A, setting):
        super().__init__()
        self.lgd, self.A = lgd, A
        self.filter, self.cutoff = setting.fbp_filter, setting.fbp_cutoff

    def forward(self, y):
        return self.lgd(y, cu.fbp(self.A, y, self.filter, self.cutoff))


def lgd_row(setting, budget, device):
    """Learned gradient descent (Adler and Öktem 2017), ``cu.LearnedGradientDescent``
    (lesson 13), started at the tuned FBP."""
    cu.seed_everything(0)
    A = _operator(setting, device)
    lgd = cu.LearnedGradientDescent(A, budget["lgd_iterations"], budget["lgd_width"])
    return _train_and_score(
        "learned gradient descent", "learned iterative", _FromFBP(lgd, A, setting).to(device),
        lambda split: split.y,
        f"{budget['lgd_iterations']} iterations x {budget['lgd_width']} channels, from FBP",
        budget["lgd_epochs"], 8, 1e-3, setting, device,
        PUBLISHED["learned gradient descent"])


def lfbp_row(setting, budget, device):
    """FBP with a learned filter (lesson 04), started at Ram-Lak, trained with MSE."""
    from course_utils.checks.lesson04 import LearnedFBP

    cu.seed_everything(0)
    model = LearnedFBP(_operator(setting, device))
    return _train_and_score(
        "learned FBP (filter)", "learned classical", model, lambda split: split.y,
        "one weight per frequency, from Ram-Lak", budget["lfbp_epochs"], 32, 1e-2,
        setting, device)


def n2i_row(setting, budget, device):
    """Noise2Inverse (Hendriksen et al. 2020, lesson 10): no clean image anywhere.

    K = 2 interleaved subsets of the 30 angles (15 each), Ram-Lak sub-reconstructions,
    the X:1 scheme, the U-Net of the "unet" row (same width), trained for a fixed
    number of epochs on the training scans' noisy data only: 2 pairs per scan, so
    ``n2i_epochs`` = half the U-Net's epochs gives both the same optimiser steps.  No
    clean validation image chooses anything (the last epoch is kept).
    """
    K, scheme = 2, "X:1"
    A = _operator(setting, "cpu")
    cu.seed_everything(0)
    unet = cu.UNet(width=budget["unet_width"]).to(device)
    inputs, targets = cu.noise2inverse_pairs(cu.sub_reconstructions(A, setting.train.y, K),
                                             scheme)
    start = time.perf_counter()
    cu.train(unet, (inputs, targets), epochs=budget["n2i_epochs"], batch_size=16, lr=1e-3,
             live_plot=False, device=device)
    training_time = time.perf_counter() - start
    unet.eval()

    def reconstruct(y):
        subs = cu.sub_reconstructions(A, y.cpu(), K)
        return cu.noise2inverse_predict(unet, subs, scheme).cpu()

    scores = _dival_scores(reconstruct, setting.test, "Noise2Inverse",
                           parameters=cu.count_parameters(unet))
    return [_row("Noise2Inverse (K = 2, X:1)", "self-supervised", scores,
                 training_time=training_time, parameters=cu.count_parameters(unet),
                 training_images=len(setting.train),
                 budget=f"U-Net width {budget['unet_width']}, {budget['n2i_epochs']} epochs "
                        f"on {len(inputs)} noisy pairs of {len(setting.train)} scans "
                        f"(no clean image), last epoch", device=device)]


def _tv_weight(setting, csv_path):
    """λ of the TV row in the CSV (its name says it to 3 digits: "TV (λ=9.05)"), or tuned
    afresh on validation (the whole classical tuning: minutes at 128²)."""
    for row in _read(csv_path):
        found = re.fullmatch(r"TV \(λ=([0-9.eE+-]+)\)", row["method"])
        if found:
            return float(found.group(1))
    print("no TV row in the table: tuning TV's weight on validation first", flush=True)
    return cu.classical_methods(setting).tuning["TV weight"]


def _dip_fit(y, x, A, budget, lam, lr, n_iter, noise_norm=None, tau=1.0):
    """One deep-image-prior fit (lesson 05): a fresh U-Net (seed 0) with a sigmoid output,
    from a fixed input z (one channel of Gaussian noise of standard deviation 0.1, as in
    dival's ``DeepImagePriorCTReconstructor``) to the image; ``n_iter`` Adam steps of
    learning rate ``lr`` on ½‖A f(z) − y‖² + lam · TV(f(z)).  ``x`` only scores the
    steps; it never fits.  The image of step k (its PSNR is ``psnr[k - 1]``) is the
    network's output before the k-th update; a fit of ``n_iter`` steps returns the image
    of its last step.  (dival also clips the gradient norm to 1; this fit does not.)
    With ``noise_norm`` δ the fit ends at the discrepancy stop, the first step whose
    misfit ‖A f(z) − y‖ is at most ``tau`` · δ (or after ``n_iter`` steps)."""
    from course_utils.checks.lesson05 import record_fit

    cu.seed_everything(0)
    net = nn.Sequential(cu.UNet(in_channels=1, width=budget["dip_width"],
                                depth=budget["dip_depth"], residual=False), nn.Sigmoid())
    z = 0.1 * torch.randn(1, 1, *x.shape[-2:], generator=torch.Generator().manual_seed(0))
    net, z, y, x = net.to(A.device), z.to(A.device), y.to(A.device), x.to(A.device)
    return record_fit(net, z, y, A, x, lam=lam, n_iter=n_iter, lr=lr, store_every=n_iter,
                      noise_norm=noise_norm, tau=tau, stop=noise_norm is not None), \
        cu.count_parameters(net)


def _dip_rows(setting, budget, device, name, candidates):
    """The deep image prior with its TV weight, learning rate and number of steps chosen
    on validation: every (weight, learning rate) in ``candidates`` is fitted to
    ``dip_val`` validation images for ``dip_steps`` steps, and the candidate and step
    count (on the ``dip_every`` grid) with the best mean validation PSNR is fitted to
    the first ``dip_test`` test images."""
    A = _operator(setting, device)
    val, test = setting.val[:budget["dip_val"]], setting.test[:budget["dip_test"]]
    grid = torch.arange(budget["dip_every"], budget["dip_steps"] + 1, budget["dip_every"])
    best = (-math.inf, None, None, None)
    for lam, lr in candidates:
        curves = torch.tensor([_dip_fit(val.y[i:i + 1], val.x[i:i + 1], A, budget, lam, lr,
                                        budget["dip_steps"])[0]["psnr"]
                               for i in range(len(val))])
        scores = curves.mean(dim=0)[grid - 1]
        k = int(scores.argmax())
        print(f"{name}: λ = {lam:.3g}, learning rate {lr:g}: best mean validation PSNR "
              f"{float(scores[k]):.2f} dB at step {int(grid[k])}", flush=True)
        if scores[k] > best[0]:
            best = (float(scores[k]), lam, lr, int(grid[k]))
    _, lam, lr, steps = best
    if lam is None:
        raise RuntimeError(f"{name}: no candidate gave a finite validation PSNR")
    if steps == budget["dip_steps"]:
        print(f"{name}: the best step is the last one tried: more steps might help", flush=True)
    images, seconds = [], []
    for i in range(len(test)):
        history, parameters = _dip_fit(test.y[i:i + 1], test.x[i:i + 1], A, budget, lam, lr,
                                       steps)
        images.append(history["x_last"])
        seconds.append(history["seconds"][-1])
    scores = _dival_scores(lambda x_hat: x_hat, (torch.cat(images), test.x), name,
                           parameters=parameters)
    scores["time / image (ms)"] = 1000 * sum(seconds) / len(seconds)
    tv = f"λ = {lam:.3g}, " if lam > 0 else ""
    return [_row(name, "per-image fit (no training)", scores, parameters=parameters,
                 budget=f"U-Net width {budget['dip_width']}, depth {budget['dip_depth']}, "
                        f"sigmoid output; {tv}learning rate {lr:g}, {steps} Adam steps "
                        f"(of up to {budget['dip_steps']}), chosen on {len(val)} validation "
                        f"image{'s' if len(val) > 1 else ''}; first {len(test)} test images"
                        f"{' only' if len(test) < len(setting.test) else ''}",
                 published=PUBLISHED[name], device=device)]


def dip_row(setting, budget, device):
    """The deep image prior (Ulyanov et al. 2018; lesson 05), its learning rate (1e-3 or
    1e-2) and step count chosen on validation (Baguer et al. 2020 fix the step count too)."""
    return _dip_rows(setting, budget, device, "DIP", [(0.0, 1e-3), (0.0, 1e-2)])


def dip_tv_row(setting, budget, device, csv_path=None):
    """DIP + TV (Baguer et al. 2020; lesson 05): the weight from {λ_TV, λ_TV/3} (λ_TV: the
    TV row's), the learning rate from {1e-3, 1e-2} and the step count, all chosen on
    validation."""
    lam_tv = _tv_weight(setting, csv_path) if csv_path else \
        cu.classical_methods(setting).tuning["TV weight"]
    return _dip_rows(setting, budget, device, "DIP + TV",
                     [(lam, lr) for lam in (lam_tv, lam_tv / 3) for lr in (1e-3, 1e-2)])


#: Safety factors τ of the discrepancy principle tried on validation (neighbours differ by
#: at most 10 %; below 1 a fit would match the data more closely than the noise allows).
DIP_TAUS = (1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.4, 1.5)


def _discrepancy_step(misfits, delta, tau):
    """The first step k (from 1) with misfits[k - 1] <= tau * delta, else len(misfits)."""
    return next((k for k, m in enumerate(misfits, 1) if m <= tau * delta), len(misfits))


def _tau_scores(histories, deltas, taus):
    """Mean PSNR over the fits ``histories`` (``record_fit`` dicts, each with its noise
    norm in ``deltas``) at the discrepancy stop of every τ in ``taus``: a tensor
    (len(taus),)."""
    return torch.tensor([sum(h["psnr"][_discrepancy_step(h["misfit"], d, tau) - 1]
                             for h, d in zip(histories, deltas)) / len(histories)
                         for tau in taus])


def dip_stop_row(setting, budget, device):
    """The deep image prior stopped by the discrepancy principle (lesson 05): the same
    network and input as the "DIP" row, but each fit ends at the first step whose misfit
    reaches τ δ, with δ = ``setting.noise_norm(y)`` the noise norm expected from the
    data alone, instead of after one step count for every image.  The learning rate
    (1e-3 or 1e-2) and τ (``DIP_TAUS``) are chosen on ``dip_val`` validation images; the
    time per image is the fit up to its stop."""
    A = _operator(setting, device)
    val, test = setting.val[:budget["dip_val"]], setting.test[:budget["dip_test"]]
    name = "DIP (discrepancy stop)"
    best = (-math.inf, None, None)
    deltas = [float(setting.noise_norm(val.y[i:i + 1])) for i in range(len(val))]
    for lr in (1e-3, 1e-2):
        # each fit runs to the smallest τ's stop: every larger τ stops on the way
        histories = [_dip_fit(val.y[i:i + 1], val.x[i:i + 1], A, budget, 0.0, lr,
                              budget["dip_steps"], noise_norm=deltas[i], tau=min(DIP_TAUS))[0]
                     for i in range(len(val))]
        scores = _tau_scores(histories, deltas, DIP_TAUS)
        j = int(scores.argmax())
        print(f"{name}: learning rate {lr:g}: best mean validation PSNR "
              f"{float(scores[j]):.2f} dB at τ = {DIP_TAUS[j]:g} "
              f"({', '.join(f'{t:g}: {float(v):.2f}' for t, v in zip(DIP_TAUS, scores))})",
              flush=True)
        if scores[j] > best[0]:
            best = (float(scores[j]), lr, DIP_TAUS[j])
    _, lr, tau = best
    if lr is None:
        raise RuntimeError(f"{name}: no candidate gave a finite validation PSNR")
    if tau == min(DIP_TAUS):
        print(f"{name}: the best τ is the smallest tried", flush=True)
    images, seconds, steps, reached = [], [], [], 0
    for i in range(len(test)):
        delta = float(setting.noise_norm(test.y[i:i + 1]))
        history, parameters = _dip_fit(test.y[i:i + 1], test.x[i:i + 1], A, budget, 0.0, lr,
                                       budget["dip_steps"], noise_norm=delta, tau=tau)
        images.append(history["x_stop"])
        seconds.append(history["seconds"][-1])
        steps.append(history["k_stop"])
        reached += history["misfit"][-1] <= tau * delta
    scores = _dival_scores(lambda x_hat: x_hat, (torch.cat(images), test.x), name,
                           parameters=parameters)
    scores["time / image (ms)"] = 1000 * sum(seconds) / len(seconds)
    return [_row(name, "per-image fit (no training)", scores, parameters=parameters,
                 budget=f"U-Net width {budget['dip_width']}, depth {budget['dip_depth']}, "
                        f"sigmoid output; learning rate {lr:g}, stopped at a misfit of "
                        f"τ δ with τ = {tau:g}, both chosen on {len(val)} validation image"
                        f"{'s' if len(val) > 1 else ''}; stops at steps {min(steps)}-"
                        f"{max(steps)} (median {statistics.median(steps):g}, mean "
                        f"{statistics.mean(steps):.0f}; {reached} of {len(steps)} reached "
                        f"τ δ within {budget['dip_steps']}); first "
                        f"{len(test)} test images"
                        f"{' only' if len(test) < len(setting.test) else ''}",
                 device=device)]


class _NeuralField(nn.Module):
    """Lesson 09's neural field: coordinates p (..., 2) in [-1, 1]² -> attenuation ≥ 0.

    Fourier features of ``n_frequencies`` random frequencies of scale ``sigma`` (cycles
    per unit), three hidden layers of 64 ReLU units and a softplus output of sharpness 10.
    """

    def __init__(self, sigma, n_frequencies=32, width=64, depth=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("B", sigma * torch.randn(2, n_frequencies, generator=generator))
        layers, n_in = [], 2 * n_frequencies
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, p):
        features = cu.checks.lesson09.fourier_encoding(p, self.B)
        return nn.functional.softplus(self.mlp(features), beta=10).squeeze(-1)


def _field_fit(y, x, setting, budget, sigma, n_steps, device, record=False):
    """One neural-field fit (lesson 09's recipe): Adam on random batches of ``nf_rays``
    rays, N jittered midpoint samples per ray (a step of about 1.4 pixels), learning rate
    1e-2 decaying towards 1e-3 over ``nf_steps`` steps (lesson 09 decays over the fit's
    own length), stopped after ``n_steps`` of them, so that a shorter fit is the start of
    a longer one.  The image is the field averaged over 4 x 4 points in every pixel, as
    the ground truth averages the ellipses (``sampling="area"``), not its value at the
    pixel centres.  Returns that image (1, 1, N, N), the fitting seconds and, with
    ``record``, the PSNR every ``nf_every`` steps (``x`` only scores; it never fits)."""
    from course_utils.checks.lesson09 import ray_batch_step, render_field

    n, sub = setting.image_size, 4
    c = (2 * torch.arange(n * sub, device=device) + 1) / (n * sub) - 1
    rows, cols = torch.meshgrid(-c, c, indexing="ij")           # row 0 is the top (y = +1)
    points_in_pixels = torch.stack([cols, rows], dim=-1)

    def image(field):
        with torch.no_grad():
            fine = field(points_in_pixels).reshape(1, 1, n * sub, n * sub)
            return nn.functional.avg_pool2d(fine, sub)

    points, directions = (r.float().to(device) for r in setting.geometry.rays())
    field = _NeuralField(sigma).to(device)
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-2)
    total = budget["nf_steps"]
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 0.1 ** (k / total))
    generator = torch.Generator().manual_seed(0)
    y = y.reshape(-1).to(device)
    psnr, seconds = [], 0.0
    for k in range(1, n_steps + 1):
        start = time.perf_counter()
        ray_batch_step(field, optimizer,
                       lambda f, a, d, g: render_field(f, a, d, n, n, generator=g),
                       points, directions, y, budget["nf_rays"], generator)
        schedule.step()
        seconds += time.perf_counter() - start
        if record and k % budget["nf_every"] == 0:
            psnr.append(float(cu.psnr(image(field).cpu(), x, data_range=1.0)))
    return image(field).cpu(), seconds, psnr, cu.count_parameters(field)


#: Scales of the Fourier features tried on validation (lesson 09 uses 3 at 64 x 64).
NF_SIGMAS = (2.0, 3.0, 4.5)


def nf_row(setting, budget, device):
    """A neural field fitted to each sinogram (lesson 09), no training data: the scale of
    its Fourier features (``NF_SIGMAS``) and its number of steps are chosen on ``nf_val``
    validation images, then it is fitted to the first ``nf_test`` test images."""
    val, test = setting.val[:budget["nf_val"]], setting.test[:budget["nf_test"]]
    grid = torch.arange(budget["nf_every"], budget["nf_steps"] + 1, budget["nf_every"])
    best = (-math.inf, None, None)
    for sigma in NF_SIGMAS:
        curves = torch.tensor([_field_fit(val.y[i:i + 1], val.x[i:i + 1], setting, budget,
                                          sigma, budget["nf_steps"], device, record=True)[2]
                               for i in range(len(val))])
        scores = curves.mean(dim=0)
        k = int(scores.argmax())
        print(f"neural field: σ = {sigma:g}: best mean validation PSNR {float(scores[k]):.2f} "
              f"dB at step {int(grid[k])}", flush=True)
        if scores[k] > best[0]:
            best = (float(scores[k]), sigma, int(grid[k]))
    _, sigma, steps = best
    if sigma is None:
        raise RuntimeError("neural field: no scale gave a finite validation PSNR")
    if steps == budget["nf_steps"]:
        print("neural field: the best step is the last one tried: more steps might help",
              flush=True)
    if sigma in (min(NF_SIGMAS), max(NF_SIGMAS)):
        print(f"neural field: the best scale, {sigma:g}, is at the edge of the grid", flush=True)
    images, seconds = [], []
    for i in range(len(test)):
        x_hat, time_i, _, parameters = _field_fit(test.y[i:i + 1], test.x[i:i + 1], setting,
                                                  budget, sigma, steps, device)
        images.append(x_hat)
        seconds.append(time_i)
    scores = _dival_scores(lambda x_hat: x_hat, (torch.cat(images), test.x), "neural field",
                           parameters=parameters)
    scores["time / image (ms)"] = 1000 * sum(seconds) / len(seconds)
    return [_row("neural field", "per-image fit (no training)", scores, parameters=parameters,
                 budget=f"Fourier features σ = {sigma:g} (of {', '.join(map(str, NF_SIGMAS))}), "
                        f"{budget['nf_rays']} rays x {setting.image_size} samples per step, "
                        f"{steps} Adam steps (of up to {budget['nf_steps']}), chosen on "
                        f"{len(val)} validation image{'s' if len(val) > 1 else ''}; first "
                        f"{len(test)} test images"
                        f"{' only' if len(test) < len(setting.test) else ''}",
                 device=device)]


class _NoiseConditionalDenoiser(nn.Module):
    """D(x, σ): a U-Net that is told the noise level σ as a second input channel (as in
    FFDNet, Zhang et al. 2018), so that plug-and-play can choose the prior's strength."""

    def __init__(self, width):
        super().__init__()
        self.unet = cu.UNet(in_channels=2, out_channels=1, width=width, residual=False)

    def forward(self, x, sigma):
        level = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        return x + self.unet(torch.cat([x, level.expand_as(x)], dim=1))


#: Noise levels the plug-and-play denoiser is trained on (log-uniform) and tried at.
PNP_TRAIN_SIGMAS = (0.002, 0.1)
PNP_SIGMAS = (0.005, 0.01, 0.02, 0.04)


def pnp_row(setting, budget, device):
    """Plug-and-play proximal gradient (lesson 11, ``cu.pnp_pgd``) from the tuned FBP,
    with a noise-conditional U-Net denoiser trained here on the clean training images
    (fresh Gaussian noise every batch, σ log-uniform in ``PNP_TRAIN_SIGMAS``; no
    sinogram is seen in training).  σ and the number of iterations are chosen on
    ``pnp_val`` validation images."""
    cu.seed_everything(0)
    denoiser = _NoiseConditionalDenoiser(budget["unet_width"]).to(device)
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=1e-3)
    images = setting.train.x
    draws = torch.Generator().manual_seed(0)
    low, high = (math.log(v) for v in PNP_TRAIN_SIGMAS)
    start = time.perf_counter()
    denoiser.train()
    for _ in range(budget["pnp_epochs"]):
        for batch in torch.randperm(len(images), generator=draws).split(16):
            x = images[batch].to(device)
            sigma = torch.exp(low + (high - low) * torch.rand(len(x), 1, 1, 1, generator=draws))
            noisy = x + sigma.to(device) * torch.randn(x.shape, generator=draws).to(device)
            loss = (denoiser(noisy, sigma.to(device)) - x).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    training_time = time.perf_counter() - start
    denoiser.eval()
    A = _operator(setting, device)

    def run(y, sigma, n_iter, callback=None):
        x0 = cu.fbp(A, y, setting.fbp_filter, setting.fbp_cutoff)
        return cu.pnp_pgd(A, y, denoiser, n_iter, sigma=sigma, x0=x0, callback=callback)

    val = setting.val[:budget["pnp_val"]]
    best = (-math.inf, None, None)
    with torch.no_grad():
        for sigma in PNP_SIGMAS:
            curve = []
            run(val.y.to(device), sigma, budget["pnp_iterations"], callback=lambda k, x: curve.append(
                float(cu.psnr(x.cpu(), val.x, data_range=1.0).mean())))
            k = 1 + max(range(len(curve)), key=curve.__getitem__)
            print(f"plug-and-play: σ = {sigma:g}, best mean validation PSNR {curve[k - 1]:.2f} dB "
                  f"at iteration {k}", flush=True)
            if curve[k - 1] > best[0]:
                best = (curve[k - 1], sigma, k)
        _, sigma, n_iter = best
        if n_iter == budget["pnp_iterations"]:
            print("plug-and-play: the best iteration is the last one tried", flush=True)
        scores = _dival_scores(lambda y: run(y.to(device), sigma, n_iter).cpu(), setting.test,
                               "plug-and-play", parameters=cu.count_parameters(denoiser))
    return [_row("plug-and-play (U-Net denoiser)", "generative prior", scores,
                 training_time=training_time, parameters=cu.count_parameters(denoiser),
                 training_images=len(images),
                 budget=f"denoiser: U-Net width {budget['unet_width']} told σ, "
                        f"{budget['pnp_epochs']} epochs of clean images with fresh noise, "
                        f"last epoch; "
                        f"σ = {sigma:g} and {n_iter} iterations from FBP chosen on "
                        f"{len(val)} validation images", device=device)]


#: Guidance strengths of diffusion posterior sampling tried on validation (lesson 11 tries
#: 0.1, 0.2 and 0.5).
DPS_GUIDANCES = (0.05, 0.1, 0.2, 0.5, 1.0)


def _diffusion_prior(setting, budget, device, cache):
    """The diffusion model of the "dps" row (lesson 11's ``cu.DiffusionPrior``, one level
    deeper for 128²), trained here on the setting's clean training images with
    ``cu.train_diffusion``; saved to ``cache`` and read back from it by a later run with
    the same settings (an interrupted run does not train it twice).  Returns the model
    and its training time (s)."""
    settings = {key: budget[key] for key in ("dps_width", "dps_depth", "dps_steps",
                                             "dps_batch")}
    settings.update(n_train=len(setting.train), size=setting.image_size, lr=1e-3, seed=0,
                    n_timesteps=1000)
    if cache.exists():
        try:
            prior = cu.load_diffusion_prior(cache, device=device)
        except Exception as error:          # a damaged file: train again
            print(f"diffusion posterior sampling: cannot read {cache.name} ({error}); "
                  f"training again", flush=True)
        else:
            if prior.metadata.get("settings") == settings:
                print(f"diffusion posterior sampling: the model trained earlier, from "
                      f"{cache.name}", flush=True)
                return prior, prior.metadata["seconds"]
            print(f"diffusion posterior sampling: {cache.name} was trained with other "
                  f"settings; training again", flush=True)
    cu.seed_everything(settings["seed"])
    prior = cu.DiffusionPrior(budget["dps_width"], budget["dps_depth"],
                              settings["n_timesteps"]).to(device)
    every = max(1, budget["dps_steps"] // 20)
    start = time.perf_counter()
    losses = cu.train_diffusion(prior, setting.train.x, steps=budget["dps_steps"],
                                batch_size=budget["dps_batch"], lr=settings["lr"],
                                seed=settings["seed"], progress=False, log_every=every)
    seconds = time.perf_counter() - start
    print("diffusion posterior sampling: training loss every "
          f"{every} steps: {', '.join(f'{v:.4f}' for v in losses)} ({seconds:.0f} s)",
          flush=True)
    prior.metadata = dict(settings=settings, seconds=seconds, losses=losses)
    cu.save_diffusion_prior(prior, cache, **prior.metadata)
    prior.requires_grad_(False)
    return prior, seconds


def dps_row(setting, budget, device, cache):
    """Diffusion posterior sampling (Chung et al. 2023; lesson 11): the mean of
    ``dps_samples`` samples of ``prior.posterior_sample``, with a diffusion model trained
    here on the clean training images (no sinogram is seen in training).  The guidance
    (``DPS_GUIDANCES``) and whether each sample is finished by CGLS to the noise level δ
    (lesson 11's data-consistency step) are chosen together on ``dps_val`` validation
    images: one run of the sampler gives both versions.  The number of samples, of DDIM
    steps and the model are fixed by the budget, not tuned.  The time per image includes
    every sample."""
    prior, training_time = _diffusion_prior(setting, budget, device, cache)
    A = _operator(setting, device)
    n = budget["dps_samples"]
    name = "diffusion posterior sampling"

    def reconstruct(y, guidance):
        """The means of the n finished and of the n unfinished samples of each sinogram.
        The generator is seeded afresh for every call: every test image starts from the
        same noise (validation, with its images in one batch, draws its own)."""
        repeated = y.to(device).repeat(n, 1, 1, 1)
        finished, unfinished = prior.posterior_sample(
            A, repeated, n_steps=budget["dps_ddim"], guidance=guidance,
            delta=setting.noise_norm(repeated).flatten().to(device),
            generator=torch.Generator().manual_seed(0), return_unfinished=True)
        return tuple(x.reshape(n, len(y), *x.shape[1:]).mean(0).cpu()
                     for x in (finished, unfinished))

    val, test = setting.val[:budget["dps_val"]], setting.test[:budget["dps_test"]]
    scores = {}
    for guidance in DPS_GUIDANCES:
        for finish, x_hat in zip((True, False), reconstruct(val.y, guidance)):
            scores[guidance, finish] = float(cu.psnr(x_hat, val.x, data_range=1.0).mean())
    guidance, finish = max(scores, key=scores.get)
    print(f"{name}: mean validation PSNR, finished / unfinished: " + ", ".join(
        f"{g:g}: {scores[g, True]:.2f} / {scores[g, False]:.2f}" for g in DPS_GUIDANCES)
          + f"; guidance {guidance:g}, {'finished' if finish else 'unfinished'}", flush=True)
    if guidance in (min(DPS_GUIDANCES), max(DPS_GUIDANCES)):
        print(f"{name}: the best guidance is at the edge of the grid", flush=True)
    images, seconds = [], []
    for i in range(len(test)):
        start = time.perf_counter()
        finished, unfinished = reconstruct(test.y[i:i + 1], guidance)
        images.append(finished if finish else unfinished)
        seconds.append(time.perf_counter() - start)
    parameters = cu.count_parameters(prior.net, trainable_only=False)
    scores = _dival_scores(lambda x_hat: x_hat, (torch.cat(images), test.x), name,
                           parameters=parameters)
    scores["time / image (ms)"] = 1000 * sum(seconds) / len(seconds)
    ending = ("each finished by CGLS to the data's noise level δ" if finish else
              "not finished by CGLS (the finish lost on validation)")
    return [_row(name, "generative prior", scores, training_time=training_time,
                 parameters=parameters, training_images=len(setting.train),
                 budget=f"diffusion model: U-Net width {budget['dps_width']}, depth "
                        f"{budget['dps_depth']}, conditioned on its diffusion noise level; "
                        f"{budget['dps_steps']} steps of {budget['dps_batch']} clean images; "
                        f"mean of {n} samples of {budget['dps_ddim']} DDIM steps, {ending}; "
                        f"guidance {guidance:g} and the finish chosen on {len(val)} "
                        f"validation image{'s' if len(val) > 1 else ''}; "
                        f"first {len(test)} test images"
                        f"{' only' if len(test) < len(setting.test) else ''}",
                 device=device)]


METHODS = {"classical": classical_rows, "lfbp": lfbp_row, "unet": unet_row, "lpd": lpd_row,
           "lgd": lgd_row, "n2i": n2i_row, "pnp": pnp_row, "dps": dps_row, "dip": dip_row,
           "dipstop": dip_stop_row, "diptv": dip_tv_row, "nf": nf_row}
#: The rows each group makes (a group whose rows are all in the CSV is skipped).
ROWS = {"classical": {"FBP", "SIRT", "CGLS", "TV"}, "lfbp": {"learned FBP (filter)"},
        "unet": {"FBP + U-Net"}, "lpd": {"learned primal-dual"},
        "lgd": {"learned gradient descent"}, "n2i": {"Noise2Inverse (K = 2, X:1)"},
        "pnp": {"plug-and-play (U-Net denoiser)"},
        "dps": {"diffusion posterior sampling"}, "dip": {"DIP"},
        "dipstop": {"DIP (discrepancy stop)"}, "diptv": {"DIP + TV"}, "nf": {"neural field"}}
PER_IMAGE_COLUMNS = ["method", "image", "PSNR (dB)", "SSIM", "SSIM (dival)"]


# --- output ----------------------------------------------------------------------------
def _read(path: Path) -> list:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def _key(row) -> str:
    """Rows are matched by method name; a classical row by its first word ("TV (λ=…)")."""
    return row["method"].split()[0] if row["family"] == "classical" else row["method"]


def _order(row) -> int:
    """Rows in the order of ``METHODS`` (classical first), whoever wrote them first."""
    return next((i for i, names in enumerate(ROWS.values()) if _key(row) in names), len(ROWS))


def _save(csv_path: Path, new: list) -> None:
    """Merge ``new`` rows (and their per-image scores) into the CSV files, under a lock,
    so that two runs with different ``--methods`` can share them."""
    per_image_path = csv_path.with_name(csv_path.stem + "_per_image.csv")
    with open(csv_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        names = {_key(r) for r in new}
        rows = [r for r in _read(csv_path) if _key(r) not in names]
        rows += [{c: r[c] for c in COLUMNS} for r in new]
        rows.sort(key=_order)
        with csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        kept = {r["method"] for r in rows} - {r["method"] for r in new}
        old = [r for r in _read(per_image_path) if r["method"] in kept]
        with per_image_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=PER_IMAGE_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(old)
            for r in new:
                scores = r["per image"]
                for i in range(len(scores["PSNR (dB)"])):
                    writer.writerow({"method": r["method"], "image": i,
                                     **{k: scores[k][i] for k in PER_IMAGE_COLUMNS[2:]}})


def _check_splits(csv_path: Path, n_val: int, n_test: int) -> None:
    """Refuse to add rows to a table scored on splits of another size.

    A split's noise is drawn for the whole split at once, so the first 20 test sinograms
    of ``--n-test 100`` are not those of ``--n-test 20`` (the images are the same): rows
    of the two runs would be paired on different data.  The sizes are recorded beside
    the CSV (``*.splits.json``) when the first rows are written.
    """
    record = csv_path.with_suffix(".splits.json")
    splits = {"n_val": n_val, "n_test": n_test}
    if record.exists():
        earlier = json.loads(record.read_text())
    elif _read(csv_path):
        earlier = None
    else:
        record.write_text(json.dumps(splits) + "\n")
        return
    if earlier != splits:
        told = ("no record of its split sizes" if earlier is None else
                f"rows scored with --n-val {earlier['n_val']} --n-test {earlier['n_test']}")
        raise SystemExit(
            f"{csv_path.name} holds {told}, and this run asks for --n-val {n_val} "
            f"--n-test {n_test}. The noise of a split depends on its size, so the rows "
            "would be compared on different data. Rerun with the same sizes, write "
            "elsewhere with --out, or start again with --fresh.")


def _fmt(value, digits):
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def markdown(rows: list, header: str) -> str:
    lines = [header, "",
             "| method | PSNR (dB), mean ± std [95 % CI] | SSIM, mean ± std | SSIM as dival "
             "| published PSNR / SSIM | time / image (ms) | training (s) | peak memory (MB) "
             "| parameters | training images | budget |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        half = float(r["PSNR ±95%"])
        mean = float(r["PSNR (dB)"])
        published = (f"{_fmt(r['published PSNR'], 2)} / {_fmt(r['published SSIM'], 3)}"
                     if r["published PSNR"] not in ("", None) else "")
        lines.append(
            f"| {r['method']} | {mean:.2f} ± {_fmt(r['PSNR std'], 2)} "
            f"[{mean - half:.2f}, {mean + half:.2f}] | {_fmt(r['SSIM'], 3)} ± "
            f"{_fmt(r['SSIM std'], 3)} | {_fmt(r.get('SSIM (dival)', ''), 3)} | {published} | "
            f"{_fmt(r['time / image (ms)'], 1)} | "
            f"{_fmt(r['training time (s)'], 0)} | {_fmt(r['peak memory (MB)'], 0)} | "
            f"{int(float(r['parameters'])):,} | {r['training images']} | {r['budget']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    parser.add_argument("--methods", nargs="*", default=list(METHODS),
                        help=f"which groups of rows (default all): {list(METHODS)}")
    parser.add_argument("--sampling", choices=("area", "point"), default="area",
                        help="ground truth: pixel averages (the course's) or point "
                             "samples (dival's own)")
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--n-val", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore earlier results (the rows, and the trained diffusion "
                             "model of the dps group)")
    args = parser.parse_args()

    budget = BUDGETS[args.budget]
    device = cu.device()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"ellipses_{args.budget}_{args.sampling}"
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    cache = stem.with_name(f"diffusion_{args.budget}_{args.sampling}.pt")   # the "dps" model
    if args.fresh:
        for path in (csv_path, csv_path.with_name(csv_path.stem + "_per_image.csv"),
                     csv_path.with_suffix(".splits.json"), cache):
            path.unlink(missing_ok=True)
    _check_splits(csv_path, args.n_val, args.n_test)
    rows = _read(csv_path)
    done = {_key(r) for r in rows}
    print(f"device {device}; {len(rows)} rows already in {csv_path.name}", flush=True)

    start = time.perf_counter()
    setting = cu.SparseViewSetting(size=128, n_train=budget["n_train"], n_val=args.n_val,
                                   n_test=args.n_test, sampling=args.sampling, device="cpu")
    setting.tune_fbp()                 # FBP's filter and cut-off, on the validation split
    print(setting, setting.fbp_name, f"({time.perf_counter() - start:.0f} s)", flush=True)
    for group in args.methods:
        if group not in METHODS:
            raise SystemExit(f"unknown method group {group!r}; choose from {list(METHODS)}")
        if ROWS[group] <= done:
            print(f"{group}: already done", flush=True)
            continue
        t0 = time.perf_counter()
        extra = ({"csv_path": csv_path} if group == "diptv" else
                 {"cache": cache} if group == "dps" else {})
        _save(csv_path, METHODS[group](setting, budget, device, **extra))
        print(f"{group}: {time.perf_counter() - t0:.0f} s", flush=True)

    when = datetime.date.today().isoformat()
    threads = torch.get_num_threads()
    machine = (f"{platform.machine()}, {threads} torch thread{'s' if threads > 1 else ''}, "
               f"{torch.cuda.get_device_name(0) if device.type == 'cuda' else 'no GPU'}, "
               f"torch {torch.__version__}")
    written = {_key(r) for r in _read(csv_path)}
    fitted = [f"{label}: the first {budget[key]}"
              for label, key, groups in (("DIP rows", "dip_test", ("dip", "dipstop", "diptv")),
                                         ("diffusion posterior sampling", "dps_test", ("dps",)),
                                         ("neural field", "nf_test", ("nf",)))
              if written & set().union(*(ROWS[g] for g in groups)) and budget[key] < args.n_test]
    subset = f" ({'; '.join(fitted)})" if fitted else ""
    header = (f"Ellipses benchmark, budget `{args.budget}`, sampling `{args.sampling}`, "
              f"{args.n_test} test images{subset}; {when}; {machine}.")
    text = markdown(_read(csv_path), header)
    md_path.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
