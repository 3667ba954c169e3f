"""flake8 with every installed plugin but qlint's: its own default checks, for comparison.

flake8 runs every installed plugin whatever ``--select`` says (selection filters what is
reported), so "flake8's own checks" in an environment where qlint is installed can only be
timed by not loading qlint's plugin. Arguments are flake8's.
"""

from __future__ import annotations

import sys

from flake8.main.cli import main
from flake8.plugins import finder

_find = finder.find_plugins


def _without_qlint(*args, **kwargs):
    # The distribution is ``qlint-tasks`` (``qlint`` before it was renamed).
    return [plugin for plugin in _find(*args, **kwargs) if plugin.package not in ("qlint", "qlint-tasks")]


finder.find_plugins = _without_qlint

if __name__ == "__main__":
    sys.exit(main())
