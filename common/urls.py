"""One masking rule for every URL that postrec prints: in a message, a log line or an error.

A URL names where a server is, which an operator needs to read; it may also carry a password, which must never
reach a terminal, a log file or an HTTP client. :func:`mask_url` keeps the first and hides the second, for any
scheme (``postgresql://``, ``redis://``, ``rediss://``, ``redis+cluster://host:port,host:port``).
"""

from __future__ import annotations

import re
from typing import Final

MASK: Final = "***"
# redis-py and libpq also read a password from the query string (``?password=...``).
_QUERY_PASSWORD: Final = re.compile(r"([?&](?:password|pass|pwd)=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: ``redis://:***@host:6379/0``.

    The password is whatever stands between the first ``:`` and the last ``@`` of the part after ``://`` (a password
    may hold an unescaped ``@`` or ``/``); a URL without ``://`` is returned as it is.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{MASK}@{rest[at + 1 :]}"
    return f"{scheme}://{_QUERY_PASSWORD.sub(_masked_value, rest)}"


def _masked_value(match: re.Match[str]) -> str:
    return match.group(1) + MASK
