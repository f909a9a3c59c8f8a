"""The deterministic A/B split: which model's ranking a user is served.

The batch scores each user only with the model of its group, and the API reports the same group, so both sides
must agree bit for bit: the rule lives here once.
"""

from __future__ import annotations

import hashlib
from typing import Final

CONTROL: Final = "control"
TEST: Final = "test"


def assign_group(user_id: int, salt: str, control_percent: int) -> str:
    """The experiment group of a user.

    Args:
        user_id: The user's id.
        salt: The split's salt; a new salt reshuffles users between groups.
        control_percent: Share of users (0..100) in the control group.

    Returns:
        ``"control"`` or ``"test"``.
    """
    digest = hashlib.md5(f"{user_id}{salt}".encode(), usedforsecurity=False).hexdigest()
    return CONTROL if int(digest, 16) % 100 < control_percent else TEST
