"""``dltomo diffusion``: rebuild the diffusion model that the course ships in ``data/``.

::

    dltomo diffusion --out data/diffusion_64.pt

trains the small diffusion model of :mod:`course_utils.learning.diffusion` (lesson 11)
on 64 x 64 random ellipses of the shared setting's family (dival's, each pixel the
average of 4 x 4 samples), drawn with a seed that none of the setting's splits uses,
with the defaults of ``diffusion.DEFAULTS`` (the settings of the shipped file), and saves
it with the command, time and versions that made it (``data/README.md`` has the figures).
"""

from __future__ import annotations

import time

from .rebuild import command_line, rebuild_parser


def main(argv=None) -> int:
    """The rebuild command; returns the exit status."""
    # the maths is imported here, not at the top, so that importing the tools stays light
    import torch

    from ..learning.diffusion import (DEFAULTS, DIFFUSION_PATH, DiffusionPrior,
                                      save_diffusion_prior, train_diffusion)
    from ..simulation.phantoms import EllipsesDataset

    parser = rebuild_parser(
        "dltomo diffusion",
        "Train the course's small diffusion model on 64 x 64 random ellipses "
        "and save it.",
        DIFFUSION_PATH, DEFAULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    # seed 1000 + seed: the shared setting's splits use seeds 0-29 (10 * seed + split)
    data_seed = 1000 + args.seed
    images = EllipsesDataset(args.n_images, 64, seed=data_seed, style="dival").tensors()
    print(f"{len(images)} training images in {time.perf_counter() - start:.0f} s", flush=True)
    prior = DiffusionPrior(args.width, args.depth, args.n_timesteps)
    losses = train_diffusion(prior, images, steps=args.steps, batch_size=args.batch_size,
                             lr=args.lr, seed=args.seed, progress=False,
                             log_every=max(1, args.steps // 20))
    for k, value in enumerate(losses, start=1):
        print(f"  steps up to {k * max(1, args.steps // 20)}: loss {value:.4f}", flush=True)
    minutes = (time.perf_counter() - start) / 60
    command = command_line("dltomo diffusion", args, DEFAULTS)
    path = save_diffusion_prior(
        prior, args.out, command=command, minutes=round(minutes, 1),
        torch_version=str(torch.__version__), threads=args.threads, losses=losses,
        training_data=f"EllipsesDataset({args.n_images}, 64, seed={data_seed}, "
                      f"style='dival')")
    size = path.stat().st_size / 1e6
    print(f"saved {path} ({size:.2f} MB) after {minutes:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
