"""Children that take Ctrl-C as a terminal's foreground job does.

A job a non-interactive shell starts in the background (``cmd &`` in a script, ``nohup ...
&``) inherits SIGINT *ignored*, and Python then keeps ignoring it (it installs its
KeyboardInterrupt handler only over the default disposition).  A test that sends SIGINT to a
child would then watch the child run to its end, whatever the code under test does.  Pass
``preexec_fn=default_sigint`` so the child starts with SIGINT at its default, as under a
terminal.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``subprocess.Popen(preexec_fn=...)``: SIGINT back to its default disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
