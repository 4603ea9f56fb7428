// The server's pieces in-process, without HTTP: reading a segment request in both of its forms,
// a request's settings on top of the server's, the metrics page, noticing a client that left,
// and the scheduler (groups by settings, same labels as the runner, abandoned jobs leave the queue at once).
// The API over real connections, load and faults are tests/serve/*.py.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pnpovss/error.h"
#include "pnpovss/image/codec.h"
#include "pnpovss/io/mapped_file.h"
#include "pnpovss/run/runner.h"
#include "pnpovss/serve/http_error.h"
#include "pnpovss/serve/metrics.h"
#include "pnpovss/serve/peer.h"
#include "pnpovss/serve/request_settings.h"
#include "pnpovss/serve/scheduler.h"
#include "pnpovss/serve/segment_request.h"
#include "pnpovss/settings/settings_json.h"
#include "pnpovss/util/base64.h"

namespace pnpovss::serve {
namespace {

using nlohmann::json;

const std::string kData = PNPOVSS_TEST_DATA;
const std::string kModel = kData + "/blip_itm";
const std::string kPhoto = kData + "/images/coco_000000039769.png";

const segment::Segmenter& tiny_model() {
  static const segment::Segmenter model = segment::Segmenter::load(kModel);
  return model;
}

// The tiny model's settings (size 64, layer 2, head 3) with blur only, a fraction of a second an image.
const MethodSettings& tiny_settings() {
  static const MethodSettings settings = [] {
    SettingChoices c;
    c.size = 64;
    c.layer = 2;
    c.head = 3;
    c.postprocess = "blur";
    return resolve_settings(c, "blip");
  }();
  return settings;
}

// The status an expression throws as HttpError (0 when it throws nothing, -1 for another type).
template <typename F>
int status_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const HttpError& e) {
    if (message) *message = e.what();
    return e.status();
  } catch (...) {
    return -1;
  }
  return 0;
}

// ---- reading a request -----------------------------------------------------------------------

httplib::Request multipart_request(const std::vector<std::pair<std::string, std::string>>& fields) {
  httplib::Request req;
  req.method = "POST";
  req.headers.emplace("Content-Type", "multipart/form-data; boundary=x");
  for (const auto& [name, content] : fields)
    req.files.emplace(name, httplib::MultipartFormData{name, content, name == "image" ? "cats.png" : "", ""});
  return req;
}

httplib::Request json_request(const std::string& body) {
  httplib::Request req;
  req.method = "POST";
  req.headers.emplace("Content-Type", "application/json; charset=utf-8");
  req.body = body;
  return req;
}

TEST(SegmentRequest, ReadsTheMultipartForm) {
  const SegmentRequest r = parse_segment_request(multipart_request(
      {{"image", "PNGBYTES"}, {"classes", " cat , remote control"}, {"settings", "{\"mask_threshold\": 0.3}"}, {"maps", "true"}}));
  EXPECT_EQ(std::string(r.image.begin(), r.image.end()), "PNGBYTES");
  EXPECT_EQ(r.image_name, "cats.png");
  EXPECT_EQ(r.classes, (std::vector<std::string>{"cat", "remote control"}));
  EXPECT_EQ(r.settings, json({{"mask_threshold", 0.3}}));
  EXPECT_TRUE(r.maps);
  EXPECT_FALSE(r.png_only);
}

TEST(SegmentRequest, ReadsTheJsonForm) {
  const SegmentRequest r = parse_segment_request(
      json_request(json({{"image", util::base64_encode({1, 2, 3, 250})}, {"classes", {"cat", "sofa"}}, {"maps", true}}).dump()));
  EXPECT_EQ(r.image, (std::vector<uint8_t>{1, 2, 3, 250}));
  EXPECT_EQ(r.image_name, "upload");
  EXPECT_EQ(r.classes, (std::vector<std::string>{"cat", "sofa"}));
  EXPECT_TRUE(r.maps);
  // classes as one comma-separated string, and a JSON array given as a form field
  EXPECT_EQ(parse_segment_request(json_request(R"({"image": "AAAA", "classes": "cat, dog"})")).classes.size(), 2u);
  EXPECT_EQ(parse_segment_request(multipart_request({{"image", "x"}, {"classes", "[\"a, b\", \"c\"]"}})).classes,
            (std::vector<std::string>{"a, b", "c"}));
}

