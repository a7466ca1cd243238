"""Declare ROS parameters from the config dataclasses, and read them back validated."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.node import Node

T = TypeVar("T")


def descriptor(f: dataclasses.Field) -> ParameterDescriptor:
    """Description, allowed values and range of one field.

    read_only: the nodes read their parameters once at start-up, so a later `ros2 param
    set` must fail loudly rather than appear to tighten a safety limit that is not applied.
    Float fields use dynamic typing so that `rate_hz:=100` or `focal_length: 600` (integers
    in YAML/launch) are accepted; their range is then enforced by the dataclass's validate().
    """
    meta = f.metadata
    desc = ParameterDescriptor(description=meta["description"], read_only=True)
    if meta.get("choices"):
        desc.additional_constraints = "one of: " + ", ".join(meta["choices"])
    lo, hi = meta.get("min"), meta.get("max")
    default = f.default if f.default is not dataclasses.MISSING else None
    if isinstance(default, float) or meta.get("auto"):
        desc.dynamic_typing = True
        if lo is not None and hi is not None:
            desc.additional_constraints = ("'auto' or " if meta.get("auto") else "") \
                + f"range [{lo}, {hi}]"
    elif lo is not None and hi is not None and isinstance(default, int) \
            and not isinstance(default, bool):
        desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
    return desc


def declare_dataclass(node: Node, cls: type[T]) -> T:
    """Declare one parameter per field (default = the dataclass's) and build a validated
    instance from the values the node was given (YAML / --ros-args / launch).

    Range errors name the parameter and the allowed values. rclpy enforces declared ranges
    itself; the dataclass's validate() covers choices and cross-field rules.
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        try:
            param = node.declare_parameter(f.name, default, descriptor(f))
        except Exception as exc:  # rclpy raises InvalidParameterValueException & friends
            meta = f.metadata
            allowed = meta.get("choices") or (meta.get("min"), meta.get("max"))
            raise ValueError(f"parameter '{f.name}' rejected ({exc}); allowed: {allowed}") \
                from exc
        value = param.value
        if f.metadata.get("auto") and value == "auto":
            pass
        elif f.metadata.get("auto"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"parameter '{f.name}' must be a number or 'auto', "
                                 f"got {value!r}")
            value = float(value)
        elif isinstance(default, list):
            value = [float(v) for v in value]
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"parameter '{f.name}' must be a number, got {value!r}")
            value = float(value)
        values[f.name] = value
    try:
        return cls(**values).validate()  # type: ignore[attr-defined]
    except ValueError as exc:
        raise ValueError(f"invalid parameter: {exc}") from exc
