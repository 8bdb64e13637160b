"""``dltomo generator``: rebuild the GAN generator that the course ships in ``data/``.

::

    dltomo generator --out data/gan_generator_64.pt

trains the small GAN of :mod:`course_utils.learning.gan` (lesson 08) on 64 x 64 ellipse
phantoms of the ``"disc"`` family with the defaults of ``gan.DEFAULTS``, the settings of
the shipped file, and saves the generator with the command, time and versions that made
it (about 16 minutes on a 2-core CPU; ``data/README.md`` has the figures).
"""

from __future__ import annotations

import time

from .rebuild import command_line, rebuild_parser


def main(argv=None) -> int:
    """The rebuild command; returns the exit status."""
    # the maths is imported here, not at the top, so that importing the tools stays light
    import torch

    from ..learning.gan import (DEFAULTS, GENERATOR_PATH, Discriminator, Generator,
                                save_generator, train_gan)
    from ..simulation.phantoms import EllipsesDataset

    parser = rebuild_parser(
        "dltomo generator",
        "Train the course's small GAN on 64 x 64 random ellipses and save its "
        "generator.",
        GENERATOR_PATH, DEFAULTS)
    parser.add_argument("--snapshot", default=None,
                        help="optional file where a copy of the generator is saved while "
                             "training, to look at samples before the end")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    # the course's earlier ellipse family ("disc"), which the shipped generator learned
    images = EllipsesDataset(args.n_images, 64, seed=args.seed, style="disc").tensors()
    print(f"{len(images)} training images in {time.perf_counter() - start:.0f} s", flush=True)
    G = Generator(args.latent_dim, args.width)
    D = Discriminator(args.width)

    def snapshot(step, G, D):
        if args.snapshot:
            save_generator(G, args.snapshot, step=step)

    train_gan(G, D, images, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
              seed=args.seed, progress=False, log_every=max(1, args.steps // 20),
              callback=snapshot)
    minutes = (time.perf_counter() - start) / 60
    command = command_line("dltomo generator", args, DEFAULTS)
    path = save_generator(G, args.out, command=command, minutes=round(minutes, 1),
                          torch_version=str(torch.__version__), threads=args.threads,
                          training_data=f"EllipsesDataset({args.n_images}, 64, "
                                        f"seed={args.seed}, style='disc')")
    size = path.stat().st_size / 1e6
    print(f"saved {path} ({size:.2f} MB) after {minutes:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
