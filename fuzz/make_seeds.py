#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, fuzz/corpus/<target>/, from the test data in
tests/data (fixture models, images, the bad-input corpus, model manifests) and a few inputs built
here in the formats the targets read (fuzz/common.h: several files in one input are separated by
NUL bytes). Seeds stay small (each under 64 KiB; large fixture files are cut down to a few
tensors or tokens), so that every run of scripts/fuzz.sh replays them all in a moment.

Run from anywhere: python3 fuzz/make_seeds.py (it replaces the corpus folders it writes).
"""

import json
import os
import shutil
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
BAD = os.path.join(DATA, "bad")
OUT = os.path.join(ROOT, "fuzz", "corpus")
MAX_SEED = 64 * 1024

corpus = {}


def seed(target, name, content):
    if isinstance(content, str):
        content = content.encode()
    assert len(content) < MAX_SEED, (target, name, len(content))
    corpus.setdefault(target, {})[name] = content


def read(*path):
    with open(os.path.join(DATA, *path), "rb") as f:
        return f.read()


def bad_files(prefix):
    """The files of the bad-input corpus starting with `prefix` (the few large ones left out)."""
    return sorted(n for n in os.listdir(BAD) if n.startswith(prefix) and os.path.getsize(os.path.join(BAD, n)) < MAX_SEED)


def joined(*parts):
    """Several files as one input: NUL between them (fuzz/common.h split_parts)."""
    return b"\0".join(p.encode() if isinstance(p, str) else p for p in parts)


# ---- safetensors ---------------------------------------------------------------------------

def safetensors_subset(path, count, metadata=True):
    """The first `count` tensors (by name) of a fixture file with their data, as a new file."""
    raw = read(*path)
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    names = sorted(k for k in header if k != "__metadata__")
    names = sorted(names, key=lambda k: header[k]["data_offsets"][1] - header[k]["data_offsets"][0])[:count]
    out_header, blob = {}, b""
    for name in sorted(names):
        entry = dict(header[name])
        begin, end = entry["data_offsets"]
        entry["data_offsets"] = [len(blob), len(blob) + end - begin]
        blob += data[begin:end]
        out_header[name] = entry
    if metadata and "__metadata__" in header:
        out_header["__metadata__"] = header["__metadata__"]
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob


for fixture in ("blip_itm", "clip", "bridgetower_itm"):
    seed("safetensors", fixture + "_model_6.safetensors", safetensors_subset((fixture, "model.safetensors"), 6))
seed("safetensors", "pipeline_reference_4.safetensors", safetensors_subset(("pipeline", "reference.safetensors"), 4))
seed("safetensors", "densecrf_reference_3.safetensors", safetensors_subset(("densecrf", "reference.safetensors"), 3))
for name in bad_files("safetensors_"):
    seed("safetensors", name, read("bad", name))

# ---- sharded checkpoint index --------------------------------------------------------------

shard1 = safetensors_subset(("blip_itm", "model.safetensors"), 2)
(n1,) = struct.unpack("<Q", shard1[:8])
names1 = [k for k in json.loads(shard1[8:8 + n1]) if k != "__metadata__"]
shard2 = safetensors_subset(("clip", "model.safetensors"), 2, metadata=False)
(n2,) = struct.unpack("<Q", shard2[:8])
names2 = [k for k in json.loads(shard2[8:8 + n2]) if k != "__metadata__"]
index = {"metadata": {"total_size": len(shard1) + len(shard2)},
         "weight_map": dict([(k, "model-00001-of-00002.safetensors") for k in names1] +
                            [(k, "model-00002-of-00002.safetensors") for k in names2])}
# The shards of one input are parted by a text line (fuzz_checkpoint_index.cpp): they hold NULs.
seed("checkpoint_index", "two_shards", joined(json.dumps(index, indent=2), shard1 + b"\n--shard--\n" + shard2))
index_one = {"weight_map": {k: "model-00001-of-00002.safetensors" for k in names1}}
seed("checkpoint_index", "one_shard", joined(json.dumps(index_one), shard1))
for name in bad_files("index_"):
    seed("checkpoint_index", name, joined(read("bad", name), shard1))

# ---- model configs -------------------------------------------------------------------------

manifests = {}
for name in sorted(os.listdir(os.path.join(DATA, "manifests"))):
    config = json.loads(read("manifests", name))["config"]
    manifests.setdefault(config.get("model_type"), []).append((name[:-len(".json")], config))

for target, fixture, model_type in (("blip_config", "blip_itm", "blip"), ("clip_config", "clip", "clip"),
                                    ("bridgetower_config", "bridgetower_itm", "bridgetower")):
    seed(target, fixture + "_config.json", read(fixture, "config.json"))
    for name, config in manifests.get(model_type, []):
        seed(target, name + ".json", json.dumps(config, indent=2))
    seed(target, "minimal.json", json.dumps({"model_type": model_type}))
for name in bad_files("config_"):
    seed("blip_config", name, read("bad", name))

# ---- preprocessor_config.json --------------------------------------------------------------

for fixture in ("blip_itm", "clip", "bridgetower_itm"):
    seed("preprocessor_config", fixture + ".json", read(fixture, "preprocessor_config.json"))
seed("preprocessor_config", "small_sizes.json",
     json.dumps({"size": {"shortest_edge": 24}, "crop_size": {"height": 16, "width": 20}, "size_divisor": 8,
                 "image_mean": 0.5, "image_std": [0.25, 0.5, 1.0], "do_center_crop": True, "resample": 3}))
seed("preprocessor_config", "height_width.json",
     json.dumps({"size": {"height": 12, "width": 40}, "crop_size": 8, "do_normalize": False, "rescale_factor": 2}))
for name in bad_files("preprocessor_config_"):
    seed("preprocessor_config", name, read("bad", name))

# ---- WordPiece ------------------------------------------------------------------------------

SAMPLE = "A photo of a cat, a sofa and two remote controls. Un café 中文 [MASK]!"
bert_vocab = read("blip_itm", "vocab.txt").decode().split("\n")
wanted = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]", "a", "photo", "of", "cat", "sofa",
          "and", "two", "remote", "control", "##s", "##ing", "un", "cafe", ",", ".", "!", "中", "文", "the"}
small_vocab = [t for t in bert_vocab if t in wanted or (len(t) == 1 and t.isascii())]
small_vocab = "\n".join(small_vocab) + "\n"
seed("wordpiece", "fixture_subset", joined(small_vocab, SAMPLE, read("blip_itm", "tokenizer_config.json"),
                                           read("blip_itm", "special_tokens_map.json")))
seed("wordpiece", "vocab_and_text", joined(small_vocab, SAMPLE))
seed("wordpiece", "options",
     joined(small_vocab.replace("\n", "\r\n"), "Héllo [UNK] never_split_me ##s",
            json.dumps({"do_lower_case": False, "strip_accents": True, "tokenize_chinese_chars": False,
                        "never_split": ["never_split_me"], "model_max_length": 1e30,
                        "added_tokens_decoder": {"5": {"content": "[MASK]", "special": True}},
                        "additional_special_tokens": ["[unused0]"]}),
            json.dumps({"unk_token": {"content": "[UNK]"}, "additional_special_tokens": ["[unused1]"]})))
for name in bad_files("vocab_"):
    seed("wordpiece", name, joined(read("bad", name), SAMPLE))
for name in bad_files("tokenizer_config_"):
    seed("wordpiece", name, joined(small_vocab, SAMPLE, read("bad", name)))
for name in bad_files("special_tokens_map_"):
    seed("wordpiece", name, joined(small_vocab, SAMPLE, read("blip_itm", "tokenizer_config.json"), read("bad", name)))

# ---- byte-level BPE: CLIP and RoBERTa -------------------------------------------------------

def bpe_subset(fixture, merges_count, specials):
    """The first merges of a fixture and the tokens they and the single bytes make, renumbered."""
    vocab = json.loads(read(fixture, "vocab.json"))
    lines = read(fixture, "merges.txt").decode().split("\n")
    merges = [l for l in lines[1:] if l.strip()][:merges_count]
    keep = {t for t, i in vocab.items() if i < 256}
    keep |= {"".join(m.split(" ")) for m in merges}
    keep |= set(specials)
    ordered = sorted((vocab.get(t, 10 ** 9), t) for t in keep if t in vocab)
    small = {t: i for i, (_, t) in enumerate(ordered)}
    return json.dumps(small, ensure_ascii=False), lines[0] + "\n" + "\n".join(merges) + "\n"


clip_vocab, clip_merges = bpe_subset("clip", 120, ["<|startoftext|>", "<|endoftext|>"])
CLIP_TEXT = "a photo of a cat's sofa, 2 remote controls! <|endoftext|> 中文 🐈"
seed("clip_tokenizer", "fixture_subset", joined(clip_vocab, clip_merges, CLIP_TEXT, read("clip", "tokenizer_config.json"),
                                                read("clip", "special_tokens_map.json")))
seed("clip_tokenizer", "vocab_merges_text", joined(clip_vocab, clip_merges, CLIP_TEXT))
# A sparse vocabulary whose largest id is near 2^31 (once a 64 GB table).
seed("clip_tokenizer", "sparse_huge_id", joined(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 2000000000, "a": 5}),
                                                clip_merges, CLIP_TEXT))
seed("clip_tokenizer", "short_context", joined(clip_vocab, clip_merges, CLIP_TEXT * 3,
                                               json.dumps({"model_max_length": 8, "bos_token": {"content": "<|startoftext|>"}})))

rob_vocab, rob_merges = bpe_subset("bridgetower_itm", 120, ["<s>", "</s>", "<unk>", "<pad>", "<mask>"])
ROB_TEXT = "A photo of a cat's sofa, 2 remote controls!  <mask> </s>\tdon't 中文 🐈"
seed("roberta_tokenizer", "fixture_subset",
     joined(rob_vocab, rob_merges, ROB_TEXT, read("bridgetower_itm", "tokenizer_config.json"),
            read("bridgetower_itm", "special_tokens_map.json")))
seed("roberta_tokenizer", "vocab_merges_text", joined(rob_vocab, rob_merges, ROB_TEXT))
seed("roberta_tokenizer", "prefix_space",
     joined(rob_vocab, rob_merges, ROB_TEXT,
            json.dumps({"add_prefix_space": True, "mask_token": {"content": "<mask>", "lstrip": True, "rstrip": True},
                        "model_max_length": 1e30})))

# ---- images ----------------------------------------------------------------------------------

def png(width, height, color_type, bit_depth, rows, palette=None, interlace=0):
    """A PNG of raw filtered rows (each starting with its filter byte)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))
    if palette:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def gray_rows(width, height, depth, filters=(0, 1, 2, 3, 4)):
    row_bytes = (width * depth + 7) // 8
    rows = b""
    for y in range(height):
        rows += bytes([filters[y % len(filters)]]) + bytes((x * 37 + y * 11) % 256 for x in range(row_bytes))
    return rows


