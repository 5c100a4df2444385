"""Error types of the data package."""


class DataError(RuntimeError):
    """A dataset could not be found, read or downloaded; the message says where and what to do."""


class DatasetConfigError(DataError):
    """A ``dataset`` setting that cannot be used; ``str()`` is one line ``<dotted key>: <problem>``."""

    def __init__(self, message: str):
        self.key = message.split(":", 1)[0]
        super().__init__(message)
