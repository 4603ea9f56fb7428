#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub on 127.0.0.1, for tests of hub downloads.

Serves the files of a model folder as repository `test-org/tiny-blip` (and, without
special_tokens_map.json and preprocessor_config.json, as `test-org/lean-blip`) with the headers
the hub sends:

  HEAD/GET /{repo}/resolve/{revision}/{file}
    small files: 200, ETag = git blob id, Content-Length, X-Repo-Commit
    large files (*.safetensors): 302 to /lfs/{sha256}, X-Linked-Etag = sha256,
      X-Linked-Size, X-Repo-Commit (as Git LFS files on the hub)
    unknown repository: 404 X-Error-Code RepoNotFound; gated repository `test-org/gated-blip`:
    401 (403 with a token) X-Error-Code GatedRepo; unknown revision: 404 RevisionNotFound;
    missing file: 404 EntryNotFound
  GET /lfs/{sha256} with Range support (206, Content-Range)

Switches: --drop-after N (the first /lfs/ response stops after N bytes and the connection is
closed), --cut-after N (the same, and every later /lfs/ request is hung up on before any byte: a
connection that stays broken), --ignore-range (/lfs/ answers 200 with the whole file whatever the
Range header, as servers without resume support do), --slow BYTES (/lfs/ bodies sent at about
BYTES per second, for tests that interrupt a download), --corrupt FILE (one byte of FILE's content flipped; the headers keep the true hash),
--log PATH (one line per request: method, path, Range header). The chosen port is printed on
stdout as "port N". Standard library only.
"""
import argparse
import hashlib
import http.server
import os
import sys
import threading
import time

COMMIT = hashlib.sha1(b"test-org/tiny-blip fixture").hexdigest()
GATED = "test-org/gated-blip"


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    def __init__(self, folder, corrupt, drop_after, log_path, cut=False, ignore_range=False, slow=None):
        self.repos = {}
        names = sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))
        files = {}
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            served = bytearray(data)
            if name == corrupt and served:
                served[len(served) // 2] ^= 0xFF
            files[name] = {"true": data, "served": bytes(served), "lfs": name.endswith(".safetensors"),
                           "sha256": hashlib.sha256(data).hexdigest(), "git": git_blob_id(data)}
        self.repos["test-org/tiny-blip"] = files
        lean = {k: v for k, v in files.items() if k not in ("special_tokens_map.json", "preprocessor_config.json")}
        self.repos["test-org/lean-blip"] = lean
        self.lfs = {f["sha256"]: f for f in files.values() if f["lfs"]}
        self.drop_after = drop_after
        self.cut = cut  # after the first drop, hang up on every /lfs/ request
        self.dropped = False
        self.ignore_range = ignore_range
        self.slow = slow
        self.lock = threading.Lock()
        self.log = open(log_path, "a") if log_path else None

    def record(self, line):
        if self.log:
            with self.lock:
                self.log.write(line + "\n")
                self.log.flush()

    def take_drop(self):
        with self.lock:
            n, self.drop_after = self.drop_after, None
            if n is not None:
                self.dropped = True
            return n

    def link_down(self):
        with self.lock:
            return self.cut and self.dropped


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "fake-hub/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    def reply(self, status, headers, body=b"", head=False):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def error(self, status, code, message, head):
        self.reply(status, {"X-Error-Code": code, "X-Error-Message": message,
                            "Content-Type": "application/json"},
                   ('{"error": "%s"}' % message).encode(), head)

    def handle_request(self, head):
        hub = self.server.hub
        hub.record("%s %s range=%s auth=%s" % (self.command, self.path, self.headers.get("Range", "-"),
                                                "yes" if self.headers.get("Authorization") else "no"))
        if self.path.startswith("/lfs/"):
            return self.serve_lfs(self.path[len("/lfs/"):].split("?")[0], head)
        parts = self.path.split("?")[0].split("/")
        # ['', org, name, 'resolve', revision, file...]
        if len(parts) < 6 or parts[3] != "resolve":
            return self.error(404, "EntryNotFound", "no such route", head)
        repo, revision, name = parts[1] + "/" + parts[2], parts[4], "/".join(parts[5:])
        if repo == GATED:
            status = 403 if self.headers.get("Authorization") else 401
            return self.error(status, "GatedRepo", "Access to model %s is restricted." % repo, head)
        files = hub.repos.get(repo)
        if files is None:
            return self.error(404, "RepoNotFound", "Repository not found", head)
        if revision not in ("main", COMMIT):
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % revision, head)
        entry = files.get(name)
        if entry is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        common = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        if entry["lfs"]:
            host = "http://127.0.0.1:%d" % self.server.server_address[1]
            headers = dict(common, **{"Location": "%s/lfs/%s" % (host, entry["sha256"]),
                                      "X-Linked-Etag": '"%s"' % entry["sha256"],
                                      "X-Linked-Size": str(len(entry["true"])),
                                      "ETag": '"%s"' % git_blob_id(b"lfs pointer " + entry["sha256"].encode())})
            return self.reply(302, headers, b"", head)
        headers = dict(common, **{"ETag": '"%s"' % entry["git"], "Content-Type": "text/plain"})
        self.reply(200, headers, entry["served"], head)

    def serve_lfs(self, sha, head):
        hub = self.server.hub
        entry = hub.lfs.get(sha)
        if entry is None:
            return self.error(404, "EntryNotFound", "no such object", head)
        if hub.link_down():
            self.close_connection = True
            self.connection.shutdown(2)
            return
        data = entry["served"]
        start = 0
        status = 200
        headers = {"ETag": '"%s"' % sha, "Accept-Ranges": "bytes"}
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-") and not hub.ignore_range:
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                return self.reply(416, {"Content-Range": "bytes */%d" % len(data)}, b"", head)
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = data[start:]
        drop = None if head else hub.take_drop()
        if drop is None and hub.slow and not head:
            return self.reply_slowly(status, headers, body, hub.slow)
        if drop is None:
            return self.reply(status, headers, body, head)
        # Announce the whole body, send part of it, and hang up.
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:drop])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)


    def reply_slowly(self, status, headers, body, rate):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        chunk = max(1, rate // 20)
        try:
            for i in range(0, len(body), chunk):
                self.wfile.write(body[i:i + chunk])
                self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (an interrupted download)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True)
    parser.add_argument("--drop-after", type=int)
    parser.add_argument("--cut-after", type=int)
    parser.add_argument("--ignore-range", action="store_true")
    parser.add_argument("--slow", type=int)
    parser.add_argument("--corrupt")
    parser.add_argument("--log")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    drop_after = args.cut_after if args.cut_after is not None else args.drop_after
    server.hub = Hub(args.folder, args.corrupt, drop_after, args.log, cut=args.cut_after is not None,
                     ignore_range=args.ignore_range, slow=args.slow)
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
