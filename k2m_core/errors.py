"""The exception types for mistakes a user can fix.

The CLI prints a `UserError` as a single line and exits with code 2; anything else is a bug
(exit 1, traceback with `--debug`).
"""


class UserError(Exception):
    """Bad input, a wrong option or missing weights: the message says which and what to do."""


class ConfigError(UserError):
    """A config value out of range. ``key`` is its dotted path inside the config being validated
    (``width``, or ``model.width`` once the enclosing config has prefixed it), so the code that
    knows where the value came from (an option, ``--set``, a file) can name that instead."""

    def __init__(self, key: str, value, why: str) -> None:
        super().__init__(f"{key} = {value!r} {why}")
        self.key, self.value, self.why = key, value, why

    def within(self, prefix: str) -> "ConfigError":
        return ConfigError(f"{prefix}.{self.key}", self.value, self.why)
