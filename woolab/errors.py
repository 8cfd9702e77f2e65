"""Expected lab failures: each carries a one-line message the CLI prints without a traceback."""


class LabError(Exception):
    """Base class for every expected lab failure."""


class LabNotFound(LabError):
    """An id that names no lab resource."""


class LabInvalidState(LabError):
    """The resource is busy (a failover is running) or cannot do what was asked."""


class LabNotRunning(LabError):
    """The lab is not up (or its controller died)."""


class LabStartError(LabError):
    """The lab could not start: a missing package, a port in use, a server that failed."""


class LabBusy(LabError):
    """Another run holds the lab's lock; the message names it."""


class LabConfigError(LabError):
    """A lab setting that cannot be honoured, such as an unknown DB topology (a usage error)."""

    exit_code = 2
