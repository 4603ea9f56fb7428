#!/usr/bin/env python3
"""Kill anywhere, lose nothing: `eval`, `tune` and `segment --out` killed with SIGKILL over and
over, each time rerun with the same command, end with exactly the outputs of an uninterrupted
run, and a full disk stops a run with one clear line and an intact folder.

For each command, an uninterrupted reference run first; then, in a fresh folder, at least
KILLS kills (seeded): at a random time after the start, a random time after a unit of work
finished (an image, a journal line), and in the middle of a chosen file through the test hook
PNPOVSS_TEST_KILL_AT_WRITE=N:TEXT (src/pnpovss/io/file_write.h), which covers the writes of
eval's pred/, images/, metrics.json, tables and examples/, tune's journal and results, and
segment's label maps, overlays and records. After every kill the folder must be intact (whole
files only, finished work never rewritten); at the end the outputs must equal the reference's
(timings and resume counters aside) and no temporary file may be left. The three commands
are killed side by side, after their references ran one at a time. Then, on a small tmpfs
(skipped where mounting is not permitted), eval, segment and tune meet a full disk mid-run.

Usage: test_kill_resume.py PNP_OVSS MAKE_TREES TEST_DATA_DIR [SEED]
Exit status 0 when every check passed, 1 otherwise, 77 when the test cannot run here.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

KILLS = 20  # per command, at least
EVAL_IMAGES = 12
SEGMENT_IMAGES = 12
TUNE_ARGS = ["--trials", "8", "--blur-trials", "2", "--seed", "3"]
TINY = ["--size", "64", "--layer", "2", "--head", "3", "--postprocess", "blur"]
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def temporaries(folder):
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files if ".tmp" in f]
    return sorted(found)


def png_whole(path):
    with open(path, "rb") as f:
        data = f.read()
    return data.startswith(b"\x89PNG") and data.endswith(PNG_END)


def json_or_none(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def without(value, keys):
    """`value` with every dict entry named in `keys` removed, at any depth."""
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def file_id(path):
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class Run:
    """One process of a command, killed on a plan or left to finish."""

    def __init__(self, args, cwd, log, env_extra=None):
        env = dict(os.environ)
        env.pop("PNPOVSS_TEST_KILL_AT_WRITE", None)
        env.update(env_extra or {})
        self.log = log
        with open(log + ".out", "w") as out, open(log + ".err", "w") as err:
            self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.start = time.monotonic()

    def wait(self, kill_when=None):
        """Waits for the end; `kill_when()` (polled) returning True kills the process first."""
        while self.proc.poll() is None:
            if kill_when is not None and kill_when():
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
                break
            time.sleep(0.003)
        return self.proc.returncode

    def elapsed(self):
        return time.monotonic() - self.start

    def stderr(self):
        with open(self.log + ".err") as f:
            return f.read()


class Scenario:
    """A command, its units of work (images, journal lines) and its checks."""

    name = ""
    unit_hooks = []  # files written per unit: hook texts for kills mid-unit
    final_hooks = []  # files written at the end, after every unit (rewritten by every rerun)

    def __init__(self, work, out):
        self.work = work
        self.out = out

    def args(self):
        raise NotImplementedError

    def cwd(self):
        return self.work

    def units(self):
        """How many units of work the folder holds finished."""
        raise NotImplementedError

    def total_units(self):
        raise NotImplementedError

    def check_intact(self, seen):
        """Problems of the folder after a kill: partial files, finished work rewritten or lost.
        `seen` maps what was found finished before to its identity, and is updated."""
        raise NotImplementedError

    def compare(self, reference):
        """Problems of the finished folder against the reference run's folder."""
        raise NotImplementedError


