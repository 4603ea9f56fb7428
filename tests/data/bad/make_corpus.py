#!/usr/bin/env python3
"""Writes the corpus of malformed input files used by tests/test_bad_inputs.cpp.

Every file here must be rejected by one parser with a pnpovss::Error. The file name says which
parser (its prefix) and what is wrong with it. The generated files are committed, so the tests
never need Python; rerun this script after changing it:

    python3 tests/data/bad/make_corpus.py

Standard library only. The output is deterministic (no timestamps, no randomness).
"""

import json
import os
import struct
import sys
import zlib

OUT = os.path.dirname(os.path.abspath(__file__))

# Name -> bytes, filled by the sections below.
CORPUS = {}


def add(name, data):
    if name in CORPUS:
        sys.exit("duplicate corpus name " + name)
    if isinstance(data, str):
        data = data.encode("utf-8")
    CORPUS[name] = bytes(data)


def dumps(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


# ---- safetensors: 8-byte little-endian header length, JSON header, data ---------------------


def safetensors(header, data=b"", header_len=None):
    """A safetensors file; `header` is a dict (serialized) or raw bytes/str used verbatim."""
    if isinstance(header, dict):
        header = dumps(header)
    if isinstance(header, str):
        header = header.encode("utf-8")
    length = len(header) if header_len is None else header_len
    return struct.pack("<Q", length) + header + data


def tensor(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


add("safetensors_zero_bytes.safetensors", b"")
add("safetensors_shorter_than_length_field.safetensors", b"\x10\x00\x00\x00\x00")
add("safetensors_header_len_exceeds_file.safetensors",
    safetensors({"a": tensor()}, b"\0" * 8, header_len=4096))
add("safetensors_header_len_2pow63.safetensors",
    safetensors({"a": tensor()}, b"\0" * 8, header_len=1 << 63))
add("safetensors_header_len_uint64_max.safetensors",
    safetensors({"a": tensor()}, b"\0" * 8, header_len=(1 << 64) - 1))
add("safetensors_header_len_zero.safetensors", safetensors({"a": tensor()}, b"\0" * 8, header_len=0))
add("safetensors_truncated_data.safetensors",
    safetensors({"a": tensor(shape=(4, 4), offsets=(0, 64))}, b"\0" * 20))
add("safetensors_overlapping_offsets.safetensors",
    safetensors({"a": tensor(shape=(4,), offsets=(0, 16)), "b": tensor(shape=(4,), offsets=(8, 24))},
                b"\0" * 24))
add("safetensors_offsets_out_of_range.safetensors",
    safetensors({"a": tensor(shape=(2,), offsets=(1000000, 1000008))}, b"\0" * 8))
add("safetensors_offsets_reversed.safetensors",
    safetensors({"a": tensor(shape=(0,), offsets=(8, 0))}, b"\0" * 8))
add("safetensors_offsets_negative.safetensors",
    safetensors({"a": tensor(shape=(2,), offsets=(-8, 0))}, b"\0" * 8))
add("safetensors_offsets_not_a_pair.safetensors",
    safetensors({"a": tensor(shape=(2,), offsets=(0,))}, b"\0" * 8))
add("safetensors_offsets_disagree_with_shape.safetensors",
    safetensors({"a": tensor(shape=(2, 2), offsets=(0, 8))}, b"\0" * 8))
add("safetensors_unknown_dtype.safetensors", safetensors({"a": tensor(dtype="float32")}, b"\0" * 8))
add("safetensors_dtype_not_string.safetensors", safetensors({"a": tensor(dtype=4)}, b"\0" * 8))
add("safetensors_missing_shape.safetensors",
    safetensors({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, b"\0" * 8))
add("safetensors_shape_negative.safetensors", safetensors({"a": tensor(shape=(-2,))}, b"\0" * 8))
add("safetensors_shape_non_integer.safetensors", safetensors({"a": tensor(shape=(2.5,))}, b"\0" * 8))
add("safetensors_shape_string_entry.safetensors", safetensors({"a": tensor(shape=("2",))}, b"\0" * 8))
add("safetensors_shape_entry_above_int64.safetensors",
    safetensors({"a": tensor(dtype="U8", shape=(1 << 63,), offsets=(0, 0))}, b""))
# 2^32 * 2^32 * 4 bytes wraps to 0 in 64 bits, which would match an empty byte range.
add("safetensors_shape_product_overflows.safetensors",
    safetensors({"a": tensor(shape=(1 << 32, 1 << 32), offsets=(0, 0))}, b""))
add("safetensors_entry_not_object.safetensors", safetensors('{"a":5}'))
add("safetensors_header_not_json.safetensors", safetensors("this is not a header at all"))
add("safetensors_header_invalid_utf8.safetensors",
    safetensors(b'{"a\xff\xfe":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8))
add("safetensors_header_json_array.safetensors", safetensors("[]"))
add("safetensors_header_deeply_nested_arrays.safetensors", safetensors("[" * 100000))
add("safetensors_header_deeply_nested_objects.safetensors",
    safetensors('{"a":' * 20000 + "{}" + "}" * 20000))
add("safetensors_metadata_non_string_value.safetensors",
    safetensors({"__metadata__": {"format": 1}, "a": tensor()}, b"\0" * 8))
add("safetensors_metadata_not_object.safetensors",
    safetensors({"__metadata__": ["pt"], "a": tensor()}, b"\0" * 8))
# A newline inside a tensor name must not split the error message over two lines.
add("safetensors_newline_in_tensor_name.safetensors",
    safetensors({"bad\nname": tensor(dtype="F7")}, b"\0" * 8))

# ---- config.json (BlipConfig::from_file) -----------------------------------------------------

GOOD_CONFIG = {
    "architectures": ["BlipForImageTextRetrieval"],
    "model_type": "blip",
    "image_text_hidden_size": 32,
    "text_config": {"hidden_size": 48, "intermediate_size": 192, "num_attention_heads": 4,
                    "num_hidden_layers": 3},
    "vision_config": {"hidden_size": 64, "image_size": 64, "intermediate_size": 256,
                      "num_attention_heads": 4, "num_hidden_layers": 3},
}


def config(text=None, vision=None, **top):
    c = json.loads(json.dumps(GOOD_CONFIG))
    c["text_config"].update(text or {})
    c["vision_config"].update(vision or {})
    c.update(top)
    return dumps(c)


add("config_invalid_json.json", '{"model_type": "blip",')
add("config_invalid_utf8.json", b'{"model_type": "bl\xc3\x28ip"}')
add("config_not_object.json", "[1, 2, 3]")
add("config_model_type_clip.json", config(model_type="clip"))
add("config_model_type_missing.json", dumps({k: v for k, v in GOOD_CONFIG.items() if k != "model_type"}))
add("config_model_type_not_string.json", config(model_type=7))
add("config_architecture_captioning.json", config(architectures=["BlipForConditionalGeneration"]))
add("config_hidden_size_string.json", config(vision={"hidden_size": "64"}))
add("config_hidden_size_fraction.json", config(text={"hidden_size": 48.5}))
add("config_layers_zero.json", config(vision={"num_hidden_layers": 0}))
add("config_heads_negative.json", config(text={"num_attention_heads": -4}))
add("config_hidden_not_divisible_by_heads.json", config(vision={"num_attention_heads": 6}))
add("config_patch_larger_than_image.json", config(vision={"image_size": 8, "patch_size": 16}))
add("config_image_size_not_multiple_of_patch.json", config(vision={"image_size": 70}))
add("config_hidden_act_relu.json", config(text={"hidden_act": "relu"}))
# Past every integer type: nlohmann parses it as a float, which is not an integer size.
add("config_size_beyond_uint64.json", config(vision={"hidden_size": 10 ** 30}))
add("config_size_uint64_max.json", config(text={"vocab_size": (1 << 64) - 1}))
# Fits in int64 and is a multiple of the patch size, but (image_size / patch)^2 overflows.
add("config_image_size_int64_max.json", config(vision={"image_size": (1 << 63) - 16}))
add("config_vocab_size_huge.json", config(text={"vocab_size": 1 << 40}))

# ---- model.safetensors.index.json (Checkpoint::open_dir) --------------------------------------
# The test puts each file into an otherwise empty model directory, next to a copy of the fixture
# weights named model-00001-of-00002.safetensors.

SHARD = "model-00001-of-00002.safetensors"
add("index_invalid_json.json", '{"weight_map": {')
add("index_not_object.json", '["' + SHARD + '"]')
add("index_missing_weight_map.json", dumps({"metadata": {"total_size": 8}}))
add("index_weight_map_not_object.json", dumps({"weight_map": [SHARD]}))
add("index_shard_name_not_string.json", dumps({"weight_map": {"itm_head.weight": 1}}))
add("index_shard_path_traversal.json", dumps({"weight_map": {"itm_head.weight": "../" + SHARD}}))
add("index_shard_absolute_path.json", dumps({"weight_map": {"itm_head.weight": "/etc/passwd"}}))
add("index_shard_missing.json",
    dumps({"weight_map": {"itm_head.weight": "model-00002-of-00002.safetensors"}}))
add("index_tensor_not_in_shard.json", dumps({"weight_map": {"no.such.tensor": SHARD}}))

# ---- tokenizer files (WordPieceTokenizer::from_dir) ------------------------------------------
# vocab_*: the model directory holds only this vocab.txt. tokenizer_config_* and
# special_tokens_map_*: the fixture vocab.txt plus this file.

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
add("vocab_empty.txt", b"")
add("vocab_only_byte_order_mark.txt", b"\xef\xbb\xbf")
add("vocab_invalid_utf8.txt", "\n".join(SPECIALS).encode() + b"\ncaf\xe9\n")
add("vocab_duplicate_tokens.txt", "\n".join(SPECIALS + ["cat", "dog", "cat"]) + "\n")
add("vocab_missing_unk.txt", "\n".join([t for t in SPECIALS if t != "[UNK]"] + ["cat"]) + "\n")
add("tokenizer_config_invalid_json.json", '{"do_lower_case": tru}')
add("tokenizer_config_not_object.json", '"BertTokenizer"')
add("tokenizer_config_lower_case_string.json", dumps({"do_lower_case": "yes"}))
add("tokenizer_config_unk_token_not_in_vocab.json", dumps({"unk_token": "<unk>"}))
add("tokenizer_config_unk_token_number.json", dumps({"unk_token": 100}))
add("tokenizer_config_max_length_negative.json", dumps({"model_max_length": -1}))
add("tokenizer_config_never_split_not_list.json", dumps({"never_split": "[CLS]"}))
add("tokenizer_config_newline_in_token.json", dumps({"cls_token": "[CL\nS]"}))
add("special_tokens_map_not_object.json", "[]")
add("special_tokens_map_extra_token_not_in_vocab.json",
    dumps({"additional_special_tokens": ["[NOT_IN_VOCAB]"]}))

# ---- preprocessor_config.json (ImagePreprocessConfig::from_file) -----------------------------

add("preprocessor_config_invalid_json.json", '{"size": {"height": 384, "width": 384}')
add("preprocessor_config_not_object.json", "384")
add("preprocessor_config_size_zero.json", dumps({"size": {"height": 0, "width": 384}}))
add("preprocessor_config_size_string.json", dumps({"size": "384"}))
add("preprocessor_config_size_huge.json", dumps({"size": {"height": 100000, "width": 100000}}))
add("preprocessor_config_size_only_height.json", dumps({"size": {"height": 384}}))
add("preprocessor_config_std_zero.json", dumps({"image_std": [0.26, 0.0, 0.27]}))
add("preprocessor_config_mean_two_values.json", dumps({"image_mean": [0.5, 0.5]}))
# Finite as a double but not as the float the normalization uses.
add("preprocessor_config_mean_overflows_float.json", dumps({"image_mean": [1e300, 0.5, 0.5]}))
add("preprocessor_config_rescale_not_number.json", dumps({"rescale_factor": "1/255"}))
add("preprocessor_config_resample_nearest.json", dumps({"resample": 0}))
add("preprocessor_config_do_resize_string.json", dumps({"do_resize": "true"}))

# ---- images (decode_image_file) ----------------------------------------------------------------


def png_chunk(kind, data, crc=None):
    if crc is None:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(width, height, rows=None, bit_depth=8, color_type=2, extra=b"", idat=None):
    """An RGB PNG; `rows` are raw scanlines (filter byte included), `extra` goes before IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(rows, 9)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", idat) +
            png_chunk(b"IEND", b""))


def gradient_rows(width, height):
    out = bytearray()
    for y in range(height):
        out.append(0)
        for x in range(width):
            out += bytes([(x * 16) & 255, (y * 16) & 255, ((x + y) * 8) & 255])
    return bytes(out)


GOOD_PNG = png(16, 16, gradient_rows(16, 16))
add("image_zero_bytes.png", b"")
add("image_text_file.png", "This is a text file that only pretends to be a PNG image.\n")
add("image_png_truncated_in_idat.png", GOOD_PNG[:len(GOOD_PNG) // 2])
add("image_png_truncated_in_header.png", GOOD_PNG[:20])
add("image_png_signature_only.png", PNG_SIGNATURE)
# Garbage in place of the compressed pixels, with a CRC that does not match either.
add("image_png_corrupt_idat_bad_crc.png",
    PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)) +
    png_chunk(b"IDAT", bytes(range(7, 250, 3)), crc=0xDEADBEEF) + png_chunk(b"IEND", b""))
# An unknown chunk whose upper-case first letter marks it critical: decoders must refuse it.
add("image_png_unknown_critical_chunk.png",
    png(16, 16, gradient_rows(16, 16), extra=png_chunk(b"GRBG", b"\x00\x01\x02garbage")))
add("image_png_huge_dimensions.png", png(100000, 100000, idat=zlib.compress(b"\0" * 64)))
add("image_png_zero_width.png", png(0, 16, idat=zlib.compress(b"\0" * 16)))
add("image_png_invalid_bit_depth.png", png(16, 16, gradient_rows(16, 16), bit_depth=3))
add("image_png_too_few_pixels.png", png(16, 16, gradient_rows(16, 4)))


def jpeg_segment(marker, payload):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_1x1(huffman_counts=None, height=1, scan=b"\x3f"):
    """A baseline grayscale 1x1 JPEG with one-code Huffman tables. The default scan data codes
    DC category 0 then end-of-block ('0' '0', padded with ones)."""
    counts = huffman_counts or [1] + [0] * 15
    symbols = bytes(min(sum(counts), 400))
    dqt = jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
    sof = jpeg_segment(0xC0, struct.pack(">BHHB", 8, height, 1, 1) + b"\x01\x11\x00")
    dht_dc = jpeg_segment(0xC4, b"\x00" + bytes(counts) + symbols)
    dht_ac = jpeg_segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    sos = jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    return b"\xff\xd8" + dqt + sof + dht_dc + dht_ac + sos + scan + b"\xff\xd9"


# The first entropy-coded bits are ones ('\xff\x00' is a stuffed 0xFF byte): no code of the
# DC table starts with 1.
add("image_jpeg_1x1_corrupt_scan.jpg", jpeg_1x1(scan=b"\xff\x00\xff\x00"))
# Counts adding up to 400 codes overflow the 256-entry Huffman table (CVE-2021-37789).
add("image_jpeg_huffman_table_overflow.jpg", jpeg_1x1(huffman_counts=[0, 0, 0, 0, 0, 0, 0, 0, 200, 200] + [0] * 6))
add("image_jpeg_zero_height.jpg", jpeg_1x1(height=0))
add("image_jpeg_soi_only.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")


def bmp(width, height, bpp=24, pixel_bytes=None, offset=54):
    """A BITMAPINFOHEADER BMP; `pixel_bytes` of data follow the headers (default: all rows)."""
    row = ((width * bpp + 31) // 32) * 4
    if pixel_bytes is None:
        pixel_bytes = row * abs(height)
    data = bytes((i * 7) & 255 for i in range(pixel_bytes))
    image_size = (row * abs(height)) & 0xFFFFFFFF  # only informative; decoders ignore it
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, 0, image_size, 2835, 2835, 0, 0)
    header = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
    return header + info + data


add("image_bmp_truncated_pixels.bmp", bmp(16, 16, pixel_bytes=100))
add("image_bmp_headers_only.bmp", bmp(16, 16, pixel_bytes=0))
add("image_bmp_huge_dimensions.bmp", bmp(30000, 30000, pixel_bytes=64))
add("image_bmp_width_above_limit.bmp", bmp(2000000, 1, pixel_bytes=64))
add("image_bmp_height_int_min.bmp", bmp(16, -(1 << 31), pixel_bytes=64))
add("image_bmp_zero_width.bmp", bmp(0, 16, pixel_bytes=0))
add("image_bmp_bad_pixel_offset.bmp", bmp(4, 4, offset=20))
add("image_gif_unsupported_format.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

# ---- inputs found by fuzzing (fuzz/, docs/fuzzing.md) -------------------------------------------
# Each was a crash, hang or escaped exception of one parser before its fix; minimized inputs
# are written verbatim.

# read_image_size (the server's size check before decoding): a Huffman table of 63 + 255 codes
# that the header scan itself builds, past the guard that decoding had (fuzz_image).
add("image_size_jpeg_huffman_table_overflow.jpg", b"\xff\xd8\xff\xc4\x00\x13\x00\x3f\xff")
# The same Huffman table overflow behind a 0xFF fill byte before the start-of-image marker, which
# stb skips but the guard took for "not a JPEG" (fuzz_image, minimized).
add("image_jpeg_fill_byte_before_soi_huffman_overflow.jpg", b"\xff\xff\xd8\xff\xc4\x01\x00\x00\xff\xff")
# A PNG whose IDAT chunk declares 1744830615 bytes in a file of 215: stb allocated the declared
# length before reading it, 1.7 GB for a few hundred bytes (fuzz_image; cut to its first chunks).
add("image_png_idat_length_past_end.png",
    PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)) +
    struct.pack(">I", 1744830615) + b"IDAT" + zlib.compress(gradient_rows(16, 16))[:64])
# Written beside it for the second check of that fix: 2^28 RGBA pixels of 16 bits declared over a
# few bytes of data, for which stb allocated the whole 2 GiB inflated image up front.
add("image_png_tiny_data_huge_size.png", png(16384, 16384, bit_depth=16, color_type=6, idat=zlib.compress(b"\0" * 64)))
# An empty IDAT chunk before any image data (the IHDR CRC zeroed, the IDAT CRC cut short by the
# end of the file): stb copied it to a null buffer, undefined behaviour (fuzz_image, minimized).
add("image_png_empty_first_idat.png",
    PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 3, 8, 4, 0, 0, 0))[:-4] + b"\x00" * 4 +
    b"\x00\x00\x00\x00IDATx\x9c`\x82")
# A BMP header of width -168892668, height -285868548 and 15321 bits per pixel: the size of its
# pixel array overflowed a 64-bit integer (undefined behaviour) before the dimensions were
# checked, in decoding and in read_image_size alike (fuzz_image, minimized).
add("image_bmp_pixel_bytes_overflow.bmp",
    b"BMD\x00\x00\x00\x01;\x00\x00\x14\x00\x00\x00(\x00\x00\x00\x04\xe7\xee\xf5\xfc\xfd\xf5\xee\xe7\xe0\xd9;"
    b"\x00\x00\x00\x00")
# A baseline JPEG whose scan uses an AC Huffman table the file never defines: stb decoded with
# whatever its uninitialised table held, indexing far outside it (fuzz_image; its input read
# different memory on each run, so this is the same fault in its smallest form).
add("image_jpeg_scan_table_undefined.jpg",
    jpeg_1x1().replace(jpeg_segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"), b""))
# A progressive JPEG whose second scan runs into a marker before its last block: stb 2.27 lets
# its bit count drop below zero on such data and then shifts a 32-bit value by 32 (undefined
# behaviour, fuzz_image). The scans' compressed data is now walked before stb decodes.
add("image_jpeg_progressive_invalid_code_shift.jpg", bytes.fromhex(
    "ffd8ffdb00430001010101ffd00101010000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000a1a0a01018950010101014f010101ffc2000b080008000801011100ffc400140001000000"
    "00000000000000000000000000ffc40014100100000000000000000000000000000027ffda000801010000000000ffff"
    "ff00003fffda0008010100013f01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff010101"
    "01010101000000000000000000003fffd9"))


def jpeg_gray_tables():
    """A quantization table and DC and AC Huffman tables 0 with one code each ('0'): DC size 0
    and end-of-block, so that the byte 0x3F codes one empty 8x8 block padded with ones."""
    return (jpeg_segment(0xDB, b"\x00" + b"\x01" * 64) +
            jpeg_segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00") +
            jpeg_segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"))


def jpeg_frame(marker, width, height, components=1):
    ids = b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))
    return jpeg_segment(marker, struct.pack(">BHHB", 8, height, width, components) + ids)


def jpeg_scan(component=1, spectral=(0, 63), approximation=0):
    return jpeg_segment(0xDA, bytes([1, component, 0x00, spectral[0], spectral[1], approximation]))


# Compressed data that ends before the scan's last block, at the end-of-image marker: stb reads
# past the marker as above (this is the smallest case, a 1x1 image with no scan data at all).
add("image_jpeg_scan_ends_at_marker.jpg", jpeg_1x1(scan=b""))
# Two blocks with a restart interval of one block and no restart marker between them.
add("image_jpeg_restart_marker_missing.jpg",
    b"\xff\xd8" + jpeg_gray_tables() + jpeg_frame(0xC0, 16, 8) + jpeg_segment(0xDD, struct.pack(">H", 1)) +
    jpeg_scan() + b"\x3f\x3f" + b"\xff\xd9")
# Three components and a scan of the first only: stb returned the memory it never wrote for the
# other two as pixels (different on every run).
add("image_jpeg_component_without_scan.jpg",
    b"\xff\xd8" + jpeg_gray_tables() + jpeg_frame(0xC0, 8, 8, components=3) + jpeg_scan() + b"\x3f\xff\xd9")
# A frame and no scan at all: the same, for every component.
add("image_jpeg_no_scan.jpg", b"\xff\xd8" + jpeg_gray_tables() + jpeg_frame(0xC0, 8, 8) + b"\xff\xd9")
# A progressive AC scan before any DC scan: stb refines coefficients in memory it never cleared.
add("image_jpeg_progressive_ac_before_dc.jpg",
    b"\xff\xd8" + jpeg_gray_tables() + jpeg_frame(0xC2, 8, 8) + jpeg_scan(spectral=(1, 63)) + b"\x7f" +
    jpeg_scan(spectral=(0, 0)) + b"\x7f" + b"\xff\xd9")
# A top-down 16x797 BMP of 29 bytes, its header cut short: the size checks skipped headers shorter
# than 34 bytes, so stb decoded the missing pixels as zeros, and read_image_size reported stb's
# negative height (fuzz_image, minimized: the two sizes disagreed).
add("image_bmp_header_cut_short.bmp",
    b"BM6\x00\x006\x00\x00\x00\x00\xf4\x00\x00\x00(\x00\x00\x00\x10\x00\x00\x00\xe3\xfc\xff\xff\x01\x00\x04")
# A label PNG of 524928x480 palette pixels (within the pixel limit) whose few bytes of image data
# cannot inflate to them: it allocated and cleared 252 MB before finding out (fuzz_label_png;
# rebuilt here with valid CRCs, which the fuzz build does not check).
add("label_png_tiny_data_huge_size.png",
    png(524928, 480, bit_depth=8, color_type=3, extra=png_chunk(b"PLTE", bytes(12)), idat=zlib.compress(b"\0" * 64)))
# run.json of an evaluation run folder read by `eval --merge`: not an object (fuzz_eval_run_dir
# minimized it to "2"); the JSON library's exception escaped.
add("run_json_not_object.json", "2")
# Written beside it for the other fields that fix checks: shard and class fields of the wrong
# type or out of range, which escaped the same way or cast a double out of range to int.
add("run_json_shard_index_string.json",
    dumps({"shard": {"index": "0", "count": 2}, "stems": ["img"], "num_scored_classes": 21}))
add("run_json_shard_count_huge_float.json",
    dumps({"shard": {"index": 0, "count": 1e30}, "stems": ["img"], "num_scored_classes": 21}))
add("run_json_stems_not_strings.json",
    dumps({"shard": {"index": 0, "count": 1}, "stems": [1, 2], "num_scored_classes": 21}))
add("run_json_num_classes_negative.json",
    dumps({"shard": {"index": 0, "count": 1}, "stems": [], "num_scored_classes": -1}))
add("run_json_scored_classes_mismatch.json",
    dumps({"shard": {"index": 0, "count": 1}, "stems": [], "num_scored_classes": 3, "protocol": "mmseg",
           "scored_classes": ["cat"]}))


def main():
    keep = set(CORPUS) | {os.path.basename(__file__)}
    for name in sorted(os.listdir(OUT)):
        if name not in keep:
            print("note: %s is not generated by this script; delete it if it is stale" % name)
    total = 0
    for name, data in sorted(CORPUS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        total += len(data)
    print("wrote %d files, %d bytes, to %s" % (len(CORPUS), total, OUT))


if __name__ == "__main__":
    main()
