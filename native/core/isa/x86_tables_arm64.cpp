// x86 kernel-table names in arm64 builds (core/isa, vlk_neon_sources only). The AVX2/AVX-512 files
// are not compiled for arm64, but the drivers' ISA switches still name their tables; those cases
// are unreachable there (detected_isa() is scalar on arm64, set_isa and VLK_FORCE_ISA refuse
// avx2/avx512), so each name resolves to the table the arm64 scalar path uses.
#include "linalg/gemm_kernel.hpp"
#include "search/scan_kernel.hpp"
#include "search/search_kernel.hpp"
#include "search/search_quantized_kernel.hpp"

namespace vlk {
namespace core {

const SearchKernels& search_kernels_avx2() { return search_kernels_neon(); }
const SearchKernels& search_kernels_avx512() { return search_kernels_neon(); }
const GemmKernels& gemm_kernels_avx2() { return gemm_kernels_scalar(); }
const GemmKernels& gemm_kernels_avx512() { return gemm_kernels_scalar(); }
const ScanKernels& scan_kernels_avx2() { return scan_kernels_scalar(); }
const ScanKernels& scan_kernels_avx512() { return scan_kernels_scalar(); }
const QuantKernels& quant_kernels_avx2() { return quant_kernels_scalar(); }
const QuantKernels& quant_kernels_avx512() { return quant_kernels_scalar(); }

}  // namespace core
}  // namespace vlk
