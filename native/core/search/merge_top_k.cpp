// Exact merge of top-k lists (core/search). See merge_top_k.hpp. Per query: gather the valid
// entries of every part, partial-sort by (score, part, id), write the first k. Queries are split
// across the pool; each writes only its own rows.
#include "search/merge_top_k.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <vector>

namespace vlk {
namespace core {

namespace {

struct Entry {
  float score;
  int32_t part;
  int64_t id;
};

}  // namespace

Status merge_top_k(const MergeTopKArgs& a, const MergeTopKOut& out, const Context& ctx) {
  if (a.nparts < 1 || a.parts == nullptr) return Status(Code::kInvalidArg, "partials: none given");
  if (a.k < 1) return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is not >= 1");
  if (a.queries < 0) return Status(Code::kShape, "queries: negative count");
  for (int64_t p = 0; p < a.nparts; ++p) {
    const TopKPartial& t = a.parts[p];
    if (t.k < 0) return Status(Code::kShape, "partials[" + std::to_string(p) + "]: negative k");
    for (int64_t q = 0; t.counts != nullptr && q < a.queries; ++q) {
      if (t.counts[q] < 0 || t.counts[q] > t.k) {
        return Status(Code::kInvalidArg, "partials[" + std::to_string(p) + "].counts[" +
                                             std::to_string(q) + "] = " +
                                             std::to_string(t.counts[q]) + " is outside 0.." +
                                             std::to_string(t.k));
      }
    }
    for (int64_t q = 0; q < a.queries; ++q) {
      const int64_t valid = t.counts != nullptr ? t.counts[q] : t.k;
      for (int64_t j = 0; j < valid; ++j) {
        const float s = t.scores[q * t.k + j];
        if (!std::isfinite(s)) {
          return Status(Code::kNonFinite, "partials[" + std::to_string(p) + "]: query " +
                                              std::to_string(q) + ", rank " + std::to_string(j) +
                                              " has score " + (std::isnan(s) ? "NaN" : "Infinity") +
                                              " (valid entries must be finite)");
        }
      }
    }
  }
  const bool ascending = a.metric == Metric::kL2;
  auto before = [ascending](const Entry& x, const Entry& y) {
    if (x.score != y.score) return ascending ? x.score < y.score : x.score > y.score;
    if (x.part != y.part) return x.part < y.part;
    return x.id < y.id;
  };
  std::atomic<bool> oom{false};
  auto rows = [&](int64_t lo, int64_t hi) {
    try {
      std::vector<Entry> all;
      for (int64_t q = lo; q < hi; ++q) {
        all.clear();
        for (int64_t p = 0; p < a.nparts; ++p) {
          const TopKPartial& t = a.parts[p];
          const int64_t valid = t.counts != nullptr ? t.counts[q] : t.k;
          for (int64_t j = 0; j < valid; ++j) {
            all.push_back(Entry{t.scores[q * t.k + j] + 0.0f, static_cast<int32_t>(p), t.ids[q * t.k + j]});
          }
        }
        const int64_t have = std::min<int64_t>(a.k, static_cast<int64_t>(all.size()));
        std::partial_sort(all.begin(), all.begin() + have, all.end(), before);
        for (int64_t j = 0; j < a.k; ++j) {
          out.ids[q * a.k + j] = j < have ? all[static_cast<size_t>(j)].id : -1;
          out.scores[q * a.k + j] =
              j < have ? all[static_cast<size_t>(j)].score : std::numeric_limits<float>::quiet_NaN();
        }
        if (out.counts != nullptr) out.counts[q] = static_cast<int32_t>(have);
      }
    } catch (const std::bad_alloc&) {
      oom.store(true);
    }
  };
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(a.queries, 4 * int64_t(ctx.threads)));
  if (ctx.pool != nullptr && ctx.threads > 1 && blocks > 1) {
    ctx.pool->parallel_for(blocks, ctx.threads, [&](int64_t b) {
      rows(a.queries * b / blocks, a.queries * (b + 1) / blocks);
    });
  } else {
    rows(0, a.queries);
  }
  if (oom.load()) return Status(Code::kOutOfMemory, "merge_top_k: out of memory");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
