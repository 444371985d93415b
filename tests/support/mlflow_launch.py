"""Runs `python -m mlflow server ARGS...` so that it never outlives the test that started it.

`mlflow server` runs uvicorn in a child process. The test's Subprocess kills only its own child
(SIGKILL when the test dies, SIGTERM on Stop), which would leave uvicorn listening. This wrapper
puts itself and everything below it in one process group, asks for SIGTERM when the test dies,
and on SIGTERM stops the whole group.
"""
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1
ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
if os.getppid() == 1:  # the test died before prctl
    sys.exit(1)
os.setpgid(0, 0)

child = subprocess.Popen([sys.executable, "-m", "mlflow", "server", *sys.argv[1:]])


def stop(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)  # mlflow server, uvicorn; this process ignores it now
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(0, signal.SIGKILL)  # the whole group, this process included
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
sys.exit(child.wait())
