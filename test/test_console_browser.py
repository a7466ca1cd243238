"""The console in a real browser: Debian's headless Chromium, driven through Playwright's
Python package (its own browser downloads are never used), with the network closed: every
request that leaves this computer (127.0.0.1, localhost) is aborted and recorded. Against
real nodes: teleop_node, sim_robot (joint_states) and the console node over DDS, and a real
photograph on image_raw.

It loads the page, checks that the camera image and the robot are drawn, clicks Enable and
sees teleop/status go enabled, presses STOP, uses the keys, and closes the page while armed:
the dead-man must disable teleop. Skipped, saying why, only when chromium or playwright is
missing (.ci/run installs chromium with apt)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("viser")
playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="playwright (requirements.txt) is not installed")
CHROMIUM = os.environ.get("MOCAP_ROS_CHROMIUM") or shutil.which("chromium") \
    or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH (apt-get install chromium; .ci/run does)",
                allow_module_level=True)

from console_helpers import Loop, wait  # noqa: E402
from PIL import Image as PILImage  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from mocap_ros.ros.console.scene import ROBOT_COLOR  # noqa: E402

from ros_helpers import ros_context  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOT = os.environ.get("MOCAP_ROS_CONSOLE_SCREENSHOT")  # keep it here when set


def near(rgb: np.ndarray, color: tuple[int, int, int], tol: float) -> int:
    """Pixels whose colour points the same way as ``color`` (lit or shaded), and not grey."""
    c = np.asarray(color, float)
    px = rgb.reshape(-1, 3).astype(float)
    norm = np.linalg.norm(px, axis=1) + 1e-6
    cos = px @ c / (norm * np.linalg.norm(c))
    saturated = px.max(axis=1) - px.min(axis=1) > 40
    return int(np.count_nonzero((cos > 1.0 - tol) & saturated))


def crop(shot: np.ndarray, box: dict) -> np.ndarray:
    x, y = int(box["x"]), int(box["y"])
    return shot[y:y + int(box["height"]), x:x + int(box["width"])]


def shows(page, enabled: str) -> None:
    """The page shows teleop's state (from teleop/status, 10 Hz); generous timeout: on 2
    loaded cores the page's JavaScript may wait seconds for a turn."""
    try:
        page.wait_for_function(f"document.body.dataset.enabled === '{enabled}'", timeout=20000)
    except playwright_api.TimeoutError as exc:
        raise AssertionError(f"page never showed enabled={enabled}: mode "
                             f"{page.inner_text('#mode')!r}, answer "
                             f"{page.inner_text('#answer')!r}") from exc


@pytest.fixture
def rig():
    from skimage import data

    photo = data.astronaut()  # a real photograph that ships with scikit-image
    msg = Image(height=photo.shape[0], width=photo.shape[1], encoding="rgb8",
                step=photo.shape[1] * 3, data=photo.tobytes())
    with ros_context() as ctx:
        lp = Loop(ctx)
        stop = threading.Event()

        def camera() -> None:
            while not stop.wait(0.1):
                lp.image_pub.publish(msg)

        th = threading.Thread(target=camera, daemon=True)
        th.start()
        yield lp
        stop.set()
        th.join(2.0)
        lp.close()


# slow: Chromium renders the 3D view in software (SwiftShader), ~30 s on 2 busy cores
@pytest.mark.slow
def test_console_in_chromium(rig):
    outside: list[str] = []

    def route(r) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "http://localhost:",
                           "ws://localhost:", "data:", "blob:")):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    with tempfile.TemporaryDirectory() as profile, playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 760})
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.goto(rig.console.url)
            # the camera image arrived and the 3D view drew the robot
            page.wait_for_function("document.getElementById('camera').naturalWidth > 0",
                                   timeout=20000)
            # the 3D view renders in its own process (another site name): see page.py
            assert "localhost" in page.get_attribute("#viewer", "src")
            assert page.evaluate("document.getElementById('camera').naturalWidth") == 320
            assert wait(lambda: rig.enabled() is False)
            drawn = 0
            for _ in range(40):
                page.wait_for_timeout(500)
                shot = np.asarray(PILImage.open(io.BytesIO(page.screenshot())).convert("RGB"))
                view = crop(shot, page.locator("#viewer").bounding_box())
                drawn = near(view, ROBOT_COLOR, 0.02)
                if drawn > 400:
                    break
            assert drawn > 400, f"robot not drawn in the 3D view ({drawn} px of its colour)"
            camera = crop(shot, page.locator("#camera").bounding_box()).astype(float)
            assert camera.std() > 20 and camera.shape[0] > 100  # the photo, not a blank box
            assert page.locator("#status").inner_text().count("\n") >= 8
            if SCREENSHOT:
                with contextlib.suppress(playwright_api.Error):  # viser's software-GL notice
                    page.frame_locator("#viewer").locator(
                        ".mantine-Notification-closeButton").click(timeout=2000)
                page.wait_for_timeout(300)
                page.screenshot(path=SCREENSHOT)

            # Enable -> teleop/status enabled (the ghost is checked in test_console_node: it
            # starts where the robot is, inside it)
            page.click("#enable")
            assert wait(lambda: rig.enabled() is True, 10.0), page.inner_text("#answer")
            shows(page, "true")
            assert "enable" in page.inner_text("#answer")

            # STOP -> disabled
            page.click("#stop")
            assert wait(lambda: rig.enabled() is False, 10.0)
            shows(page, "false")
            assert "disabled" in page.inner_text("#answer")

            # keys: space arms, Esc stops
            page.keyboard.press("Space")
            assert wait(lambda: rig.enabled() is True, 10.0)
            page.keyboard.press("Escape")
            assert wait(lambda: rig.enabled() is False, 10.0)

            # armed, then the page closes: the dead-man disables teleop
            page.click("#enable")
            assert wait(lambda: rig.enabled() is True, 10.0)
            page.close()
            t0 = time.monotonic()
            assert wait(lambda: rig.enabled() is False, 5.0)
            assert time.monotonic() - t0 < 2.5
        finally:
            browser.close()
    assert outside == [], f"the page reached outside this computer: {outside}"
    if SCREENSHOT:
        assert Path(SCREENSHOT).stat().st_size > 10_000