class EvalScenario(Scenario):
    name = "eval"
    unit_hooks = ["/pred/", "/images/"]
    final_hooks = ["metrics.json", "per_class.md", "per_class.csv", "/examples/"]

    def __init__(self, work, out, bin_path, trees, model):
        super().__init__(work, out)
        self.bin, self.trees, self.model = bin_path, trees, model

    def args(self):
        return [self.bin, "eval", "--dataset", "folder", "--data-root", self.trees, "--model", self.model, *TINY,
                "--limit", str(EVAL_IMAGES), "--workers", "1", "--out", self.out]

    def units(self):
        try:
            return sum(1 for f in os.listdir(os.path.join(self.out, "images")) if f.endswith(".json"))
        except OSError:
            return 0

    def total_units(self):
        return EVAL_IMAGES

    def check_intact(self, seen):
        problems = []
        images = os.path.join(self.out, "images")
        if not os.path.isdir(images):
            return problems
        for name in sorted(os.listdir(images)):
            if ".tmp" in name:
                continue
            stem = name[: -len(".json")]
            record = os.path.join(images, name)
            pred = os.path.join(self.out, "pred", stem + ".png")
            j = json_or_none(record)
            if j is None or j.get("stem") != stem or "counts" not in j:
                problems.append("images/%s is not a whole record" % name)
                continue
            if not os.path.exists(pred) or not png_whole(pred):
                problems.append("images/%s has no whole pred/%s.png" % (name, stem))
                continue
            ids = (file_id(record), file_id(pred))
            if seen.setdefault(stem, ids) != ids:
                problems.append("the finished image %s was written again" % stem)
        for key in list(seen):
            if not os.path.exists(os.path.join(images, key + ".json")):
                problems.append("the finished image %s was lost" % key)
        for name in ("metrics.json", "run.json"):
            path = os.path.join(self.out, name)
            if os.path.exists(path) and json_or_none(path) is None:
                problems.append(name + " is not whole")
        return problems

    def compare(self, reference):
        problems = []
        ref = json_or_none(os.path.join(reference, "metrics.json"))
        got = json_or_none(os.path.join(self.out, "metrics.json"))
        if got is None:
            return ["no metrics.json"]
        images = got.get("images", {})
        if images.get("computed_now", 0) + images.get("resumed", 0) != EVAL_IMAGES or images.get("scored") != EVAL_IMAGES:
            problems.append("metrics.json counts %s, not each of %d images once" % (images, EVAL_IMAGES))
        # Run-specific: the time taken, and how many images this last run computed or resumed.
        for m in (ref, got):
            m.pop("timing", None)
            m["images"].pop("computed_now", None)
            m["images"].pop("resumed", None)
        if ref != got:
            problems.append("metrics.json differs from the uninterrupted run's")
        stems = json_or_none(os.path.join(self.out, "run.json")).get("stems", [])
        records = sorted(f[:-5] for f in os.listdir(os.path.join(self.out, "images")) if f.endswith(".json"))
        if sorted(stems) != records or len(stems) != EVAL_IMAGES:
            problems.append("image records %s, expected one for each of %s" % (records, stems))
        for sub, kind in (("pred", "bytes"), ("examples", "bytes"), ("images", "record"), (".", "tables")):
            ref_dir, got_dir = os.path.join(reference, sub), os.path.join(self.out, sub)
            names = sorted(os.listdir(ref_dir))
            if kind == "tables":
                names = ["per_class.md", "per_class.csv", "run.json"]
            elif names != sorted(os.listdir(got_dir)):
                problems.append("%s/ holds other files than the reference's" % sub)
                continue
            for name in names:
                a, b = os.path.join(ref_dir, name), os.path.join(got_dir, name)
                if kind == "record":
                    same = without(json_or_none(a), {"seconds"}) == without(json_or_none(b), {"seconds"})
                elif name == "run.json":
                    same = without(json_or_none(a), {"stems"}) == without(json_or_none(b), {"stems"})
                else:
                    with open(a, "rb") as fa, open(b, "rb") as fb:
                        same = fa.read() == fb.read()
                if not same:
                    problems.append("%s/%s differs from the reference's" % (sub, name))
        return problems


