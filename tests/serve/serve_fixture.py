"""Starts `pnp-ovss serve` on the tiny fixture model for the server tests, and stops it.

    with ServerProcess(binary, data_dir, extra_args) as server:
        server.url            # "http://127.0.0.1:PORT"
        server.pid
        server.request("GET", "/healthz")   # -> (status, headers dict, body bytes)

The server listens on a free port (--port 0) and prints its URL; the fixture reads the port from
that line. Its output goes to a log file, printed when a test fails and removed at exit.
"""
import atexit
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

# The tiny random-weight model takes 64-px input and has text layers 1..3, heads 1..4.
TINY_ARGS = ["--size", "64", "--layer", "2", "--head", "3"]
IMAGE = "images/coco_000000039769.png"
MODEL = "blip_itm"


class ServerProcess:
    def __init__(self, binary, data_dir, extra_args=(), model=MODEL, tiny=True, start_timeout=120):
        self.binary = os.path.abspath(binary)
        self.data_dir = os.path.abspath(data_dir)
        self.args = [self.binary, "serve", "--model", os.path.join(self.data_dir, model), "--port", "0"]
        if tiny:
            self.args += TINY_ARGS
        self.args += list(extra_args)
        self.start_timeout = start_timeout
        self.proc = None
        self.url = None
        self.host = "127.0.0.1"
        self.port = None
        self.log = tempfile.NamedTemporaryFile(prefix="pnpovss_serve_", suffix=".log", delete=False)
        atexit.register(self._remove_log)  # read back by output() until the test ends

    def _remove_log(self):
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    # --- lifetime --------------------------------------------------------------------------
    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pnp-ovss serve exited with %d before serving:\n%s" % (self.proc.returncode, self.output()))
            m = re.search(r"http://([0-9.]+):(\d+)/", self.output())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                self.url = "http://%s:%d" % (self.host, self.port)
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("pnp-ovss serve printed no URL within %d s:\n%s" % (self.start_timeout, self.output()))

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the server and waits; returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("pnp-ovss serve did not exit within %d s of signal %d" % (timeout, sig))

    def __enter__(self):
        return self.start()

    def __exit__(self, kind, value, tb):
        self.stop()
        if kind is not None:
            sys.stderr.write("---- server output ----\n" + self.output() + "\n")
        return False

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def resident_bytes(self):
        """The server's resident memory (VmRSS) now."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS for the server")

    # --- requests --------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=120):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def get_json(self, path, headers=None):
        status, h, body = self.request("GET", path, headers=headers)
        return status, json.loads(body) if body else None


def multipart(fields, files, boundary="pnpovssboundary7MA4YWxkTrZu0gW"):
    """A multipart/form-data body: fields {name: text}, files {name: (filename, bytes, type)}.
    Returns (body bytes, headers dict)."""
    out = bytearray()
    for name, value in fields.items():
        out += b"--" + boundary.encode() + b"\r\n"
        out += ('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode()
        out += value.encode() if isinstance(value, str) else value
        out += b"\r\n"
    for name, (filename, data, ctype) in files.items():
        out += b"--" + boundary.encode() + b"\r\n"
        out += ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n' % (name, filename)).encode()
        out += ("Content-Type: %s\r\n\r\n" % ctype).encode()
        out += data
        out += b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return bytes(out), {"Content-Type": "multipart/form-data; boundary=" + boundary}


def usage_args(argv, count, usage):
    if len(argv) != count + 1:
        sys.stderr.write("usage: %s %s\n" % (argv[0], usage))
        sys.exit(2)
    return argv[1:]
