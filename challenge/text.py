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