class TuneScenario(Scenario):
    name = "tune"
    unit_hooks = ["trials.jsonl"]
    final_hooks = ["tune.json", "best_settings.json", "reward_layer_head.png"]

    def __init__(self, work, out, bin_path, data):
        super().__init__(work, out)
        self.bin, self.data = bin_path, data

    def args(self):
        return [self.bin, "tune", "tune/list.tsv", "--model", "blip_itm", "--scorer", "clip", "--size", "64",
                *TUNE_ARGS, "--out", self.out]

    def cwd(self):
        return self.data  # the tuning list names its images relative to the test data

    def journal_lines(self):
        """The whole lines of the journal, and whether it ends in a part of one."""
        try:
            with open(os.path.join(self.out, "trials.jsonl")) as f:
                text = f.read()
        except OSError:
            return [], False
        lines = text.split("\n")
        return [line for line in lines[:-1] if line], lines[-1] != ""

    def units(self):
        return sum(1 for line in self.journal_lines()[0] if '"kind":"trial"' in line)

    def total_units(self):
        return 10  # the trials of TUNE_ARGS: 8 layer/head/threshold and 2 blur

    def check_intact(self, seen):
        problems = []
        lines, _ = self.journal_lines()
        records = []
        for n, line in enumerate(lines):
            try:
                records.append(json.loads(line))
            except ValueError:
                problems.append("journal line %d is not JSON" % (n + 1))
        if records and records[0].get("kind") != "run":
            problems.append("the journal does not start with its run line")
        # Journal lines are never lost or changed once whole (a torn tail is cut when resuming).
        earlier = seen.get("lines", [])
        if lines[: len(earlier)] != earlier:
            problems.append("journal lines written before were lost or changed")
        seen["lines"] = lines
        return problems

    def compare(self, reference):
        problems = []
        lines, torn = self.journal_lines()
        ref_lines, _ = TuneScenario(self.work, reference, self.bin, self.data).journal_lines()
        if torn:
            problems.append("the journal ends in a part of a line")
        trials = [json.loads(line) for line in lines if '"kind":"trial"' in line]
        keys = [(t["stage"], t["layer"], t["head"], t["threshold"], t["blur"]) for t in trials]
        if len(set(keys)) != len(keys):
            problems.append("a trial is in the journal twice")
        ref_trials = [json.loads(line) for line in ref_lines if '"kind":"trial"' in line]
        if without(trials, {"seconds"}) != without(ref_trials, {"seconds"}):
            problems.append("the journal's trials differ from the uninterrupted run's")
        # Run-specific: times, which trials this last run read back, and how many masks it
        # scored (resumed trials ask for none).
        ignore = {"seconds", "resumed", "timing", "scoring"}
        if without(json_or_none(os.path.join(reference, "tune.json")), ignore) != without(
            json_or_none(os.path.join(self.out, "tune.json")), ignore
        ):
            problems.append("tune.json differs from the uninterrupted run's")
        for name in ("best_settings.json", "reward_layer_head.png"):
            with open(os.path.join(reference, name), "rb") as a, open(os.path.join(self.out, name), "rb") as b:
                if a.read() != b.read():
                    problems.append(name + " differs from the uninterrupted run's")
        return problems


