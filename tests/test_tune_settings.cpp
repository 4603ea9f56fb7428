// Settings files (segment/settings_json.h) and tuning lists (tune/tune_input.h): what tune
// writes reads back exactly, and every kind of mistake is a one-line error naming the field.
#include <gtest/gtest.h>

#include <string>

#include "pnpovss/error.h"
#include "pnpovss/settings.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/tune/tune_input.h"

using namespace pnpovss;

using json = nlohmann::json;

namespace {

std::string error_of(const json& doc) {
  try {
    settings_from_json(doc, "test.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SettingsJson, RoundTripsEveryFieldOfBothPresets) {
  for (const char* name : {"paper", "official"}) {
    MethodSettings s = preset(name, "blip");
    s.input_size = 768;
    s.attention_layer = 2;
    s.attention_head = 11;
    s.mask_threshold = 0.35;
    s.post_blur = 0.09;
    s.dropout_iterations = 3;
    s.background_mode = BackgroundMode::Never;
    s.post_mode = Postprocess::Blur;
    s.post_crf.iterations = 5;
    s.post_crf.bilateral_srgb = 13.0f;
    s.prompt_first_token = FirstToken::Cls;
    // The other arithmetic than the preset's, so that reading it back is what sets it.
    s.post_arithmetic = s.post_arithmetic == PostArithmetic::Fast ? PostArithmetic::Exact : PostArithmetic::Fast;
    apply_dataset_rule(s, DatasetRule::CocoStuff);
    const json written = to_json(s);
    const MethodSettings back = settings_from_json(written, "test.json");
    // Every field: to_json of the result equals what was written.
    EXPECT_EQ(to_json(back), written) << name;
    EXPECT_EQ(back.attention_layer, 2);
    EXPECT_EQ(back.attention_head, 11);
    EXPECT_EQ(back.describe(), s.describe());
  }
}

TEST(SettingsJson, AbsentFieldsKeepThePresetAndWrappersAreRead) {
  const MethodSettings s = settings_from_json({{"preset", "official"}, {"mask_threshold", 0.25}}, "t");
  MethodSettings want = preset("official", "blip");
  want.mask_threshold = 0.25;
  EXPECT_EQ(to_json(s), to_json(want));
  EXPECT_EQ(to_json(settings_from_json(json::object(), "t")), to_json(preset("paper", "blip")));
  // tune.json holds the settings under "best_settings"; segment's records under "settings".
  const json tuned = {{"run", {{"model", "x"}}}, {"best_settings", {{"attention_layer_1based", 3}}}};
  EXPECT_EQ(settings_from_json(tuned, "t").attention_layer, 2);
  const json record = {{"image", "a.png"}, {"settings", {{"attention_head_1based", 4}}}};
  EXPECT_EQ(settings_from_json(record, "t").attention_head, 3);
}

TEST(SettingsJson, RejectsEveryKindOfMistakeNamingTheField) {
  const auto has = [](const std::string& message, const std::string& part) {
    return message.find(part) != std::string::npos;
  };
  EXPECT_TRUE(has(error_of({{"mask_treshold", 0.2}}), "unknown field 'mask_treshold'"));
  EXPECT_TRUE(has(error_of({{"mask_threshold", "0.2"}}), "'mask_threshold' must be a number"));
  EXPECT_TRUE(has(error_of({{"mask_threshold", 1.5}}), "'mask_threshold' is 1.5, outside [0, 1]"));
  EXPECT_TRUE(has(error_of({{"post_blur", -0.1}}), "'post_blur'"));
  EXPECT_TRUE(has(error_of({{"attention_layer_1based", 0}}), "'attention_layer_1based' is 0"));
  EXPECT_TRUE(has(error_of({{"attention_head_1based", 2.5}}), "must be an integer"));
  EXPECT_TRUE(has(error_of({{"input_size", -4}}), "'input_size'"));
  EXPECT_TRUE(has(error_of({{"dropout_iterations", 0}}), "'dropout_iterations'"));
  EXPECT_TRUE(has(error_of({{"post_mode", "sharpen"}}), "'post_mode' is invalid"));
  EXPECT_TRUE(has(error_of({{"post_arithmetic", "precise"}}), "'post_arithmetic' is invalid"));
  EXPECT_TRUE(has(error_of({{"dropout_rule", 3}}), "'dropout_rule' must be a string"));
  EXPECT_TRUE(has(error_of({{"maps_last_class_sum", 1}}), "must be true or false"));
  EXPECT_TRUE(has(error_of({{"post_crf", {{"iterations", 0}}}}), "'post_crf.iterations'"));
  EXPECT_TRUE(has(error_of({{"post_crf", {{"sxy", 3}}}}), "'post_crf.sxy' is not a CRF parameter"));
  EXPECT_TRUE(has(error_of({{"post_crf", 3}}), "'post_crf' must be an object"));
  EXPECT_TRUE(has(error_of({{"preset", "fancy"}}), "unknown preset 'fancy'"));
  EXPECT_TRUE(has(error_of({{"attention_layer_1based", nullptr}}), "must be an integer"));
  EXPECT_TRUE(has(error_of({{"input_size", 18446744073709551615ull}}), "'input_size'"));
  EXPECT_TRUE(has(error_of(json::array()), "expected a JSON object"));
  EXPECT_TRUE(has(error_of({{"best_settings", 3}}), "'best_settings' must be an object"));
  EXPECT_TRUE(has(error_of({{"mask_threshold", 1.5}}), "test.json"));
  EXPECT_THROW(read_settings_file("/nonexistent/settings.json"), Error);
}

TEST(TuneList, ParsesPathsAndClassNames) {
  const auto images = tune::parse_tune_list(
      "# image<TAB>classes\n\na.png\tcat, dog\n  \nsub/b.jpg\t potted plant ,sky\r\n/abs/c.png\tcat\n", "/data",
      "list");
  ASSERT_EQ(images.size(), 3u);
  EXPECT_EQ(images[0].path, "/data/a.png");
  EXPECT_EQ(images[0].classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(images[1].path, "/data/sub/b.jpg");
  EXPECT_EQ(images[1].classes, (std::vector<std::string>{"potted plant", "sky"}));
  EXPECT_EQ(images[2].path, "/abs/c.png");
  EXPECT_EQ(tune::parse_tune_list("a.png\tcat\n", "", "list")[0].path, "a.png");
}

TEST(TuneList, RejectsMalformedLinesNamingTheLine) {
  const auto message = [](const std::string& text) {
    try {
      tune::parse_tune_list(text, "", "list");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("a.png\tcat\nb.png cat\n").find("list line 2: expected"), std::string::npos);
  EXPECT_NE(message("a.png\tcat,,dog\n").find("empty class name"), std::string::npos);
  EXPECT_NE(message("a.png\t\n").find("empty class name"), std::string::npos);
  EXPECT_NE(message("a.png\tcat, Cat\n").find("listed twice"), std::string::npos);
  EXPECT_NE(message("\tcat\n").find("image path is empty"), std::string::npos);
  EXPECT_NE(message("# only a comment\n\n").find("lists no images"), std::string::npos);
  EXPECT_THROW(tune::read_tune_list("/nonexistent/list.tsv"), Error);
}
