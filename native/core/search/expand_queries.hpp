// Query-time graph re-ranking by attention-weighted query expansion, and its database-side
// counterpart (core/search, issue 7 item 2). Both find neighbours with the exact search kernel
// (search/search.hpp: same scores, ties by lower gallery row) and mix unit vectors:
//   x~ = x / ||x|| for metric 'cosine' (a zero vector stays 0), x~ = x for 'ip'.
// expand_queries: for query q with top-m gallery neighbours j (scores s_j = cosine or ip),
//   w_j = softmax_j(s_j / T)                               (max-subtracted, double; T = temperature)
//   q' = norm(beta q~ + sum_j w_j g~_j)                     (beta = selfWeight, default 1)
// augment_gallery: for gallery row i with top-m neighbours among the OTHER rows (self excluded by
// the search filter) and the self as an (m+1)-th member with score s_self = 1 ('cosine'; 0 for a
// zero row) or |g_i|^2 ('ip'),
//   w = softmax over {self, neighbours} of s / T,  g'_i = norm(w_self g~_i + sum_j w_j g~_j)
// i.e. the attention-weighted mean of itself and its top-m neighbours, the self included.
// norm(x) = x / (||x|| + 1e-8). Optionally expand_queries re-searches the expanded queries
// (top-k, same metric) over a second gallery (the augmented one) in the same call.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace core {

struct ExpandQueriesArgs {
  MatrixView<const float> queries;         // Q x D (augment_gallery: unused)
  MatrixView<const float> gallery;         // N x D
  int64_t m = 16;                          // neighbours, 1..N (augment: 1..N-1)
  Metric metric = Metric::kCosine;         // kCosine or kInnerProduct
  double temperature = 0.1;                // > 0
  double self_weight = 1.0;                // beta (expand_queries only), finite >= 0
  // Optional re-search of the expanded queries (expand_queries only): k >= 1 and the gallery to
  // search (null data: `gallery`).
  int64_t k = 0;
  MatrixView<const float> search_gallery;
};

struct ExpandQueriesOut {
  float* expanded = nullptr;      // Q x D (augment: N x D)
  int32_t* neighbours = nullptr;  // optional Q x m (augment: N x m) neighbour rows, best first
  float* weights = nullptr;       // optional Q x m softmax weights (augment: N x (m + 1), self first)
  int32_t* indices = nullptr;     // re-search: Q x k
  float* scores = nullptr;        // re-search: Q x k
};

/// Errors: those of search (kEmpty, kDimMismatch, kInvalidK for m or k, kNonFinite), kInvalidArg
/// (metric 'l2', temperature or selfWeight out of range), kOutOfMemory, kAborted.
Status expand_queries(const ExpandQueriesArgs& a, const ExpandQueriesOut& out, const Context& ctx);

/// Database-side augmentation of a.gallery (a.queries, self_weight and k are ignored).
Status augment_gallery(const ExpandQueriesArgs& a, const ExpandQueriesOut& out, const Context& ctx);

}  // namespace core
}  // namespace vlk
