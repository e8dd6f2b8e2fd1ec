"""Fatal conditions of the library; a bad input file is never one of them (it becomes a Skipped)."""


class DedupError(Exception):
    """Base class of the errors a user can act on."""


class ConfigError(DedupError):
    """An invalid parameter or data file."""


class StoreError(DedupError):
    """The database cannot be opened or was made by incompatible parameters."""


class NotFoundError(DedupError):
    """A cluster, document or run that the user asked for does not exist."""


class LockedError(DedupError):
    """Another scan holds the database's lock (the cron contract's exit code 75)."""


class MassRemovalError(DedupError):
    """A scan would mark most stored files gone: an empty or unmounted crawl, most likely."""


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived: stop, leave the database consistent, exit 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
