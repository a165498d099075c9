// Sinkhorn-Knopp codes (core/cluster). See sinkhorn.hpp for the formula and the choices.
#include "cluster/sinkhorn.hpp"


#include <algorithm>
#include <cmath>
#include <functional>
#include <new>
#include <string>
#include <vector>

namespace vlk {
namespace core {

Status sinkhorn(const SinkhornArgs& a, float* codes, const Context& ctx) {
  if (a.b <= 0 || a.p <= 0) {
    return Status(Code::kEmpty, "sinkhorn: B and P must be >= 1 (got B = " + std::to_string(a.b) +
                                    ", P = " + std::to_string(a.p) + ")");
  }
  if (a.scores == nullptr || codes == nullptr) return Status(Code::kInvalidArg, "sinkhorn: null input or output");
  if (!(a.epsilon > 0) || !std::isfinite(a.epsilon)) {
    return Status(Code::kInvalidArg, "sinkhorn: epsilon " + std::to_string(a.epsilon) + " is not a finite number > 0");
  }
  if (a.iterations < 1) {
    return Status(Code::kInvalidArg, "sinkhorn: iterations " + std::to_string(a.iterations) + " is not >= 1");
  }
  const int64_t B = a.b, P = a.p;
  float mx = -INFINITY;
  for (int64_t i = 0; i < B * P; ++i) {
    const float v = a.scores[i];
    if (!std::isfinite(v)) {
      return Status(Code::kNonFinite, "scores: row " + std::to_string(i / P) + ", column " + std::to_string(i % P) +
                                          " is not finite");
    }
    if (v > mx) mx = v;
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  // q[b * P + p] holds Q[p, b] (the B x P layout of the output; the P x B matrix of the paper is
  // its transpose, so its "rows" are columns p of q and its "columns" are rows b).
  // Work is split into fixed blocks of kRows samples (run on ctx.pool); each block keeps its own
  // partial prototype sums, added in block order, so the result does not depend on the threads.
  constexpr int64_t kRows = 16;
  const int64_t blocks = (B + kRows - 1) / kRows;
  // Per-thread scratch kept between calls: a training loop calls this every step, and a fresh
  // B x P double buffer each time costs an mmap, page faults and an munmap (more than the math).
  // Up to 32 MiB is kept; larger problems allocate per call.
  thread_local std::vector<double> scratch;
  std::vector<double> local;
  const size_t need = static_cast<size_t>(B * P + blocks * P + 2 * P);
  constexpr size_t kKeep = size_t{1} << 22;
  try {
    if (need > kKeep) {
      local.resize(need);
    } else if (scratch.size() < need) {
      std::vector<double>().swap(scratch);
      scratch.resize(need);
    }
  } catch (const std::bad_alloc&) {
    std::vector<double>().swap(scratch);
    return Status(Code::kOutOfMemory, "sinkhorn: out of memory");
  }
  double* q = need > kKeep ? local.data() : scratch.data();
  double* part = q + B * P;      // blocks x P partial prototype sums
  double* rsum = part + blocks * P;
  double* rinv = rsum + P;
  std::vector<int64_t> bad(static_cast<size_t>(blocks), -1);  // first sample of a block whose mass is 0
  const double inv_eps = 1.0 / a.epsilon;
  const double top = mx;

  auto run = [&](const std::function<void(int64_t)>& fn) {
    if (ctx.pool != nullptr && ctx.threads > 1 && blocks > 1) {
      ctx.pool->parallel_for(blocks, ctx.threads, fn);
    } else {
      for (int64_t k = 0; k < blocks; ++k) fn(k);
    }
  };
  auto combine = [&]() {
    for (int64_t p = 0; p < P; ++p) rsum[p] = 0;
    for (int64_t k = 0; k < blocks; ++k) {
      const double* pk = part + k * P;
      for (int64_t p = 0; p < P; ++p) rsum[p] += pk[p];
    }
  };
  // exp and the first prototype sums. The division by the total is skipped: a common factor,
  // cancelled by the first prototype normalisation.
  run([&](int64_t k) {
    double* pk = part + k * P;
    for (int64_t p = 0; p < P; ++p) pk[p] = 0;
    const int64_t be = std::min(B, (k + 1) * kRows);
    for (int64_t b = k * kRows; b < be; ++b) {
      double* row = q + b * P;
      const float* srow = a.scores + b * P;
      for (int64_t p = 0; p < P; ++p) row[p] = std::exp((double(srow[p]) - top) * inv_eps);
      for (int64_t p = 0; p < P; ++p) pk[p] += row[p];
    }
  });
  combine();
  for (int64_t it = 0; it < a.iterations; ++it) {
    const bool last = it + 1 == a.iterations;
    // Prototype normalisation (mass 1/P each); a prototype whose entries all underflowed stays 0.
    for (int64_t p = 0; p < P; ++p) rinv[p] = rsum[p] > 0 ? 1.0 / (rsum[p] * double(P)) : 0.0;
    run([&](int64_t k) {
      double* pk = part + k * P;
      for (int64_t p = 0; p < P; ++p) pk[p] = 0;
      const int64_t be = std::min(B, (k + 1) * kRows);
      for (int64_t b = k * kRows; b < be; ++b) {
        double* row = q + b * P;
        double acc[4] = {0, 0, 0, 0};
        int64_t p = 0;
        for (; p + 4 <= P; p += 4) {
          for (int l = 0; l < 4; ++l) {
            row[p + l] *= rinv[p + l];
            acc[l] += row[p + l];
          }
        }
        for (; p < P; ++p) {
          row[p] *= rinv[p];
          acc[0] += row[p];
        }
        const double s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        if (!(s > 0)) {
          if (bad[k] < 0) bad[k] = b;
          continue;
        }
        // Sample normalisation (mass 1/B each); the last one is then scaled by B: / s only.
        const double scale = last ? 1.0 / s : 1.0 / (s * double(B));
        if (last) {
          float* out = codes + b * P;
          for (int64_t e = 0; e < P; ++e) out[e] = static_cast<float>(row[e] * scale);
        } else {
          for (int64_t e = 0; e < P; ++e) {
            row[e] *= scale;
            pk[e] += row[e];
          }
        }
      }
    });
    for (int64_t k = 0; k < blocks; ++k) {
      if (bad[k] >= 0) {
        return Status(Code::kNonFinite, "sinkhorn: every exp((scores[" + std::to_string(bad[k]) +
                                            ", p] - max) / epsilon) underflows to 0; scale the scores or raise epsilon");
      }
    }
    if (!last) combine();
    if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  }
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