TEST(SegmentRequest, AcceptImagePngAsksForTheLabelPngAlone) {
  httplib::Request req = multipart_request({{"image", "x"}, {"classes", "cat"}});
  req.headers.emplace("Accept", "image/png");
  EXPECT_TRUE(parse_segment_request(req).png_only);
}

TEST(SegmentRequest, MalformedRequestsAre400AndBadClassLists422) {
  std::string message;
  EXPECT_EQ(status_of([] { parse_segment_request(multipart_request({{"classes", "cat"}})); }, &message), 400);
  EXPECT_NE(message.find("'image'"), std::string::npos) << message;
  EXPECT_EQ(status_of([] { parse_segment_request(multipart_request({{"image", "x"}})); }, &message), 400);
  EXPECT_NE(message.find("no classes"), std::string::npos) << message;
  EXPECT_EQ(status_of([] { parse_segment_request(json_request("{\"image\": ")); }), 400);
  EXPECT_EQ(status_of([] { parse_segment_request(json_request(R"({"image": "!!", "classes": "cat"})")); }, &message), 400);
  EXPECT_NE(message.find("base64"), std::string::npos) << message;
  EXPECT_EQ(status_of([] { parse_segment_request(multipart_request({{"image", "x"}, {"classes", "cat"}, {"settings", "{"}})); }), 400);
  EXPECT_EQ(status_of([] { parse_segment_request(multipart_request({{"image", "x"}, {"classes", "cat"}, {"maps", "perhaps"}})); }), 400);
  httplib::Request plain;
  plain.headers.emplace("Content-Type", "text/plain");
  EXPECT_EQ(status_of([&] { parse_segment_request(plain); }), 400);

  EXPECT_EQ(status_of([] { parse_segment_request(multipart_request({{"image", "x"}, {"classes", "cat,,dog"}})); }), 422);
  EXPECT_EQ(status_of([] { parse_segment_request(json_request(R"({"image": "AAAA", "classes": []})")); }), 422);
  EXPECT_EQ(status_of([] { parse_segment_request(json_request(R"({"image": "AAAA", "classes": ["cat", 3]})")); }), 422);
}

// ---- a request's settings --------------------------------------------------------------------

TEST(RequestSettings, OverridesTakeTheRecordsNamesOnTopOfTheServersSettings) {
  const MethodSettings s = request_settings(json({{"attention_head_1based", 4}, {"post_mode", "blur+crf"}}),
                                            tiny_settings(), tiny_model());
  json expected = to_json(tiny_settings());
  expected["attention_head_1based"] = 4;
  expected["post_mode"] = "blur+crf";
  EXPECT_EQ(to_json(s), expected);
  EXPECT_EQ(to_json(request_settings(json::object(), tiny_settings(), tiny_model())), to_json(tiny_settings()));
  // A partial Dense CRF block keeps the other parameters.
  const MethodSettings crf = request_settings(json({{"post_crf", {{"iterations", 3}}}}), tiny_settings(), tiny_model());
  EXPECT_EQ(crf.post_crf.iterations, 3);
  EXPECT_EQ(to_json(crf)["post_crf"]["gaussian_sxy"], to_json(tiny_settings())["post_crf"]["gaussian_sxy"]);
}

TEST(RequestSettings, WhereTheCrfComputesStaysTheServers) {
  MethodSettings server = tiny_settings();
  server.post_crf.device = "cuda:1";
  server.post_crf.threads = 3;
  for (const json& overrides : {json({{"post_crf", {{"iterations", 3}}}}), json({{"preset", "official"}, {"input_size", 64},
                                 {"attention_layer_1based", 2}, {"attention_head_1based", 3},
                                 {"input_position_resize", "size"}})}) {
    const MethodSettings s = request_settings(overrides, server, tiny_model());
    EXPECT_EQ(s.post_crf.device, "cuda:1") << overrides.dump();
    EXPECT_EQ(s.post_crf.threads, 3) << overrides.dump();
  }
}

