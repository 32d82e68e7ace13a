#!/usr/bin/env python3
"""Runs a command inside the appliance guest through the QEMU guest agent (virtio-serial).

usage: qga.py SOCKET [--timeout S] -- COMMAND...   (run through /bin/sh -c in the guest)
       qga.py SOCKET --ping [--timeout S]          (exit 0 once the agent answers)

Prints the command's stdout and stderr and exits with its exit code (124 on timeout, 125 when
the agent cannot be reached)."""
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


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    sock_path, args = args[0], args[1:]
    timeout = 60.0
    if args[:1] == ["--timeout"]:
        timeout, args = float(args[1]), args[2:]
    deadline = time.monotonic() + timeout
    if args[:1] == ["--ping"]:
        while time.monotonic() < deadline:
            try:
                call(sock_path, {"execute": "guest-ping"}, 5)
                return 0
            except (OSError, ValueError):
                time.sleep(1)
        print(f"qga: no guest agent on {sock_path} within {timeout:.0f} s", file=sys.stderr)
        return 125
    if args[:1] == ["--"]:
        args = args[1:]
    cmd = " ".join(args)
    try:
        pid = call(sock_path, {"execute": "guest-exec", "arguments": {"path": "/bin/sh", "arg": ["-c", cmd], "capture-output": True}}, 10)["pid"]
        while True:
            st = call(sock_path, {"execute": "guest-exec-status", "arguments": {"pid": pid}}, 10)
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
