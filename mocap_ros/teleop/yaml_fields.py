"""Field checks shared by the YAML loaders of teleop (joint maps, gripper sections).

Each check raises the loader's own error class (``error``), with a message that starts with
``where`` (the file, gripper or joint) and names the field, so a user can fix the YAML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def number(value: Any, where: str, error: type[ValueError]) -> float:
    """``value`` as a finite float; bools and strings are refused (YAML ``yes`` is no number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{where}: must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise error(f"{where}: must be finite, got {value!r}")
    return v


def positive(value: Any, where: str, error: type[ValueError]) -> float:
    v = number(value, where, error)
    if v <= 0:
        raise error(f"{where}: must be > 0, got {v}")
    return v


def check_fields(raw: Mapping[str, Any], required: Sequence[str], optional: Sequence[str],
                 where: str, error: type[ValueError]) -> None:
    """Every ``required`` key present, and no key outside ``required`` and ``optional`` (a
    misspelt optional field would otherwise be ignored silently)."""
    for f in required:
        if f not in raw:
            raise error(f"{where}: missing field '{f}'")
    unknown = sorted(set(raw) - set(required) - set(optional))
    if unknown:
        raise error(f"{where}: unknown field(s) {unknown}")


def joint_name(raw: Any, index: int, where: str, error: type[ValueError]) -> str:
    """The ``name`` of joint entry #``index``, which must be a mapping."""
    if not isinstance(raw, Mapping):
        raise error(f"{where}: joint #{index}: must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise error(f"{where}: joint #{index}: field 'name': missing or empty")
    return name
