// Multi-query fusion search (core/search, seed 000): Q queries given as R rewrites each (Q*R x D,
// query-major) against a gallery N x D; the R rewrites' evidence is fused per query and the exact
// top-k of the fused score is returned (Q x k, best first, ties by lower gallery index).
// Also the blocked score-fusion engine shared with prior_search (fused score per item, streamed).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace core {

/// How the R rewrites of a query are fused (w_i: the rewrite weights, default 1):
///  kEmbedding: one query per group, u = sum_i w_i E_i (float64, i ascending), q = u / |u| rounded
///              to fp32 (a zero sum stays zero), then the exact search (core::search) with the metric;
///  kMean:      f(x) = fp32((sum_i w_i s_i(x)) / (sum_i w_i)), products and sums in float64,
///              i ascending (s_i: the fp32 scores below);
///  kMax:       f(x) = max_i fp32(w_i s_i(x));
///  kRrf:       f(x) = fp32(sum_i w_i / (c + rank_i(x))), float64, i ascending, over the rewrites
///              whose top-`depth` list (core::search, ties by lower index) holds x; rank_i is
///              1-based; an item in no list scores 0 (and such items fill the top k by index).
/// Scores s_i of kMean / kMax (metric ip or cosine only): the fp32 dot product of core::gemm
/// (fma over d ascending in 256-deep slices added in order), cosine = (dot * (1/|q|)) * (1/|g|)
/// in fp32 with |.| from an fma chain (a zero vector has similarity 0). Weights >= 0.
enum class Fusion { kEmbedding = 0, kMean = 1, kMax = 2, kRrf = 3 };

/// "embedding" | "mean" | "max" | "rrf"; kInvalidArg otherwise.
Status parse_fusion(const char* name, Fusion* out);

struct MultiQuerySearchArgs {
  MatrixView<const float> queries;  // (Q*R) x D, rewrites of query q at rows q*R .. q*R + R - 1
  MatrixView<const float> gallery;  // N x D
  int64_t rewrites = 1;             // R >= 1
  int64_t k = 0;                    // 1..N
  Metric metric = Metric::kCosine;  // kMean / kMax: ip or cosine
  Fusion fusion = Fusion::kEmbedding;
  const float* weights = nullptr;   // null (all 1), R values, or Q*R (per query) with per_query
  bool weights_per_query = false;
  double rrf_constant = 60.0;       // c >= 0
  int64_t depth = 100;              // kRrf: each rewrite's list depth, >= 1 (clamped to N)
};

struct MultiQuerySearchOut {
  int32_t* indices = nullptr;  // Q x k
  float* scores = nullptr;     // Q x k: the fused score (kEmbedding: the search score; l2 ascending)
};

/// Errors: kEmpty, kDimMismatch, kShape (rows not a multiple of R, N beyond int32), kInvalidK,
/// kInvalidArg (R, depth, c, negative weights, a query whose mean weights sum to 0, l2 with
/// kMean / kMax), kNonFinite (NaN/Inf in an input or weight, a row whose squared norm overflows),
/// kAborted, kOutOfMemory. Results do not depend on the thread count or ISA.
Status multi_query_search(const MultiQuerySearchArgs& args, const MultiQuerySearchOut& out,
                          const Context& ctx);

// ---- the blocked score-fusion engine (used by multi_query_search and prior_search) ----

enum class FuseRule { kMean = 0, kMax = 1, kPrior = 2 };

/// Streams gallery blocks: block scores by core::gemm (single-threaded per task, tasks over
/// contiguous gallery ranges), the fused score per (query, item), top-k selection with a rising
/// threshold, lists merged in (key desc, index asc) order. The Q x N fused matrix never exists.
struct FusedTopKArgs {
  MatrixView<const float> queries;  // (Q*R) x D
  MatrixView<const float> gallery;  // N x D
  int64_t r = 1;
  int64_t k = 0;
  Metric metric = Metric::kInnerProduct;  // ip or cosine
  FuseRule rule = FuseRule::kMean;
  const float* weights = nullptr;         // kMean / kMax: as in MultiQuerySearchArgs
  bool weights_per_query = false;
  const float* prior = nullptr;           // kPrior (r == 1): N values; f = fp32(s + fp32(lambda_q prior_j))
  const float* lambda = nullptr;          // kPrior: Q values
  const char* op = "search";              // names the operation in messages
};

/// Inputs are validated by the caller except for finiteness and norms (checked here).
Status fused_top_k(const FusedTopKArgs& args, int32_t* indices, float* scores, const Context& ctx);

}  // namespace core
}  // namespace vlk
