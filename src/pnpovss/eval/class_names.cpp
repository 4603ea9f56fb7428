#include "pnpovss/eval/class_names.h"

namespace pnpovss::eval {

const std::vector<std::string>& voc20_classes() {
  static const std::vector<std::string> names = {
      "aeroplane", "bicycle", "bird",  "boat",      "bottle", "bus",          "car",   "cat",  "chair", "cow",
      "dining table", "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa", "train", "tv monitor"};
  return names;
}

const std::vector<std::string>& context59_classes() {
  static const std::vector<std::string> names = {
      "aeroplane", "bag",       "bed",      "bedclothes", "bench",        "bicycle",  "bird",    "boat",
      "book",      "bottle",    "building", "bus",        "cabinet",      "car",      "cat",     "ceiling",
      "chair",     "cloth",     "computer", "cow",        "cup",          "curtain",  "dog",     "door",
      "fence",     "floor",     "flower",   "food",       "grass",        "ground",   "horse",   "keyboard",
      "light",     "motorbike", "mountain", "mouse",      "person",       "plate",    "platform", "potted plant",
      "road",      "rock",      "sheep",    "shelves",    "sidewalk",     "sign",     "sky",     "snow",
      "sofa",      "table",     "track",    "train",      "tree",         "truck",    "tv monitor", "wall",
      "water",     "window",    "wood"};
  return names;
}

const std::vector<std::string>& ade150_classes() {
  static const std::vector<std::string> names = {
      "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
      "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
      "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
      "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
      "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
      "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
      "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
      "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
      "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
      "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
      "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
      "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
      "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
      "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
      "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
      "clock", "flag"};
  return names;
}

const std::vector<std::string>& coco_thing_classes() {
  static const std::vector<std::string> names = {
      "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
      "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
      "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
      "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
      "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
      "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
      "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
      "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
      "teddy bear", "hair drier", "toothbrush"};
  return names;
}

namespace {

const std::vector<std::string>& coco_stuff_only_classes() {
  static const std::vector<std::string> names = {
      "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard",
      "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain",
      "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile",
      "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel",
      "ground-other", "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain",
      "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic", "platform",
      "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad", "sand", "sea",
      "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw",
      "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable", "wall-brick",
      "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
      "waterdrops", "window-blind", "window-other", "wood"};
  return names;
}

// COCO's thing category ids skip 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83.
const std::vector<int>& coco_thing_category_ids() {
  static const std::vector<int> ids = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17,
                                       18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36,
                                       37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
                                       54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73,
                                       74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};
  return ids;
}

}  // namespace

const std::vector<std::string>& coco_stuff171_classes() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all = coco_thing_classes();
    const auto& stuff = coco_stuff_only_classes();
    all.insert(all.end(), stuff.begin(), stuff.end());
    return all;
  }();
  return names;
}

const std::vector<int>& coco_stuff171_category_ids() {
  // Stuff ids are contiguous: 92 (banner) .. 182 (wood).
  static const std::vector<int> ids = [] {
    std::vector<int> all = coco_thing_category_ids();
    for (int id = 92; id <= 182; ++id) all.push_back(id);
    return all;
  }();
  return ids;
}

}  // namespace pnpovss::eval
