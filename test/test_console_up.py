"""``mocap-ros up --console`` (the URL printed, the page's WebSocket arms the real teleop of
that process) and ``mocap-ros teleop enable|disable|status`` against it, over DDS."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("viser")
from console_helpers import free_port  # noqa: E402
from media_helpers import write_person_video  # noqa: E402
from test_up import _group_alive, _start_up, _stop  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from ros_helpers import DOMAIN_ID  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(150)]


def teleop_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    code = "import sys; from mocap_ros.cli.main import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, "teleop", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_teleop_cli_without_teleop_says_so():
    for action in ("status", "enable"):
        r = teleop_cli(action, "--timeout", "1", "--service", "/nobody_here/enable",
                       "--status-topic", "/nobody_here/status")
        assert r.returncode == 1 and "is teleop_node running?" in r.stderr, r


# slow: mocap-ros up starts the whole loop (estimator, teleop, MuJoCo) in a subprocess, ~35 s
@pytest.mark.slow
def test_up_console_arms_and_the_terminal_sees_it(tmp_path):
    video = write_person_video(tmp_path / "clip.mp4", n=15, fps=15.0, size=192)
    port = free_port()
    proc = _start_up("--camera", str(video), "--loop", "--teleop", "fr3", "--sim",
                     "--console", "--console-port", str(port))
    lines: queue.Queue[str] = queue.Queue()
    out: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            out.append(line)
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        url = None
        end = time.monotonic() + 90
        while url is None and time.monotonic() < end:
            try:
                m = re.search(r"Console: (http://\S+)", lines.get(timeout=1.0))
            except queue.Empty:
                assert proc.poll() is None, "".join(out)
                continue
            url = m.group(1) if m else None
        assert url == f"http://127.0.0.1:{port}/", "".join(out)
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send(json.dumps({"type": "heartbeat"}))
            end = time.monotonic() + 30
            answer = None
            while answer is None and time.monotonic() < end:
                ws.send(json.dumps({"type": "heartbeat"}))
                ws.send(json.dumps({"type": "enable"}))
                while True:  # skip state and images until the answer
                    msg = ws.recv(timeout=10)
                    if isinstance(msg, str) and json.loads(msg)["type"] == "answer":
                        break
                a = json.loads(msg)
                answer = a if a["ok"] else time.sleep(0.5)  # joint_states may lag at start
            assert answer and answer["message"].startswith("enabled"), answer
            # the page stays alive (visible) while the terminal looks: else the dead-man
            # would disable teleop after a second, as it should
            beating = threading.Event()
            beating.set()

            def beat() -> None:
                while beating.is_set():
                    ws.send(json.dumps({"type": "heartbeat"}))
                    time.sleep(0.2)

            beater = threading.Thread(target=beat, daemon=True)
            beater.start()
            r = teleop_cli("status")
            assert r.returncode == 0 and "fr3: ENABLED" in r.stdout, r
            watch = subprocess.Popen(
                [sys.executable, "-c", "import sys; from mocap_ros.cli.main import main; "
                 "sys.exit(main())", "teleop", "status", "--watch"],
                env=dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID)), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)  # bytes: text mode would turn each \r into \n
            # wait on the state (three rewrites of the line seen), not on a delay
            seen = bytearray()
            os.set_blocking(watch.stdout.fileno(), False)
            deadline = time.monotonic() + 30.0
            while seen.count(b"\r") < 3 and time.monotonic() < deadline \
                    and watch.poll() is None:
                chunk = watch.stdout.read()
                if chunk:
                    seen += chunk
                else:
                    time.sleep(0.05)
            os.set_blocking(watch.stdout.fileno(), True)
            watch.send_signal(signal.SIGINT)
            rest_out, w_err = watch.communicate(timeout=20)
            w_out, w_err = (bytes(seen) + rest_out).decode(), w_err.decode()
            # one line, rewritten in place
            assert watch.returncode == 0 and w_out.count("\r") >= 3, (w_out, w_err)
            assert "\n" not in w_out.rstrip("\n") and "fr3: ENABLED" in w_out
            r = teleop_cli("disable")
            assert r.returncode == 0 and "teleop disable: disabled" in r.stdout, r
            r = teleop_cli("status")
            assert "fr3: disabled" in r.stdout, r
            beating.clear()
            beater.join(2.0)
    finally:
        text = _stop(proc, 1) if proc.poll() is None else proc.communicate()[0]
        reader.join(5.0)
    text = "".join(out) + (text or "")
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
    assert not _group_alive(proc.pid)
