"""The one exception type for mistakes a user can make (bad path, bad pair, bad date...)."""


class BqxUserError(Exception):
    """Raised for user errors; the CLI prints the message on one line and exits non-zero."""
