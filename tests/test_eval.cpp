// Evaluation without a model: the raw-index PNG reader, class lists and label mappings of every
// dataset layout (synthetic trees written here), the metrics against values computed by hand,
// resume, shards and merge, prediction files, and PIL's bilinear resize.
#include <gtest/gtest.h>

#include <cmath>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#define STBIW_ONLY_PNG
#include <stb_image_write.h>

#include "pnpovss/console/progress.h"
#include "pnpovss/error.h"
#include "pnpovss/eval/class_names.h"
#include "pnpovss/eval/dataset.h"
#include "pnpovss/eval/evaluation.h"
#include "pnpovss/eval/label_png.h"
#include "pnpovss/eval/metrics.h"
#include "pnpovss/eval/picture.h"
#include "pnpovss/eval/run_dir.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/image/palette.h"
#include "pnpovss/image/png.h"
#include "pnpovss/image/resize.h"
#include "pnpovss/io/file_write.h"

namespace fs = std::filesystem;
using namespace pnpovss::eval;
using pnpovss::Error;

namespace {

// ---- PNG building blocks (independent of the reader under test) ----------------------------

void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& body) {
  put32(png, static_cast<uint32_t>(body.size()));
  std::vector<uint8_t> typed(type, type + 4);
  typed.insert(typed.end(), body.begin(), body.end());
  png.insert(png.end(), typed.begin(), typed.end());
  put32(png, pnpovss::image::crc32(typed.data(), typed.size()));
}

// A PNG from already filtered rows (each row starts with its filter byte).
std::vector<uint8_t> make_png(uint32_t w, uint32_t h, int depth, int color_type, const std::vector<uint8_t>& rows,
                              int interlace = 0) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put32(ihdr, w);
  put32(ihdr, h);
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(depth), static_cast<uint8_t>(color_type), 0, 0,
                           static_cast<uint8_t>(interlace)});
  chunk(png, "IHDR", ihdr);
  if (color_type == 3) chunk(png, "PLTE", std::vector<uint8_t>(3 * 16, 7));
  chunk(png, "IDAT", pnpovss::image::zlib_compress(rows.data(), rows.size()));
  chunk(png, "IEND", {});
  return png;
}

int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return pa <= pb && pa <= pc ? a : (pb <= pc ? b : c);
}

// 8-bit rows filtered with filter (y % 5): the forward direction of every PNG filter.
std::vector<uint8_t> filtered_rows(const std::vector<uint8_t>& pixels, int w, int h) {
  std::vector<uint8_t> out;
  for (int y = 0; y < h; ++y) {
    const int f = y % 5;
    out.push_back(static_cast<uint8_t>(f));
    for (int x = 0; x < w; ++x) {
      const int cur = pixels[y * w + x];
      const int a = x > 0 ? pixels[y * w + x - 1] : 0, b = y > 0 ? pixels[(y - 1) * w + x] : 0;
      const int c = x > 0 && y > 0 ? pixels[(y - 1) * w + x - 1] : 0;
      const int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : paeth(a, b, c);
      out.push_back(static_cast<uint8_t>(cur - pred));
    }
  }
  return out;
}

std::string write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  pnpovss::io::write_file_atomic(path.string(), bytes);
  return path.string();
}

// An 8-bit grayscale PNG (stb_image_write, which picks its own row filters).
std::vector<uint8_t> gray_png(const std::vector<uint8_t>& values, int w, int h) {
  std::vector<uint8_t> out;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<std::vector<uint8_t>*>(ctx);
        o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &out, w, h, 1, values.data(), w);
  return out;
}

// A VOC-style palette PNG: the colours are the VOC ones, the samples the labels.
std::vector<uint8_t> palette_png(const std::vector<uint8_t>& values, int w, int h) {
  return pnpovss::image::encode_png_indexed(values.data(), w, h, pnpovss::image::palette_bytes(256));
}

