"""Errors raised by the report package."""


class ReportError(ValueError):
    """A sweep directory or table cannot be reported; str(err) is one line naming the path or key."""
