// Exact merge of top-k lists (core/search): S partial results for the same Q queries (one per
// gallery shard, or per machine) into one Q x k list. Order: score (descending for ip / cosine,
// ascending for l2), then shard order, then id: the same answer a single search over the shards'
// union gives when shard s holds the rows after those of shards 0..s-1.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace core {

/// One shard's result: Q x k_in row-major ids and scores; counts (Q, optional) says how many
/// entries of each row are valid (the rest are ignored); without counts every entry is valid.
struct TopKPartial {
  const int64_t* ids = nullptr;
  const float* scores = nullptr;
  const int32_t* counts = nullptr;
  int64_t k = 0;
};

struct MergeTopKArgs {
  const TopKPartial* parts = nullptr;
  int64_t nparts = 0;
  int64_t queries = 0;  // Q, shared by every part
  int64_t k = 0;        // >= 1; rows with fewer valid entries overall are padded
  Metric metric = Metric::kInnerProduct;
};

struct MergeTopKOut {
  int64_t* ids = nullptr;     // Q x k; padding: -1
  float* scores = nullptr;    // Q x k; padding: NaN
  int32_t* counts = nullptr;  // Q: valid entries per row
};

/// Errors: kInvalidArg (no parts, counts outside 0..k of their part), kInvalidK (k < 1),
/// kNonFinite (NaN or infinite score among the valid entries, naming part, query and rank).
Status merge_top_k(const MergeTopKArgs& args, const MergeTopKOut& out, const Context& ctx);

}  // namespace core
}  // namespace vlk