label_pngs = {}
for depth in (1, 2, 4, 8, 16):
    label_pngs["gray%d.png" % depth] = png(7, 5, 0, depth, gray_rows(7, 5, depth))
for depth in (1, 2, 4, 8):
    label_pngs["palette%d.png" % depth] = png(9, 3, 3, depth, gray_rows(9, 3, depth), palette=bytes(range(48)))
for name, content in label_pngs.items():
    seed("label_png", name, content)
seed("label_png", "labels_palette.png", read("images", "coco_000000039769_labels.png"))
seed("label_png", "golden_labels.png", read("golden", "coco_000000039769.labels.png"))
for name in sorted(os.listdir(os.path.join(DATA, "tune", "folder", "labels"))):
    seed("label_png", "tune_" + name, read("tune", "folder", "labels", name))

# A baseline JPEG with one-code Huffman tables (every block: DC difference 0, end of block), as in
# tests/test_bad_inputs.cpp, in gray and in colour (4:2:0, with a restart interval), and a
# progressive one (a DC scan, then an AC scan).
def jpeg(width, height, components, progressive=False, restart=0):
    out = b"\xff\xd8" + b"\xff\xdb\x00\x43\x00" + bytes([1] * 64)
    sof = b"\xff\xc2" if progressive else b"\xff\xc0"
    comps = b""
    for c in range(components):
        sampling = 0x22 if components == 3 and c == 0 else 0x11
        comps += bytes([c + 1, sampling, 0])
    out += sof + struct.pack(">HBHHB", 8 + 3 * components, 8, height, width, components) + comps
    one_code = bytes([1] + [0] * 15) + b"\x00"
    out += b"\xff\xc4" + struct.pack(">H", 2 + 17 + 1) + b"\x00" + one_code
    out += b"\xff\xc4" + struct.pack(">H", 2 + 17 + 1) + b"\x10" + one_code
    if restart:
        out += b"\xff\xdd\x00\x04" + struct.pack(">H", restart)
    ids = b"".join(bytes([c + 1, 0x00]) for c in range(components))
    blocks = ((width + 7) // 8) * ((height + 7) // 8) * (1 if components == 1 else 2)
    scan = b"\x00" * blocks + b"\x3f"
    if progressive:
        out += b"\xff\xda" + struct.pack(">HB", 6 + 2 * components, components) + ids + b"\x00\x00\x00" + scan
        for c in range(components):
            out += b"\xff\xda\x00\x08\x01" + bytes([c + 1, 0x00]) + b"\x01\x3f\x00" + scan
    else:
        out += b"\xff\xda" + struct.pack(">HB", 6 + 2 * components, components) + ids + b"\x00\x3f\x00" + scan
    return out + b"\xff\xd9"


def bmp(width, height, bits=24, top_down=False):
    row = (width * bits + 31) // 32 * 4
    pixels = bytes((i * 7) % 256 for i in range(row * height))
    palette = bytes(i % 256 for i in range(4 * (1 << bits))) if bits <= 8 else b""
    offset = 54 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, -height if top_down else height, 1, bits, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + palette + pixels


images = {
    "baseline_gray.jpg": jpeg(8, 8, 1),
    "baseline_420.jpg": jpeg(16, 16, 3, restart=1),
    "progressive_gray.jpg": jpeg(8, 8, 1, progressive=True),
    "rgb24.bmp": bmp(3, 2),
    "top_down.bmp": bmp(5, 3, top_down=True),
    "palette8.bmp": bmp(4, 4, bits=8),
    "rgb32.bmp": bmp(2, 2, bits=32),
    "rgb8.png": png(4, 3, 2, 8, b"".join(b"\x01" + bytes(range(12)) for _ in range(3))),
    "rgba16.png": png(2, 2, 6, 16, b"".join(b"\x02" + bytes(range(16)) for _ in range(2))),
    "gray_alpha.png": png(3, 3, 4, 8, b"".join(b"\x04" + bytes(range(6)) for _ in range(3))),
    "interlaced.png": png(9, 9, 0, 8, b"".join(b"\x00" + bytes(9) for _ in range(20)), interlace=1),
}
images.update(label_pngs)
for name in ("disc.png", "field.png", "square.png"):
    images["tune_" + name] = read("tune", name)
images["random.png"] = read("blip_itm", "random.png")
# Valid JPEGs of every scan layout the checks before the decoder walk (progressive refinement,
# restart markers, per-component scans, chroma samplings).
for name in sorted(os.listdir(os.path.join(DATA, "images", "jpeg"))):
    if name.endswith(".jpg"):
        images["jpeg_" + name] = read("images", "jpeg", name)
for name, content in images.items():
    seed("image", name, content)
for name in bad_files("image_"):
    seed("image", name, read("bad", name))

# ---- class lists and tags --------------------------------------------------------------------

classes = read("images", "coco_000000039769_classes.txt").decode().strip().split("\n")
seed("class_tags", "names_and_indices",
     joined(", ".join(classes), json.dumps({"coco_000000039769": ["cat", " Couch "], "other": [0, 2], "third": ["remote control"]})))
seed("class_tags", "class_file_lines", joined("\n".join(classes) + "\n\n  extra class \n", json.dumps({"a": [0]})))
seed("class_tags", "list_only", ", ".join(classes))

# ---- settings JSON ---------------------------------------------------------------------------

record = json.loads(read("golden", "coco_000000039769.json"))
settings = record["settings"]
seed("settings", "segment_record.json", json.dumps(record))
seed("settings", "settings.json", json.dumps(settings, indent=2))
seed("settings", "best_settings.json", json.dumps({"best_settings": dict(settings, tuned_for={"model": "blip_itm"}),
                                                   "trials": 3}))
seed("settings", "official_bridgetower.json",
     json.dumps({"preset": "official", "backbone": "bridgetower", "post_mode": "crf", "dropout_rule": "topk",
                 "dropout_k": 7, "post_crf": {"iterations": 3, "gaussian_sxy": 1.5}}))
seed("settings", "empty_object.json", "{}")

# ---- hub answers -----------------------------------------------------------------------------

COMMIT = "4f1d9a3c0b2e8d7f6a5b4c3d2e1f0a9b8c7d6e5f"
seed("hub_headers", "small_file",
     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"3b18e512dba79e4c8300dd08aeb37f8e728b8dad\"\r\n"
     "X-Repo-Commit: %s\r\nContent-Length: 727\r\nAccept-Ranges: bytes\r\n\r\n" % COMMIT)
seed("hub_headers", "lfs_redirect",
     "HTTP/1.1 302 Found\r\nLocation: https://cdn-lfs.example/abc?x=1\r\nX-Linked-Etag: \"%s\"\r\n"
     "X-Linked-Size: 7263088\r\nX-Repo-Commit: %s\r\nETag: W/\"weak-1\"\r\nContent-Length: 0\r\n\r\n" % ("a" * 64, COMMIT))
seed("hub_headers", "two_responses",
     "HTTP/1.1 307 Temporary Redirect\r\nlocation: /org/name/resolve/main/config.json\r\n\r\n"
     "HTTP/2 404\r\nx-error-code: EntryNotFound\r\nx-repo-commit: %s\r\ncontent-length: 0\r\n\r\n" % COMMIT)
seed("hub_headers", "hub_id_line", "Salesforce/blip-itm-large-flickr@refs/pr/1\nETag: \"x\"\n")
seed("hub_index", "two_shards.json", json.dumps(index, indent=2))
for name in bad_files("index_"):
    seed("hub_index", name, read("bad", name))

# ---- eval run folder -------------------------------------------------------------------------

run_identity = {"dataset": "voc20", "protocol": "mmseg", "num_scored_classes": 21, "limit": None, "shard": None,
                "stems": ["img"], "settings": {"attention_layer_1based": 8}}
image_record = {"stem": "img", "counts": [[0, 10, 12, 11], [15, 3, 4, 5]], "seconds": 0.25}
seed("eval_run_dir", "resume", joined(json.dumps(run_identity, indent=2), json.dumps(image_record)))
shards = []
for k in range(2):
    shard_id = dict(run_identity, shard={"index": k, "count": 2})
    shards += [json.dumps(shard_id), json.dumps(image_record)]
seed("eval_run_dir", "merge_two_shards", joined(*shards))
seed("eval_run_dir", "other_run", joined(json.dumps(dict(run_identity, protocol="pnp-ovss")), "{\"stem\":\"img\""))

# ---- tune journal ----------------------------------------------------------------------------

run_line = {"kind": "run", "run": {"model": "tiny", "images": ["a.png", "b.png"], "scorer": "clip", "masks": "gradcam",
                                   "seed": 0}}
trial = {"kind": "trial", "stage": "layer_head_threshold", "masks": "gradcam", "layer": 8, "head": 10,
         "threshold": 0.15, "blur": 0.05, "reward": 3, "max_reward": 4,
         "per_class": [{"name": "cat", "wins": 2, "images": 2}, {"name": "sofa", "wins": 1, "images": 2}],
         "seconds": 1.25}
grid = {"kind": "grid_image", "image": 1, "path": "b.png", "seconds": 0.5, "wins": ["0110", "1", ""]}
lines = [json.dumps(run_line), json.dumps(trial), json.dumps(dict(trial, stage="blur", masks="final")), json.dumps(grid)]
seed("tune_journal", "journal.jsonl", "\n".join(lines) + "\n")
seed("tune_journal", "torn_tail.jsonl", "\n".join(lines) + "\n" + json.dumps(trial)[:40])
seed("tune_journal", "other_run.jsonl", json.dumps({"kind": "run", "run": {"model": "other"}}) + "\n")

# ---- write -----------------------------------------------------------------------------------

for target, files in sorted(corpus.items()):
    folder = os.path.join(OUT, target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name, content in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
total = sum(len(c) for files in corpus.values() for c in files.values())
print("%d seeds in %d corpora, %d bytes" % (sum(len(f) for f in corpus.values()), len(corpus), total))
