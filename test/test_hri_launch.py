"""`ros2 launch mocap_ros mocap.launch.py rep155:=true operator_lock:=true` for real: camera_node
plays the shared photo with two people (an image folder, looped), and a REP-155 client sees
both bodies on /humans/bodies/tracked and the followed one's joint_states; Ctrl-C stops all
three nodes cleanly. The helpers are test_launch_cli's (it skips without the ros2 CLI)."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("hri_msgs.msg", reason="hri_msgs missing: run scripts/build_ros.sh")

from test_launch_cli import _assert_clean, _camera_yaml, _sigint, _start

from real_images_pack import SKIP_REASON, pack_root
from ros_helpers import collect

pytestmark = [pytest.mark.ros, pytest.mark.timeout(150)]


def test_mocap_launch_rep155(tmp_path):
    root = pack_root()
    if root is None:
        pytest.skip(SKIP_REASON)
    from hri_msgs.msg import IdsList
    from sensor_msgs.msg import JointState

    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(root / "multi/crowdpose/106848.jpg", folder / "000.jpg")  # tmp, not the repo
    cam = _camera_yaml(tmp_path).read_text().replace("fps: 30.0", "fps: 5.0")
    (tmp_path / "camera.yaml").write_text(cam)
    proc = _start(tmp_path, "mocap.launch.py", "camera:=mocap_ros", f"source:={folder}/",
                  f"camera_config:={tmp_path / 'camera.yaml'}", "rep155:=true",
                  "operator_lock:=true")
    try:
        lists = collect(IdsList, "/humans/bodies/tracked", 3, 90.0)
        two = [m for m in lists if len(m.ids) == 2]
        assert two, [list(m.ids) for m in lists]
        followed = next(i for i in two[-1].ids if i.startswith("t"))
        js = collect(JointState, f"/humans/bodies/{followed}/joint_states", 1, 30.0)
        assert js and js[0].name[0] == f"waist_{followed}"
    finally:
        out = _sigint(proc)
    _assert_clean(proc, out, ["camera_node", "mocap_node", "hri_bridge"])
