// The class-name lists of the benchmark datasets, in the order of their label files after
// MMSegmentation's preparation (the evaluation order). Names are the natural ones the prompt
// uses under the `paper` preset; the `official` preset fuses them (spaces and hyphens removed),
// which gives the released script's spellings ("pottedplant", "tvmonitor", "chestofdrawers").
// Renames from MMSegmentation's lists: VOC and Context "diningtable", "pottedplant",
// "tvmonitor" become "dining table", "potted plant", "tv monitor"; ADE's "bed " loses its
// trailing space.
#pragma once

#include <string>
#include <vector>

namespace pnpovss::eval {

// PASCAL VOC 2012: the 20 object classes (labels 1..20; 0 background, 255 void).
const std::vector<std::string>& voc20_classes();
// PASCAL Context, 59 classes (labels 1..59; 0 background).
const std::vector<std::string>& context59_classes();
// ADE20K SceneParsing, 150 classes (labels 1..150; 0 "other").
const std::vector<std::string>& ade150_classes();
// COCO's 80 thing classes, in category-id order.
const std::vector<std::string>& coco_thing_classes();
// COCO-Stuff 164k: the 80 things then the 91 stuff classes (train ids 0..170).
const std::vector<std::string>& coco_stuff171_classes();
// The COCO category id (1..182) of each of the 171 COCO-Stuff classes; the first 80 are the
// things' ids.
const std::vector<int>& coco_stuff171_category_ids();

}  // namespace pnpovss::eval