TEST(RequestSettings, APresetStartsFromThatPreset) {
  const MethodSettings s = request_settings(json({{"preset", "official"}, {"input_size", 64}, {"attention_layer_1based", 2},
                                                  {"attention_head_1based", 3}, {"input_position_resize", "size"}}),
                                            tiny_settings(), tiny_model());
  EXPECT_EQ(s.preset, "official");
  EXPECT_EQ(s.dropout_rule, preset("official", "blip").dropout_rule);
}

TEST(RequestSettings, BadValuesAre422NamingTheSetting) {
  const auto status = [](const json& overrides, std::string* message) {
    return status_of([&] { request_settings(overrides, tiny_settings(), tiny_model()); }, message);
  };
  std::string message;
  EXPECT_EQ(status(json({{"attention_layer_1based", 99}}), &message), 422);
  EXPECT_NE(message.find("layer"), std::string::npos) << message;
  EXPECT_EQ(status(json({{"mask_treshold", 0.2}}), &message), 422);
  EXPECT_NE(message.find("mask_treshold"), std::string::npos) << message;
  EXPECT_EQ(status(json({{"mask_threshold", "high"}}), &message), 422);
  EXPECT_NE(message.find("mask_threshold"), std::string::npos) << message;
  EXPECT_EQ(status(json({{"backbone", "bridgetower"}}), &message), 422);
  EXPECT_NE(message.find("backbone"), std::string::npos) << message;
  EXPECT_EQ(status(json({{"input_position_resize", "hf"}}), &message), 422);
  EXPECT_NE(message.find("input_position_resize"), std::string::npos) << message;
  EXPECT_EQ(status(json({{"preset", "fastest"}}), &message), 422);
  EXPECT_EQ(status(json::array({1}), &message), 422);
}

// ---- metrics ---------------------------------------------------------------------------------

