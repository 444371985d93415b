#!/usr/bin/env python3
"""A bad canary under steady load: what callers see and how soon the canary stops getting requests.

Runs the real sluice-router (static table: stable 90 %, canary 10 %, --stable-revision stable) in
front of two real sluice-server processes on the committed fraud model, all on 127.0.0.1, with an
open-loop load from sluice-loadgen (--rate, default 300 req/s). Two scenarios, each --rounds times:

  fault20  the canary fails 20 % of its inferences from its first request (SLUICE_FAULT_ERROR_PERCENT,
           as in the rollback e2e); fault onset = the load's first request.
  kill     a healthy canary is killed (SIGKILL) 3 s into the load: refused connections from then on;
           fault onset = the kill.

Reported per round: failed client requests (loadgen errors + unanswered; target 0), requests the
canary failed (router's sluice_router_requests_total, 5xx + error), retries, and the time from
fault onset to the canary's last request (the router's admin /metrics polled every 20 ms; target
<= 2 s). Then medians and spread, and the load average. Run under the shared lock:

  flock /tmp/sluice-heavy.lock python3 bench/canary/fault.py --build build

--build names the CMake build folder holding sluice-server, sluice-router and sluice-loadgen.
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(REPO, "bench", "fraud", "model")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_http(url, deadline_s=60):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            if get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("not ready: " + url)


class Server:
    def __init__(self, build, workdir, name, env=None):
        self.http = free_port()
        self.grpc = free_port()
        self.admin = free_port()
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [os.path.join(build, "dataplane", "server", "sluice-server"),
             "--model-uri", "file://" + MODEL + "/fraud.json", "--http-address", "127.0.0.1",
             "--http-port", str(self.http), "--grpc-port", str(self.grpc),
             "--admin-port", str(self.admin), "--io-threads", "1"],
            stdout=self.log, stderr=subprocess.STDOUT, env=e)
        wait_http("http://127.0.0.1:%d/v2/health/ready" % self.http)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def series(page, name, labels):
    total = 0.0
    for line in page.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, value = line.rsplit(" ", 1)
        if all('%s="%s"' % kv in head for kv in labels.items()):
            total += float(value)
    return total


def canary_requests(page):
    return series(page, "sluice_router_requests_total", {"revision": "canary"})


def run_round(args, scenario, workdir):
    stable = Server(args.build, workdir, "stable")
    canary = Server(args.build, workdir, "canary",
                    {"SLUICE_FAULT_ERROR_PERCENT": "20"} if scenario == "fault20" else None)
    admin = free_port()
    port = free_port()
    traffic = "stable=90@127.0.0.1:%d+%d;canary=10@127.0.0.1:%d+%d" % (
        stable.http, stable.grpc, canary.http, canary.grpc)
    rlog = open(os.path.join(workdir, "router.log"), "w")
    router = subprocess.Popen(
        [os.path.join(args.build, "dataplane", "router", "sluice-router"), "--static-traffic",
         traffic, "--stable-revision", "stable", "--http-address", "127.0.0.1", "--http-port",
         str(port), "--admin-port", str(admin), "--io-threads", "1"],
        stdout=rlog, stderr=subprocess.STDOUT)
    try:
        wait_http("http://127.0.0.1:%d/readyz" % port)
        metrics_url = "http://127.0.0.1:%d/metrics" % admin
        samples = []  # (time, canary requests)
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    samples.append((time.time(), canary_requests(get(metrics_url)[1])))
                except OSError:
                    pass
                time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.2)
        load = subprocess.Popen(
            [os.path.join(args.build, "bench", "loadgen", "sluice-loadgen"), "--host", "127.0.0.1",
             "--port", str(port), "--path", "/v2/models/fraud/infer", "--body-file",
             os.path.join(MODEL, "sample_request.json"), "--rate", str(args.rate),
             "--connections", "32", "--duration", str(args.seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started = time.time()
        onset = started
        if scenario == "kill":
            time.sleep(3)
            onset = time.time()
            canary.stop(signal.SIGKILL)
        out, _ = load.communicate(timeout=args.seconds + 60)
        time.sleep(0.3)
        stop.set()
        poller.join()
        fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        page = get(metrics_url)[1]
        # The canary's last request: the first poll after which its count never grew again.
        last = onset
        for (t0, n0), (t1, n1) in zip(samples, samples[1:]):
            if n1 > n0:
                last = t1
        return {
            "failed": int(fields.get("errors", "-1")) + int(fields.get("unanswered", "0")),
            "sent": int(fields.get("sent", "0")),
            "rate": float(fields.get("achieved_rate", "0")),
            "canary_failed": series(page, "sluice_router_requests_total",
                                    {"revision": "canary", "code": "5xx"}) +
                             series(page, "sluice_router_requests_total",
                                    {"revision": "canary", "code": "error"}),
            "canary_requests": canary_requests(page),
            "retries": series(page, "sluice_router_retries_total", {"revision": "canary"}),
            "denied": series(page, "sluice_router_retries_total", {"outcome": "denied"}),
            "tripped": series(page, "sluice_router_guard_tripped", {"revision": "canary"}),
            "stop_s": max(0.0, last - onset),
        }
    finally:
        router.send_signal(signal.SIGKILL)
        router.wait()
        stable.stop(signal.SIGKILL)
        canary.stop(signal.SIGKILL)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(REPO, "build"))
    p.add_argument("--rate", type=int, default=300)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scenarios", default="fault20,kill")
    args = p.parse_args()
    args.build = os.path.abspath(args.build)
    print("load average before: %s" % open("/proc/loadavg").read().split()[:3])
    with tempfile.TemporaryDirectory(prefix="sluice-canary-bench-") as workdir:
        for scenario in args.scenarios.split(","):
            rounds = []
            for i in range(args.rounds):
                r = run_round(args, scenario, workdir)
                rounds.append(r)
                print("%s round %d: failed=%d of %d (achieved %.0f req/s) canary_requests=%d "
                      "canary_failed=%d retries=%d denied=%d guard_tripped=%d "
                      "canary_stopped_after_s=%.2f" % (
                          scenario, i + 1, r["failed"], r["sent"], r["rate"],
                          r["canary_requests"], r["canary_failed"], r["retries"], r["denied"],
                          r["tripped"], r["stop_s"]), flush=True)
            for key in ("failed", "stop_s", "canary_failed"):
                vals = [r[key] for r in rounds]
                print("%s %s: median %.2f, min %.2f, max %.2f" % (
                    scenario, key, statistics.median(vals), min(vals), max(vals)))
    print("load average after: %s" % open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
