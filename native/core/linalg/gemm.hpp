// Dense fp32 matrix multiply (core/linalg): C = alpha op(A) op(B) + beta C, row-major, for the
// training kernels (combiner heads, graph layers). Packed panels of op(A) (MR rows) and op(B) (NR
// columns) feed a per-ISA register-tile kernel (gemm_kernel_<isa>.cpp); blocks of columns run on
// the pool. Accumulation is fp32 fma over k ascending within a KC block, blocks added in order, so
// results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct GemmArgs {
  bool trans_a = false;  // op(A) = A^T: A is K x M (lda >= M), else M x K (lda >= K)
  bool trans_b = false;  // op(B) = B^T: B is N x K (ldb >= K), else K x N (ldb >= N)
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;  // M x N (ldc >= N); with beta == 0 it is not read
  int64_t ldc = 0;
};

/// kInvalidArg for negative sizes, short leading dimensions or null pointers (naming them);
/// kOutOfMemory for the packing buffers.
Status gemm(const GemmArgs& args, const Context& ctx);

}  // namespace core
}  // namespace vlk
