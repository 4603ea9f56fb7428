// The classes a front end is given and the classes of each image's prompt: parsing a class list
// ("cat, sofa, remote control", or a file with one per line), reading per-image class tags
// (JSON: image stem -> class names or indices), and the prompt classes of one image with the
// label each class gets in the output.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pnpovss::run {

// The classes of one image's prompt, in prompt order, and the label of each in the label map
// (background is 0): their places in the full list (1-based) for own images, the dataset's ids
// in evaluation.
struct PromptClasses {
  std::vector<std::string> names;
  std::vector<int32_t> labels;
};

// Every class of `names`, labelled 1..K.
PromptClasses all_classes(const std::vector<std::string>& names);
// The classes `indices` (0-based into `names`, in prompt order), labelled by their place in the
// full list (index + 1), so that a class has the same label in every image.
PromptClasses chosen_classes(const std::vector<std::string>& names, const std::vector<int>& indices);

// "cat, sofa, remote control" -> names, each trimmed. Throws pnpovss::InvalidArgument for an
// empty entry ("cat,,dog", a trailing comma: almost always a typo) or an empty list.
std::vector<std::string> split_class_list(const std::string& text);
// One name per line, trimmed, blank lines skipped. Throws pnpovss::Error for an unreadable
// file, InvalidArgument for one without names.
std::vector<std::string> read_class_file(const std::string& path);

// Per image stem, the classes to prompt: 0-based indices into the class list, in prompt order.
using ClassTags = std::map<std::string, std::vector<int>>;

// Reads a class-tags file: a JSON object mapping image file stems to lists of class names
// (trimmed, compared without case) or 0-based indices into `classes`. `promptable` lists the
// indices that may be prompted (empty: all); `described` names the class list in messages
// ("the 3 classes", "the 20 prompted classes of voc20"). Throws pnpovss::Error for an
// unreadable file, InvalidArgument for anything else that is wrong, naming the image and entry.
ClassTags read_class_tags(const std::string& path, const std::vector<std::string>& classes,
                          const std::vector<int>& promptable, const std::string& described);

// The prompt classes of the image `stem`: its tags, or `all` (indices) when it has none.
const std::vector<int>& classes_of(const ClassTags& tags, const std::string& stem, const std::vector<int>& all);

}  // namespace pnpovss::run