class SegmentScenario(Scenario):
    name = "segment"
    unit_hooks = [".labels.png", ".overlay.png", ".json"]
    final_hooks = []

    def __init__(self, work, out, bin_path, images, model):
        super().__init__(work, out)
        self.bin, self.images, self.model = bin_path, images, model

    def args(self):
        return [self.bin, "segment", self.images, "--classes", "cat, couch, remote control", "--model", self.model,
                *TINY, "--workers", "1", "--out", self.out]

    def stems(self):
        return sorted(os.path.splitext(f)[0] for f in os.listdir(self.images))

    def units(self):
        try:
            return sum(1 for f in os.listdir(self.out) if f.endswith(".json"))
        except OSError:
            return 0

    def total_units(self):
        return SEGMENT_IMAGES

    def check_intact(self, seen):
        problems = []
        for stem in self.stems():
            record = os.path.join(self.out, stem + ".json")
            if not os.path.exists(record):
                continue
            files = [os.path.join(self.out, stem + ext) for ext in (".labels.png", ".overlay.png", ".json")]
            if json_or_none(record) is None or not all(os.path.exists(f) and (f.endswith(".json") or png_whole(f))
                                                       for f in files):
                problems.append("%s is finished but its files are not whole" % stem)
                continue
            ids = tuple(file_id(f) for f in files)
            if seen.setdefault(stem, ids) != ids:
                problems.append("the files of the finished image %s were written again" % stem)
        for stem in list(seen):
            if not os.path.exists(os.path.join(self.out, stem + ".json")):
                problems.append("the finished image %s was lost" % stem)
        return problems

    def compare(self, reference):
        problems = []
        for stem in self.stems():
            for ext in (".labels.png", ".overlay.png"):
                a, b = os.path.join(reference, stem + ext), os.path.join(self.out, stem + ext)
                with open(a, "rb") as fa:
                    ref = fa.read()
                try:
                    with open(b, "rb") as fb:
                        same = fb.read() == ref
                except OSError:
                    same = False
                if not same:
                    problems.append(stem + ext + " differs from the uninterrupted run's")
            ref = without(json_or_none(os.path.join(reference, stem + ".json")), {"timings"})
            if ref != without(json_or_none(os.path.join(self.out, stem + ".json")), {"timings"}):
                problems.append(stem + ".json differs from the uninterrupted run's")
        return problems


def reference_run(s, log):
    """The uninterrupted run; returns its time to the first finished unit and its total time."""
    run = Run(s.args(), s.cwd(), log)
    first = [None]

    def watch():
        if first[0] is None and s.units() > 0:
            first[0] = run.elapsed()
        return False

    status = run.wait(watch)
    total = run.elapsed()
    if not check(status == 0, "%s: uninterrupted reference run (exit %d, %.1f s)" % (s.name, status, total)):
        print(run.stderr())
        return None
    return (first[0] or total * 0.8), total


def kill_until_done(s, rng, timing, log, say):
    """Kills the command over and over (at least KILLS times), rerunning it each time, until a
    run finishes. Returns a list of problems found on the way."""
    t_first, t_total = timing
    t_unit = max(0.02, (t_total - t_first) / max(1, s.total_units()))
    problems, seen = [], {}
    kills, attempt = 0, 0
    covered = set()
    kinds = ["hook", "time", "progress"]
    counts = {"time": 0, "progress": 0, "hook": 0}
    while True:
        attempt += 1
        done = s.units()
        left = s.total_units() - done
        enough = kills >= KILLS and all(h in covered for h in s.unit_hooks + s.final_hooks)
        env, kill_when, plan = {}, None, "to the end"
        if not enough:
            kind = kinds[attempt % 3]
            # A command without final files (segment) must not finish before its kills are
            # done: while more are due than units are left, kill before a unit can finish.
            sparing = left > 0 and not s.final_hooks and KILLS - kills >= left
            hooks = s.unit_hooks if left > 0 else s.final_hooks
            if not hooks and kind == "hook":
                kind = "time"
            if left == 0 and kind == "progress":
                kind = "hook" if hooks else "time"
            if sparing and kind == "progress":
                kind = "time"
            if kind == "hook":
                uncovered = [h for h in hooks if h not in covered]
                text = rng.choice(uncovered or hooks)
                n = 1 if sparing or (left == 0 and text != "/examples/") else rng.randint(1, 2)
                env = {"PNPOVSS_TEST_KILL_AT_WRITE": "%d:%s" % (n, text)}
                plan = "in write %d of '%s'" % (n, text)
            elif kind == "time":
                limit = 0.8 * t_first if sparing else t_first + t_unit
                delay = rng.uniform(0.0, limit)
                kill_when = lambda d=delay: time.monotonic() - started >= d
                plan = "after %.2f s" % delay
            else:
                extra = rng.uniform(0.0, t_unit)
                mark = {"at": None}

                def kill_when(mark=mark, extra=extra, base=done):
                    if mark["at"] is None and s.units() > base:
                        mark["at"] = time.monotonic()
                    return mark["at"] is not None and time.monotonic() - mark["at"] >= extra

                plan = "%.3f s after the next unit" % extra
        started = time.monotonic()
        run = Run(s.args(), s.cwd(), "%s.%d" % (log, attempt), env)
        status = run.wait(kill_when)
        killed = status == -signal.SIGKILL
        if killed:
            kills += 1
            counts[kind] += 1
            if env:
                covered.add(text)
        elif status != 0:
            problems.append("attempt %d (%s): exit status %d: %s" % (attempt, plan, status,
                                                                      run.stderr().strip()[-300:]))
            break
        after = s.units()
        say("      %s attempt %2d: kill %s -> %s, %d/%d units done (%.1f s)" % (
            s.name, attempt, plan, "killed" if killed else "finished", after, s.total_units(), run.elapsed()))
        for p in s.check_intact(seen):
            problems.append("after attempt %d (%s): %s" % (attempt, plan, p))
        if problems or (not killed and enough):
            break
        if attempt > 6 * KILLS:
            problems.append("no end after %d attempts" % attempt)
            break
    say("      %s: %d kills (%d at a random time, %d after a unit, %d in a write), %d runs" % (
        s.name, kills, counts["time"], counts["progress"], counts["hook"], attempt))
    if kills < KILLS:
        problems.append("only %d kills" % kills)
    for h in s.unit_hooks + s.final_hooks:
        if h not in covered:
            problems.append("no kill in a write of '%s'" % h)
    return problems


