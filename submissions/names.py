"""Team and algorithm names as participants type them: checked once, and a team's identity.

Names are stored exactly as first given and shown that way (escaped). A team is identified by
`team_key`: "TeamA", "TeamA " and "ｔｅａｍａ" (full-width) are one team with one quota, so a
trailing space or another letter case cannot buy more submissions.
"""

from __future__ import annotations

import unicodedata

from submissions.errors import IntakeError

MAX_NAME_LENGTH = 200


def check_name(value: str, *, what: str) -> str:
    """`value` unchanged if it is an acceptable team or algorithm name, else an IntakeError."""
    if not isinstance(value, str) or not value.strip():
        raise IntakeError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise IntakeError(f"{what} must be at most {MAX_NAME_LENGTH} characters, found {len(value)}")
    control = sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")})
    if control:
        raise IntakeError(f"{what} must not hold control or format characters, found {', '.join(control)}")
    return value


def team_key(name: str) -> str:
    """The identity of a team named `name`: Unicode NFKC, whitespace trimmed and runs of it made one
    space, case-folded (then NFKC again, since case folding can leave text unnormalised)."""
    text = " ".join(unicodedata.normalize("NFKC", name).split())
    return unicodedata.normalize("NFKC", text.casefold())
