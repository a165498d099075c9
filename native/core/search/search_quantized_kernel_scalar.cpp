// Portable scan kernels for reduced-precision storage (core/search): plain C++ over the code
// panels of search_quantized.hpp. bf16 products are exact in fp32 (8-bit significands), summed in
// fp32; int8 dot products are exact in int32. Used where the CPU lacks AVX-512 BF16/VNNI; the
// re-score makes the final result identical on every path.
#include <cstdint>

#include "search/search_quantized_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int kMr = 4;

inline float bf16_to_float(uint16_t h) {
  union {
    uint32_t u;
    float f;
  } v;
  v.u = static_cast<uint32_t>(h) << 16;  // GCC and Clang define type punning through a union
  return v.f;
}

template <bool kI8>
void scan(const QuantScanArgs& a) {
  const int64_t units = a.units;
  alignas(64) float keys[kQuantPanel];
  for (int64_t g0 = 0; g0 < a.nq; g0 += kMr) {
    const int m = static_cast<int>(a.nq - g0 < kMr ? a.nq - g0 : kMr);
    const uint32_t* qg = a.qpack + g0 * units;
    for (int i = 0; i < m; ++i) {
      const int64_t q = g0 + i;
      uint32_t lanes = 0;
      const float t = a.thr[q];
      for (int j = 0; j < a.nrows; ++j) {
        float acc;
        if (kI8) {
          const int8_t* p = static_cast<const int8_t*>(a.panel);
          int32_t s = 0;
          for (int64_t u = 0; u < units; ++u) {
            const uint32_t w = qg[u * m + i];
            const int8_t* c = p + (u * kQuantPanel + j) * 4;
            for (int t4 = 0; t4 < 4; ++t4) s += static_cast<int32_t>((w >> (8 * t4)) & 0xFF) * c[t4];
          }
          acc = static_cast<float>(s - 128 * a.lane_csum[j]);
        } else {
          const uint16_t* p = static_cast<const uint16_t*>(a.panel);
          float s = 0.0f;
          for (int64_t u = 0; u < units; ++u) {
            const uint32_t w = qg[u * m + i];
            const uint16_t* c = p + (u * kQuantPanel + j) * 2;
            s += bf16_to_float(static_cast<uint16_t>(w)) * bf16_to_float(c[0]);
            s += bf16_to_float(static_cast<uint16_t>(w >> 16)) * bf16_to_float(c[1]);
          }
          acc = s;
        }
        const float ls = a.lane_scale != nullptr ? a.lane_scale[j] : 1.0f;
        const float lo = a.lane_off != nullptr ? a.lane_off[j] : 0.0f;
        const float key = (acc * ls) * a.q_scale[q] - lo;
        keys[j] = key;
        if (key > t) lanes |= 1u << j;
      }
      if (lanes != 0) a.accept(a.sink, q, a.row0, keys, lanes);
    }
  }
}

}  // namespace

const QuantKernels& quant_kernels_scalar() {
  static const QuantKernels k{kMr, &scan<false>, &scan<true>};
  return k;
}

}  // namespace core
}  // namespace vlk
