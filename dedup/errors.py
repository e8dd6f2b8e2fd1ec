"""Fatal conditions of the library; a bad input file is never one of them (it becomes a Skipped)."""


class DedupError(Exception):
    """Base class of the errors a user can act on."""


class ConfigError(DedupError):
    """An invalid parameter or data file."""


class StoreError(DedupError):
    """The database cannot be opened or was made by incompatible parameters."""


class NotFoundError(DedupError):
    """A cluster, document or run that the user asked for does not exist."""
