"""``mocap-ros up``: camera_node + mocap_node (+ teleop_node, + the simulated robot) in one
process and one executor, configured from the same YAML files as the launch files.

Why one process: a best-effort 640x480 rgb8 stream at 30 Hz between two processes lost more
than half its frames on a 2-core machine (issue 14); in one process Fast DDS hands the
message over inside the process. ``camera_process=True`` runs camera_node as its own process
instead (the launch file's arrangement), for comparison.

Parameters come from ``config/camera.yaml`` and ``config/mocap.yaml`` (the package's share
folder, as ``mocap.launch.py`` passes them; a source checkout's ``config/`` when the package
is not installed) as ``--params-file`` arguments of the context, so each node picks its own
section by node name; the only overrides are the ones given here (``source``, mocap
overrides, the robot map). Topics are remapped as ``mocap.launch.py``'s defaults do.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from mocap_ros.io.frames import classify_source
from mocap_ros.ros import bringup
from mocap_ros.ros.run import SignalCount

# mocap.launch.py's defaults for image_topic / camera_info_topic (its remappings)
IMAGE_TOPIC = "/camera/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"
REMAPS = {"image_raw": IMAGE_TOPIC, "camera_info": CAMERA_INFO_TOPIC,
          "image_raw/compressed": IMAGE_TOPIC + "/compressed"}
SIM_MODULE = "mocap_ros.ros.sim_robot"


def config_dir() -> Path:
    """The folder the launch files take their YAML from: the installed package's share
    folder, else this source checkout's ``config/``."""
    with contextlib.suppress(Exception):
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("mocap_ros")) / "config"
        if (share / "mocap.yaml").is_file():
            return share
    return Path(__file__).resolve().parents[2] / "config"


def robot_config_path(robot: str, folder: Path | None = None) -> Path:
    """``fr3`` -> config/teleop_fr3.yaml; a path is taken as it is. Unknown -> ValueError
    listing the shipped robot maps."""
    try:
        return bringup.robot_config_path(robot, folder or config_dir())
    except ValueError as exc:
        raise ValueError(f"--teleop {exc}") from None


def sim_available() -> bool:
    return importlib.util.find_spec(SIM_MODULE) is not None


@dataclass
class UpReport:
    """What ran, and frames captured / received / processed at exit."""

    arrangement: str  # "one process" | "two processes"
    source: str
    captured: int = 0  # frames camera_node published
    received: int = 0  # frames mocap_node's subscription got
    processed: int = 0  # frames mocap_node estimated a pose on
    dropped_overload: int = 0  # received, replaced by a newer one before processing
    valid: int = 0
    seconds: float = 0.0
    topics: list[str] = field(default_factory=list)
    # teleop at exit: None without teleop_node; False when it stopped with the robot still
    # commanded in motion (braking deadline, second signal): the CLI exits non-zero
    braked: bool | None = None
    teleop_commands: int = 0

    def text(self) -> str:
        lost = self.captured - self.received
        return (f"{self.arrangement}: {self.captured} frames captured, {self.received} reached "
                f"mocap_node ({lost} lost in transport), {self.processed} processed "
                f"({self.dropped_overload} skipped for a newer frame), {self.valid} valid poses, "
                f"in {self.seconds:.1f} s") + (
            "" if self.braked is None else
            f"\nteleop: {self.teleop_commands} commands published; "
            + ("at rest at exit" if self.braked else
               "STOPPED WITH THE ROBOT STILL COMMANDED IN MOTION (see the error above)"))


def _context_args(camera_yaml: Path, mocap_yaml: Path) -> list[str]:
    args = ["--ros-args", "--params-file", str(camera_yaml), "--params-file", str(mocap_yaml)]
    for name, target in REMAPS.items():
        args += ["-r", f"{name}:={target}"]
    return args


def _endpoints(node: Node) -> list[str]:
    lines = []
    for kind, items in (("publishes", node.publishers), ("subscribes", node.subscriptions)):
        for ep in items:
            topic = ep.topic_name
            if topic in ("/rosout", "/parameter_events"):
                continue
            type_name = ep.msg_type.__module__.split(".")[0] + "/" + ep.msg_type.__name__
            lines.append(f"  {node.get_name():<12} {kind:<10} {topic}  [{type_name}]")
    return lines


class _CameraWatch:
    """Counts of a camera_node in another process, from its /diagnostics."""

    def __init__(self, node: Node) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.values: dict[str, str] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _on_diag(self, msg: Any) -> None:
        for s in msg.status:
            if s.name.startswith("camera_node"):
                self.values = {kv.key: kv.value for kv in s.values}


