"""``dltomo reconstructors``: rebuild lesson 12's trained reconstructors shipped in ``data/``.

::

    dltomo reconstructors --out data/reconstructors_64.pt

trains the deep ensemble of U-Nets and the learned primal-dual network of
:mod:`course_utils.learning.reconstructors` (lesson 12) on the shared setting at 64 x 64,
``cu.SparseViewSetting(64, n_train=2000, n_val=32, n_test=0)`` (seed 0: the training
phantoms are used for training, the validation phantoms to choose FBP's filter and to
report, the test phantoms never), with the defaults of ``reconstructors.DEFAULTS`` (the
settings of the shipped file), and saves them with the command, time, versions and
validation PSNRs that made them (``data/README.md`` has the figures).
"""

from __future__ import annotations

import time

from .rebuild import command_line, rebuild_parser


def main(argv=None) -> int:
    """The rebuild command; returns the exit status."""
    # the maths is imported here, not at the top, so that importing the tools stays light
    import torch

    from ..learning.reconstructors import (DEFAULTS, RECONSTRUCTORS_PATH,
                                           save_reconstructors, train_reconstructors)
    from ..simulation.setting import SparseViewSetting

    parser = rebuild_parser(
        "dltomo reconstructors",
        "Train lesson 12's deep ensemble of U-Nets and its learned primal-dual "
        "network on the shared 64 x 64 setting and save them.",
        RECONSTRUCTORS_PATH, DEFAULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    setting = SparseViewSetting(64, n_train=args.n_train, n_val=32, n_test=0)
    for split in ("train", "val"):    # draw the phantoms and their data now, to time them
        setting.split(split)
    fbp_filter, fbp_cutoff = setting.tune_fbp()
    print(f"{setting}\n{args.n_train} training and 32 validation images in "
          f"{time.perf_counter() - start:.0f} s; FBP chosen on validation: {fbp_filter}, "
          f"cut-off {fbp_cutoff:g}", flush=True)
    settings = {k: getattr(args, k) for k in DEFAULTS if k != "n_train"}
    r = train_reconstructors(setting, **settings, progress=False,
                             log=lambda line: print("  " + line, flush=True))
    minutes = (time.perf_counter() - start) / 60
    command = command_line("dltomo reconstructors", args, DEFAULTS)
    path = save_reconstructors(
        r, args.out, command=command, minutes=round(minutes, 1),
        torch_version=str(torch.__version__), threads=args.threads,
        training_data=f"SparseViewSetting(64, n_train={args.n_train}, n_val=32, n_test=0)"
                      f" (seed 0): training split for training, validation split for "
                      f"the FBP and the scores; {setting!r}")
    size = path.stat().st_size / 1e6
    scores = r.metadata["val_psnr"]
    print(f"validation PSNR (dB): FBP {scores['fbp']:.2f}, U-Nets "
          f"{', '.join(f'{v:.2f}' for v in scores['unets'])}, ensemble mean "
          f"{scores['ensemble_mean']:.2f}, learned primal-dual {scores['lpd']:.2f}", flush=True)
    print(f"saved {path} ({size:.2f} MB) after {minutes:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
