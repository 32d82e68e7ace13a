#!/usr/bin/env python3
"""Runs a command inside the appliance guest through the QEMU guest agent (virtio-serial).

usage: qga.py SOCKET [--timeout S] -- COMMAND...   (run through /bin/sh -c in the guest)
       qga.py SOCKET --ping [--timeout S]          (exit 0 once the agent answers)

Prints the command's stdout and stderr and exits with its exit code (124 on timeout, 125 when
the agent cannot be reached, 2 on bad arguments)."""
import argparse
import base64
import json
import socket
import sys
import time


def call(sock_path, req, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    try:
        # guest-sync-delimited flushes whatever an earlier, interrupted client left behind.
        nonce = int(time.time() * 1000) % 2**31
        s.sendall(b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": nonce}}).encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("agent closed the connection")
            buf += chunk
            if b"\xff" in buf:
                buf = buf[buf.rindex(b"\xff") + 1:]
            lines = buf.split(b"\n")
            done = [json.loads(l) for l in lines[:-1] if l.strip()]
            if any(d.get("return") == nonce for d in done):
                buf = lines[-1]
                break
            buf = lines[-1]
        s.sendall(json.dumps(req).encode())
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("agent closed the connection")
            buf += chunk
        reply = json.loads(buf.split(b"\n")[0])
        if "error" in reply:
            raise OSError(reply["error"].get("desc", str(reply["error"])))
        return reply["return"]
    finally:
        s.close()


def parse(argv):
    """SOCKET [--timeout S] (--ping | -- COMMAND...): options in any order before `--`."""
    cut = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(prog="qga.py", description="Runs a command in the guest through the QEMU guest agent.")
    p.add_argument("socket", help="the guest agent's chardev socket")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--ping", action="store_true", help="exit 0 once the agent answers")
    a = p.parse_args(argv[:cut])
    a.command = argv[cut + 1:]
    if not a.timeout > 0:
        p.error("--timeout must be a positive number of seconds")
    if a.ping == bool(a.command):
        p.error("give either --ping or -- COMMAND")
    return a


def main():
    a = parse(sys.argv[1:])
    sock_path, timeout = a.socket, a.timeout
    deadline = time.monotonic() + timeout

    def left(most):  # a call's own timeout: at most MOST, and not much past the deadline
        return max(0.5, min(most, deadline - time.monotonic()))

    if a.ping:
        while time.monotonic() < deadline:
            try:
                call(sock_path, {"execute": "guest-ping"}, left(5))
                return 0
            except (OSError, ValueError):
                time.sleep(1)
        print(f"qga: no guest agent on {sock_path} within {timeout:.0f} s", file=sys.stderr)
        return 125
    cmd = " ".join(a.command)
    try:
        pid = call(sock_path, {"execute": "guest-exec", "arguments": {"path": "/bin/sh", "arg": ["-c", cmd], "capture-output": True}}, left(10))["pid"]
        while True:
            st = call(sock_path, {"execute": "guest-exec-status", "arguments": {"pid": pid}}, left(10))
            if st.get("exited"):
                break
            if time.monotonic() > deadline:
                print(f"qga: {cmd!r} still running after {timeout:.0f} s", file=sys.stderr)
                return 124
            time.sleep(0.2)
    except (OSError, ValueError) as e:
        print(f"qga: {e}", file=sys.stderr)
        return 125
    sys.stdout.write(base64.b64decode(st.get("out-data", "")).decode(errors="replace"))
    sys.stderr.write(base64.b64decode(st.get("err-data", "")).decode(errors="replace"))
    return st.get("exitcode", 1)


if __name__ == "__main__":
    sys.exit(main())
