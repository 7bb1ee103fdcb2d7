"""Text that a submission chose (file names, log lines), made safe to store and show.

Container-chosen text goes into job reasons, paths and pages. Stored as it came it can crash the
engine: names that are not UTF-8 arrive from the file system as lone surrogates that no database
can encode, and PostgreSQL refuses NUL. `shown` turns any such text into one printable line.
"""

from __future__ import annotations

import unicodedata

SHOWN_LIMIT = 500
"""Characters of container-chosen text kept in one reason (the rest is cut with '...')."""


def shown(text: str, *, limit: int = SHOWN_LIMIT) -> str:
    """`text` as one printable, storable line: undecodable bytes escaped (b'\\xff' -> '\\xff'),
    NUL and other control characters removed (line breaks and tabs become spaces), cut to `limit`."""
    raw = text.encode("utf-8", "surrogateescape")
    decoded = raw.decode("utf-8", "backslashreplace")
    kept = []
    for character in decoded:
        if character in "\n\r\t":
            kept.append(" ")
        elif unicodedata.category(character) in ("Cc", "Cs"):
            continue
        else:
            kept.append(character)
    line = "".join(kept)
    return line if len(line) <= limit else line[: max(0, limit - 3)] + "..."


LOG_LINE_MARK = "; last log line: "
"""Where a failure reason's own words end and the container's last log line begins."""


def with_log_line(reason: str, log_line: str) -> str:
    """A failure reason that quotes the container's last log line (already made `shown`)."""
    return f"{reason}{LOG_LINE_MARK}{log_line}" if log_line else reason


def without_container_text(reason: str) -> str:
    """A failure reason without the log line it quotes: the runner's own words only."""
    return reason.split(LOG_LINE_MARK, 1)[0]


def shown_block(text: str, *, limit: int) -> str:
    """Several lines of container-chosen text (a log) made safe to show: like `shown`, but line
    breaks kept; only the last `limit` characters are kept."""
    if len(text) > limit:
        text = text[-limit:]
    # An undecodable byte is shown as 4 characters ('\\xff'): a line never grows beyond 4 times its length.
    return "\n".join(shown(line, limit=4 * len(line) + 3) for line in text.replace("\r\n", "\n").split("\n"))


SPREADSHEET_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet run a CSV cell as a formula (OWASP's list)."""


def spreadsheet_safe(text: str) -> str:
    """A text cell of a published CSV that a spreadsheet shows as text, never runs: one starting
    like a formula gets a leading apostrophe. Only for text: numbers are written as numbers."""
    return "'" + text if text.startswith(SPREADSHEET_FORMULA_STARTS) else text
