"""Errors a user can cause (bad input): the CLI prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input: a missing or malformed file, an unknown name, an impossible option.

    The message is one line that names the problem; the CLI prints
    ``seedlm-fpga <command>: error: <message>`` and exits with code 2, no traceback.
    """


class UserOSError(UserError, OSError):
    """A file-system failure the user's files or machine caused (unreadable input, full disk,
    read-only folder): printed as one line like any UserError, and still an OSError for
    callers that treat a failed write as optional (caches)."""
