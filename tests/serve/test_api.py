#!/usr/bin/env python3
"""`pnp-ovss serve` against docs/server.md, on the tiny fixture model (tests/data/blip_itm).

One server answers the endpoints (/healthz, /v1/info, /metrics, /), POST /v1/segment in every
form the spec names (multipart, JSON, Accept: image/png, maps), the errors a request can cause,
and, last, SIGTERM with a request in flight. Its labels and records are compared with what
`pnp-ovss segment` writes for the same image, classes and settings. Short-lived servers cover the
options: --api-key (401), --max-upload-mb and --max-pixels (413), --max-queue (503),
--timeout (504).

Usage: python3 tests/serve/test_api.py PNP_OVSS_BINARY TEST_DATA_DIR
Prints one line per check and "N passed, M failed"; exits 0 when every check passed.

The helpers above main() (checks, PNG/BMP writers, a PNG decoder, raw HTTP, Prometheus parsing)
are shared with test_load.py.
"""
import base64
import email.utils
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from serve_fixture import IMAGE, MODEL, ServerProcess, multipart, usage_args  # noqa: E402

CLASSES = "cat, couch, remote control"
CLASS_LIST = ["cat", "couch", "remote control"]
# Settings that make a request cheap on the tiny model (no CRF, one Salience DropOut pass).
CHEAP = {"post_mode": "none", "dropout_iterations": 1}
# The override compared with `segment --head 4 --postprocess blur`.
OVERRIDE = {"attention_head_1based": 4, "post_mode": "blur"}
OVERRIDE_CLI = ["--head", "4", "--postprocess", "blur"]


# ---- checks ------------------------------------------------------------------------------------
class Checks:
    """`check(name, ok, detail)` prints "ok    NAME" or "FAIL  NAME: DETAIL"; `finish()` prints
    the summary and the failed names and returns the exit status."""

    def __init__(self):
        self.passed = 0
        self.failed = []
        self.started = time.time()

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok    " + name)
        else:
            self.failed.append(name)
            print("FAIL  %s: %s" % (name, detail))
        sys.stdout.flush()
        return bool(ok)

    def equal(self, name, got, want):
        if isinstance(got, dict) and isinstance(want, dict) and got != want:
            keys = sorted(k for k in set(got) | set(want) if got.get(k, "<absent>") != want.get(k, "<absent>"))
            return self.check(name, False, "; ".join("%s: got %s, expected %s" % (k, short(got.get(k, "<absent>"), 80),
                                                                              short(want.get(k, "<absent>"), 80)) for k in keys))
        return self.check(name, got == want, "got %s, expected %s" % (short(got), short(want)))

    def run(self, name, fn, *args):
        """Runs one group of checks; an exception in it is one failed check."""
        t0 = time.time()
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - any exception is a failed check
            tb = traceback.format_exc().strip().splitlines()
            where = next((line.strip() for line in reversed(tb) if line.strip().startswith("File ")), "")
            self.check(name + " (ran to the end)", False, "%s: %s [%s]" % (type(e).__name__, e, where))
            return None
        finally:
            print("      (%s: %.1f s)" % (name, time.time() - t0))

    def finish(self):
        print("%d passed, %d failed (%.1f s)" % (self.passed, len(self.failed), time.time() - self.started))
        if self.failed:
            print("failed checks:")
            for name in self.failed:
                print("  - " + name)
        return 1 if self.failed else 0


