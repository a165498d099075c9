// Sinkhorn-Knopp codes for SwAV-style clustering prototypes (core/cluster, seed 004 AAHR):
// equal-partition soft assignments of B samples to P prototypes from their scores O (B x P).
//   Q  = exp((O - max O) / eps)^T                       P x B (the global max is subtracted first:
//                                                        a common factor, cancelled by the next step)
//   Q /= sum(Q)
//   repeat `iterations` times:
//     Q[p, :] /= sum_b Q[p, b];  Q /= P                 (each prototype gets mass 1/P)
//     Q[:, b] /= sum_p Q[p, b];  Q /= B                 (each sample gets mass 1/B)
//   Q *= B                                              (each sample's codes sum to 1)
// returned transposed, codes[b, p] (B x P, row-major). No gradient (the codes are targets).
// Choices where the paper (SwAV / AAHR code, which runs this in fp32 under no_grad) is silent:
//  - fp32 in and out; the exponentials, sums and divisions run in float64 (a B x P double
//    buffer), so the result is the float64 algorithm (up to summation order) rounded once, and exp
//    underflows only for scores more than ~745 eps below the global max (fp32 would at ~87 eps);
//  - the division by the total is skipped: a common factor, cancelled by the first prototype
//    normalisation;
//  - a prototype row whose entries all underflow to 0 stays 0 (it gets no mass; no 0/0);
//  - a sample whose entries all underflow is an error (kNonFinite): its codes would be 0/0;
//  - iterations >= 1 (so that each sample's codes sum to 1), eps > 0 and finite.
// Cost O(iterations * B * P), on ctx.pool in fixed blocks of 16 samples whose partial prototype
// sums are added in block order: bit-identical for any thread count. Scratch (B x P doubles) up to
// 32 MiB is kept per thread between calls (a training loop calls this every step).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct SinkhornArgs {
  const float* scores = nullptr;  // O: B x P, row-major
  int64_t b = 0, p = 0;
  double epsilon = 0.1;
  int64_t iterations = 3;
};

/// codes: B x P, overwritten. Errors: kEmpty (B or P is 0), kInvalidArg (null pointers, epsilon
/// not a finite number > 0, iterations < 1), kNonFinite (a score NaN/Inf, naming row and column,
/// or a sample whose exponentials all underflow), kAborted.
Status sinkhorn(const SinkhornArgs& a, float* codes, const Context& ctx);

}  // namespace core
}  // namespace vlk
