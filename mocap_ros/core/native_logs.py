"""Keep MediaPipe's, TFLite's and absl's start-up chatter off the terminal (shown with -v).

MediaPipe writes from C++ straight to file descriptor 2: "INFO: Created TensorFlow Lite
XNNPACK delegate for CPU.", "WARNING: All log messages before absl::InitializeLog() is called
are written to STDERR" and absl-formatted ``W0000 00:00:... file.cc:114] ...`` lines. None of
GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL or ABSL_MIN_LOG_LEVEL silences them in the wheel this
package uses (measured: the same 4 lines with each), so the only switch is the descriptor
itself: fd 2 becomes a pipe (a pseudo-terminal when stderr is a terminal, so that isatty(),
progress bars and coloured ROS logs behave as before), and a thread forwards everything to
the real stderr except those chatter lines. absl/glog errors (``E...``/``F...``) and
everything else, Python's own tracebacks included, pass through unchanged; a partial line
(a progress bar's ``\r`` update) is forwarded at once unless it may begin a chatter line.

Entry points call :func:`quiet_native_logs` (``mocap-ros`` unless ``-v``; the node
executables unless ``MOCAP_ROS_VERBOSE=1``). A library user's process is left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading

VERBOSE_ENV = "MOCAP_ROS_VERBOSE"

# One pattern per kind of line; each was seen in `make demo` / `mocap-ros up` output.
CHATTER = (
    re.compile(rb"^INFO: Created TensorFlow Lite .*delegate"),
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    # absl / glog prefix: severity letter, MMDD, time (before absl::InitializeLog: 00:00:<epoch
    # seconds>), thread id, file:line]. Info and warnings only: errors and fatals are kept.
    re.compile(rb"^[IW]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] "),
)

_lock = threading.Lock()
_state: dict[str, object] = {}


def is_chatter(line: bytes) -> bool:
    return any(p.match(line) for p in CHATTER)


def verbose_from_env() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def dropped_lines() -> int:
    """How many chatter lines were kept off stderr so far (0 when not installed)."""
    return int(_state.get("dropped", 0))  # type: ignore[call-overload]


def quiet_native_logs() -> bool:
    """Filter fd 2 for the rest of the process (idempotent). False when it could not be
    installed (no fd 2, a platform without pipes); stderr is then left as it was."""
    with _lock:
        if "thread" in _state:
            return True
        try:
            sys.stderr.flush()
            real = os.dup(2)
            read_end, write_end = _terminal_pair(real) if os.isatty(real) else os.pipe()
            os.dup2(write_end, 2)
            os.close(write_end)
            pipe_inode = os.fstat(2).st_ino
        except (OSError, ValueError, AttributeError):
            return False
        _state["dropped"] = 0
        thread = threading.Thread(target=_forward, args=(read_end, real),
                                  name="native-log-filter", daemon=True)
        _state.update(thread=thread, real=real, pipe_inode=pipe_inode)
        thread.start()
        atexit.register(_restore)
        return True


def _terminal_pair(real: int) -> tuple[int, int]:
    """(read end, write end) of a pseudo-terminal in raw mode (bytes pass unchanged: no
    newline translation), with the real terminal's size."""
    import fcntl
    import termios
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    with contextlib.suppress(OSError):
        fcntl.ioctl(slave, termios.TIOCSWINSZ, fcntl.ioctl(real, termios.TIOCGWINSZ, b"\0" * 8))
    return master, slave


def _may_start_chatter(partial: bytes) -> bool:
    # every CHATTER pattern starts with I or W ("INFO:", "WARNING:", "I0000", "W0000")
    return partial[:1] in (b"I", b"W") and b"\r" not in partial


def _forward(read_end: int, real: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_end, 65536)
        except OSError:  # EIO: a pseudo-terminal whose last writer closed
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = []
        for line in lines:
            if is_chatter(line):
                _state["dropped"] = int(_state["dropped"]) + 1  # type: ignore[call-overload]
            else:
                out.append(line + b"\n")
        if pending and not _may_start_chatter(pending):
            out.append(pending)
            pending = b""
        if out:
            _write_all(real, b"".join(out))
    if pending and not is_chatter(pending):
        _write_all(real, pending)
    os.close(read_end)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except OSError:
            return
        data = data[n:]


def _restore() -> None:
    """At exit: put the real stderr back on fd 2 and forward what is still in the pipe (a
    traceback printed just before exit must not be lost)."""
    with _lock:
        thread, real = _state.get("thread"), _state.get("real")
        if not isinstance(thread, threading.Thread) or not isinstance(real, int):
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        # The last copy of the pipe's write end is fd 2: replacing it ends the thread's read.
        # Unless somebody else (pytest's capture) has put their own file there meanwhile.
        with contextlib.suppress(OSError):
            if os.fstat(2).st_ino == _state.get("pipe_inode"):
                os.dup2(real, 2)
        thread.join(timeout=1.0)
        _state.pop("thread", None)
