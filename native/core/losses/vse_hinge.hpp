// VSE++ hinge loss (core/losses, seed 004): AAHR's alternative matching loss `vse` (Faghri et al.
// 2018, max violation). S is B x B, S[i, j] = image i vs caption j, positives on the diagonal.
// Negatives of row i are the captions j != i, of column j the images i != j; with ids, pairs of the
// same id (ids[i] == ids[j], i != j: two captions of one image) are masked out of the negatives.
//   max_violation (default):
//     loss = sum_i relu(margin + S[i, c_i] - S[i, i]) + sum_j relu(margin + S[m_j, j] - S[j, j])
//     c_i = argmax over row i's negatives (hardest caption), m_j = argmax over column j's
//     negatives (hardest image); the FIRST index wins an exact tie. A row or column with no
//     negative (B = 1, or every other item shares its id) contributes 0 and reports index -1.
//   sum (max_violation false, VSE0): the same hinge summed over every negative of each row and column.
// The loss is a SUM over the batch (the VSE++ / AAHR code sums; divide upstream for a mean).
// Backward: the subgradient through the chosen argmax: an active term (argument > 0) adds +1 to
// dS at the negative and -1 at the diagonal; relu'(0) = 0. Computed in float64.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct VseHingeArgs {
  const float* scores = nullptr;  // B x B
  int64_t b = 0;
  const int64_t* ids = nullptr;   // optional B ids (item i is image i and caption i)
  double margin = 0.2;
  bool max_violation = true;
};

struct VseHingeOut {
  double loss = 0;
  float* dscores = nullptr;          // optional B x B (overwritten)
  int32_t* hardest_caption = nullptr;  // optional B: c_i, or -1
  int32_t* hardest_image = nullptr;    // optional B: m_j, or -1
};

/// Errors: kEmpty (B = 0), kInvalidArg (null scores, margin not finite), kNonFinite (naming row
/// and column).
Status vse_hinge(const VseHingeArgs& a, VseHingeOut* out);

}  // namespace core
}  // namespace vlk
