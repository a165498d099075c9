// Per-ISA scan kernels for reduced-precision storage (core/search, internal). Each
// search_quantized_kernel_<isa>.cpp fills one table and includes only this header (types and
// constants, no inline functions: an ISA-flagged copy of one could be linked into portable code)
// plus <immintrin.h>; the driver is search_quantized.cpp.
#pragma once

#include <cstdint>

namespace vlk {
namespace core {

/// Rows per code panel. Fixed (the layout is part of an index's memory, not of the ISA path).
constexpr int kQuantPanel = 32;

/// Scan kernels over code panels (search_quantized_kernel_*.cpp). One panel against query groups
/// packed as 32-bit units (bf16: two bf16 of dims 2u, 2u+1; int8: four codes + 128 as uint8),
/// group g of m queries at qpack + g * MR * units, unit u of query i at [u * m + i].
/// key(i, j) = (float(acc) * lane_scale[j]) * q_scale[i] - lane_off[j] (fp32, this order), where
/// acc is the fp32 dot of the codes (bf16) or the exact integer dot (int8, with the +128 offset
/// removed through lane_csum). Lanes whose key beats thr[i] are reported through accept().
struct QuantScanArgs {
  const void* panel = nullptr;
  int64_t units = 0;               // dpad / step
  int nrows = 0;                   // valid lanes (1..32)
  int64_t row0 = 0;
  const float* lane_scale = nullptr;   // 32 (null: 1)
  const int32_t* lane_csum = nullptr;  // int8: 32
  const float* lane_off = nullptr;     // 32 (null: 0)
  const uint32_t* qpack = nullptr;
  int64_t nq = 0;
  const float* q_scale = nullptr;
  float* thr = nullptr;
  void* sink = nullptr;
  void (*accept)(void* sink, int64_t q, int64_t row0, const float* keys, uint32_t lanes) = nullptr;
};

struct QuantKernels {
  int query_group;  // MR
  void (*scan_bf16)(const QuantScanArgs&);
  void (*scan_i8)(const QuantScanArgs&);
};

const QuantKernels& quant_kernels_scalar();
/// Needs AVX-512 F/BW plus BF16 and VNNI (see cpu_has_avx512_bf16_vnni).
const QuantKernels& quant_kernels_avx512();
/// Needs AVX2 and FMA (the avx2 path); used where the BF16/VNNI kernels are not available.
const QuantKernels& quant_kernels_avx2();

}  // namespace core
}  // namespace vlk
