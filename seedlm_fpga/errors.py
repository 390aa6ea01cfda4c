"""Errors a user can cause (bad input): the CLI prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input: a missing or malformed file, an unknown name, an impossible option.

    The message is one line that names the problem; the CLI prints
    ``seedlm-fpga <command>: error: <message>`` and exits with code 2, no traceback.
    """
