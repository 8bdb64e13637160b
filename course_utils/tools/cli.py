"""``dltomo``: the course's one command for instructors and workshops.

Usage::

    dltomo doctor [--quick] [--json]        is this computer ready for the workshop?
    dltomo release [--check] [LESSON ...]   student copies from the solution sources
    dltomo grade LESSON SUBMISSIONS/ ...    grade a class's notebooks
    dltomo generator [--out FILE] ...       rebuild the GAN generator shipped in data/
    dltomo diffusion [--out FILE] ...       rebuild the diffusion model shipped in data/
    dltomo reconstructors [--out FILE] ...  rebuild lesson 12's U-Nets and learned
                                            primal-dual shipped in data/
    dltomo ctslices [--out FILE] ...        rebuild the real CT slices shipped in data/

``dltomo <subcommand> --help`` lists each one's options.  Without the console script
(an environment where the package is not installed), ``python -m course_utils.tools``
takes the same arguments, and the doctor also runs as a plain file,
``python course_utils/tools/doctor.py``.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module in course_utils.tools, one-line description)
SUBCOMMANDS = {
    "doctor": ("doctor", "is this computer ready for the workshop?"),
    "release": ("release", "student copies (lessons/) from the solution sources"),
    "grade": ("grade", "grade a class's notebooks (with or without nbgrader)"),
    "generator": ("generator", "rebuild the GAN generator shipped in data/"),
    "diffusion": ("diffusion", "rebuild the diffusion model shipped in data/"),
    "reconstructors": ("reconstructors",
                       "rebuild lesson 12's U-Nets and learned primal-dual shipped in data/"),
    "ctslices": ("ct_slices", "rebuild the real CT slices shipped in data/ (lesson 12)"),
}


def usage() -> str:
    """The help text: one line per subcommand."""
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: dltomo <subcommand> [options]", "", "subcommands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "`dltomo <subcommand> --help` lists the options of one subcommand."]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run ``dltomo <subcommand> [options]``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"dltomo: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    # imported only now, so that `dltomo doctor` never imports the grader (or torch)
    module_name = f"{__package__}.{SUBCOMMANDS[name][0]}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:      # the tool is there, one of its imports is not
            raise
        print(f"dltomo: the subcommand {name!r} is missing from this copy of the course "
              f"({module_name} cannot be found)", file=sys.stderr)
        return 2
    return module.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
