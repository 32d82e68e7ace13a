#!/usr/bin/env python3
"""Tests of qga.py's command line and of its bound on waiting (make image-test runs them first).

A guest agent socket that accepts and never answers is what a booting guest looks like; `--ping`
must give up after `--timeout` seconds wherever the option stands (it once took effect only
before `--ping`, so `--ping --timeout 300` waited the 60 s default)."""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
QGA = os.path.join(HERE, "qga.py")


def run(*args):
    t = time.monotonic()
    p = subprocess.run([sys.executable, QGA, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stderr, time.monotonic() - t


class SilentAgent:
    """A unix socket that accepts connections and reads them, but never answers."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="qga-test.")
        self.path = os.path.join(self.dir, "qga.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class Args(unittest.TestCase):
    def test_bad_arguments_are_refused(self):
        for args in (["S"], ["S", "--ping", "--", "ls"], ["S", "--bogus", "--ping"],
                     ["S", "--timeout", "x", "--ping"], ["S", "--timeout", "0", "--ping"], ["S", "--"]):
            rc, err, _ = run(*args)
            self.assertEqual(rc, 2, f"{args}: {err}")
            self.assertIn("error:", err, args)

    def test_an_absent_socket_is_unreachable(self):
        rc, err, _ = run("/nonexistent/qga.sock", "--timeout", "1", "--", "true")
        self.assertEqual(rc, 125, err)


class Bound(unittest.TestCase):
    def setUp(self):
        self.agent = SilentAgent()

    def tearDown(self):
        self.agent.close()

    def test_ping_gives_up_after_its_timeout_in_either_order(self):
        for args in (["--ping", "--timeout", "2"], ["--timeout", "2", "--ping"]):
            rc, err, took = run(self.agent.path, *args)
            self.assertEqual(rc, 125, f"{args}: {err}")
            self.assertIn("within 2 s", err)
            self.assertGreaterEqual(took, 1.5, args)
            self.assertLess(took, 10, f"{args}: waited {took:.1f} s for a 2 s timeout")

    def test_a_command_is_not_run_against_a_silent_agent(self):
        rc, err, took = run(self.agent.path, "--timeout", "2", "--", "true")
        self.assertEqual(rc, 125, err)
        self.assertLess(took, 10, f"waited {took:.1f} s for a 2 s timeout")


if __name__ == "__main__":
    unittest.main()