TEST(Metrics, RendersCountersAndACumulativeHistogram) {
  Metrics m;
  m.count_request("/v1/segment", 200);
  m.count_request("/v1/segment", 200);
  m.count_request("/v1/segment", 503);
  m.observe_latency(0.07);
  m.observe_latency(2.0);
  m.observe_latency(1000.0);
  m.count_image(false);
  m.count_image(true);
  const std::string text = m.render({3, 16, 2});
  for (const char* line : {"pnpovss_requests_total{path=\"/v1/segment\",status=\"200\"} 2\n",
                           "pnpovss_requests_total{path=\"/v1/segment\",status=\"503\"} 1\n",
                           "pnpovss_request_duration_seconds_bucket{le=\"0.05\"} 0\n",
                           "pnpovss_request_duration_seconds_bucket{le=\"0.1\"} 1\n",
                           "pnpovss_request_duration_seconds_bucket{le=\"2.5\"} 2\n",
                           "pnpovss_request_duration_seconds_bucket{le=\"300\"} 2\n",
                           "pnpovss_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
                           "pnpovss_request_duration_seconds_count 3\n", "pnpovss_queue_depth 3\n",
                           "pnpovss_queue_capacity 16\n", "pnpovss_images_in_flight 2\n",
                           "pnpovss_images_segmented_total 1\n", "pnpovss_segment_failures_total 1\n",
                           "# TYPE pnpovss_request_duration_seconds histogram\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << " not in\n" << text;
  EXPECT_NEAR(m.mean_latency(), (0.07 + 2.0 + 1000.0) / 3, 1e-9);
  EXPECT_GT(resident_memory_bytes(), 0u);
}

// ---- a client that left ----------------------------------------------------------------------

TEST(PeerWatch, NoticesWhenTheClientClosesItsEnd) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const int server_side = accept(listener, nullptr, nullptr);
  ASSERT_GE(server_side, 0);
  sockaddr_in client_addr{};
  len = sizeof client_addr;
  getsockname(client, reinterpret_cast<sockaddr*>(&client_addr), &len);

  const PeerWatch watch("127.0.0.1", ntohs(client_addr.sin_port));
  EXPECT_FALSE(watch.gone());
  ASSERT_EQ(write(client, "GET", 3), 3);  // unread bytes: still there
  EXPECT_FALSE(watch.gone());
  close(client);
  EXPECT_TRUE(watch.gone());
  EXPECT_FALSE(PeerWatch("127.0.0.1", 1).gone());  // no such peer: blind, never "gone"
  close(server_side);
  close(listener);
}

// ---- the scheduler ---------------------------------------------------------------------------

std::shared_ptr<Job> photo_job(const MethodSettings& settings, const std::vector<std::string>& classes) {
  auto job = std::make_shared<Job>();
  job->image = image::decode_image_file(kPhoto);
  job->item.path = "photo";
  job->item.classes = run::all_classes(classes);
  job->settings = settings;
  job->settings_key = to_json(settings).dump();
  return job;
}

TEST(Scheduler, GivesTheRunnersLabelsAndKeepsEachJobsSettings) {
  MethodSettings other = tiny_settings();
  other.attention_head = 0;
  const std::vector<std::string> classes = {"cat", "couch", "remote control"};
  Scheduler scheduler(tiny_model(), {segment::BatchSize{1, false}, 2}, 8);
  std::vector<std::shared_ptr<Job>> jobs = {photo_job(tiny_settings(), classes), photo_job(other, classes),
                                            photo_job(tiny_settings(), {"cat", "couch"})};
  std::vector<std::future<run::Outcome>> done;
  for (auto& job : jobs) {
    done.push_back(job->done.get_future());
    ASSERT_EQ(scheduler.submit(job), Scheduler::Admission::Queued);
  }
  std::vector<run::Outcome> outcomes;
  for (auto& d : done) outcomes.push_back(d.get());

  const Image photo = image::decode_image_file(kPhoto);
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_TRUE(outcomes[i].ok()) << outcomes[i].problem;
    run::Runner runner(tiny_model(), jobs[i]->settings);
    run::Item item;
    item.image = &photo;
    item.classes = jobs[i]->item.classes;
    const std::vector<run::Outcome> alone = runner.run_all({item});
    EXPECT_EQ(outcomes[i].labels, alone.front().labels) << "job " << i;
    EXPECT_EQ(outcomes[i].image.width, photo.width);
  }
  EXPECT_NE(outcomes[0].labels, outcomes[1].labels);  // another head: other maps
  scheduler.stop();
  EXPECT_EQ(scheduler.submit(photo_job(tiny_settings(), classes)), Scheduler::Admission::Stopping);
}

TEST(Scheduler, AnAbandonedJobLeavesTheQueueAtOnceAndFailuresComeInTheOutcome) {
  Scheduler scheduler(tiny_model(), {segment::BatchSize{1, false}, 2}, 8);
  auto abandoned = photo_job(tiny_settings(), {"cat"});
  auto broken = photo_job(tiny_settings(), {"cat"});
  broken->image = Image{};  // no pixels: the model cannot run it
  std::future<run::Outcome> abandoned_done = abandoned->done.get_future();
  std::future<run::Outcome> broken_done = broken->done.get_future();
  {
    // Another request on its way: the dispatcher gathers (up to Scheduler::kGatherWait) instead
    // of starting a group of one, so the job is still queued when its client leaves.
    const Scheduler::Arrival arriving(scheduler);
    ASSERT_EQ(scheduler.submit(abandoned), Scheduler::Admission::Queued);
    scheduler.abandon(abandoned);
    EXPECT_EQ(scheduler.depth(), 0u);  // its place is free at once
    ASSERT_EQ(scheduler.submit(broken), Scheduler::Admission::Queued);
  }
  const run::Outcome outcome = broken_done.get();
  EXPECT_FALSE(outcome.ok());
  abandoned.reset();  // the queue let go of it: its promise is gone unkept
  EXPECT_EQ(abandoned_done.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_THROW(abandoned_done.get(), std::future_error);
}

}  // namespace
}  // namespace pnpovss::serve
