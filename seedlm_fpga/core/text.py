"""Plain-text tables for the terminal (compress, inspect and evaluate share one layout)."""
from __future__ import annotations


def format_table(head: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """A plain text table; columns in `right` are right-aligned."""
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.rjust(w) if i in right else c.ljust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])
