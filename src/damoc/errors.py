"""One exception type for mistakes a user can fix; the CLI turns it into a one-line message."""


class DamocError(Exception):
    """Bad input or a missing resource: the message says what is wrong and what to do."""
