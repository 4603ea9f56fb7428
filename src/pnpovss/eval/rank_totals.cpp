// sum_over_ranks and failures_of_all_ranks (distributed.h), for MPI runs and single processes.
#include <algorithm>

#include "pnpovss/eval/distributed.h"

namespace pnpovss::eval {

LoopResult sum_over_ranks(const World& world, const LoopResult& loop) {
  std::vector<int64_t> sums = loop.totals.intersect;
  sums.insert(sums.end(), loop.totals.pred.begin(), loop.totals.pred.end());
  sums.insert(sums.end(), loop.totals.label.begin(), loop.totals.label.end());
  sums.push_back(loop.computed);
  sums.push_back(loop.resumed);
  world.sum_to_root(sums);
  world.barrier();
  if (world.rank() != 0) return loop;
  const size_t n = loop.totals.label.size();
  LoopResult all = loop;
  std::copy_n(sums.begin(), n, all.totals.intersect.begin());
  std::copy_n(sums.begin() + static_cast<long>(n), n, all.totals.pred.begin());
  std::copy_n(sums.begin() + static_cast<long>(2 * n), n, all.totals.label.begin());
  all.computed = sums[3 * n];
  all.resumed = sums[3 * n + 1];
  return all;
}

std::vector<Failure> failures_of_all_ranks(const World& world, const RunDir& run, const std::vector<Sample>& selected,
                                           int num_classes, const std::vector<Failure>& own) {
  if (!world.distributed()) return own;
  std::vector<Failure> failures;
  for (const auto& s : selected) {
    if (run.read_record(s.stem, num_classes)) continue;
    std::string message = "failed (see the log of its rank)";
    for (const auto& f : own)
      if (f.stem == s.stem) message = f.message;
    failures.push_back({s.stem, message});
  }
  return failures;
}

}  // namespace pnpovss::eval
