// GEMM micro-kernel, scalar build (core/linalg): an 4 x 8 tile of fp32 accumulators (see gemm_kernel.hpp).
#include "linalg/gemm_kernel.hpp"

namespace vlk {
namespace core {

const GemmKernels& gemm_kernels_scalar() {
  static const GemmKernels k{4, 8, &gemm_tile<4, 8>, &gemm_pack_a<4>, &gemm_pack_b<8>};
  return k;
}

}  // namespace core
}  // namespace vlk
