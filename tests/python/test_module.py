#!/usr/bin/env python3
"""The `pnpovss` Python module against the command line: the same image, model and settings give
the same label map and score maps bit for bit; errors carry the command line's messages; the GIL
is released during compute; hub ids resolve through the cache (with tests/fake_hub.py).

Usage: PYTHONPATH=<build>/python python3 tests/python/test_module.py PNP_OVSS_BINARY TEST_DATA_DIR
Needs only the standard library and numpy (PNG files are decoded here with zlib).
"""
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

import numpy as np

import pnpovss

BIN = DATA = None
IMAGE = MODEL = None
CLASSES = ["cat", "couch", "remote control"]
TINY = {"size": 64, "layer": 2, "head": 3}  # the tiny test model: 64-pixel input, 3 layers, 4 heads
TINY_FLAGS = ["--size", "64", "--layer", "2", "--head", "3"]


_png_cache = {}


def read_png(path):
    """8-bit gray, RGB, RGBA or palette PNG without interlacing -> uint8 array [H, W, channels]
    (palette images give their indices, [H, W, 1]). Decoded once per path."""
    if path in _png_cache:
        return _png_cache[path].copy()
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and interlace == 0, (path, depth, interlace)
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        base = y * (stride + 1)
        kind = raw[base]
        cur = bytearray(raw[base + 1:base + 1 + stride])
        if kind == 1:
            for x in range(bpp, stride):
                cur[x] = (cur[x] + cur[x - bpp]) & 0xFF
        elif kind == 2:
            cur = bytearray((a + b) & 0xFF for a, b in zip(cur, prev))
        elif kind == 3:
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                cur[x] = (cur[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif kind == 4:
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 0xFF
        out[y * stride:(y + 1) * stride] = cur
        prev = cur
    _png_cache[path] = np.frombuffer(bytes(out), dtype=np.uint8).reshape(height, width, bpp)
    return _png_cache[path].copy()


def read_safetensors(path):
    """name -> numpy array, for the dtypes the maps file uses."""
    dtypes = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(blob[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def cli(*args):
    """Runs the pnp-ovss binary; returns (status, stdout, stderr)."""
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def cli_error(*args):
    status, _, err = cli(*args)
    lines = err.strip().splitlines()
    assert status != 0 and lines and lines[-1].startswith("error: "), (status, err)
    return lines[-1][len("error: "):]


class SameAsCli(unittest.TestCase):
    """Segmenter.segment on a numpy image equals `pnp-ovss segment` on the file."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.image = read_png(IMAGE)
        cls.runs = {}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def cli_outputs(self, name, flags):
        out = os.path.join(self.tmp.name, name)
        status, _, err = cli("segment", IMAGE, "--classes", ", ".join(CLASSES), "--model", MODEL,
                             *flags, "--out", out, "--save-maps")
        self.assertEqual(status, 0, err)
        stem = os.path.join(out, "coco_000000039769")
        return read_png(stem + ".labels.png")[:, :, 0], read_safetensors(stem + ".maps.safetensors")

    def check(self, name, settings, flags):
        labels_png, maps = self.cli_outputs(name, TINY_FLAGS + flags)
        result = pnpovss.Segmenter(MODEL, **TINY, **settings).segment(self.image, CLASSES)
        self.assertEqual(result.labels.dtype, np.int32)
        self.assertEqual(result.labels.shape, self.image.shape[:2])
        np.testing.assert_array_equal(result.labels, labels_png.astype(np.int32))
        np.testing.assert_array_equal(result.labels, maps["labels"])
        decided = maps["blurred"] if "blurred" in maps else maps["stack"]
        self.assertEqual(result.scores.dtype, np.float32)
        self.assertEqual(result.scores.shape, (len(result.channel_names),) + self.image.shape[:2])
        self.assertTrue(np.array_equal(result.scores, decided), "score maps differ from the CLI's")
        self.assertEqual(result.channel_names, ["background"] + CLASSES)
        self.assertGreater(len(np.unique(result.labels)), 1)
        return result

    def test_paper_preset(self):
        self.check("paper", {}, [])

    def test_options(self):
        self.check("options", {"postprocess": "none", "threshold": 0.3, "iterations": 2},
                   ["--postprocess", "none", "--threshold", "0.3", "--iterations", "2"])

    def test_bf16(self):
        self.check("bf16", {"dtype": "bf16"}, ["--dtype", "bf16"])

    def test_arrays_are_views(self):
        result = pnpovss.Segmenter(MODEL, **TINY, postprocess="none").segment(self.image, CLASSES)
        self.assertFalse(result.labels.flags["OWNDATA"])
        self.assertFalse(result.scores.flags["OWNDATA"])
        self.assertIsInstance(result.timings, dict)
        self.assertIn("dropout", result.timings)

    def test_non_contiguous_image(self):
        seg = pnpovss.Segmenter(MODEL, **TINY, postprocess="none")
        flipped = self.image[:, ::-1]
        a = seg.segment(flipped, CLASSES).labels
        b = seg.segment(np.ascontiguousarray(flipped), CLASSES).labels
        np.testing.assert_array_equal(a, b)

    def test_run_cli_in_process(self):
        out = os.path.join(self.tmp.name, "in_process")
        status = pnpovss.run_cli(["segment", IMAGE, "--classes", ", ".join(CLASSES), "--model", MODEL,
                                  *TINY_FLAGS, "--out", out])
        self.assertEqual(status, 0)
        labels_png, _ = self.cli_outputs("for_in_process", TINY_FLAGS)
        np.testing.assert_array_equal(read_png(os.path.join(out, "coco_000000039769.labels.png"))[:, :, 0],
                                      labels_png)


class Many(unittest.TestCase):
    """Segmenter.segment_many equals segment() on each image, whatever the workers and batches."""

    @classmethod
    def setUpClass(cls):
        photo = read_png(IMAGE)
        other = read_png(os.path.join(DATA, "images", "coco_000000004016.png"))[:, :, :3]
        cls.images = [photo, np.ascontiguousarray(photo[40:, ::-1]), other, photo[:100, :150]]
        cls.classes = [CLASSES, ["cat", "dog"], ["sofa", "television", "lamp"], ["remote control", "cat"]]
        cls.seg = pnpovss.Segmenter(MODEL, **TINY)
        cls.alone = [cls.seg.segment(im, c) for im, c in zip(cls.images, cls.classes)]

    def check(self, results, alone, what):
        self.assertEqual(len(results), len(alone), what)
        for i, (got, want) in enumerate(zip(results, alone)):
            np.testing.assert_array_equal(got.labels, want.labels, "%s, image %d" % (what, i))
            self.assertTrue(np.array_equal(got.scores, want.scores), "%s, image %d: scores differ" % (what, i))
            self.assertEqual(got.channel_names, want.channel_names, what)

    def test_classes_per_image_with_workers_and_batches(self):
        for workers, batch in [("1", "1"), ("2", "1"), ("3", "1"), ("auto", "auto"), ("2", "2")]:
            results = self.seg.segment_many(self.images, self.classes, workers=workers, batch_size=batch)
            self.check(results, self.alone, "workers %s, batch size %s" % (workers, batch))

    def test_counts_as_ints(self):
        results = self.seg.segment_many(self.images[:2], self.classes[:2], workers=2, batch_size=1)
        self.check(results, self.alone[:2], "workers=2 as an int")

    def test_a_failing_batch_runs_again_image_by_image(self):
        # The second image's class list is refused inside the batch; the batch then runs one image
        # at a time, so the first image still gets its result and the second fails alone.
        for workers, batch in [("1", "2"), ("2", "1")]:
            results = self.seg.segment_many(self.images[:2], [self.classes[0], ["cat", "Cat"]],
                                            workers=workers, batch_size=batch, on_error="none")
            self.assertIsNone(results[1])
            self.check(results[:1], self.alone[:1], "the good image of a failing batch")
        with self.assertRaises(ValueError):
            self.seg.segment_many(self.images[:1], CLASSES, on_error="ignore")

    def test_class_list_as_one_string(self):
        alone = [self.seg.segment(im, CLASSES) for im in self.images[:2]]
        self.check(self.seg.segment_many(self.images[:2], "cat, couch, remote control"), alone, "one str for all")

    def test_one_class_list_for_all(self):
        alone = [self.seg.segment(im, CLASSES) for im in self.images[:3]]
        self.check(self.seg.segment_many(self.images[:3], CLASSES, workers="2"), alone, "shared classes")
        self.assertEqual(self.seg.segment_many([], CLASSES), [])

    def test_errors(self):
        with self.assertRaises(ValueError) as caught:
            self.seg.segment_many(self.images, self.classes[:2])
        self.assertIn("one list per image", str(caught.exception))
        for bad in ["0", "two", 0, -1]:
            with self.assertRaises(ValueError) as caught:
                self.seg.segment_many(self.images, CLASSES, workers=bad)
            self.assertIn("workers=", str(caught.exception))
            self.assertNotIn("--", str(caught.exception))
            with self.assertRaises(ValueError) as caught:
                self.seg.segment_many(self.images, CLASSES, batch_size=bad)
            self.assertIn("batch_size=", str(caught.exception))
        for bad in [2.0, True, None]:
            with self.assertRaises(TypeError):
                self.seg.segment_many(self.images, CLASSES, workers=bad)
        with self.assertRaises(ValueError) as caught:
            self.seg.segment_many(self.images[:2], [CLASSES, ["cat", "Cat"]], workers="2")
        self.assertIn("images[1]", str(caught.exception))
        self.assertIn("Cat", str(caught.exception))
        with self.assertRaises(TypeError):
            self.seg.segment_many([self.images[0].astype(np.float32)], CLASSES)


class Errors(unittest.TestCase):
    """Errors are Python exceptions with the command line's one-line messages."""

    @classmethod
    def setUpClass(cls):
        cls.image = read_png(IMAGE)

    def test_missing_model(self):
        missing = os.path.join(tempfile.gettempdir(), "pnpovss_no_such_model", "x", "y")
        want = cli_error("segment", IMAGE, "--classes", "cat", "--model", missing, "--out",
                         os.path.join(tempfile.gettempdir(), "pnpovss_unused_out"))
        with self.assertRaises(RuntimeError) as caught:
            pnpovss.Segmenter(missing)
        self.assertEqual(str(caught.exception), want)

    def test_bad_settings(self):
        # The command line names the option ("--layer 0 ..."), Python the keyword ("layer=0 ..."),
        # with the same words after it.
        for key, value in [("layer", 0), ("threshold", 1.5), ("postprocess", "sharpen"), ("layer", 9),
                           ("head", 5), ("size", 65)]:
            settings = dict(TINY, **{key: value})
            flags = [word for k, v in settings.items() for word in ("--" + k, str(v))]
            want = cli_error("segment", IMAGE, "--classes", "cat", "--model", MODEL, *flags,
                             "--out", os.path.join(tempfile.gettempdir(), "pnpovss_unused_out"))
            self.assertTrue(want.startswith("--%s " % key), want)
            with self.assertRaises(ValueError) as caught:
                pnpovss.Segmenter(MODEL, **settings)
            self.assertEqual(str(caught.exception), key + "=" + want[len("--%s " % key):], key)
            self.assertNotIn("--", str(caught.exception))

    def test_duplicate_class(self):
        classes = ["cat", "couch", "Cat"]
        want = cli_error("segment", IMAGE, "--classes", ", ".join(classes), "--model", MODEL, *TINY_FLAGS,
                         "--out", os.path.join(tempfile.gettempdir(), "pnpovss_unused_out"))
        with self.assertRaises(ValueError) as caught:
            pnpovss.Segmenter(MODEL, **TINY).segment(self.image, classes)
        self.assertEqual(str(caught.exception), want)

    def test_unknown_setting_lists_valid_ones(self):
        with self.assertRaises(TypeError) as caught:
            pnpovss.Segmenter(MODEL, layers=2)
        self.assertIn("unknown setting 'layers'", str(caught.exception))
        self.assertIn("valid settings: preset, settings, size, layer, head, threshold", str(caught.exception))

    def test_wrong_setting_type(self):
        with self.assertRaises(TypeError):
            pnpovss.Segmenter(MODEL, size="64")

    def test_device(self):
        with self.assertRaises(RuntimeError) as caught:
            pnpovss.Segmenter(MODEL, device="cuda", **TINY)
        self.assertIn("cpu", str(caught.exception))
        with self.assertRaises(ValueError):
            pnpovss.Segmenter(MODEL, device="tpu", **TINY)
        with self.assertRaises(RuntimeError):
            pnpovss.Segmenter(MODEL, postprocess_device="cuda", **TINY)
        with self.assertRaises(ValueError):
            pnpovss.Segmenter(MODEL, postprocess_device="tpu", **TINY)
        with self.assertRaises(TypeError):
            pnpovss.Segmenter(MODEL, postprocess_device=0, **TINY)
        on_cpu = pnpovss.Segmenter(MODEL, postprocess_device="cpu", **TINY).segment(self.image, CLASSES)
        self.assertTrue(np.array_equal(on_cpu.labels, pnpovss.Segmenter(MODEL, **TINY).segment(self.image, CLASSES).labels))
        with self.assertRaises(ValueError):
            pnpovss.Segmenter(MODEL, dtype="int8", **TINY)
        with self.assertRaises(RuntimeError) as caught:
            pnpovss.Segmenter(MODEL, dtype="fp16", **TINY)
        self.assertIn("CUDA", str(caught.exception))
        # bf16 runs on the CPU and reaches the model: its maps are not fp32's. How close they come
        # is not asked here: the tiny random model's maps are nearly flat, so min-max normalisation
        # turns bf16 rounding into label changes whose share depends on the CPU's bf16 kernels
        # (70% of pixels agreed on one CPU, over 80% on another). The C++ Placement test bounds the attention
        # itself, and SameAsCli.test_bf16 pins the result to the command line's.
        exact = pnpovss.Segmenter(MODEL, **TINY).segment(self.image, CLASSES)
        reduced = pnpovss.Segmenter(MODEL, dtype="bf16", **TINY).segment(self.image, CLASSES)
        self.assertTrue(np.isfinite(reduced.scores).all())
        self.assertEqual(reduced.labels.shape, exact.labels.shape)
        self.assertFalse(np.array_equal(exact.scores, reduced.scores), "dtype='bf16' computed in fp32")

    def test_bad_images(self):
        seg = pnpovss.Segmenter(MODEL, **TINY)
        with self.assertRaises(TypeError):
            seg.segment(self.image.astype(np.float32), CLASSES)
        with self.assertRaises(ValueError):
            seg.segment(self.image[:, :, :2], CLASSES)
        with self.assertRaises(ValueError):
            seg.segment(self.image[:, :, 0], CLASSES)

    def test_run_cli_errors(self):
        with self.assertRaises(ValueError) as caught:
            pnpovss.run_cli(["segment", "--no-such-option"])
        self.assertIn("(see --help)", str(caught.exception))
        missing = os.path.join(tempfile.gettempdir(), "pnpovss_no_such_model", "x", "y")
        with self.assertRaises(RuntimeError) as caught:
            pnpovss.run_cli(["info", missing])
        self.assertEqual(str(caught.exception), cli_error("info", missing))


def folder_dataset(root, count):
    """A `folder` eval dataset of `count` copies of the bundled photo with its label map."""
    for sub in ("images", "labels"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i in range(count):
        os.symlink(IMAGE, os.path.join(root, "images", "img%02d.png" % i))
        os.symlink(os.path.join(DATA, "images", "coco_000000039769_labels.png"),
                   os.path.join(root, "labels", "img%02d.png" % i))
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("background\ncat\ncouch\nremote control\n")
    return root


class interrupt_when:
    """Sends this process SIGINT (Ctrl-C), from another thread, once `ready()` returns true."""

    def __init__(self, ready):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, args=(ready,))
        self.thread.start()

    def watch(self, ready):
        while not self.stop.is_set():
            if ready():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    def cancel(self):
        self.stop.set()
        self.thread.join()


class Mended(unittest.TestCase):
    """What the command line and the module now do the same way."""

    @classmethod
    def setUpClass(cls):
        cls.image = read_png(IMAGE)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_version_is_the_command_lines(self):
        status, out, _ = cli("--version")
        self.assertEqual(status, 0)
        self.assertEqual(out.strip(), "pnp-ovss " + pnpovss.__version__)
        self.assertRegex(pnpovss.__version__, r"^[0-9]+\.[0-9]+\.[0-9]+$")

    def test_settings_of_another_backbone_are_refused(self):
        path = os.path.join(self.tmp.name, "bridgetower_settings.json")
        with open(path, "w") as f:
            json.dump({"preset": "paper", "backbone": "bridgetower"}, f)
        want = cli_error("segment", IMAGE, "--classes", "cat", "--model", MODEL, "--settings", path,
                         "--out", os.path.join(self.tmp.name, "unused"))
        self.assertIn("made for a bridgetower model", want)
        with self.assertRaises(ValueError) as caught:
            pnpovss.Segmenter(MODEL, settings=path)
        self.assertEqual(str(caught.exception), want)
        with self.assertRaises(ValueError) as caught:
            pnpovss.Segmenter(MODEL, settings={"preset": "paper", "backbone": "bridgetower"})
        self.assertIn("made for a bridgetower model", str(caught.exception))

    def test_classes_as_on_the_command_line(self):
        seg = pnpovss.Segmenter(MODEL, **TINY, postprocess="none")
        a = seg.segment(self.image, "cat,  couch , remote control")
        b = seg.segment(self.image, CLASSES)
        np.testing.assert_array_equal(a.labels, b.labels)
        self.assertEqual(a.classes, CLASSES)
        for bad in [[], "cat,,couch", ["cat", "Cat"], ["cat", " "]]:
            with self.assertRaises(ValueError):
                seg.segment(self.image, bad)

    def test_type_errors_are_one_short_line(self):
        seg = pnpovss.Segmenter(MODEL, **TINY, postprocess="none")
        nested = [[[0, 0, 0]] * 300] * 300  # a nested list, not an array
        for image, classes, words in [(nested, CLASSES, "numpy array"), (self.image, 5, "int"),
                                      (self.image, ["cat", 3], "classes[1]"), (self.image, [b"cat"], "bytes")]:
            with self.assertRaises(TypeError) as caught:
                seg.segment(image, classes)
            message = str(caught.exception)
            self.assertIn(words, message)
            self.assertLess(len(message), 200, message)
            self.assertNotIn("\n", message)

    def test_ctrl_c_stops_segment_many(self):
        seg = pnpovss.Segmenter(MODEL, **TINY, postprocess="blur")
        images = [self.image] * 200  # about a minute of work
        start = time.monotonic()
        timer = interrupt_when(lambda: time.monotonic() - start > 1.0)
        try:
            with self.assertRaises(KeyboardInterrupt):
                seg.segment_many(images, CLASSES, workers=1)
        finally:
            timer.cancel()
        self.assertLess(time.monotonic() - start, 15)
        # The module works on afterwards.
        self.assertEqual(seg.segment(self.image, CLASSES).labels.shape, self.image.shape[:2])

    def test_ctrl_c_leaves_an_eval_run_resumable(self):
        data = folder_dataset(os.path.join(self.tmp.name, "data"), 30)
        args = dict(dataset="folder", data_root=data, model=MODEL, postprocess="blur", examples=0, **TINY)
        whole = os.path.join(self.tmp.name, "whole")
        self.assertEqual(pnpovss.eval(out=whole, **args), 0)
        cut = os.path.join(self.tmp.name, "cut")
        records = os.path.join(cut, "images")
        timer = interrupt_when(lambda: os.path.isdir(records) and len(os.listdir(records)) >= 2)
        try:
            with self.assertRaises(KeyboardInterrupt):
                pnpovss.eval(out=cut, **args)
        finally:
            timer.cancel()
        done = len(os.listdir(os.path.join(cut, "images")))
        self.assertGreater(done, 0)
        self.assertLess(done, 30)
        self.assertEqual(pnpovss.eval(out=cut, **args), 0)
        with open(os.path.join(whole, "metrics.json")) as f:
            want = json.load(f)
        with open(os.path.join(cut, "metrics.json")) as f:
            got = json.load(f)
        self.assertEqual(got["images"]["resumed"], done)
        for key in ("mIoU", "mAcc", "aAcc", "per_class"):
            self.assertEqual(got[key], want[key], key)


class FrontEnds(unittest.TestCase):
    def test_stub_matches_module(self):
        """python/pnpovss.pyi (beside the module for editors) names what the module has."""
        import ast
        stub = os.path.join(os.path.dirname(pnpovss.__file__), "pnpovss.pyi")
        self.assertTrue(os.path.exists(stub), stub)
        with open(stub) as f:
            tree = ast.parse(f.read())
        top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        public = {name for name in dir(pnpovss) if not name.startswith("_")}
        self.assertEqual(top, public)
        for cls in tree.body:
            if isinstance(cls, ast.ClassDef):
                members = {n.name for n in cls.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
                members |= {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}
                have = {m for m in dir(getattr(pnpovss, cls.name)) if not m.startswith("_")}
                self.assertEqual(members, have, cls.name)

    def test_cli_args(self):
        self.assertEqual(pnpovss.cli_args("eval", dataset="voc20", limit=5, restart=True, dry_run=False,
                                          out=None, layer=[8, 9]),
                         ["eval", "--dataset", "voc20", "--limit", "5", "--restart", "--layer", "8", "--layer", "9"])

    def test_tune_wrapper_runs_the_cli(self):
        # --help succeeds where the subcommand exists; elsewhere CLI11 rejects the word.
        try:
            self.assertEqual(pnpovss.tune(help=True), 0)
        except ValueError as e:
            self.assertIn("tune", str(e))

    def test_gil_is_released(self):
        seg = pnpovss.Segmenter(MODEL, **TINY, postprocess="none")
        image = read_png(IMAGE)
        done = threading.Event()
        failure = []

        def work():
            try:
                seg.segment(image, CLASSES)
            except Exception as e:  # reported below, after the loop ends
                failure.append(e)
            finally:
                done.set()

        worker = threading.Thread(target=work)
        ticks = 0
        start = time.monotonic()
        worker.start()
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)
        worker.join()
        self.assertEqual(failure, [])
        elapsed = time.monotonic() - start
        # With the GIL held for the whole call the loop could not run at all.
        self.assertGreater(ticks, min(20, elapsed * 200), (ticks, elapsed))

    def test_hub_id_through_the_cache(self):
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        server = subprocess.Popen([sys.executable, os.path.join(here, "fake_hub.py"), "--folder", MODEL],
                                  stdout=subprocess.PIPE, text=True)
        try:
            port = int(server.stdout.readline().split()[1])
            with tempfile.TemporaryDirectory() as cache:
                saved = {k: os.environ.get(k) for k in ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN")}
                os.environ.update(HF_ENDPOINT="http://127.0.0.1:%d" % port, HF_HUB_CACHE=cache)
                os.environ.pop("HF_HUB_OFFLINE", None)
                os.environ.pop("HF_TOKEN", None)
                try:
                    path = pnpovss.resolve_model("test-org/tiny-blip")
                    self.assertTrue(path.startswith(os.path.join(cache, "models--test-org--tiny-blip", "snapshots")))
                    seg = pnpovss.Segmenter("test-org/tiny-blip", **TINY, postprocess="none")
                    self.assertEqual(seg.model_dir, path)
                    with self.assertRaises(RuntimeError) as caught:
                        pnpovss.Segmenter("test-org/no-such-model")
                    self.assertIn("not found", str(caught.exception))
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    BIN, DATA = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    IMAGE = os.path.join(DATA, "images", "coco_000000039769.png")
    MODEL = os.path.join(DATA, "blip_itm")
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
