"""A quiet start: `make demo` fits on one screen, MediaPipe's C++ chatter only with -v, and
pyproject.toml raises no setuptools deprecation warnings."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What MediaPipe's wheel prints from C++ on a bare landmarks estimator (see core/native_logs)
CHATTER = re.compile(r"XNNPACK delegate|absl::InitializeLog|^[IW]\d{4} .*\.cc:\d+\]", re.M)


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_filter_drops_chatter_and_keeps_everything_else_including_a_traceback() -> None:
    code = (
        "import os\n"
        "from mocap_ros.core.native_logs import quiet_native_logs\n"
        "assert quiet_native_logs()\n"
        "os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR\\n')\n"
        "os.write(2, b'W0000 00:00:1796556910.562968   26911 inference_feedback_manager.cc:114]"
        " Feedback manager requires a model\\n')\n"
        "os.write(2, b'I1206 11:35:03.123456    42 gl_context.cc:357] GL version: 3.2\\n')\n"
        "os.write(2, b'E0000 00:00:1796556910.5 26911 calculator_graph.cc:887] real error\\n')\n"
        "os.write(2, b'a line of our own\\n')\n"
        "raise RuntimeError('the traceback must reach the terminal')\n"
    )
    proc = _run(code)
    assert proc.returncode == 1
    assert not CHATTER.search(proc.stderr), proc.stderr
    assert "real error" in proc.stderr  # absl errors are kept
    assert "a line of our own" in proc.stderr
    assert "RuntimeError: the traceback must reach the terminal" in proc.stderr


def test_on_a_terminal_stderr_stays_a_terminal_and_progress_bars_pass_at_once() -> None:
    """Progress bars (mocap-ros process) and ROS's coloured logs ask isatty(); a plain pipe
    would turn them off. And a bar's \\r update has no newline: it must not wait for one."""
    import pty
    import select

    code = (
        "import os, sys, time\n"
        "from mocap_ros.core.native_logs import quiet_native_logs\n"
        "assert quiet_native_logs()\n"
        "print('isatty', sys.stderr.isatty(), file=sys.stderr, flush=True)\n"
        "os.write(2, b'W0000 00:00:1796556910.5 26911 inference_feedback_manager.cc:114] x\\n')\n"
        "os.write(2, b'\\r 3/10 frames')\n"
        "time.sleep(3)\n"
        "os.write(2, b'\\r10/10 frames\\n')\n"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=slave,
                            stdout=subprocess.DEVNULL)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while b"3/10" not in seen and time.monotonic() < deadline and proc.poll() is None:
        if select.select([master], [], [], 0.1)[0]:
            seen += os.read(master, 4096)
    before_newline = proc.poll() is None  # the child still sleeps: the bar came at once
    proc.wait(timeout=30)
    with contextlib.suppress(OSError):
        while select.select([master], [], [], 0.2)[0]:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            seen += chunk
    os.close(master)
    text = seen.decode(errors="replace")
    assert "isatty True" in text, text
    assert "3/10" in text and before_newline, text
    assert "10/10 frames" in text and "inference_feedback_manager" not in text, text


def test_pyproject_has_no_setuptools_deprecations() -> None:
    """`make setup`'s `pip install -e .` printed four `project.license` deprecation boxes."""
    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SetuptoolsDeprecationWarning becomes a failure
        conf = read_configuration(ROOT / "pyproject.toml")
    assert conf["project"]["license"] == "Apache-2.0"


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_make_demo_output_fits_one_screen_without_mediapipe_chatter() -> None:
    pytest.importorskip("rclpy")
    pytest.importorskip("skimage", reason="the sample frames ship with scikit-image")
    pytest.importorskip("mediapipe", reason="the default backend is MediaPipe's")
    # Independent of the filter: a bare estimator in a plain process does print the chatter,
    # so its absence below means something.
    bare = _run("from skimage import data\n"
                "from mocap_ros.core.config import MocapConfig\n"
                "from mocap_ros.estimation.factory import make_estimator\n"
                "make_estimator(MocapConfig()).process(data.astronaut())\n")
    assert bare.returncode == 0, bare.stderr[-2000:]
    assert CHATTER.search(bare.stderr), "MediaPipe printed nothing: the test cannot see a change"

    env = {**os.environ, "ROS_DOMAIN_ID": str(10 + (os.getpid() + 13) % 90),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    env.pop("MOCAP_ROS_VERBOSE", None)
    proc = subprocess.run([sys.executable, "-m", "mocap_ros.cli.main", "demo", "--frames", "8"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert not CHATTER.search(out), out
    lines = out.splitlines()
    assert len(lines) <= 16, f"{len(lines)} lines:\n{out}"
