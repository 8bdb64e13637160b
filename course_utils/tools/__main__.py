"""``python -m course_utils.tools <subcommand>``: the same as the ``dltomo`` command."""

from .cli import main

raise SystemExit(main())
