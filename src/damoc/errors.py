"""Exceptions a user can act on; the CLI turns each into a one-line message and an exit status.

Exit statuses (documented in the README): 0 at least one candidate ranked or the command did
its work; 1 an unexpected error (a bug: traceback shown); 2 bad input or an output that cannot
be written; 3 every candidate of a run failed; 130 interrupted.
"""

EXIT_USAGE = 2
EXIT_ALL_FAILED = 3


class DamocError(Exception):
    """Bad input or a missing resource: the message says what is wrong and what to do."""

    exit_code = EXIT_USAGE


class AllCandidatesFailed(DamocError):
    """A run finished but no candidate could be ranked (their errors are in results.json)."""

    exit_code = EXIT_ALL_FAILED
