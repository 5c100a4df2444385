"""Error type of the data package."""


class DataError(RuntimeError):
    """A dataset could not be found, read or downloaded; the message says where and what to do."""
