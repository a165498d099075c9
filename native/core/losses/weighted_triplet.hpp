// Distance-weighted triplet loss (core/losses, seed 004): AAHR's default matching loss `trip`
// (Wu et al. 2017, "Sampling matters in deep embedding learning"), on S (B x B cosine similarities
// of unit embeddings, S[i, j] = image i vs caption j). Item i is image i and caption i; positives
// are the pairs of the same id (ids[i] == ids[j], the diagonal included; without ids only the
// diagonal), negatives all other pairs.
//   d_ij = max(sqrt(max(2 - 2 S_ij, 0)), cutoff)                       (cutoff 0.5)
//   log w_ij = (2 - n) log d_ij - ((n - 3) / 2) log(1 - d_ij^2 / 4)     (n = 512)
// Direction 0, anchor image a: candidates = captions j that are negatives of a with d_aj <
// max_distance (1.7; needs cutoff < max_distance <= 2, so 1 - d^2/4 > 0); w normalised over them
// after subtracting their maximum log w (the row maximum over the candidates; non-candidates
// weigh 0). For every positive caption p of a, one negative n is drawn from these weights:
//   T += relu(margin + S[a, n] - S[a, p])
// Direction 1, anchor caption a: the same down column a (image negatives n, positive images p):
//   T += relu(margin + S[n, a] - S[p, a])
// T is the SUM over both directions. An anchor without candidates draws nothing (negative -1,
// term 0). Sampling: draw u in [0, 1) from a counter-based hash of (seed, direction, anchor,
// positive) (splitmix64), pick the first candidate (ascending index) whose cumulative weight
// exceeds u * total: deterministic, independent of threads and of the order of evaluation.
// Backward: the weights are constants; an active term (argument > 0) adds +1 to dS at the sampled
// negative and -1 at the positive. Weights and loss in float64.
#pragma once

#include <cstdint>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct WeightedTripletArgs {
  const float* scores = nullptr;  // B x B
  int64_t b = 0;
  const int64_t* ids = nullptr;   // optional B ids
  double margin = 0.2;
  double n = 512;                 // the embedding dimension of the distance density
  double cutoff = 0.5;
  double max_distance = 1.7;
  uint64_t seed = 0;
};

struct WeightedTripletOut {
  double loss = 0;
  float* dscores = nullptr;  // optional B x B (overwritten)
  // One entry per (direction, anchor, positive), direction 0 first, anchors and positives ascending.
  std::vector<int32_t> direction, anchor, positive, negative;  // negative -1: no candidate
};

/// Errors: kEmpty (B = 0), kInvalidArg (null scores, margin / n not finite, n <= 0, not
/// 0 < cutoff < max_distance <= 2), kNonFinite (naming row and column), kOutOfMemory.
Status weighted_triplet(const WeightedTripletArgs& a, WeightedTripletOut* out);

}  // namespace core
}  // namespace vlk
