"""The one exception type for mistakes a user can fix.

The CLI prints a `UserError` as a single line and exits with code 2; anything else is a bug
(exit 1, traceback with `--debug`).
"""


class UserError(Exception):
    """Bad input, a wrong option or missing weights: the message says which and what to do."""