def short(value, limit=300):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ---- images --------------------------------------------------------------------------------------
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_file(width, height, idat, bit_depth=8, color_type=2):
    """A PNG with the given IHDR and one IDAT chunk holding `idat` (already compressed)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def rgb_pixels(width, height, seed=0):
    """Deterministic RGB bytes (row-major, 3 per pixel): gradients and a bright square."""
    out = bytearray()
    for y in range(height):
        for x in range(width):
            inside = width // 4 <= (x + seed) % width < width * 3 // 4 and height // 4 <= y < height * 3 // 4
            out += bytes(((x * 255 // max(1, width - 1) + seed * 37) & 255,
                          (y * 255 // max(1, height - 1) + seed * 11) & 255,
                          230 if inside else (x * y + seed) & 255))
    return bytes(out)


def png_rgb(width, height, seed=0, pixels=None):
    pixels = rgb_pixels(width, height, seed) if pixels is None else pixels
    stride = width * 3
    raw = b"".join(b"\0" + pixels[y * stride:(y + 1) * stride] for y in range(height))
    return png_file(width, height, zlib.compress(raw, 9))


def bmp_rgb(width, height, pixels):
    """A 24-bit bottom-up BMP of the RGB bytes."""
    stride = (width * 3 + 3) & ~3
    rows = []
    for y in range(height - 1, -1, -1):
        row = bytearray()
        for x in range(width):
            r, g, b = pixels[(y * width + x) * 3:(y * width + x) * 3 + 3]
            row += bytes((b, g, r))
        row += b"\0" * (stride - width * 3)
        rows.append(bytes(row))
    data = b"".join(rows)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(data), 2835, 2835, 0, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(data), 0, 0, 14 + len(info))
    return header + info + data


def png_chunks(data):
    """The (type, data) chunks of a PNG, CRCs checked, IHDR first and IEND last."""
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("no PNG signature")
    pos, chunks = 8, []
    while True:
        if pos + 8 > len(data):
            raise ValueError("truncated before IEND")
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise ValueError("truncated %r chunk" % kind)
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise ValueError("bad CRC in %r chunk" % kind)
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    if chunks[0][0] != b"IHDR":
        raise ValueError("first chunk is not IHDR")
    return chunks


def png_size(data):
    """(width, height) from the IHDR of a PNG, or None when it is not one."""
    if data[:8] != PNG_SIGNATURE or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def png_decode(data, unfilter=True):
    """Decodes a non-interlaced 8- or 16-bit PNG (colour types 0, 2, 3, 4, 6; filters 0-4).
    Returns a dict: width, height, bit_depth, color_type, channels, palette (list of (r, g, b) or
    None) and samples (bytes for 8 bits, a list of ints for 16; row-major, `channels` per pixel).
    With unfilter=False the data is only checked (decompressed length, filter types)."""
    chunks = png_chunks(data)
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if ctype not in (0, 2, 3, 4, 6):
        raise ValueError("colour type %d" % ctype)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    if depth not in (8, 16) or (ctype == 3 and depth != 8) or comp or filt or interlace:
        raise ValueError("unsupported IHDR: depth %d type %d interlace %d" % (depth, ctype, interlace))
    palette = None
    for kind, body in chunks:
        if kind == b"PLTE":
            palette = [tuple(body[i:i + 3]) for i in range(0, len(body) - 2, 3)]
    if ctype == 3 and palette is None:
        raise ValueError("indexed PNG without PLTE")
    bpp = channels * depth // 8
    stride = width * bpp
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    if len(raw) != height * (stride + 1):
        raise ValueError("image data holds %d bytes, expected %d" % (len(raw), height * (stride + 1)))
    filters = raw[::stride + 1]
    if any(f > 4 for f in filters):
        raise ValueError("filter type above 4")
    result = {"width": width, "height": height, "bit_depth": depth, "color_type": ctype,
              "channels": channels, "palette": palette, "samples": None}
    if not unfilter:
        return result
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ft == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ft == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ft == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    if depth == 16:
        result["samples"] = list(struct.unpack(">%dH" % (len(out) // 2), bytes(out)))
    else:
        result["samples"] = bytes(out)
    return result


def label_map(png_bytes):
    """(width, height, labels, palette) of a label PNG: 8-bit indexed or 16-bit grayscale."""
    d = png_decode(png_bytes)
    if d["channels"] != 1:
        raise ValueError("label PNG has colour type %d" % d["color_type"])
    return d["width"], d["height"], d["samples"], d["palette"]


# ---- HTTP ----------------------------------------------------------------------------------------
def read_response(sock, timeout=60):
    """Reads one HTTP response (1xx skipped) from a socket: (status, headers, body)."""
    sock.settimeout(timeout)
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                part = b""
                if not buf:
                    raise
            if not part:
                raise ConnectionError("connection closed before a complete response header (%d bytes read)" % len(buf))
            buf += part
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if 100 <= status < 200:
            buf = rest
            continue
        break
    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(rest) < need:
            part = sock.recv(65536)
            if not part:
                break
            rest += part
        return status, headers, rest[:need]
    while True:  # no length: the body runs to the end of the connection
        try:
            part = sock.recv(65536)
        except ConnectionResetError:
            break
        if not part:
            break
        rest += part
    return status, headers, rest


def request_head(method, path, host, port, headers, length):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (host, port)]
    lines += ["%s: %s" % (k, v) for k, v in headers.items()]
    if length is not None:
        lines.append("Content-Length: %d" % length)
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def raw_exchange(server, method, path, body=b"", headers=None, chunk=65536, timeout=60):
    """Sends a request on a plain socket, stops sending when the server answers early or closes,
    and reads the answer: for limits answered before the body is read (413).
    Returns (status, headers, body, bytes of the body sent)."""
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        sock.sendall(request_head(method, path, server.host, server.port, headers or {}, len(body)))
        sent = 0
        while sent < len(body):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sent += sock.send(body[sent:sent + chunk])
            except (BrokenPipeError, ConnectionResetError):
                break
        status, h, data = read_response(sock, timeout)
        return status, h, data, sent
    finally:
        sock.close()


def parse_json(body):
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def error_body_problem(status, headers, body):
    """"" when the answer is a JSON error {"error": "one line"}, else what is wrong."""
    doc = parse_json(body)
    if not headers.get("content-type", "").startswith("application/json"):
        return "Content-Type %r, body %s" % (headers.get("content-type"), short(body, 200))
    if not isinstance(doc, dict) or not isinstance(doc.get("error"), str) or not doc["error"].strip():
        return "body is not {\"error\": TEXT}: %s" % short(body, 200)
    if "\n" in doc["error"]:
        return "error message spans lines: %r" % doc["error"]
    return ""


def segment_multipart(image, classes=CLASSES, settings=None, filename="image.png", maps=None, extra=None):
    fields = {}
    if classes is not None:
        fields["classes"] = classes
    if settings is not None:
        fields["settings"] = settings if isinstance(settings, str) else json.dumps(settings)
    if maps is not None:
        fields["maps"] = maps
    fields.update(extra or {})
    files = {} if image is None else {"image": (filename, image, "application/octet-stream")}
    return multipart(fields, files)


def segment_json(image, classes=CLASS_LIST, settings=None, maps=None):
    doc = {"image": base64.b64encode(image).decode("ascii"), "classes": classes}
    if settings is not None:
        doc["settings"] = settings
    if maps is not None:
        doc["maps"] = maps
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


# ---- Prometheus ----------------------------------------------------------------------------------
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """(samples [(name, {label: value}, float)], types {name: kind}); raises on a bad line."""
    samples, types = [], {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("not a Prometheus sample line: %r" % line)
        labels = dict(LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples, types


def metric(samples, name, **labels):
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == str(w) for k, w in labels.items()))


def fetch_metrics(server, headers=None):
    status, h, body = server.request("GET", "/metrics", headers=headers)
    if status != 200:
        raise RuntimeError("GET /metrics: %d %s" % (status, short(body)))
    return parse_metrics(body.decode("utf-8"))[0]


def wait_idle(server, timeout=60, headers=None):
    """Waits until no request waits or runs (queue depth and images in flight 0); True if so."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = fetch_metrics(server, headers)
        if metric(s, "pnpovss_queue_depth") == 0 and metric(s, "pnpovss_images_in_flight") == 0:
            return True
        time.sleep(0.1)
    return False


def concurrently(functions, start_gap=0.0):
    """Runs the functions on threads started together; returns their results (or exceptions)."""
    results = [None] * len(functions)
    barrier = threading.Barrier(len(functions))

    def run(i, fn):
        try:
            barrier.wait(10)
            if start_gap:
                time.sleep(i * start_gap)
            results[i] = fn()
        except Exception as e:  # noqa: BLE001 - reported by the caller
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def retry_after_ok(value):
    if value is None:
        return False
    value = value.strip()
    return bool(re.fullmatch(r"\d+", value)) or email.utils.parsedate(value) is not None


def check_oversize_upload(c, server, junk):
    """A 2 MB multipart upload to a server started with --max-upload-mb 1: a JSON 413."""
    body, headers = segment_multipart(junk, filename="big.png")
    what = "2 MB multipart upload over --max-upload-mb 1 -> 413"
    try:
        status, h, data, sent = raw_exchange(server, "POST", "/v1/segment", body, headers)
        c.check(what, status == 413 and not error_body_problem(status, h, data), "%d %s" % (status, short(data, 200)))
    except Exception as e:  # noqa: BLE001
        c.check(what, False, "no answer: %s: %s" % (type(e).__name__, e))


def start_server(checks, binary, data_dir, args, name):
    try:
        return ServerProcess(binary, data_dir, args).start()
    except Exception as e:  # noqa: BLE001
        checks.check("%s: server starts with %s" % (name, " ".join(args)), False, str(e))
        return None


def stop_server(checks, server, name, sig=signal.SIGTERM):
    if server is None:
        return
    try:
        code = server.stop(sig)
    except RuntimeError as e:
        checks.check("%s: server exits on signal %d" % (name, sig), False, str(e))
        return
    if not checks.check("%s: server exits with status 0 on signal %d" % (name, sig), code == 0, "status %s" % code):
        sys.stderr.write("---- server output (%s) ----\n%s\n" % (name, server.output()[-4000:]))


