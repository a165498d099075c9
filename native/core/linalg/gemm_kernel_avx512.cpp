// GEMM micro-kernel, avx512 build (core/linalg): an 8 x 32 tile of fp32 accumulators (see gemm_kernel.hpp).
#include "linalg/gemm_kernel.hpp"

namespace vlk {
namespace core {

const GemmKernels& gemm_kernels_avx512() {
  static const GemmKernels k{8, 32, &gemm_tile<8, 32>};
  return k;
}

}  // namespace core
}  // namespace vlk