// A tiny RGB image (PNG bytes; the decoder goes by content, so it may be named .jpg).
std::vector<uint8_t> rgb_png(int w, int h) {
  pnpovss::Image img;
  img.width = w;
  img.height = h;
  for (int i = 0; i < w * h * 3; ++i) img.rgb.push_back(static_cast<uint8_t>(i * 37));
  const fs::path tmp = fs::temp_directory_path() / ("pnpovss_rgb_" + std::to_string(::getpid()) + ".png");
  pnpovss::image::write_png_rgb(tmp.string(), img);
  std::ifstream in(tmp, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(tmp);
  return bytes;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("pnpovss_eval_test_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

}  // namespace

// ---- label PNG reader ------------------------------------------------------------------------

TEST(LabelPng, PaletteSamplesAreLabelsNotColours) {
  const std::vector<uint8_t> labels = {0, 15, 255, 1, 20, 7};
  const std::vector<uint8_t> png = palette_png(labels, 3, 2);
  const LabelMap m = decode_label_png(png.data(), png.size(), "voc.png");
  ASSERT_EQ(m.width, 3);
  ASSERT_EQ(m.height, 2);
  EXPECT_EQ(m.values, std::vector<int32_t>(labels.begin(), labels.end()));
}

TEST(LabelPng, GrayWithStbFilters) {
  std::vector<uint8_t> values;
  for (int i = 0; i < 37 * 11; ++i) values.push_back(static_cast<uint8_t>((i * 7 + i / 37 * 13) % 171));
  const std::vector<uint8_t> png = gray_png(values, 37, 11);
  const LabelMap m = decode_label_png(png.data(), png.size(), "gray.png");
  EXPECT_EQ(m.values, std::vector<int32_t>(values.begin(), values.end()));
}

TEST(LabelPng, EveryRowFilter) {
  std::vector<uint8_t> values;
  for (int i = 0; i < 9 * 10; ++i) values.push_back(static_cast<uint8_t>((i * 53) ^ (i / 9 * 29)));
  const std::vector<uint8_t> png = make_png(9, 10, 8, 0, filtered_rows(values, 9, 10));
  const LabelMap m = decode_label_png(png.data(), png.size(), "filters.png");
  EXPECT_EQ(m.values, std::vector<int32_t>(values.begin(), values.end()));
}

TEST(LabelPng, SubBytePaletteAnd16BitGray) {
  // 4-bit palette, 3 pixels per row: 0x5A -> 5, 10; 0xF0 -> 15 (low nibble is padding).
  const std::vector<uint8_t> rows4 = {0, 0x5A, 0xF0, 0, 0x12, 0x30};
  std::vector<uint8_t> png = make_png(3, 2, 4, 3, rows4);
  EXPECT_EQ(decode_label_png(png.data(), png.size(), "p4.png").values, (std::vector<int32_t>{5, 10, 15, 1, 2, 3}));
  // 2-bit gray, 5 pixels: 0b11100100 0b01000000 -> 3 2 1 0 1.
  png = make_png(5, 1, 2, 0, {0, 0xE4, 0x40});
  EXPECT_EQ(decode_label_png(png.data(), png.size(), "g2.png").values, (std::vector<int32_t>{3, 2, 1, 0, 1}));
  // 1-bit palette.
  png = make_png(10, 1, 1, 3, {0, 0xA5, 0x80});
  EXPECT_EQ(decode_label_png(png.data(), png.size(), "p1.png").values,
            (std::vector<int32_t>{1, 0, 1, 0, 0, 1, 0, 1, 1, 0}));
  const std::vector<uint16_t> wide = {0, 300, 65535, 171};
  png = pnpovss::image::encode_png_gray16(wide.data(), 2, 2);
  EXPECT_EQ(decode_label_png(png.data(), png.size(), "g16.png").values, (std::vector<int32_t>{0, 300, 65535, 171}));
}

TEST(LabelPng, RefusesWhatIsNotALabelMap) {
  auto message = [](const std::vector<uint8_t>& png) {
    try {
      decode_label_png(png.data(), png.size(), "x.png");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(make_png(2, 1, 8, 2, {0, 1, 2, 3, 4, 5, 6})).find("color PNG"), std::string::npos);
  EXPECT_NE(message(make_png(2, 1, 8, 0, {0, 1, 2}, 1)).find("interlaced"), std::string::npos);
  std::vector<uint8_t> png = palette_png({1, 2, 3, 4}, 2, 2);
  std::vector<uint8_t> bad_crc = png;
  bad_crc[bad_crc.size() - 20] ^= 0x40;
  EXPECT_NE(message(bad_crc).find("x.png"), std::string::npos);
  EXPECT_NE(message(std::vector<uint8_t>(png.begin(), png.begin() + 40)).find("truncated"), std::string::npos);
  EXPECT_NE(message({1, 2, 3}).find("not a PNG"), std::string::npos);
  // Too little pixel data for the header's size.
  EXPECT_NE(message(make_png(4, 4, 8, 0, {0, 1, 2, 3, 4})).find("x.png"), std::string::npos);
  EXPECT_THROW(read_label_png("/nonexistent/label.png"), Error);
}

// ---- class lists ------------------------------------------------------------------------------

TEST(ClassNames, CountsAndKnownPlaces) {
  EXPECT_EQ(voc20_classes().size(), 20u);
  EXPECT_EQ(context59_classes().size(), 59u);
  EXPECT_EQ(ade150_classes().size(), 150u);
  EXPECT_EQ(coco_thing_classes().size(), 80u);
  EXPECT_EQ(coco_stuff171_classes().size(), 171u);
  for (const auto* list : {&voc20_classes(), &context59_classes(), &ade150_classes(), &coco_stuff171_classes()})
    EXPECT_EQ(std::set<std::string>(list->begin(), list->end()).size(), list->size()) << "duplicate name";
  EXPECT_EQ(voc20_classes()[15], "potted plant");
  EXPECT_EQ(voc20_classes()[19], "tv monitor");
  EXPECT_EQ(context59_classes()[39], "potted plant");
  EXPECT_EQ(ade150_classes()[44], "chest of drawers");
  EXPECT_EQ(ade150_classes()[149], "flag");
  EXPECT_EQ(coco_stuff171_classes()[80], "banner");
  EXPECT_EQ(coco_stuff171_classes()[170], "wood");
  const auto& ids = coco_stuff171_category_ids();
  ASSERT_EQ(ids.size(), 171u);
  for (size_t k = 1; k < ids.size(); ++k) EXPECT_LT(ids[k - 1], ids[k]);
  // The pipeline fixture's COCO labels: couch 63, traffic light 10, person 1.
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[9], 10);
  EXPECT_EQ(ids[57], 63);
  EXPECT_EQ(ids[79], 90);
  EXPECT_EQ(ids[80], 92);
  EXPECT_EQ(ids[170], 182);
}

// ---- dataset trees ----------------------------------------------------------------------------

namespace {

// Writes a 4x1 label PNG and an image for `stem`.
void add_pair(const fs::path& image, const fs::path& label, const std::vector<uint8_t>& values, bool palette) {
  write_bytes(image, rgb_png(static_cast<int>(values.size()), 1));
  write_bytes(label, palette ? palette_png(values, static_cast<int>(values.size()), 1)
                             : gray_png(values, static_cast<int>(values.size()), 1));
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  pnpovss::io::write_file_atomic(path.string(), text);
}

}  // namespace

TEST(Dataset, Voc20TreeAndMappings) {
  TempDir t;
  const fs::path base = t.path() / "VOCdevkit/VOC2012";
  write_text(base / "ImageSets/Segmentation/val.txt", "2007_000033\n2007_000042\n");
  add_pair(base / "JPEGImages/2007_000033.jpg", base / "SegmentationClass/2007_000033.png", {0, 1, 20, 255}, true);
  fs::create_directories(base / "JPEGImages");
  const Dataset d = open_dataset("voc20", t.path().string());
  ASSERT_EQ(d.samples.size(), 2u);
  EXPECT_EQ(d.samples[1].stem, "2007_000042");
  EXPECT_EQ(d.samples[1].label, (base / "SegmentationClass/2007_000042.png").string());
  EXPECT_EQ(d.num_classes(), 20);
  EXPECT_EQ(d.background_class, -1);
  EXPECT_EQ(d.prompt_classes().size(), 20u);
  EXPECT_EQ(d.rule, pnpovss::DatasetRule::Voc);
  const Scoring m = d.scoring(Protocol::Mmseg);
  EXPECT_EQ(m.gt(0), kIgnore);
  EXPECT_EQ(m.gt(1), 0);
  EXPECT_EQ(m.gt(20), 19);
  EXPECT_EQ(m.gt(255), kIgnore);
  EXPECT_EQ(m.gt(21), kInvalid);
  EXPECT_EQ(m.pred(-1), kIgnore);
  const Scoring p = d.scoring(Protocol::PnpOvss);
  EXPECT_EQ(p.num_classes(), 21);
  EXPECT_EQ(p.names[0], "background");
  EXPECT_EQ(p.gt(255), 0);  // void counted as background
  EXPECT_EQ(p.gt(20), 20);
  EXPECT_EQ(p.pred(0), 1);
  EXPECT_EQ(p.pred(-1), 0);
}

TEST(Dataset, Context59AndAde150) {
  TempDir t;
  const fs::path voc = t.path() / "VOCdevkit/VOC2010";
  write_text(voc / "ImageSets/SegmentationContext/val.txt", "2008_000002\n");
  add_pair(voc / "JPEGImages/2008_000002.jpg", voc / "SegmentationClassContext/2008_000002.png", {0, 59, 1, 2}, false);
  const Dataset c = open_dataset("context59", t.path().string());
  EXPECT_EQ(c.num_classes(), 59);
  EXPECT_EQ(c.scoring(Protocol::Mmseg).gt(59), 58);
  EXPECT_EQ(c.scoring(Protocol::Mmseg).gt(60), kInvalid);
  EXPECT_EQ(c.scoring(Protocol::PnpOvss).num_classes(), 60);
  EXPECT_EQ(c.scoring(Protocol::PnpOvss).gt(0), 0);

  const fs::path ade = t.path() / "ADEChallengeData2016";
  add_pair(ade / "images/validation/ADE_val_00000002.jpg", ade / "annotations/validation/ADE_val_00000002.png",
           {0, 150, 1, 3}, false);
  add_pair(ade / "images/validation/ADE_val_00000001.jpg", ade / "annotations/validation/ADE_val_00000001.png",
           {0, 150, 1, 3}, false);
  const Dataset a = open_dataset("ade150", t.path().string());
  ASSERT_EQ(a.samples.size(), 2u);
  EXPECT_EQ(a.samples[0].stem, "ADE_val_00000001");  // sorted
  EXPECT_EQ(a.num_classes(), 150);
  EXPECT_EQ(a.scoring(Protocol::Mmseg).gt(150), 149);
  EXPECT_EQ(a.scoring(Protocol::Mmseg).gt(0), kIgnore);
  EXPECT_EQ(a.scoring(Protocol::PnpOvss).num_classes(), 151);
  EXPECT_EQ(a.scoring(Protocol::PnpOvss).names[0], "other");
  EXPECT_EQ(a.rule, pnpovss::DatasetRule::Ade);
}

TEST(Dataset, CocoObjectAndStuffLabelMaps) {
  TempDir t;
  const fs::path coco = t.path() / "coco_stuff164k";
  add_pair(coco / "images/val2017/000000000139.jpg", coco / "annotations/val2017/000000000139_instanceTrainIds.png",
           {0, 1, 80, 255}, false);
  write_bytes(coco / "annotations/val2017/000000000139_labelTrainIds.png", gray_png({0, 170, 80, 255}, 4, 1));
  const Dataset o = open_dataset("coco_object", t.path().string());
  ASSERT_EQ(o.samples.size(), 1u);
  EXPECT_EQ(o.samples[0].label, (coco / "annotations/val2017/000000000139_instanceTrainIds.png").string());
  EXPECT_EQ(o.num_classes(), 81);
  EXPECT_EQ(o.classes[0], "background");
  EXPECT_EQ(o.classes[1], "person");
  EXPECT_EQ(o.classes[80], "toothbrush");
  EXPECT_EQ(o.background_class, 0);
  EXPECT_EQ(o.prompt_classes().size(), 80u);
  EXPECT_EQ(o.prompt_classes().front(), 1);
  const Scoring om = o.scoring(Protocol::Mmseg);
  EXPECT_EQ(om.gt(0), 0);  // background is a scored class
  EXPECT_EQ(om.gt(80), 80);
  EXPECT_EQ(om.gt(81), kInvalid);
  EXPECT_EQ(om.gt(255), kIgnore);
  // The method's background (native 0) is evaluation class 0; a thing's category id maps back.
  EXPECT_EQ(o.eval_class_of_native(0), 0);
  EXPECT_EQ(o.eval_class_of_native(90), 80);
  EXPECT_EQ(o.eval_class_of_native(12), -1);  // an unused category id
  const Scoring op = o.scoring(Protocol::PnpOvss);
  EXPECT_EQ(op.num_classes(), 91);
  EXPECT_EQ(op.gt(1), 1);
  EXPECT_EQ(op.gt(80), 90);
  EXPECT_EQ(op.names[90], "toothbrush");
  EXPECT_EQ(op.names[12], "");

  const Dataset s = open_dataset("coco_stuff171", t.path().string());
  EXPECT_EQ(s.samples[0].label, (coco / "annotations/val2017/000000000139_labelTrainIds.png").string());
  EXPECT_EQ(s.num_classes(), 171);
  EXPECT_EQ(s.background_class, -1);
  EXPECT_EQ(s.scoring(Protocol::Mmseg).gt(170), 170);
  EXPECT_EQ(s.scoring(Protocol::Mmseg).gt(171), kInvalid);
  const Scoring sp = s.scoring(Protocol::PnpOvss);
  EXPECT_EQ(sp.num_classes(), 183);
  EXPECT_EQ(sp.gt(0), 1);
  EXPECT_EQ(sp.gt(80), 92);
  EXPECT_EQ(sp.gt(170), 182);
  EXPECT_EQ(sp.gt(255), kIgnore);
  EXPECT_EQ(sp.pred(57), 63);
}

TEST(Dataset, FolderWithBackgroundClass) {
  TempDir t;
  write_text(t.path() / "classes.txt", "cat\nBackground\n\nremote control\n");
  add_pair(t.path() / "images/a.png", t.path() / "labels/a.png", {0, 1, 2, 255}, false);
  const Dataset d = open_dataset("folder", t.path().string());
  ASSERT_EQ(d.num_classes(), 3);
  EXPECT_EQ(d.background_class, 1);
  EXPECT_EQ(d.prompt_classes(), (std::vector<int>{0, 2}));
  EXPECT_EQ(d.eval_class_of_native(0), 1);
  EXPECT_EQ(d.eval_class_of_native(3), 2);
  EXPECT_EQ(d.scoring(Protocol::Mmseg).gt(2), 2);
  EXPECT_EQ(d.scoring(Protocol::Mmseg).gt(3), kInvalid);
  EXPECT_THROW(d.scoring(Protocol::PnpOvss), Error);
}

TEST(Dataset, ClearErrorsForMissingPieces) {
  TempDir t;
  auto message = [&](const std::string& name) {
    try {
      open_dataset(name, t.path().string());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("voc20").find("VOC2012"), std::string::npos);
  fs::create_directories(t.path() / "VOCdevkit/VOC2012/JPEGImages");
  fs::create_directories(t.path() / "VOCdevkit/VOC2012/SegmentationClass");
  EXPECT_NE(message("voc20").find("val.txt"), std::string::npos);
  write_text(t.path() / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt", "\n \n");
  const std::string empty = message("voc20");
  EXPECT_NE(empty.find("val.txt"), std::string::npos);
  EXPECT_NE(empty.find("lists no images"), std::string::npos);
  EXPECT_NE(message("coco_object").find("val2017"), std::string::npos);
  EXPECT_NE(message("folder").find("classes.txt"), std::string::npos);
  EXPECT_NE(message("imagenet").find("unknown dataset"), std::string::npos);
  EXPECT_THROW(open_dataset("voc20", (t.path() / "nope").string()), Error);
}

// ---- metrics by hand ------------------------------------------------------------------------

namespace {

LabelMap map_of(std::vector<int32_t> values, int w, int h) {
  LabelMap m;
  m.width = w;
  m.height = h;
  m.values = std::move(values);
  return m;
}

Dataset voc_without_files() {
  Dataset d;
  d.name = "voc20";
  d.classes = voc20_classes();
  for (int k = 1; k <= 20; ++k) d.native_ids.push_back(k);
  return d;
}

}  // namespace

TEST(Metrics, MmsegByHand) {
  // GT raw:  0 (background: ignored), 1, 1, 2, 255 (ignored), 15
  // pred:    3, 0, 1, 1, 0, none
  // class 0 (aeroplane): I=1 P=1 L=2 U=2; class 1: I=1 P=2 L=1 U=2; class 14: I=0 P=0 L=1 U=1;
  // class 3 predicted only on an ignored pixel: not counted.
  const Scoring s = voc_without_files().scoring(Protocol::Mmseg);
  const Counts c = count_image(s, map_of({0, 1, 1, 2, 255, 15}, 3, 2), {3, 0, 1, 1, 0, -1}, 3, 2, "gt", "pred");
  EXPECT_EQ(c.intersect[0], 1);
  EXPECT_EQ(c.pred[0], 1);
  EXPECT_EQ(c.label[0], 2);
  EXPECT_EQ(c.pred[1], 2);
  EXPECT_EQ(c.pred[3], 0);
  EXPECT_EQ(c.label[14], 1);
  const Summary sum = summarize(s, c);
  EXPECT_DOUBLE_EQ(sum.classes[0].iou, 0.5);
  EXPECT_DOUBLE_EQ(sum.classes[1].iou, 0.5);
  EXPECT_DOUBLE_EQ(sum.classes[14].iou, 0.0);
  EXPECT_TRUE(std::isnan(sum.classes[5].iou));
  EXPECT_DOUBLE_EQ(sum.miou, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(sum.macc, 0.5);   // (0.5 + 1 + 0) / 3
  EXPECT_DOUBLE_EQ(sum.aacc, 0.5);   // 2 / 4
  EXPECT_DOUBLE_EQ(percent2(sum.miou), 33.33);
  const auto j = summary_json(sum);
  EXPECT_DOUBLE_EQ(j["mIoU"].get<double>(), 33.33);
  EXPECT_DOUBLE_EQ(j["mAcc"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["aAcc"].get<double>(), 50.0);
  EXPECT_TRUE(j["per_class"][5]["IoU"].is_null());
  EXPECT_EQ(j["per_class"].size(), 20u);
}

TEST(Metrics, PnpOvssByHand) {
  // Same maps under the released code's scoring: GT 255 -> 0, 21 classes, predictions shifted
  // up by one, no class -> 0.
  // class 0: I=0 P=1 L=2 U=3; class 1: I=1 P=2 L=2 U=3; class 2: I=1 P=2 L=1 U=2;
  // class 4: P=1 L=0 (not in the mean); class 15: I=0 P=0 L=1.
  const Scoring s = voc_without_files().scoring(Protocol::PnpOvss);
  const Counts c = count_image(s, map_of({0, 1, 1, 2, 255, 15}, 3, 2), {3, 0, 1, 1, 0, -1}, 3, 2, "gt", "pred");
  const Summary sum = summarize(s, c);
  EXPECT_DOUBLE_EQ(sum.miou, (0.0 + 1.0 / 3.0 + 0.5 + 0.0) / 4.0);
  EXPECT_DOUBLE_EQ(sum.macc, (0.0 + 0.5 + 1.0 + 0.0) / 4.0);
  EXPECT_DOUBLE_EQ(sum.aacc, 2.0 / 6.0);
  EXPECT_FALSE(sum.classes[4].in_mean);
  EXPECT_DOUBLE_EQ(percent2(sum.miou), 20.83);
}

TEST(Metrics, RefusesBadLabelsAndSizes) {
  const Scoring s = voc_without_files().scoring(Protocol::Mmseg);
  try {
    count_image(s, map_of({0, 21}, 2, 1), {0, 0}, 2, 1, "labels/x.png", "pred");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("labels/x.png"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("21"), std::string::npos);
  }
  EXPECT_THROW(count_image(s, map_of({0, 1}, 2, 1), {0}, 1, 1, "gt", "pred"), Error);
  EXPECT_THROW(check_ground_truth(s, map_of({0, 30}, 2, 1), "gt"), Error);
}

TEST(Metrics, CountsJsonRoundTripAndTables) {
  Counts c(3);
  c.intersect = {1, 0, 5};
  c.pred = {2, 0, 6};
  c.label = {3, 0, 7};
  EXPECT_EQ(Counts::from_json(c.to_json(), 3, "x"), c);
  EXPECT_EQ(c.to_json().size(), 2u);
  EXPECT_THROW(Counts::from_json(nlohmann::json::parse("[[3, 1, 1, 1]]"), 3, "x"), Error);
  EXPECT_THROW(Counts::from_json(nlohmann::json::parse("[[0, -1, 1, 1]]"), 3, "x"), Error);
  Scoring s;
  s.names = {"cat", "sofa, big", "dog"};
  const Summary sum = summarize(s, c);
  const std::string csv = summary_csv(sum);
  EXPECT_NE(csv.find("0,cat,25.00,33.33,1,4,2,3\n"), std::string::npos);
  EXPECT_NE(csv.find("\"sofa, big\",nan,nan"), std::string::npos);
  EXPECT_NE(summary_markdown(sum).find("| 2 | dog | 62.50 | 71.43 | 7 |"), std::string::npos);
}

// ---- run folder, resume, shards ---------------------------------------------------------------

namespace {

// A folder dataset of `n` images 4x2 with labels 0..2 and 255, and predictions that are right
// on some pixels.
Dataset folder_dataset(const fs::path& root, int n) {
  write_text(root / "classes.txt", "cat\ndog\nbird\n");
  for (int i = 0; i < n; ++i) {
    std::vector<uint8_t> gt;
    for (int p = 0; p < 8; ++p) gt.push_back(static_cast<uint8_t>((p * 3 + i) % 5 == 4 ? 255 : (p + i) % 3));
    const std::string stem = "img" + std::to_string(i);
    write_bytes(root / "images" / (stem + ".png"), rgb_png(4, 2));
    write_bytes(root / "labels" / (stem + ".png"), gray_png(gt, 4, 2));
  }
  return open_dataset("folder", root.string());
}

Prediction fake_prediction(const Sample& s, const LabelMap& gt) {
  Prediction p;
  p.width = gt.width;
  p.height = gt.height;
  const int seed = std::stoi(s.stem.substr(3));
  for (size_t i = 0; i < gt.values.size(); ++i) p.classes.push_back(static_cast<int32_t>((i * 2 + seed) % 4));
  return p;
}

nlohmann::json identity_of(const Dataset& d, const std::vector<Sample>& samples, int index, int count) {
  std::vector<std::string> stems;
  for (const auto& s : samples) stems.push_back(s.stem);
  nlohmann::json id = {{"dataset", d.name}, {"scored_classes", d.classes}, {"num_scored_classes", d.num_classes()},
                       {"protocol", "mmseg"}, {"stems", stems}};
  if (count > 1) id["shard"] = {{"index", index}, {"count", count}};
  return id;
}

}  // namespace

TEST(RunFolder, ResumeCountsEveryImageOnce) {
  TempDir t;
  const Dataset d = folder_dataset(t.path() / "data", 7);
  const Scoring s = d.scoring(Protocol::Mmseg);
  const RunDir whole = RunDir::open((t.path() / "whole").string(), identity_of(d, d.samples, 0, 1));
  const LoopResult full = run_samples(whole, d, s, d.samples, fake_prediction, true);
  EXPECT_EQ(full.computed, 7);
  EXPECT_TRUE(full.failures.empty());
  EXPECT_TRUE(fs::exists(whole.pred_path("img3")));

  // A run stopped after 3 images, then the same run again: only the other 4 are computed.
  const std::string dir = (t.path() / "resumed").string();
  const nlohmann::json id = identity_of(d, d.samples, 0, 1);
  run_samples(RunDir::open(dir, id), d, s, std::vector<Sample>(d.samples.begin(), d.samples.begin() + 3),
              fake_prediction, true);
  int calls = 0;
  const LoopResult again = run_samples(RunDir::open(dir, id), d, s, d.samples,
                                       [&](const Sample& x, const LabelMap& gt) {
                                         ++calls;
                                         return fake_prediction(x, gt);
                                       },
                                       true);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(again.resumed, 3);
  EXPECT_EQ(again.totals, full.totals);

  // Another dataset or protocol in the same folder is refused, naming the field.
  nlohmann::json other = id;
  other["protocol"] = "pnp-ovss";
  try {
    RunDir::open(dir, other);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("protocol"), std::string::npos);
  }
}

TEST(RunFolder, FailedImageIsReportedAndRetried) {
  TempDir t;
  const Dataset d = folder_dataset(t.path() / "data", 3);
  const Scoring s = d.scoring(Protocol::Mmseg);
  const nlohmann::json id = identity_of(d, d.samples, 0, 1);
  const RunDir run = RunDir::open((t.path() / "run").string(), id);
  const LoopResult r = run_samples(run, d, s, d.samples,
                                   [](const Sample& x, const LabelMap& gt) {
                                     if (x.stem == "img1") throw Error("broken image 'img1.png'");
                                     return fake_prediction(x, gt);
                                   },
                                   true);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].stem, "img1");
  EXPECT_EQ(r.computed, 2);
  const LoopResult retry = run_samples(run, d, s, d.samples, fake_prediction, true);
  EXPECT_EQ(retry.computed, 1);
  EXPECT_EQ(retry.resumed, 2);
}

TEST(RunFolder, ShardsMergeToTheSingleRun) {
  TempDir t;
  const Dataset d = folder_dataset(t.path() / "data", 7);
  const Scoring s = d.scoring(Protocol::Mmseg);
  const LoopResult single = run_samples(RunDir::open((t.path() / "single").string(), identity_of(d, d.samples, 0, 1)),
                                        d, s, d.samples, fake_prediction, false);
  std::vector<std::string> dirs;
  for (int k = 0; k < 3; ++k) {
    const std::vector<Sample> mine = select_samples(d.samples, 0, k, 3);
    const std::string dir = (t.path() / ("shard" + std::to_string(k))).string();
    run_samples(RunDir::open(dir, identity_of(d, mine, k, 3)), d, s, mine, fake_prediction, false);
    dirs.push_back(dir);
  }
  EXPECT_EQ(select_samples(d.samples, 0, 1, 3).size(), 2u);
  EXPECT_EQ(select_samples(d.samples, 5, 0, 1).size(), 5u);
  const Merged m = merge_runs(dirs);
  EXPECT_EQ(m.totals, single.totals);
  EXPECT_EQ(m.images, 7);
  EXPECT_THROW(merge_runs({dirs[0], dirs[1]}), Error);          // shard 2 missing
  EXPECT_THROW(merge_runs({dirs[0], dirs[0], dirs[1]}), Error); // shard 0 twice
  fs::remove(RunDir::existing(dirs[2]).record_path("img2"));
  EXPECT_THROW(merge_runs(dirs), Error);  // an image of shard 2 has no result
}

TEST(Predictions, PngRoundTrip) {
  Prediction p;
  p.width = 3;
  p.height = 1;
  p.classes = {0, 170, -1};
  const std::vector<uint8_t> png = encode_prediction_png(p, 171);
  const LabelMap raw = decode_label_png(png.data(), png.size(), "p");
  EXPECT_EQ(raw.values, (std::vector<int32_t>{0, 170, 255}));
  TempDir t;
  const std::string path = write_bytes(t.path() / "p.png", png);
  EXPECT_EQ(read_prediction_png(path, 171).classes, (std::vector<int32_t>{0, 170, -1}));
  p.classes = {299, 3, -1};
  const std::vector<uint8_t> wide = encode_prediction_png(p, 300);
  EXPECT_EQ(decode_label_png(wide.data(), wide.size(), "w").values, (std::vector<int32_t>{299, 3, 65535}));
}

// A class has the colour of its label in `segment` with the dataset's prompted classes: the
// background class black (label 0), the others 1, 2, ... in prompt order.
TEST(Picture, ClassesHaveSegmentsColours) {
  Dataset d;
  d.classes = {"background", "cat", "dog"};
  d.background_class = 0;
  EXPECT_EQ(d.segment_labels(), (std::vector<int32_t>{0, 1, 2}));
  d.background_class = -1;
  EXPECT_EQ(d.segment_labels(), (std::vector<int32_t>{1, 2, 3}));

  pnpovss::Image img;
  img.width = 4;
  img.height = 1;
  img.rgb.assign(4 * 3, 200);
  const std::vector<int32_t> cat_everywhere(4, 1);
  const pnpovss::Image pic = comparison_picture(img, cat_everywhere, cat_everywhere, d.classes, {0, 1, 2});
  std::set<std::tuple<int, int, int>> colours;
  for (size_t i = 0; i + 2 < pic.rgb.size(); i += 3) colours.insert({pic.rgb[i], pic.rgb[i + 1], pic.rgb[i + 2]});
  const auto cat = pnpovss::image::label_color(1), k_plus_one = pnpovss::image::label_color(2);
  EXPECT_TRUE(colours.count({cat.r, cat.g, cat.b}));
  EXPECT_FALSE(colours.count({k_plus_one.r, k_plus_one.g, k_plus_one.b}));

  Prediction p;
  p.width = 2;
  p.height = 1;
  p.classes = {0, 1};
  const std::vector<uint8_t> png = encode_prediction_png(p, 3, {0, 1, 2});
  const pnpovss::Image decoded = pnpovss::image::decode_image_memory(png.data(), png.size(), "p");
  EXPECT_EQ(std::vector<int>(decoded.rgb.begin(), decoded.rgb.begin() + 3), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(std::vector<int>(decoded.rgb.begin() + 3, decoded.rgb.end()), (std::vector<int>{cat.r, cat.g, cat.b}));
}

TEST(Picture, ThreePanelsAndLegend) {
  pnpovss::Image img;
  img.width = 10;
  img.height = 6;
  img.rgb.assign(10 * 6 * 3, 200);
  std::vector<int32_t> gt(60, 1), pred(60, -1);
  pred[0] = 2;
  const pnpovss::Image pic = comparison_picture(img, gt, pred, {"a", "b", "c"});
  EXPECT_GT(pic.width, 30);
  EXPECT_GT(pic.height, 6);
  // Somewhere in the picture: class 1's colour (label 2) and class 2's (label 3).
  std::set<std::tuple<int, int, int>> colours;
  for (size_t i = 0; i + 2 < pic.rgb.size(); i += 3) colours.insert({pic.rgb[i], pic.rgb[i + 1], pic.rgb[i + 2]});
  for (int label : {2, 3}) {
    const auto c = pnpovss::image::label_color(label);
    EXPECT_TRUE(colours.count({c.r, c.g, c.b})) << "label colour " << label;
  }
}

TEST(Progress, Clock) {
  EXPECT_EQ(pnpovss::console::Progress::clock(0), "0:00");
  EXPECT_EQ(pnpovss::console::Progress::clock(65), "1:05");
  EXPECT_EQ(pnpovss::console::Progress::clock(3725), "1:02:05");
  EXPECT_EQ(pnpovss::console::Progress::clock(NAN), "?");
}

// ---- PIL's bilinear resize (the official ADE input) --------------------------------------------

TEST(ResizeBilinear, HandComputedPilValues) {
  pnpovss::Image in;
  in.width = 2;
  in.height = 1;
  in.rgb = {0, 0, 0, 100, 100, 100};
  // Upscale 2 -> 4: centres 0.25, 0.75, 1.25, 1.75, triangle weights clipped to the image and
  // normalised: 0, 0.75*0+0.25*100, 0.25*0+0.75*100, 100.
  const auto up = pnpovss::image::resize_bilinear_pil(in, 4, 1);
  EXPECT_EQ(up.rgb, (std::vector<uint8_t>{0, 0, 0, 25, 25, 25, 75, 75, 75, 100, 100, 100}));
  // Downscale 2 -> 1: the stretched triangle gives both pixels 0.75, normalised to halves.
  const auto down = pnpovss::image::resize_bilinear_pil(in, 1, 1);
  EXPECT_EQ(down.rgb, (std::vector<uint8_t>{50, 50, 50}));
  // Bicubic differs on the same input (a = -0.5 overshoot is clipped): a sanity check that the
  // filter is really switched.
  EXPECT_NE(pnpovss::image::resize_bicubic_pil(in, 4, 1).rgb, up.rgb);
}
