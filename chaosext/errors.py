"""The one exception family for expected failures of the pack.

`GamedayError` is what the CLI prints on one line. Activities raise `ActivityError` (or the
more specific `GuardrailRefused`), which is both a `GamedayError` and Chaos Toolkit's
`ActivityFailed`, so the journal records a failed activity with the same one-line message.
Each class carries the `gameday` exit code it ends a command with (docs/exit-codes.md): 1 for
an expected error, 2 for a run that is not ready, 3 for a refusal by a guardrail.
"""
from chaoslib.exceptions import ActivityFailed

__all__ = ["GamedayError", "ActivityError", "GuardrailRefused", "NotReady", "Refused"]


class GamedayError(Exception):
    """An expected failure with a user-facing, one-line message (no traceback)."""

    exit_code = 1


class ActivityError(GamedayError, ActivityFailed):
    """An activity could not do its job: which resource, what was refused, why.

    `code` keeps the AWS error code (when AWS refused) so callers can choose a fallback.
    """

    def __init__(self, message: str, code: str = None):
        super().__init__(message)
        self.code = code


class GuardrailRefused(ActivityError):
    """A safety guardrail refused a mutation; nothing was changed."""

    exit_code = 3


class Refused(GamedayError):
    """A run refused before it started: no confirmation, an unsafe target; nothing was done."""

    exit_code = 3


class NotReady(GamedayError):
    """The preflight of a real run found a FAIL row; nothing was done (as a dry run: exit 2)."""

    exit_code = 2
