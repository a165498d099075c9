// SCAN-style cross-modal relevance of AAHR's in-batch graph (core/graph, seed 004), no gradient
// (AAHR computes it on detached local tokens).
// Inputs: words W (Bt x L x D, caption i has wlen[i] real words, 1 <= wlen[i] <= L; padded rows
// are never read), regions V (Bi x R x D, all real). Regions are L2-normalised inside:
// v <- v / (||v|| + eps); words are used as given. For caption i and image j:
//   A = LeakyReLU_0.1(W_i V_j^T)                               (wlen[i] x R)
//   t2i: An[w, r] = A[w, r] / (sqrt(sum_w' A[w', r]^2) + eps)   (per region column, real words)
//        T2I[i, j] = mean_w max_r An[w, r]                       (mean over the wlen[i] real words)
//   i2t: Am[w, r] = A[w, r] / (sqrt(sum_r' A[w, r']^2) + eps)   (per word row, all R regions)
//        I2T[j, i] = mean_r max_w Am[w, r]                       (max over real words, mean over R)
// eps = 1e-8, added to the norm (AAHR's / SCAN's l2norm: x / (||x|| + eps)). Norms in float64,
// products from the fp32 GEMM. T2I is Bt x Bi (row = caption), I2T is Bi x Bt (row = image), so
// with Bt = Bi = B they are AAHR's R_tv and R_vt.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct ScanRelevanceArgs {
  const float* words = nullptr;          // Bt x L x D
  const int32_t* word_lengths = nullptr;  // Bt, each in 1..L
  const float* regions = nullptr;        // Bi x R x D
  int64_t captions = 0, max_words = 0, images = 0, regions_per_image = 0, d = 0;
  double negative_slope = 0.1;
  double eps = 1e-8;
};

/// t2i: Bt x Bi, i2t: Bi x Bt (overwritten). Errors: kEmpty (a size 0), kInvalidArg (null, a word
/// length outside 1..L, naming it), kNonFinite (a real word or a region, naming it), kOutOfMemory,
/// kAborted.
Status scan_relevance(const ScanRelevanceArgs& a, float* t2i, float* i2t, const Context& ctx);

}  // namespace core
}  // namespace vlk
