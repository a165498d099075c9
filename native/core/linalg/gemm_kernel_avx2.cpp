// GEMM micro-kernel, avx2 build (core/linalg): an 6 x 16 tile of fp32 accumulators (see gemm_kernel.hpp).
#include "linalg/gemm_kernel.hpp"

namespace vlk {
namespace core {

const GemmKernels& gemm_kernels_avx2() {
  static const GemmKernels k{6, 16, &gemm_tile<6, 16>, &gemm_pack_a<6>, &gemm_pack_b<16>};
  return k;
}

}  // namespace core
}  // namespace vlk
