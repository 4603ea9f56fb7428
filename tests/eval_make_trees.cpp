// Writes tiny synthetic dataset trees in every layout `pnp-ovss eval` reads, with prediction
// folders, for tests/test_eval_cli.sh. The label values and predictions are listed here so the
// expected metrics in the script can be checked by hand against them.
//
// Usage: pnpovss_eval_make_trees OUT_DIR
//   OUT_DIR/<dataset>/...       the tree (images are small RGB PNGs named .jpg: the decoder goes
//                               by content)
//   OUT_DIR/<dataset>_pred/     <stem>.png predictions in evaluation classes (255 = no class)
//   OUT_DIR/model/              a folder dataset of 30 images 40x30 for model runs
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <stb_image_write.h>

#include "pnpovss/image/codec.h"
#include "pnpovss/image/palette.h"
#include "pnpovss/image/png.h"
#include "pnpovss/io/file_write.h"

namespace fs = std::filesystem;
using Values = std::vector<uint8_t>;

namespace {

fs::path out_dir;

void text(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  pnpovss::io::write_file_atomic(path.string(), content);
}

void image(const fs::path& path, int w, int h, int seed) {
  fs::create_directories(path.parent_path());
  pnpovss::Image img;
  img.width = w;
  img.height = h;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      img.rgb.push_back(static_cast<uint8_t>(x * 255 / w));
      img.rgb.push_back(static_cast<uint8_t>(y * 255 / h));
      img.rgb.push_back(static_cast<uint8_t>((seed * 53 + x * y) % 256));
    }
  pnpovss::image::write_png_rgb(path.string(), img);
}

// 8-bit label PNG: palette (VOC) or grayscale.
void label(const fs::path& path, const Values& v, int w, int h, bool palette) {
  fs::create_directories(path.parent_path());
  std::vector<uint8_t> png;
  if (palette) {
    png = pnpovss::image::encode_png_indexed(v.data(), w, h, pnpovss::image::palette_bytes(256));
  } else {
    // 8-bit grayscale, as MMSegmentation's converters save them (stb picks the row filters).
    stbi_write_png_to_func(
        [](void* ctx, void* data, int size) {
          auto* o = static_cast<std::vector<uint8_t>*>(ctx);
          o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
        },
        &png, w, h, 1, v.data(), w);
  }
  pnpovss::io::write_file_atomic(path.string(), png);
}

// A prediction file: palette PNG of evaluation classes.
void prediction(const std::string& dataset, const std::string& stem, const Values& v) {
  label(out_dir / (dataset + "_pred") / (stem + ".png"), v, 4, 2, true);
}

// One 4x2 sample of a dataset: image, label, prediction.
void sample(const std::string& dataset, const fs::path& image_path, const fs::path& label_path,
            const std::string& stem, const Values& gt, const Values& pred, bool palette = false) {
  image(image_path, 4, 2, static_cast<int>(stem.size()));
  label(label_path, gt, 4, 2, palette);
  prediction(dataset, stem, pred);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];

  // voc20: palette labels, background 0 and void 255.
  const fs::path voc = out_dir / "voc20/VOCdevkit/VOC2012";
  text(voc / "ImageSets/Segmentation/val.txt", "2007_000001\n2007_000002\n");
  sample("voc20", voc / "JPEGImages/2007_000001.jpg", voc / "SegmentationClass/2007_000001.png", "2007_000001",
         {0, 1, 1, 2, 255, 15, 15, 0}, {3, 0, 1, 1, 0, 14, 255, 0}, true);
  sample("voc20", voc / "JPEGImages/2007_000002.jpg", voc / "SegmentationClass/2007_000002.png", "2007_000002",
         {1, 1, 1, 1, 20, 20, 0, 0}, {0, 0, 19, 19, 19, 19, 19, 19}, true);

  const fs::path ctx = out_dir / "context59/VOCdevkit/VOC2010";
  text(ctx / "ImageSets/SegmentationContext/val.txt", "2008_000001\n");
  sample("context59", ctx / "JPEGImages/2008_000001.jpg", ctx / "SegmentationClassContext/2008_000001.png",
         "2008_000001", {0, 1, 59, 59, 2, 2, 3, 3}, {0, 0, 58, 0, 1, 1, 255, 2});

  const fs::path coco_o = out_dir / "coco_object/coco_stuff164k";
  sample("coco_object", coco_o / "images/val2017/000000000001.jpg",
         coco_o / "annotations/val2017/000000000001_instanceTrainIds.png", "000000000001",
         {0, 0, 1, 1, 80, 80, 255, 0}, {0, 1, 1, 1, 80, 0, 0, 255});

  const fs::path coco_s = out_dir / "coco_stuff171/coco_stuff164k";
  sample("coco_stuff171", coco_s / "images/val2017/000000000001.jpg",
         coco_s / "annotations/val2017/000000000001_labelTrainIds.png", "000000000001",
         {0, 0, 170, 170, 80, 255, 3, 3}, {0, 5, 170, 170, 80, 80, 255, 3});

  const fs::path ade = out_dir / "ade150/ADEChallengeData2016";
  sample("ade150", ade / "images/validation/ADE_val_00000001.jpg", ade / "annotations/validation/ADE_val_00000001.png",
         "ADE_val_00000001", {0, 150, 150, 1, 1, 2, 2, 0}, {5, 149, 149, 0, 1, 1, 255, 149});

  const fs::path folder = out_dir / "folder";
  text(folder / "classes.txt", "cat\ncouch\nremote control\n");
  sample("folder", folder / "images/a.png", folder / "labels/a.png", "a", {0, 1, 2, 255, 0, 1, 2, 255},
         {0, 1, 1, 2, 0, 1, 1, 2});

  // Model runs: 30 images of 40x30 with labels 0..2 and 255 (enough that a run can be killed
  // part-way).
  const fs::path model = out_dir / "model";
  text(model / "classes.txt", "cat\ncouch\nremote control\n");
  for (int i = 0; i < 30; ++i) {
    const std::string stem = "m" + std::to_string(i);
    image(model / "images" / (stem + ".png"), 40, 30, i);
    Values v;
    for (int p = 0; p < 40 * 30; ++p) v.push_back(static_cast<uint8_t>((p / 40 + i) % 7 == 6 ? 255 : (p % 40) / 14));
    label(model / "labels" / (stem + ".png"), v, 40, 30, false);
  }
  return 0;
}
