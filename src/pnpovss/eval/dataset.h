// The evaluation datasets, read in place from the trees MMSegmentation's preparation scripts
// leave under a data root, and what their label values mean under the two scoring protocols
// (docs/method.md §7).
//
//   voc20          VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets/Segmentation/val.txt}
//   context59      VOCdevkit/VOC2010/{JPEGImages, SegmentationClassContext,
//                  ImageSets/SegmentationContext/val.txt}
//   coco_object    coco_stuff164k/{images/val2017, annotations/val2017/<stem>_instanceTrainIds.png}
//   coco_stuff171  coco_stuff164k/{images/val2017, annotations/val2017/<stem>_labelTrainIds.png}
//   ade150         ADEChallengeData2016/{images/validation, annotations/validation}
//   folder         images/ (jpg, jpeg, png, bmp), labels/<stem>.png, classes.txt (one name per
//                  line, in label order; a class named "background" stands for the method's
//                  background and is not prompted)
//
// Evaluation order (the values of prediction PNGs, 0..C-1): VOC 20, Context 59 and ADE 150
// classes (label 0 dropped, the rest shifted down); COCO-Stuff's 171 train ids as they are;
// COCO-Object's 81 labels as they are (0 background, 1..80 the things in category-id order).
//
// COCO-Object's `_instanceTrainIds.png` files are those of GroupViT's convert_coco_object.py,
// which the training-free peers use: from COCO-Stuff's raw maps (category id - 1, 255
// unlabeled) a thing with category id c becomes 1 + its place among the 80 things, and every
// stuff class and the unlabeled value become 0 (background). So 0 background, 1..80 things.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pnpovss/settings.h"

namespace pnpovss::eval {

enum class Protocol { Mmseg, PnpOvss };
Protocol parse_protocol(const std::string& name);  // mmseg | pnp-ovss
std::string to_string(Protocol p);

struct Sample {
  std::string stem;   // the key of per-image results and of prediction files (<stem>.png)
  std::string image;  // path of the image
  std::string label;  // path of the label PNG
};

// A scored-class value of a pixel, or one of these.
constexpr int32_t kIgnore = -1;   // not scored
constexpr int32_t kInvalid = -2;  // a ground-truth value that the dataset does not define

// What the values mean under one protocol. Scored classes are 0..n-1.
struct Scoring {
  Protocol protocol = Protocol::Mmseg;
  std::vector<std::string> names;   // n scored classes; "" for ids no class uses
  std::vector<int32_t> gt_table;    // raw ground-truth value -> scored class | kIgnore | kInvalid
  std::vector<int32_t> pred_table;  // evaluation class (0..C-1) -> scored class
  int32_t pred_none = kIgnore;      // a prediction of no class (or the method's background)
  // mmseg: mIoU and mAcc over classes with a non-zero union (label area for mAcc);
  // pnp-ovss: over classes with ground-truth pixels.
  bool mean_over_present_labels = false;

  int num_classes() const { return static_cast<int>(names.size()); }
  int32_t gt(int32_t raw) const {
    return raw >= 0 && static_cast<size_t>(raw) < gt_table.size() ? gt_table[static_cast<size_t>(raw)] : kInvalid;
  }
  int32_t pred(int32_t eval_class) const {
    return eval_class >= 0 && static_cast<size_t>(eval_class) < pred_table.size()
               ? pred_table[static_cast<size_t>(eval_class)]
               : pred_none;
  }
};

struct Dataset {
  std::string name;  // voc20 | context59 | coco_object | coco_stuff171 | ade150 | folder
  std::string root;  // the data root as given
  DatasetRule rule = DatasetRule::UserImages;
  std::vector<std::string> classes;  // evaluation order, natural names
  int background_class = -1;         // the evaluation class of the method's background; -1: none
  // Per evaluation class, the label the released code gives it (VOC/Context/ADE: index + 1;
  // COCO: category id; folder: index + 1); its background is 0. Used for the labels of the
  // `official` in-place remap, which depends on the label values.
  std::vector<int32_t> native_ids;
  std::vector<Sample> samples;

  int num_classes() const { return static_cast<int>(classes.size()); }
  // The evaluation classes put in the prompt: all but the background class.
  std::vector<int> prompt_classes() const;
  // Per evaluation class, its label in `pnp-ovss segment --classes <the prompted classes>`: 0 for
  // the background class, 1.. for the others in prompt order. Pictures and prediction PNGs
  // colour a class by it, so that a class looks the same in segment's overlays and eval's pictures.
  std::vector<int32_t> segment_labels() const;
  // Throws pnpovss::Error when the dataset has no definition under `protocol`.
  Scoring scoring(Protocol protocol) const;
  // Native label (as in native_ids, background 0) -> evaluation class, or -1 for none.
  int32_t eval_class_of_native(int32_t native) const;
};

// The names accepted by open_dataset.
const std::vector<std::string>& dataset_names();

// Lists the samples of `name` under `data_root`. Throws pnpovss::Error naming the missing
// folder or file (data root, image or label folder, split file, class file) or an empty split.
// A single missing image or label file is not an error here: it fails as that image.
Dataset open_dataset(const std::string& name, const std::string& data_root);

// The dataset rule of MethodSettings for a dataset name.
DatasetRule dataset_rule(const std::string& name);

}  // namespace pnpovss::eval