def killed_and_resumed(s, reference, rng, timing, log, say):
    """Returns the problems: none when the command, killed again and again, ended as the
    reference run with no temporary file left."""
    problems = kill_until_done(s, rng, timing, log, say)
    if not problems:
        problems = s.compare(reference)
    left = temporaries(s.out)
    if left:
        problems.append("temporary files left: %s" % left[:3])
    return problems


# ---- a full disk ---------------------------------------------------------------------------------


def fill(mount, free_bytes):
    """Leaves about `free_bytes` free on the file system at `mount` (a filler file)."""
    filler = os.path.join(mount, "filler")
    st = os.statvfs(mount)
    size = st.f_bavail * st.f_frsize - free_bytes
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, size))
    return filler


def one_error_line(stderr, folder):
    lines = [l for l in stderr.splitlines() if l.startswith("error:")]
    return len(lines) == 1 and "No space left on device" in lines[0] and folder in lines[0], lines


def full_disk(s, reference, mount, free_bytes, log):
    """Runs `s` with about `free_bytes` left: it must stop with one line, leave an intact folder
    with some work finished, and after the space is freed a rerun must end as the reference."""
    filler = fill(mount, free_bytes)
    run = Run(s.args(), s.cwd(), log + ".full")
    status = run.wait()
    stderr = run.stderr()
    one, lines = one_error_line(stderr, s.out)
    finished = s.units()
    problems = []
    if status <= 0:
        problems.append("exit status %d, expected a failure" % status)
    if not one:
        problems.append("not one 'error: ... No space left on device' line naming the folder: %s" % lines[:3])
    if not 0 < finished < s.total_units():
        problems.append("%d of %d units finished: the disk did not fill mid-run" % (finished, s.total_units()))
    problems += s.check_intact({})
    if isinstance(s, TuneScenario) and s.journal_lines()[1]:
        problems.append("the failed append left a part of a line in the journal")
    left = temporaries(s.out)
    if left:
        problems.append("temporary files left: %s" % left[:3])
    check(not problems, "%s: full disk after %d of %d units: %s" % (
        s.name, finished, s.total_units(), lines[0] if lines else "(no error line)"))
    for p in problems:
        print("      " + p)
    os.remove(filler)
    run = Run(s.args(), s.cwd(), log + ".freed")
    status = run.wait()
    problems = [] if status == 0 else ["exit status %d: %s" % (status, run.stderr().strip()[-300:])]
    if not problems:
        problems = s.compare(reference)
    check(not problems, "%s: with space again, the rerun ends as the uninterrupted run" % s.name)
    for p in problems:
        print("      " + p)


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    if not sys.platform.startswith("linux"):
        print("skip: needs Linux (SIGKILL, tmpfs)")
        return 77
    bin_path = os.path.abspath(sys.argv[1])
    make_trees = os.path.abspath(sys.argv[2])
    data = os.path.abspath(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) == 5 else int(os.environ.get("PNPOVSS_KILL_SEED", "20240607"))
    print("seed %d (rerun with: %s %s %s %s %d)" % (seed, sys.argv[0], *sys.argv[1:4], seed), flush=True)
    started = time.monotonic()
    # A timeout's SIGTERM ends through the finally below, which unmounts the tmpfs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = tempfile.mkdtemp(prefix="pnpovss_kill_resume.")
    mount = os.path.join(work, "small_disk")
    mounted = False
    try:
        if subprocess.run([make_trees, os.path.join(work, "trees")], stdout=subprocess.DEVNULL).returncode != 0:
            print("cannot write the synthetic trees", file=sys.stderr)
            return 2
        trees = os.path.join(work, "trees", "model")
        model = os.path.join(data, "blip_itm")
        images = os.path.join(work, "segment_images")
        os.makedirs(images)
        for name in sorted(os.listdir(os.path.join(trees, "images")))[:SEGMENT_IMAGES]:
            shutil.copy(os.path.join(trees, "images", name), images)
        logs = os.path.join(work, "logs")
        os.makedirs(logs)

        scenarios = [
            lambda out: EvalScenario(work, out, bin_path, trees, model),
            lambda out: TuneScenario(work, out, bin_path, data),
            lambda out: SegmentScenario(work, out, bin_path, images, model),
        ]
        # The references one after the other (their times plan the kills), then the three
        # commands killed side by side, each with its own generator from the seed.
        references, timings = [], []
        for make in scenarios:
            ref = make(os.path.join(work, "reference_" + make("").name))
            timings.append(reference_run(ref, os.path.join(logs, ref.name + ".reference")))
            references.append(ref.out)
        results = {}

        def kill_loop(k):
            s = scenarios[k](os.path.join(work, "killed_" + scenarios[k]("").name))
            lines = []
            try:
                problems = killed_and_resumed(s, references[k], random.Random(seed * 10 + k), timings[k],
                                              os.path.join(logs, s.name), lines.append)
            except Exception as e:  # reported as a failure of this command, not lost in the thread
                problems = ["the test itself failed: %r" % e]
            results[k] = (s.name, lines, problems)

        threads = [threading.Thread(target=kill_loop, args=(k,)) for k in range(3) if timings[k] is not None]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k in sorted(results):
            name, lines, problems = results[k]
            print("\n".join(lines))
            check(not problems, "%s: killed %d+ times and resumed, ends as the uninterrupted run" % (name, KILLS))
            for p in problems[:10]:
                print("      " + p)

        # A full disk: a small tmpfs, filled up but for a few pages.
        os.makedirs(mount)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        mounted = result.returncode == 0
        if not mounted:
            print("skip  full disk: cannot mount a tmpfs here (%s)" % result.stdout.strip())
        else:
            # Free pages: eval's run.json, then per image a prediction and a record; segment
            # three files per image; tune's journal grows line by line within one page.
            pages = {"eval": 11, "tune": 1, "segment": 13}
            for make, ref in zip(scenarios, references):
                s = make(os.path.join(mount, "full_" + make("").name))
                full_disk(s, ref, mount, pages[s.name] * 4096, os.path.join(logs, s.name))
                shutil.rmtree(s.out)
    finally:
        if mounted:
            subprocess.run(["umount", mount])
        if not failures:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept the work folder for a look: " + work)
    print("%d failed, %.0f s" % (len(failures), time.monotonic() - started))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
