"""Errors a command reports as a usage error: one ``qlint: error:`` line and exit code 2.

Kept apart from ``qlint.cli`` so that the commands it runs can raise them without importing it.
"""


class UsageError(Exception):
    """Arguments that cannot be acted on (a path to write that cannot be written, a rule that does not exist)."""