def run_up(source: str, *, teleop: str | None = None, sim: bool = False,
           camera_config: str | os.PathLike[str] | None = None,
           mocap_config: str | os.PathLike[str] | None = None,
           mocap_overrides: dict[str, Any] | None = None,
           camera_overrides: dict[str, Any] | None = None,
           console: dict[str, Any] | None = None,
           camera_process: bool = False, exit_at_end: bool = False,
           operator_lock: bool = False,
           duration: float | None = None, domain_id: int | None = None,
           exiting: bool = False, out: Callable[[str], None] = print,
           teleop_overrides: dict[str, Any] | None = None,
           extra_nodes: Callable[[Context], list[Node]] | None = None) -> UpReport:
    """Run until Ctrl-C (or ``duration`` seconds, or the end of a video/folder with
    ``exit_at_end``); return the frame counts. ``exiting``: the caller exits next (the CLI),
    so SIGINT/SIGTERM stay ignored after the shutdown (see ``SignalCount.release``). Raises
    ValueError for a bad argument and for nodes that cannot start (the message says why).
    ``teleop_overrides``: teleop_node parameters besides the robot map; ``extra_nodes``:
    builds more nodes in the same context and executor (e.g. ``bench-loop``'s recorder),
    destroyed with the others."""
    folder = config_dir()
    camera_yaml = Path(camera_config) if camera_config else folder / "camera.yaml"
    mocap_yaml = Path(mocap_config) if mocap_config else folder / "mocap.yaml"
    for p in (camera_yaml, mocap_yaml):
        if not p.is_file():
            raise ValueError(f"parameter file {p} not found")
    try:  # a missing video file (or an unknown synthetic script) is refused before anything
        from mocap_ros.scene.source import is_synthetic, parse_spec

        if is_synthetic(str(source)):
            parse_spec(str(source))
        else:
            classify_source(str(source))
    except ValueError as exc:
        raise ValueError(f"--camera: {exc}") from None
    robot_yaml = robot_config_path(teleop, folder) if teleop else None
    # teleop.launch.py's wiring (person detector, the operator lock), from the same builder
    wiring = bringup.teleop_bringup(robot_yaml, operator_lock=operator_lock,
                                    teleop=teleop_overrides) \
        if robot_yaml is not None else None
    if operator_lock and wiring is None:
        raise ValueError("--operator-lock needs --teleop")
    mocap_overrides = {**(wiring.mocap if wiring else {}), **(mocap_overrides or {})}
    if sim and not sim_available():
        raise ValueError(f"--sim is unavailable: {SIM_MODULE} (the simulated robot node) is not "
                         "part of this installation yet")
    cam_params = {"source": str(source), **(camera_overrides or {})}
    report = UpReport("two processes" if camera_process else "one process", str(source))

    ctx = Context()
    # SIGINT/SIGTERM counted, never raised: an exception at an arbitrary point could land in
    # rclpy's message conversion or between teleop's rate limiter and its collision guard
    signals = SignalCount("mocap-ros up")
    signals.install()
    rclpy.init(context=ctx, args=_context_args(camera_yaml, mocap_yaml), domain_id=domain_id)
    nodes: list[Node] = []
    child: subprocess.Popen | None = None
    executor: SingleThreadedExecutor | None = None
    camera = mocap = watch = None
    t0 = time.monotonic()
    try:
        from mocap_ros.ros.mocap_node import MocapNode

        # mocap_node first: its subscription exists before the first frame is published
        mocap = MocapNode(context=ctx, parameter_overrides=_params(mocap_overrides or {}))
        nodes.append(mocap)
        if robot_yaml is not None:
            from mocap_ros.ros.teleop_node import TeleopNode

            nodes.append(TeleopNode(context=ctx, parameter_overrides=_params(wiring.teleop)))
        if sim:
            sim_mod = importlib.import_module(SIM_MODULE)
            sim_params = _sim_params(teleop, robot_yaml)
            nodes.append(sim_mod.SimRobotNode(context=ctx,
                                              parameter_overrides=_params(sim_params)))
        if extra_nodes is not None:
            nodes.extend(extra_nodes(ctx))
        if camera_process:
            watch_node = rclpy.create_node("up_camera_watch", context=ctx)
            nodes.append(watch_node)
            watch = _CameraWatch(watch_node)
            # last: it publishes at once
            cmd = [sys.executable, "-m", "mocap_ros.ros.camera_node",
                   *_context_args(camera_yaml, mocap_yaml)]
            for k, v in cam_params.items():
                cmd += ["-p", f"{k}:={_param_text(v)}"]
            env = dict(os.environ)
            if domain_id is not None:
                env["ROS_DOMAIN_ID"] = str(domain_id)
            child = subprocess.Popen(cmd, env=env, start_new_session=True)
        else:  # last: its capture thread starts publishing at once
            from mocap_ros.ros.camera_node import CameraNode

            camera = CameraNode(context=ctx, parameter_overrides=_params(cam_params))
            nodes.insert(0, camera)
        if console is not None:  # the operator console, with these ConsoleSettings overrides
            from mocap_ros.ros.console_node import ConsoleNode

            console = {**({"robot_config": str(robot_yaml)} if robot_yaml else {}), **console}
            nodes.append(ConsoleNode(context=ctx, parameter_overrides=_params(console)))
        executor = SingleThreadedExecutor(context=ctx)
        for n in nodes:
            executor.add_node(n)
        report.topics = [line for n in nodes if n.get_name() != "up_camera_watch"
                         for line in _endpoints(n)]
        out(f"mocap-ros up ({report.arrangement}; parameters from {camera_yaml} and "
            f"{mocap_yaml}" + (f", robot map {robot_yaml}" if robot_yaml else "") + "):")
        if camera_process:
            out(f"  camera_node  (own process, pid {child.pid}) publishes {IMAGE_TOPIC}, "
                f"{CAMERA_INFO_TOPIC}")
        for line in report.topics:
            out(line)
        for n in nodes:
            if hasattr(n, "url"):
                out(f"Console: {n.url}")
        out("Ctrl-C stops everything.")
        t0 = time.monotonic()
        _spin(executor, ctx, camera, mocap, watch, duration, exit_at_end,
              lambda: signals.count > 0)
        if signals.count:  # said at once: a second signal now skips the waiting
            out("mocap-ros up: stopping" + (" (teleop brakes to rest first)" if wiring else "")
                + "; again to leave without waiting")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # off the main thread no handler counts signals
    finally:
        report.seconds = time.monotonic() - t0
        try:
            report.braked = _brake_teleop(nodes, executor, ctx, signals.give_up)
        finally:  # whatever braking did: no camera_node process is left behind
            if child is not None:
                _stop_child(child)
            if executor is not None:
                executor.shutdown(timeout_sec=1.0)
            _fill(report, camera, mocap, watch)
            report.teleop_commands = sum(int(n.published) for n in nodes
                                         if type(n).__name__ == "TeleopNode")
            for n in nodes:  # the camera first: no new frames while the others stop
                n.destroy_node()
            rclpy.try_shutdown(context=ctx)
            signals.release(exiting)
    return report


