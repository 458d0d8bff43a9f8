"""Run ``tcgjobs`` on a real pseudo-terminal of a given size, as an operator's shell would.

The window size is set on the terminal itself (``TIOCSWINSZ``) and ``COLUMNS``/``LINES`` are
removed from the environment, so the CLI finds its width the way it does on a real terminal.
``run_on_terminal`` returns the exit code and what appeared on the screen, escape codes removed.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_on_terminal(*args: str, columns: int, rows: int = 50, timeout: float = 60) -> tuple[int, str]:
    """``python -m tcgjobs ARGS`` with stdout and stdin on a ``columns``-wide terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen([sys.executable, "-m", "tcgjobs", *args], stdin=slave, stdout=slave,
                               stderr=subprocess.DEVNULL, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed, the process is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = process.wait(timeout=timeout)
    screen = _ESCAPES.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")
    return code, screen
