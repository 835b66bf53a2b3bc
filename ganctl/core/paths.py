"""The store's root folder: ``GANCTL_HOME`` if set, else platformdirs' user data dir.

Resolved at call time, never at import, so tests and users can point it elsewhere per process.
It imports nothing of ganctl's, so any module (errors included) may ask for it.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The store root."""
    env = os.environ.get("GANCTL_HOME")
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_data_path

    return user_data_path("ganctl", appauthor=False)
