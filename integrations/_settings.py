"""Reading a channel's settings from the composition root's `Settings` object.

The channels' own fields (`sms_url`, `letter_dir`...) may not be declared on `Settings` yet; until they
are, the same `DECLIC_*` environment variable is read directly so a deployment configured by
environment works either way.
"""

from __future__ import annotations

import os
from typing import Any


def setting(settings: Any, name: str, default: Any = None) -> Any:
    """`settings.<name>`, else the environment variable `DECLIC_<NAME>`, else `default`."""
    value = getattr(settings, name, None)
    if value is not None:
        return value
    env = os.environ.get(f"DECLIC_{name.upper()}")
    if env is None or env == "":
        return default
    if isinstance(default, bool):
        return env.strip().lower() in {"1", "true", "yes", "on", "oui"}
    if isinstance(default, int):
        return int(env)
    if isinstance(default, float):
        return float(env)
    return env
