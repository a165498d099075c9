// Word-region dot-product micro-kernel of scan_similarity, avx512 build (core/search; see scan_kernel.hpp).
#include "search/scan_kernel.hpp"

namespace vlk {
namespace core {

const ScanKernels& scan_kernels_avx512() {
  static const ScanKernels k{&scan_dots};
  return k;
}

}  // namespace core
}  // namespace vlk
