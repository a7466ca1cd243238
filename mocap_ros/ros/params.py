"""Declare ROS parameters from the config dataclasses, and read them back validated."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

T = TypeVar("T")


def descriptor(f: dataclasses.Field) -> ParameterDescriptor:
    meta = f.metadata
    desc = ParameterDescriptor(description=meta["description"])
    if meta.get("choices"):
        desc.additional_constraints = "one of: " + ", ".join(meta["choices"])
    lo, hi = meta.get("min"), meta.get("max")
    default = f.default if f.default is not dataclasses.MISSING else None
    if lo is not None and hi is not None:
        if isinstance(default, int) and not isinstance(default, bool):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                            to_value=float(hi), step=0.0)]
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
        if isinstance(default, list):
            value = [float(v) for v in value]
        values[f.name] = value
    try:
        return cls(**values).validate()  # type: ignore[attr-defined]
    except ValueError as exc:
        raise ValueError(f"invalid parameter: {exc}") from exc