# ---- the main server's POST /v1/segment, counted for the metrics check -------------------------
class Main:
    def __init__(self, server):
        self.server = server
        self.statuses = {}  # status -> answers to POST /v1/segment

    def post(self, path, body, headers, timeout=120):
        status, h, data = self.server.request("POST", path, body=body, headers=headers, timeout=timeout)
        if path.split("?")[0] == "/v1/segment":
            self.statuses[status] = self.statuses.get(status, 0) + 1
        return status, h, data

    def segment(self, body_headers, path="/v1/segment", extra_headers=None):
        body, headers = body_headers
        headers = dict(headers, **(extra_headers or {}))
        status, h, data = self.post(path, body, headers)
        return status, h, data, parse_json(data) if h.get("content-type", "").startswith("application/json") else None


# ---- the checks ------------------------------------------------------------------------------------
def run_cli(binary, data_dir, out, extra):
    """`segment` on the photo with the server's options (TINY_ARGS); `extra` overrides them."""
    options = {"--size": "64", "--layer": "2", "--head": "3"}
    for i in range(0, len(extra), 2):
        options[extra[i]] = extra[i + 1]
    args = [binary, "segment", IMAGE, "--model", MODEL, "--classes", CLASSES, "--out", out]
    for k, v in options.items():
        args += [k, v]
    p = subprocess.run(args, cwd=data_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    return p.returncode, p.stdout.decode(errors="replace")


def check_endpoints(c, main):
    server = main.server
    status, h, body = server.request("GET", "/healthz")
    c.check("GET /healthz: 200 {\"status\": \"ok\"}", status == 200 and parse_json(body) == {"status": "ok"},
            "%d %s" % (status, short(body)))
    c.check("GET /healthz: application/json", h.get("content-type", "").startswith("application/json"),
            "Content-Type %r" % h.get("content-type"))

    status, h, body = server.request("GET", "/v1/info")
    info = parse_json(body) or {}
    c.check("GET /v1/info: 200 JSON", status == 200 and isinstance(info, dict) and
            h.get("content-type", "").startswith("application/json"), "%d %s" % (status, short(body)))
    c.check("info: version 'pnp-ovss X.Y.Z'", re.fullmatch(r"pnp-ovss \d+\.\d+\.\d+.*", str(info.get("version"))),
            "version %r" % info.get("version"))
    c.check("info: model names the fixture", MODEL in str(info.get("model")), "model %r" % info.get("model"))
    c.equal("info: backbone", info.get("backbone"), "blip")
    c.equal("info: device", info.get("device"), "cpu/fp32")
    c.equal("info: dtype", info.get("dtype"), "fp32")
    st = info.get("settings") or {}
    c.equal("info: settings layer/head/size from the options",
            (st.get("attention_layer_1based"), st.get("attention_head_1based"), st.get("input_size")), (2, 3, 64))
    c.equal("info: settings preset", st.get("preset"), "paper")
    presets = info.get("presets") or {}
    c.check("info: presets paper and official", all(isinstance(presets.get(k), dict) and presets.get(k)
                                                    for k in ("paper", "official")), short(presets))
    limits = info.get("limits") or {}
    want = {"max_upload_mb": 20, "max_pixels": 40000000, "max_queue": 16, "timeout_s": 300}
    c.equal("info: default limits", {k: limits.get(k) for k in want}, want)
    c.check("info: limits workers and batch_size are counts",
            all(isinstance(limits.get(k), int) and limits.get(k) >= 1 for k in ("workers", "batch_size")), short(limits))
    c.equal("info: api_key_required", info.get("api_key_required"), False)

    # HTTP/1.1 keep-alive: three requests on one connection.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        got = []
        for method, path, body, headers in (("GET", "/healthz", None, {}), ("GET", "/v1/info", None, {}),
                                            ("POST", "/v1/segment") + segment_multipart(png_rgb(32, 32, seed=6), settings=CHEAP)):
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            got.append(r.status)
            if path == "/v1/segment":
                main.statuses[r.status] = main.statuses.get(r.status, 0) + 1
        c.equal("three requests on one keep-alive connection", got, [200, 200, 200])
    except (http.client.HTTPException, OSError) as e:
        c.check("three requests on one keep-alive connection", False, "%s: %s" % (type(e).__name__, e))
    finally:
        conn.close()

    status, h, body = server.request("GET", "/")
    c.check("GET /: 200 text/html page", status == 200 and h.get("content-type", "").startswith("text/html") and
            b"<html" in body.lower(), "%d %r %s" % (status, h.get("content-type"), short(body, 100)))

    status, h, body = server.request("GET", "/metrics")
    text = body.decode("utf-8", "replace")
    c.check("GET /metrics: 200 text/plain", status == 200 and h.get("content-type", "").startswith("text/plain"),
            "%d Content-Type %r" % (status, h.get("content-type")))
    try:
        samples, types = parse_metrics(text)
    except ValueError as e:
        c.check("metrics: Prometheus text format", False, str(e))
        return info
    c.check("metrics: Prometheus text format", True)
    kinds = {"pnpovss_requests_total": "counter", "pnpovss_request_duration_seconds": "histogram",
             "pnpovss_queue_depth": "gauge", "pnpovss_queue_capacity": "gauge", "pnpovss_images_in_flight": "gauge",
             "pnpovss_images_segmented_total": "counter", "pnpovss_segment_failures_total": "counter",
             "process_resident_memory_bytes": "gauge"}
    c.equal("metrics: # TYPE of every metric in the spec", {k: types.get(k) for k in kinds}, kinds)
    names = {n for n, _, _ in samples}
    expected = {"pnpovss_request_duration_seconds_bucket", "pnpovss_request_duration_seconds_sum",
                "pnpovss_request_duration_seconds_count", "pnpovss_queue_depth", "pnpovss_queue_capacity",
                "pnpovss_images_in_flight", "pnpovss_images_segmented_total", "pnpovss_segment_failures_total",
                "process_resident_memory_bytes"}
    c.check("metrics: samples of every metric (requests_total may wait for a first request)",
            expected <= names, "missing %s" % sorted(expected - names))
    c.equal("metrics: queue capacity is --max-queue", metric(samples, "pnpovss_queue_capacity"), 16.0)
    rss = metric(samples, "process_resident_memory_bytes")
    own = server.resident_bytes()
    c.check("metrics: resident memory near VmRSS", 0.5 * own < rss < 2 * own, "metric %d, VmRSS %d" % (rss, own))
    return info


def check_record_basics(c, what, record, image_bytes, width, height, filename):
    c.equal(what + ": record image", record.get("image"), filename)
    c.equal(what + ": record image_sha256", record.get("image_sha256"), hashlib.sha256(image_bytes).hexdigest())
    c.equal(what + ": record size", (record.get("width"), record.get("height")), (width, height))
    c.equal(what + ": record device", record.get("device"), "cpu/fp32")
    timings = record.get("timings") or {}
    c.check(what + ": timings hold queue and total", isinstance(timings.get("queue"), (int, float)) and
            timings.get("queue") >= 0 and isinstance(timings.get("total"), (int, float)), short(timings))


def check_labels(c, what, doc):
    """Decodes labels_png; checks it against the record; returns the labels (or None)."""
    record = doc.get("record") or {}
    try:
        w, h, labels, palette = label_map(base64.b64decode(doc.get("labels_png") or "", validate=True))
    except Exception as e:  # noqa: BLE001
        c.check(what + ": labels_png decodes", False, "%s: %s" % (type(e).__name__, e))
        return None
    c.check(what + ": labels_png decodes", True)
    c.equal(what + ": labels_png is width x height of the record", (w, h), (record.get("width"), record.get("height")))
    classes = record.get("classes") or []
    counts = {}
    for v in labels:
        counts[v] = counts.get(v, 0) + 1
    c.check(what + ": every label names a record class", max(counts) < len(classes), "labels %s, %d classes" %
            (sorted(counts), len(classes)))
    bad = [(k["name"], k.get("pixel_share"), counts.get(k["label"], 0) / float(w * h)) for k in classes
           if abs(k.get("pixel_share", -1) - counts.get(k["label"], 0) / float(w * h)) > 2e-6 + 1e-4 * k.get("pixel_share", 0)]
    c.check(what + ": pixel shares match the label counts", not bad, "(name, record, counted): %s" % bad)
    if palette is not None:
        colours = ["#%02x%02x%02x" % palette[k["label"]] if k["label"] < len(palette) else None for k in classes]
        c.equal(what + ": palette holds the class colours", colours, [k.get("color", "").lower() for k in classes])
    try:
        png_decode(base64.b64decode(doc.get("overlay_png") or ""), unfilter=False)
        c.check(what + ": overlay_png is a PNG", True)
    except Exception as e:  # noqa: BLE001
        c.check(what + ": overlay_png is a PNG", False, str(e))
    return labels


def check_segment(c, main, image_bytes, info, cli):
    """The default request, parity with `segment`, the override, JSON, Accept, maps, BMP."""
    # -- the default settings
    status, h, body, doc = main.segment(segment_multipart(image_bytes, filename="coco_000000039769.png"))
    c.check("segment multipart: 200 JSON", status == 200 and isinstance(doc, dict), "%d %s" % (status, short(body)))
    if not isinstance(doc, dict):
        return
    record = doc.get("record") or {}
    check_record_basics(c, "segment multipart", record, image_bytes, 640, 480, "coco_000000039769.png")
    c.equal("segment multipart: prompt", record.get("prompt"),
            [{"label": i + 1, "name": n} for i, n in enumerate(CLASS_LIST)])
    c.equal("segment multipart: class names", [k.get("name") for k in record.get("classes") or []],
            ["background"] + CLASS_LIST)
    c.equal("segment multipart: settings are /v1/info's settings", record.get("settings"), info.get("settings"))
    c.equal("segment multipart: model is /v1/info's", record.get("model"), info.get("model"))
    c.equal("segment multipart: version is /v1/info's", record.get("version"), info.get("version"))
    c.check("segment multipart: no maps unless asked", doc.get("maps") is None, short(doc.get("maps")))
    labels = check_labels(c, "segment multipart", doc)

    # -- the same with `segment`
    cli_default, cli_override = cli.result()
    compare_with_cli(c, "parity with segment (default settings)", cli_default, labels, record)

    # -- a settings override
    status, h, body, odoc = main.segment(segment_multipart(image_bytes, settings=OVERRIDE, filename="cats.png"))
    c.check("segment with settings override: 200", status == 200 and isinstance(odoc, dict), "%d %s" % (status, short(body)))
    if not isinstance(odoc, dict):
        return
    orecord = odoc.get("record") or {}
    c.equal("segment with settings override: settings applied",
            ((orecord.get("settings") or {}).get("attention_head_1based"), (orecord.get("settings") or {}).get("post_mode"),
             (orecord.get("settings") or {}).get("attention_layer_1based")), (4, "blur", 2))
    olabels = check_labels(c, "segment with settings override", odoc)
    compare_with_cli(c, "parity with segment %s" % " ".join(OVERRIDE_CLI), cli_override, olabels, orecord)
    c.check("override labels differ from the default labels (the override is used)",
            labels is None or olabels is None or labels != olabels, "identical label maps")

    # -- JSON body: classes as an array, then as one string with maps
    status, h, body, jdoc = main.segment(segment_json(image_bytes, settings=OVERRIDE))
    ok = c.check("segment JSON body (classes array): 200", status == 200 and isinstance(jdoc, dict),
                 "%d %s" % (status, short(body)))
    if ok:
        c.equal("segment JSON body: record image is 'upload'", (jdoc.get("record") or {}).get("image"), "upload")
        same_labels(c, "segment JSON body: labels equal multipart's", jdoc, olabels)
        c.equal("segment JSON body: classes equal multipart's", (jdoc.get("record") or {}).get("classes"), orecord.get("classes"))
        c.check("segment JSON body: no maps unless asked", jdoc.get("maps") is None, short(jdoc.get("maps")))

    status, h, body, mdoc_json = main.segment(segment_json(image_bytes, classes=CLASSES, settings=OVERRIDE, maps=True))
    ok = c.check("segment JSON body (classes string, \"maps\": true): 200", status == 200 and isinstance(mdoc_json, dict),
                 "%d %s" % (status, short(body)))
    if ok:
        same_labels(c, "segment JSON body with maps: labels equal multipart's", mdoc_json, olabels)
        check_maps(c, "maps (JSON \"maps\": true)", mdoc_json)

    # -- classes as a JSON array in the multipart field
    status, h, body, adoc = main.segment(segment_multipart(image_bytes, classes=json.dumps(CLASS_LIST), settings=OVERRIDE))
    if c.check("segment multipart classes as JSON array: 200", status == 200 and isinstance(adoc, dict),
               "%d %s" % (status, short(body))):
        c.equal("segment multipart classes as JSON array: prompt", (adoc.get("record") or {}).get("prompt"), orecord.get("prompt"))
        same_labels(c, "segment multipart classes as JSON array: labels", adoc, olabels)

    # -- Accept: image/png
    status, h, body, _ = main.segment(segment_multipart(image_bytes, settings=OVERRIDE), extra_headers={"Accept": "image/png"})
    c.check("Accept: image/png: 200 image/png", status == 200 and h.get("content-type", "").startswith("image/png"),
            "%d %r %s" % (status, h.get("content-type"), short(body[:200])))
    c.check("Accept: image/png: bytes equal the decoded labels_png", body == base64.b64decode(odoc.get("labels_png", "")),
            "%d bytes vs %d" % (len(body), len(base64.b64decode(odoc.get("labels_png", "")))))

    # -- maps from the query string and from the multipart field
    status, h, body, qdoc = main.segment(segment_multipart(image_bytes, settings=OVERRIDE), path="/v1/segment?maps=true")
    if c.check("segment ?maps=true: 200", status == 200 and isinstance(qdoc, dict), "%d %s" % (status, short(body))):
        check_maps(c, "maps (?maps=true)", qdoc)
        same_labels(c, "segment ?maps=true: labels unchanged by maps", qdoc, olabels)
    status, h, body, fdoc = main.segment(segment_multipart(image_bytes, settings=OVERRIDE, maps="true"))
    if c.check("segment multipart maps=true: 200", status == 200 and isinstance(fdoc, dict), "%d %s" % (status, short(body))):
        check_maps(c, "maps (multipart field)", fdoc)
        if isinstance(qdoc, dict):
            c.check("maps: the same request gives the same score grids",
                    [k.get("score_grid") for k in (fdoc.get("maps") or {}).get("classes") or []] ==
                    [k.get("score_grid") for k in (qdoc.get("maps") or {}).get("classes") or []], "score grids differ")

    # -- maps follow the request's number of Salience DropOut iterations
    status, h, body, idoc = main.segment(segment_multipart(png_rgb(48, 40, seed=4), maps="true",
                                                           settings={"dropout_iterations": 2, "post_mode": "none"}))
    if c.check("segment maps=true with dropout_iterations 2: 200", status == 200 and isinstance(idoc, dict),
               "%d %s" % (status, short(body))):
        c.equal("dropout_iterations 2: record settings", (idoc.get("record") or {}).get("settings", {}).get("dropout_iterations"), 2)
        maps = idoc.get("maps") or {}
        c.equal("dropout_iterations 2: maps iterations, gradcam and dropped lengths",
                (maps.get("iterations"), [len(k.get("gradcam") or []) for k in maps.get("classes") or []], len(maps.get("dropped") or [])),
                (2, [2, 2, 2], 2))

    # -- BMP and PNG of the same pixels give the same labels
    w, hgt = 48, 40
    pixels = rgb_pixels(w, hgt, seed=3)
    results = []
    for name, data in (("small.png", png_rgb(w, hgt, pixels=pixels)), ("small.bmp", bmp_rgb(w, hgt, pixels))):
        status, h, body, d = main.segment(segment_multipart(data, settings=CHEAP, filename=name))
        c.check("segment %s (%dx%d): 200" % (name, w, hgt), status == 200 and isinstance(d, dict), "%d %s" % (status, short(body)))
        results.append(check_labels(c, "segment " + name, d) if isinstance(d, dict) else None)
    c.check("BMP and PNG of the same pixels: same labels", results[0] is not None and results[0] == results[1], "differ")


def same_labels(c, name, doc, want):
    try:
        got = label_map(base64.b64decode(doc.get("labels_png") or ""))[2]
    except Exception as e:  # noqa: BLE001
        c.check(name, False, "labels_png: %s" % e)
        return
    c.check(name, want is not None and got == want, "label maps differ" if want is not None else "no reference labels")


def compare_with_cli(c, name, cli_result, labels, record):
    code, out, out_dir = cli_result
    stem = os.path.join(out_dir, "coco_000000039769")
    if not c.check(name + ": segment ran", code == 0 and os.path.exists(stem + ".json"), "exit %s: %s" % (code, short(out, 600))):
        return
    with open(stem + ".json") as f:
        cli_record = json.load(f)
    with open(stem + ".labels.png", "rb") as f:
        cli_labels = label_map(f.read())
    c.check(name + ": label pixels equal", labels is not None and cli_labels[2] == labels,
            "differ in %s pixels" % ("?" if labels is None else sum(a != b for a, b in zip(cli_labels[2], labels))))
    for key in ("classes", "prompt", "settings", "image_sha256", "width", "height"):
        c.equal("%s: record %s equal" % (name, key), record.get(key), cli_record.get(key))


def check_maps(c, what, doc):
    maps = doc.get("maps")
    record = doc.get("record") or {}
    if not c.check(what + ": maps object", isinstance(maps, dict), short(maps)):
        return
    grid, iterations = maps.get("grid"), maps.get("iterations")
    c.equal(what + ": grid (64 px / 16 px patches)", grid, 4)
    c.equal(what + ": iterations = settings.dropout_iterations", iterations, (record.get("settings") or {}).get("dropout_iterations"))
    classes = maps.get("classes") or []
    c.equal(what + ": one entry per prompted class", [(k.get("label"), k.get("name")) for k in classes],
            [(p.get("label"), p.get("name")) for p in record.get("prompt") or []])
    if not isinstance(grid, int) or not isinstance(iterations, int):
        return
    problems = []

    def heatmap(label, value):
        try:
            data = base64.b64decode(value, validate=True)
        except Exception:  # noqa: BLE001
            problems.append("%s: not base64" % label)
            return
        if not data.startswith(PNG_SIGNATURE):
            problems.append("%s: no PNG signature" % label)
            return
        try:
            d = png_decode(data, unfilter=False)
        except Exception as e:  # noqa: BLE001
            problems.append("%s: %s" % (label, e))
            return
        if min(d["width"], d["height"]) < 256:
            problems.append("%s: %dx%d, under 256 px on a side" % (label, d["width"], d["height"]))

    for k in classes:
        n = k.get("name")
        if not isinstance(k.get("attention"), str):
            problems.append("%s: no attention" % n)
        else:
            heatmap(n + ".attention", k["attention"])
        gradcam = k.get("gradcam")
        if not isinstance(gradcam, list) or len(gradcam) != iterations:
            problems.append("%s: gradcam is not a list of %d" % (n, iterations))
        else:
            for i, g in enumerate(gradcam):
                heatmap("%s.gradcam[%d]" % (n, i), g)
        heatmap(n + ".final", k.get("final") or "")
        sg = k.get("score_grid")
        if not isinstance(sg, list) or len(sg) != grid * grid:
            problems.append("%s: score_grid has %s values, expected %d" % (n, len(sg) if isinstance(sg, list) else sg, grid * grid))
        elif not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in sg):
            problems.append("%s: score_grid values outside [0, 1]: %s" % (n, short(sg, 120)))
    dropped = maps.get("dropped")
    if not isinstance(dropped, list) or len(dropped) != iterations:
        problems.append("dropped is not a list of %d" % iterations)
    else:
        for i, d in enumerate(dropped):
            heatmap("dropped[%d]" % i, d)
    c.check(what + ": attention, gradcam[iterations], final, score_grid, dropped[iterations]", not problems,
            "; ".join(problems[:6]))


