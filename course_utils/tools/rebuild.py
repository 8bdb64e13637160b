"""What every command that rebuilds a shipped file shares (``dltomo generator``,
``dltomo diffusion``, ``dltomo reconstructors``).

Each such command trains something with the settings of a ``DEFAULTS`` dict (those of the
shipped file) and stores, next to the weights, the command line that made them.  These
two helpers keep the options and that record the same in every command.
"""

from __future__ import annotations

import argparse


def rebuild_parser(prog: str, description: str, out, defaults: dict) -> argparse.ArgumentParser:
    """Options ``--out``, one ``--some-setting`` per entry of ``defaults``, and ``--threads``.

    Parameters
    ----------
    prog, description : str
        As for :class:`argparse.ArgumentParser`.
    out : str or Path
        Default output file (the shipped one in ``data/``).
    defaults : dict
        Setting name to default value; the value's type parses the option.

    Returns
    -------
    argparse.ArgumentParser
        Add any option of your own before parsing.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--out", default=str(out), help="file to write")
    for key, value in defaults.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: the machine may be shared)")
    return parser


def command_line(prog: str, args: argparse.Namespace, defaults: dict) -> str:
    """The command that reproduces a run: ``prog --setting value ...`` for every setting."""
    return prog + " " + " ".join(f"--{k.replace('_', '-')} {getattr(args, k)}"
                                 for k in defaults)
