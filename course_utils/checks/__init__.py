"""Friendly automatic checks for the exercises: ``cu.checks.<exercise>(your_function)``.

Each lesson's checks live in their own module (``lesson01.py``, ...) and are collected
here.  A check runs the learner's code on cases it makes up and prints one line: passed,
not attempted yet, or what is wrong with a hint.  The machinery is in ``_feedback.py``.
"""

from ._feedback import CheckFailed, CheckResult, compare_arrays, exercise_check, expect  # noqa: F401
from .quiz import Question, quiz  # noqa: F401
from .lesson01 import *  # noqa: F401,F403,E402
from .lesson02 import *  # noqa: F401,F403,E402
from .lesson03 import *  # noqa: F401,F403,E402
from .lesson04 import *  # noqa: F401,F403,E402
from .lesson05 import *  # noqa: F401,F403,E402
from .lesson06 import *  # noqa: F401,F403
from .lesson07 import *  # noqa: F401,F403
from .lesson08 import *  # noqa: F401,F403
from .lesson09 import *  # noqa: F401,F403
from .lesson10 import *  # noqa: F401,F403
from .lesson11 import *  # noqa: F401,F403
from .lesson12 import *  # noqa: F401,F403
from .lesson13 import *  # noqa: F401,F403
from .lesson14 import *  # noqa: F401,F403