def _spin(executor: SingleThreadedExecutor, ctx: Context, camera: Any, mocap: Any,
          watch: _CameraWatch | None, duration: float | None, exit_at_end: bool,
          stop: Callable[[], bool]) -> None:
    start = time.monotonic()
    last_change, last_processed = start, -1
    while ctx.ok() and not stop():
        executor.spin_once(timeout_sec=0.1)
        now = time.monotonic()
        if duration is not None and now - start >= duration:
            return
        if not exit_at_end or mocap is None:
            continue
        s = mocap.stats
        done = s["processed"] + s["bad_frames"] + s["errors"] + s["skipped"] + \
            s["dropped_overload"]
        if done != last_processed:
            last_processed, last_change = done, now
        ended = camera.source.ended if camera is not None else \
            watch is not None and watch.values.get("state") == "ended"
        # every frame that reached mocap_node is through it, and nothing came for a while
        if ended and done >= s["received"] and now - last_change > 1.0:
            return


def _fill(report: UpReport, camera: Any, mocap: Any, watch: _CameraWatch | None) -> None:
    if camera is not None:
        report.captured = int(camera.stats["published"])
    elif watch is not None:
        report.captured = int(watch.values.get("frames_published", 0))
    if mocap is not None:
        s = mocap.stats
        report.received, report.processed = int(s["received"]), int(s["processed"])
        report.dropped_overload, report.valid = int(s["dropped_overload"]), int(s["valid"])


def _stop_child(child: subprocess.Popen) -> None:
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGINT)
        try:
            child.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # -p source:=0 would reach the node as an integer: quote it as a YAML string
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _params(values: dict[str, Any]) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def _sim_params(teleop: str | None, robot_yaml: Path | None) -> dict[str, str]:
    """sim_robot's parameters for ``--teleop ROBOT --sim``: the model the teleop YAML
    names (a shipped one by name), and that YAML for the limits it checks commands against."""
    if robot_yaml is None:
        return {}
    import yaml

    model = (yaml.safe_load(Path(robot_yaml).read_text()) or {}).get("model") or {}
    robot = teleop if teleop in ("fr3", "g1") else str(model.get("source", ""))
    relative = Path(robot)
    if robot and not relative.is_absolute() and (Path(robot_yaml).parent / relative).is_file():
        robot = str(Path(robot_yaml).parent / relative)  # as teleop_node reads it
    if not robot:
        raise ValueError(f"--sim: {robot_yaml} names no robot model (model: source:)")
    return {"robot": robot, "limits_config": str(robot_yaml)}


def _brake_teleop(nodes: list, executor: SingleThreadedExecutor | None, ctx: Context,
                  give_up: Callable[[], bool]) -> bool | None:
    """A teleop_node that was enabled brakes to rest before anything stops (as teleop_node
    does on Ctrl-C; bounded by its braking time; a second signal gives up). None without
    teleop_node; False when it ended with the robot still commanded in motion."""
    teleops = [n for n in nodes if type(n).__name__ == "TeleopNode"]
    if not teleops:
        return None
    if executor is None or not ctx.ok():
        # nothing can brake now: at rest only if no teleop was armed or still moving
        return not any(n.controller.enabled or n.controller.stopping
                       or bool(np.any(n.controller.limiter.velocities != 0.0))
                       for n in teleops)
    from mocap_ros.ros.teleop_node import brake_to_rest

    ok = True
    for node in teleops:
        try:
            ok = brake_to_rest(node, executor, give_up) and ok
        except ExternalShutdownException:
            ok = False
    return ok
