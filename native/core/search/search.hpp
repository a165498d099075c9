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

struct SearchArgs {
  MatrixView<const float> queries;  // Q x D, row-major
  MatrixView<const float> gallery;  // N x D, row-major
  int64_t k = 0;                    // 1 <= k <= N
  Metric metric = Metric::kInnerProduct;
};

struct SearchOut {
  int32_t* indices = nullptr;  // Q x k, row-major: gallery rows, best first
  float* scores = nullptr;     // Q x k: ip / cosine similarity (descending) or squared L2 distance
                               // (ascending)
};

/// Checks shapes and k without touching the data: kEmpty (Q or N or D is 0), kDimMismatch,
/// kShape (N beyond int32 indices), kInvalidK (k < 1 or k > N).
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