def check_errors(c, main, data_dir, image_bytes):
    def expect(name, status_want, body_headers, path="/v1/segment", contains=None):
        status, h, body, doc = main.segment(body_headers, path=path)
        wants = status_want if isinstance(status_want, tuple) else (status_want,)
        ok = c.check("%s -> %s" % (name, "/".join(map(str, wants))), status in wants, "%d %s" % (status, short(body, 200)))
        if ok:
            problem = error_body_problem(status, h, body)
            c.check("%s: JSON error body" % name, not problem, problem)
            if not problem and contains:
                c.check("%s: the error names the request's %r" % (name, contains), contains in doc["error"],
                        "error %r" % doc["error"])

    small = png_rgb(32, 32)
    # 400
    expect("multipart without image", 400, segment_multipart(None))
    expect("multipart without classes", 400, segment_multipart(small, classes=None))
    expect("JSON body cut short", 400, (b'{"image": "AAAA", "classes": ["cat"', {"Content-Type": "application/json"}))
    expect("JSON body not an object", 400, (b'[1, 2, 3]', {"Content-Type": "application/json"}))
    expect("JSON body with bad base64", 400, (json.dumps({"image": "!!not base64~~", "classes": ["cat"]}).encode(),
                                              {"Content-Type": "application/json"}))
    expect("JSON body without classes", 400, (json.dumps({"image": base64.b64encode(small).decode()}).encode(),
                                              {"Content-Type": "application/json"}))
    expect("JSON body without image", 400, (json.dumps({"classes": ["cat"]}).encode(), {"Content-Type": "application/json"}))
    body, headers = segment_multipart(small)
    expect("multipart Content-Type without boundary", 400, (body, {"Content-Type": "multipart/form-data"}))
    # 404 / 405
    for method, path in (("GET", "/no/such/page"), ("GET", "/v1/nothing"), ("POST", "/v1/segments")):
        status, h, body = main.server.request(method, path, body=b"" if method == "POST" else None)
        c.check("%s %s -> 404" % (method, path), status == 404 and not error_body_problem(status, h, body),
                "%d %s" % (status, short(body, 200)))
    for method, path in (("GET", "/v1/segment"), ("DELETE", "/v1/segment"), ("POST", "/v1/info"), ("PUT", "/healthz")):
        status, h, body = main.server.request(method, path, body=b"" if method in ("POST", "PUT") else None)
        if path == "/v1/segment":
            main.statuses[status] = main.statuses.get(status, 0) + 1
        c.check("%s %s -> 405" % (method, path), status == 405 and not error_body_problem(status, h, body),
                "%d %s" % (status, short(body, 200)))
    # 413 from the pixel count in the header
    bad = os.path.join(data_dir, "bad")
    for name in ("image_png_huge_dimensions.png", "image_bmp_huge_dimensions.bmp"):
        with open(os.path.join(bad, name), "rb") as f:
            data = f.read()
        t0 = time.time()
        expect("%s (header over --max-pixels)" % name, 413, segment_multipart(data, settings=CHEAP, filename=name))
        c.check("%s answered at once" % name, time.time() - t0 < 5, "%.1f s" % (time.time() - t0))
    # 415
    for name in ("image_text_file.png", "image_zero_bytes.png", "image_png_truncated_in_idat.png",
                 "image_png_corrupt_idat_bad_crc.png", "image_png_zero_width.png", "image_gif_unsupported_format.gif",
                 "image_jpeg_1x1_corrupt_scan.jpg", "image_jpeg_soi_only.jpg", "image_bmp_truncated_pixels.bmp"):
        with open(os.path.join(bad, name), "rb") as f:
            data = f.read()
        expect("image %s" % name, 415, segment_multipart(data, settings=CHEAP, filename=name))
    expect("image: the photo's PNG cut at 60%", 415, segment_multipart(image_bytes[:len(image_bytes) * 6 // 10], settings=CHEAP))
    expect("image: plain text", 415, segment_multipart(b"hello, this is not an image\n" * 10, settings=CHEAP))
    # 422
    expect("settings: unknown name", 422, segment_multipart(small, settings={"no_such_setting": 1}), contains="no_such_setting")
    expect("settings: layer 99", 422, segment_multipart(small, settings={"attention_layer_1based": 99}),
           contains="attention_layer_1based")
    expect("settings: head 0", 422, segment_multipart(small, settings={"attention_head_1based": 0}),
           contains="attention_head_1based")
    expect("settings: layer as a string", 422, segment_multipart(small, settings={"attention_layer_1based": "two"}),
           contains="attention_layer_1based")
    expect("settings: threshold 1.5", 422, segment_multipart(small, settings={"mask_threshold": 1.5}), contains="mask_threshold")
    expect("settings: post_mode sharpen", 422, segment_multipart(small, settings={"post_mode": "sharpen"}), contains="post_mode")
    expect("settings: input_size 70 (not a multiple of the patch)", 422, segment_multipart(small, settings={"input_size": 70}),
           contains="input_size")
    expect("settings: preset fancy", 422, segment_multipart(small, settings={"preset": "fancy"}), contains="preset")
    expect("settings: not an object", (400, 422), segment_multipart(small, settings="[1, 2]"))
    expect("settings (JSON body): unknown name", 422, segment_json(small, settings={"no_such_setting": True}),
           contains="no_such_setting")
    expect("classes: empty", 422, segment_multipart(small, classes=""))
    expect("classes: only commas and spaces", 422, segment_multipart(small, classes=" , ,"))
    expect("classes: empty name", 422, segment_multipart(small, classes="cat,,couch"))
    expect("classes: duplicate", 422, segment_multipart(small, classes="cat, couch, Cat"))
    expect("classes (JSON body): empty array", 422, segment_json(small, classes=[]))
    expect("classes (JSON body): duplicate", 422, segment_json(small, classes=["cat", "cat"]))


def check_metrics_tally(c, main, before):
    after = fetch_metrics(main.server)
    counted = {s: int(metric(after, "pnpovss_requests_total", path="/v1/segment", status=s) -
                      metric(before, "pnpovss_requests_total", path="/v1/segment", status=s)) for s in main.statuses}
    c.equal("metrics: requests_total{path=\"/v1/segment\"} by status counts every answer", counted, main.statuses)
    ok = main.statuses.get(200, 0)
    c.equal("metrics: images_segmented_total went up by the 200s",
            metric(after, "pnpovss_images_segmented_total") - metric(before, "pnpovss_images_segmented_total"), float(ok))
    c.equal("metrics: no segment failures", metric(after, "pnpovss_segment_failures_total"), 0.0)
    n = metric(after, "pnpovss_request_duration_seconds_count") - metric(before, "pnpovss_request_duration_seconds_count")
    c.check("metrics: request_duration_seconds counted the segment requests", ok <= n <= sum(main.statuses.values()),
            "count went up by %d; %d answers, %d of them 200" % (n, sum(main.statuses.values()), ok))
    buckets = sorted((float(l["le"]), v) for name, l, v in after if name == "pnpovss_request_duration_seconds_bucket")
    c.check("metrics: histogram buckets cumulative, +Inf = count", buckets and buckets[-1][0] == float("inf") and
            buckets[-1][1] == metric(after, "pnpovss_request_duration_seconds_count") and
            all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), short(buckets))
    c.check("metrics: requests_total counts GET /v1/info",
            metric(after, "pnpovss_requests_total", path="/v1/info", status=200) >= 1, "no /v1/info 200 sample")
    c.check("metrics: duration sum positive", metric(after, "pnpovss_request_duration_seconds_sum") > 0, "zero")


def check_sigterm(c, main, image_bytes):
    """A slow request in flight, SIGTERM: it still gets 200, the process exits 0, and new
    connections are refused."""
    server = main.server
    result = {}

    def slow():
        try:
            result["answer"] = server.request("POST", "/v1/segment", *segment_multipart(image_bytes, filename="slow.png"))
        except Exception as e:  # noqa: BLE001
            result["answer"] = e

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    deadline = time.time() + 20
    seen = False
    while time.time() < deadline and not seen and t.is_alive():
        seen = metric(fetch_metrics(server), "pnpovss_images_in_flight") >= 1
        if not seen:
            time.sleep(0.02)
    if not c.check("SIGTERM: the slow request is in flight", seen, "never saw images_in_flight >= 1"):
        t.join(60)
        return
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    outcome = None
    if server.proc.poll() is None:  # still answering the request in flight
        try:
            status, h, body = server.request("GET", "/healthz", timeout=30)
            outcome = "%d" % status
        except ConnectionRefusedError:
            outcome = "refused"
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            outcome = "closed (%s)" % type(e).__name__
        c.check("SIGTERM: a new connection while stopping is refused or 503", outcome != "200",
                "got %s" % outcome)
    t.join(120)
    answer = result.get("answer")
    c.check("SIGTERM: the request in flight still gets 200", isinstance(answer, tuple) and answer[0] == 200,
            short(answer if not isinstance(answer, tuple) else (answer[0], answer[2][:200])))
    try:
        code = server.proc.wait(60)
    except subprocess.TimeoutExpired:
        code = "still running 60 s later"
    c.equal("SIGTERM: the server exits with status 0", code, 0)
    try:
        socket.create_connection((server.host, server.port), timeout=5).close()
        refused = "accepted"
    except ConnectionRefusedError:
        refused = "refused"
    except OSError as e:
        refused = "error %s" % e
    c.equal("SIGTERM: new connections refused after exit", refused, "refused")


def check_api_key(c, binary, data_dir):
    key = "s3cret-Key_42"
    server = start_server(c, binary, data_dir, ["--api-key", key], "--api-key")
    if server is None:
        return
    small = png_rgb(32, 32, seed=5)
    try:
        def get(path, headers=None):
            status, h, body = server.request("GET", path, headers=headers)
            return status, h, body

        status, h, body = get("/healthz")
        c.check("--api-key: /healthz needs no key", status == 200, "%d %s" % (status, short(body)))
        status, h, body = get("/")
        c.check("--api-key: the page at / needs no key", status == 200, "%d %s" % (status, short(body, 100)))
        for path in ("/v1/info", "/metrics"):
            status, h, body = get(path)
            c.check("--api-key: GET %s without the key -> 401" % path, status == 401 and not error_body_problem(status, h, body),
                    "%d %s" % (status, short(body, 200)))
        status, h, body = get("/v1/info", {"Authorization": "Bearer wrong-key"})
        c.check("--api-key: a wrong Bearer key -> 401", status == 401, "%d" % status)
        status, h, body = get("/v1/info", {"X-API-Key": key + "x"})
        c.check("--api-key: a wrong X-API-Key -> 401", status == 401, "%d" % status)
        status, h, body = get("/v1/info", {"Authorization": "Bearer " + key})
        c.check("--api-key: Authorization: Bearer KEY -> 200", status == 200, "%d %s" % (status, short(body)))
        c.equal("--api-key: info api_key_required", (parse_json(body) or {}).get("api_key_required"), True)
        status, h, body = get("/v1/info", {"X-API-Key": key})
        c.check("--api-key: X-API-Key: KEY -> 200", status == 200, "%d %s" % (status, short(body)))
        status, h, body = get("/metrics", {"Authorization": "Bearer " + key})
        c.check("--api-key: /metrics with the key -> 200", status == 200, "%d" % status)
        body, headers = segment_multipart(small, settings=CHEAP)
        status, h, data = server.request("POST", "/v1/segment", body, headers)
        c.check("--api-key: POST /v1/segment without the key -> 401", status == 401 and not error_body_problem(status, h, data),
                "%d %s" % (status, short(data, 200)))
        status, h, data = server.request("POST", "/v1/segment", body, dict(headers, Authorization="Bearer " + key))
        c.check("--api-key: POST /v1/segment with Bearer KEY -> 200", status == 200, "%d %s" % (status, short(data, 200)))
        status, h, data = server.request("POST", "/v1/segment", body, dict(headers, **{"X-API-Key": key}))
        c.check("--api-key: POST /v1/segment with X-API-Key -> 200", status == 200, "%d %s" % (status, short(data, 200)))
    finally:
        stop_server(c, server, "--api-key", signal.SIGINT)


def check_limits(c, binary, data_dir):
    server = start_server(c, binary, data_dir, ["--max-upload-mb", "1", "--max-pixels", "1000"], "--max-upload-mb 1")
    if server is None:
        return
    try:
        status, info = server.get_json("/v1/info")
        limits = (info or {}).get("limits") or {}
        c.equal("--max-upload-mb 1 --max-pixels 1000: info limits", (limits.get("max_upload_mb"), limits.get("max_pixels")), (1, 1000))
        junk = bytes((i * 7919) & 255 for i in range(2 * 1024 * 1024))
        check_oversize_upload(c, server, junk)
        body, headers = segment_json(junk)
        try:
            status, h, data, sent = raw_exchange(server, "POST", "/v1/segment", body, headers)
            c.check("2.7 MB JSON body over --max-upload-mb 1 -> 413", status == 413, "%d %s" % (status, short(data, 200)))
        except Exception as e:  # noqa: BLE001
            c.check("2.7 MB JSON body over --max-upload-mb 1 -> 413", False, "no answer: %s: %s" % (type(e).__name__, e))
        for w, h_, want in ((32, 32, 413), (31, 32, 200)):
            body, headers = segment_multipart(png_rgb(w, h_), settings=CHEAP)
            status, h, data = server.request("POST", "/v1/segment", body, headers)
            c.check("--max-pixels 1000: %dx%d PNG (%d px) -> %d" % (w, h_, w * h_, want), status == want,
                    "%d %s" % (status, short(data, 200)))
        body, headers = segment_multipart(bmp_rgb(32, 32, rgb_pixels(32, 32)), settings=CHEAP, filename="a.bmp")
        status, h, data = server.request("POST", "/v1/segment", body, headers)
        c.check("--max-pixels 1000: 32x32 BMP -> 413", status == 413, "%d %s" % (status, short(data, 200)))
        status, h, data = server.request("GET", "/healthz")
        c.check("--max-upload-mb 1: still answers after the 413s", status == 200, "%d" % status)
    finally:
        stop_server(c, server, "--max-upload-mb 1")


def check_queue_full(c, binary, data_dir, image_bytes):
    server = start_server(c, binary, data_dir, ["--max-queue", "1", "--workers", "1"], "--max-queue 1")
    if server is None:
        return
    try:
        status, info = server.get_json("/v1/info")
        limits = (info or {}).get("limits") or {}
        c.equal("--max-queue 1 --workers 1: info limits", (limits.get("max_queue"), limits.get("workers")), (1, 1))
        c.equal("--max-queue 1: metrics queue capacity", metric(fetch_metrics(server), "pnpovss_queue_capacity"), 1.0)
        # Each request takes 0.2-1 s (the 640x480 photo, blurred); eight arrive within
        # milliseconds: one runs, one waits, the others find the queue full.
        body, headers = segment_multipart(image_bytes, settings={"post_mode": "blur"})
        answers = concurrently([lambda: server.request("POST", "/v1/segment", body, headers)] * 8)
        statuses = [a[0] if isinstance(a, tuple) else repr(a) for a in answers]
        c.check("8 concurrent requests, queue 1: each 200 or 503", all(s in (200, 503) for s in statuses), str(statuses))
        c.check("8 concurrent requests, queue 1: some 503", statuses.count(503) >= 1, str(statuses))
        c.check("8 concurrent requests, queue 1: some 200", statuses.count(200) >= 1, str(statuses))
        bad = [a[1].get("retry-after") for a in answers if isinstance(a, tuple) and a[0] == 503
               and not retry_after_ok(a[1].get("retry-after"))]
        c.check("503 answers carry Retry-After", not bad, "Retry-After values %s" % bad)
        bad = [error_body_problem(*a) for a in answers if isinstance(a, tuple) and a[0] == 503 and error_body_problem(*a)]
        c.check("503 answers have a JSON error body", not bad, "; ".join(bad[:2]))
        c.check("--max-queue 1: idle again after the burst", wait_idle(server, 30), "queue or images in flight not 0")
        status, h, data = server.request("POST", "/v1/segment", *segment_multipart(png_rgb(32, 32), settings=CHEAP))
        c.check("--max-queue 1: a request after the burst -> 200", status == 200, "%d %s" % (status, short(data, 200)))
        s = fetch_metrics(server)
        c.equal("--max-queue 1: metrics count the 503s",
                metric(s, "pnpovss_requests_total", path="/v1/segment", status=503), float(statuses.count(503)))
    finally:
        stop_server(c, server, "--max-queue 1")


def check_timeout(c, binary, data_dir, image_bytes):
    timeout = 1
    server = start_server(c, binary, data_dir, ["--timeout", str(timeout), "--workers", "1"], "--timeout %d" % timeout)
    if server is None:
        return
    try:
        status, info = server.get_json("/v1/info")
        c.equal("--timeout %d: info limits timeout_s" % timeout, ((info or {}).get("limits") or {}).get("timeout_s"), timeout)
        # Six 640x480 requests with the CRF (0.3-3 s each) on one worker: the last ones wait
        # longer than the timeout whatever the machine's speed.
        body, headers = segment_multipart(image_bytes)

        def timed():
            t0 = time.time()
            status, h, data = server.request("POST", "/v1/segment", body, headers)
            return status, h, data, time.time() - t0

        answers = concurrently([timed] * 6, start_gap=0.02)
        statuses = [a[0] if isinstance(a, tuple) else repr(a) for a in answers]
        c.check("--timeout %d: 6 slow requests on one worker: each 200 or 504" % timeout,
                all(s in (200, 504) for s in statuses), str(statuses))
        c.check("--timeout %d: a 504 appears" % timeout, 504 in statuses, str(statuses))
        late = [round(a[3], 1) for a in answers if isinstance(a, tuple) and a[0] == 504]
        c.check("--timeout %d: a 504 comes soon after the timeout" % timeout, late and min(late) < timeout + 2.5,
                "504 after %s s" % late)
        bad = [error_body_problem(*a[:3]) for a in answers if isinstance(a, tuple) and a[0] == 504 and error_body_problem(*a[:3])]
        c.check("504 answers have a JSON error body", not bad, "; ".join(bad[:2]))
        c.check("--timeout %d: idle again after the 504s" % timeout, wait_idle(server, 60), "queue or images in flight not 0")
        status, h, data = server.request("GET", "/healthz")
        c.check("--timeout %d: /healthz after the 504s" % timeout, status == 200, "%d" % status)
        status, h, data = server.request("POST", "/v1/segment", *segment_multipart(png_rgb(32, 32), settings=CHEAP))
        c.check("--timeout %d: a quick request after the 504s -> 200" % timeout, status == 200, "%d %s" % (status, short(data, 200)))
    finally:
        stop_server(c, server, "--timeout")


class CliRuns:
    """`segment` with the default and the override settings, run on a thread while the server
    tests go on."""

    def __init__(self, binary, data_dir, tmp):
        self.outs = (os.path.join(tmp, "cli_default"), os.path.join(tmp, "cli_override"))
        self.results = [None, None]
        self.thread = threading.Thread(target=self._run, args=(binary, data_dir), daemon=True)
        self.thread.start()

    def _run(self, binary, data_dir):
        for i, extra in enumerate(([], OVERRIDE_CLI)):
            try:
                code, out = run_cli(binary, data_dir, self.outs[i], extra)
            except Exception as e:  # noqa: BLE001
                code, out = None, str(e)
            self.results[i] = (code, out, self.outs[i])

    def result(self):
        self.thread.join(600)
        return self.results


def main():
    binary, data_dir = usage_args(sys.argv, 2, "PNP_OVSS_BINARY TEST_DATA_DIR")
    binary, data_dir = os.path.abspath(binary), os.path.abspath(data_dir)
    with open(os.path.join(data_dir, IMAGE), "rb") as f:
        image_bytes = f.read()
    c = Checks()
    tmp = tempfile.mkdtemp(prefix="pnpovss_serve_api_")
    try:
        cli = CliRuns(binary, data_dir, tmp)
        server = start_server(c, binary, data_dir, [], "main")
        if server is not None:
            main_server = Main(server)
            try:
                before = fetch_metrics(server)
                info = c.run("endpoints", check_endpoints, c, main_server) or {}
                sections = [("segment", check_segment, (c, main_server, image_bytes, info, cli)),
                            ("errors", check_errors, (c, main_server, data_dir, image_bytes)),
                            ("metrics", check_metrics_tally, (c, main_server, before)),
                            ("SIGTERM", check_sigterm, (c, main_server, image_bytes))]
                for name, fn, args in sections:
                    if not c.check("main server still running before the %s checks" % name, server.proc.poll() is None,
                                   "it exited with status %s" % server.proc.returncode):
                        break
                    c.run(name, fn, *args)
            finally:
                if server.proc.poll() is None:
                    stop_server(c, server, "main")
                if c.failed:
                    sys.stderr.write("---- main server output (last 4000 chars) ----\n%s\n" % server.output()[-4000:])
        cli.result()
        c.run("--api-key", check_api_key, c, binary, data_dir)
        c.run("limits", check_limits, c, binary, data_dir)
        c.run("queue", check_queue_full, c, binary, data_dir, image_bytes)
        c.run("timeout", check_timeout, c, binary, data_dir, image_bytes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
