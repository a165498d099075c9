// Exact batched top-k similarity search (core/search): queries Q x D against a gallery N x D,
// inner product, cosine or squared L2, fused with per-query top-k selection (the Q x N score matrix
// is never materialised). Results are sorted best first, ties broken by lower gallery index, and
// are bit-identical across ISA paths, thread counts and query batching (see search.cpp).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

enum class Metric { kInnerProduct = 0, kCosine = 1, kL2 = 2 };

/// "ip", "cosine", "l2".
const char* metric_name(Metric m);
/// Parses "ip" | "cosine" | "l2"; kInvalidArg otherwise.
Status parse_metric(const char* name, Metric* out);

/// Which gallery rows each query may return. Applied where a candidate enters the top-k lists,
/// inside the fused scan: an excluded row never displaces an allowed one (this is not a
/// post-filter, so no result is lost to it).
struct SearchFilter {
  const uint64_t* allow = nullptr;           // bitset over gallery rows (bit r % 64 of word r / 64),
                                             // ceil(N / 64) words; null: every row is allowed
  const int64_t* exclude_offsets = nullptr;  // Q + 1 non-decreasing offsets into exclude_rows
                                             // (CSR); null: nothing excluded
  const int32_t* exclude_rows = nullptr;     // rows query q must not return: exclude_rows[
                                             // exclude_offsets[q] .. exclude_offsets[q + 1]), any order

  bool active() const { return allow != nullptr || exclude_offsets != nullptr; }
};

struct SearchArgs {
  MatrixView<const float> queries;  // Q x D, row-major
  MatrixView<const float> gallery;  // N x D, row-major
  int64_t k = 0;                    // 1 <= k <= N
  Metric metric = Metric::kInnerProduct;
  SearchFilter filter;              // optional
  /// Rows per item (token-max search, see compose/token_max_search.hpp): the gallery holds
  /// N / tokens items of `tokens` consecutive rows, an item's key is the best of its rows', and
  /// indices, k, filters (exclude rows, allow bits) and ties refer to items. 1: every row an item.
  int64_t tokens = 1;
};

struct SearchOut {
  int32_t* indices = nullptr;  // Q x k, row-major: gallery rows, best first
  float* scores = nullptr;     // Q x k: ip / cosine similarity (descending) or squared L2 distance
                               // (ascending)
  int32_t* counts = nullptr;   // optional, Q: valid entries per row. A query with fewer than k
                               // allowed rows gets them all, then index -1 and score NaN.
};

/// Checks shapes, k and the filter's offsets without touching the data: kEmpty (Q or N or D is 0),
/// kDimMismatch, kShape (N beyond int32 indices), kInvalidK (k < 1 or k > N), kInvalidArg
/// (exclude offsets that decrease or start below 0).
Status validate_search(const SearchArgs& args);

/// Runs the search. Reads inputs only; writes exactly Q*k entries of each output.
/// Scores:
///  - ip: fp32 dot product accumulated in order d = 0..D-1 with fused multiply-add;
///  - cosine: that dot times 1/|q| times 1/|g| (fp32; a zero vector has similarity 0);
///  - l2: squared Euclidean distance, exact to float64 then rounded (candidates are found with the
///    fp32 expanded form and a proven error margin, then re-scored directly).
/// Errors: those of validate_search, kNonFinite (NaN/Inf in an input, or magnitudes whose products
/// overflow fp32), kAborted (ctx.cancel set), kOutOfMemory. Thread-safe; outputs are undefined on
/// error.
Status search(const SearchArgs& args, const SearchOut& out, const Context& ctx);

}  // namespace core
}  // namespace vlk
