"""The one exception family for expected failures of the pack.

`GamedayError` is what the CLI prints on one line. Activities raise `ActivityError` (or the
more specific `GuardrailRefused`), which is both a `GamedayError` and Chaos Toolkit's
`ActivityFailed`, so the journal records a failed activity with the same one-line message.
"""
from chaoslib.exceptions import ActivityFailed

__all__ = ["GamedayError", "ActivityError", "GuardrailRefused"]


class GamedayError(Exception):
    """An expected failure with a user-facing, one-line message (no traceback)."""


class ActivityError(GamedayError, ActivityFailed):
    """An activity could not do its job: which resource, what was refused, why.

    `code` keeps the AWS error code (when AWS refused) so callers can choose a fallback.
    """

    def __init__(self, message: str, code: str = None):
        super().__init__(message)
        self.code = code


class GuardrailRefused(ActivityError):
    """A safety guardrail refused a mutation; nothing was changed."""
