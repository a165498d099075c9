// Branch-free fp32 exp for the graph kernels (core/graph, internal). Always inlined into the
// per-ISA clones (VLK_TARGET_*: functions compiled for one ISA by attribute, picked by ctx.isa),
// where the compiler vectorizes it; never called from portable code on its own.
#pragma once

#include <cstdint>

#define VLK_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__) || defined(__i386__)
#define VLK_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define VLK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
// Other architectures (arm64): the clones are plain copies, never chosen (no x86 path is detected).
#define VLK_TARGET_AVX512
#define VLK_TARGET_AVX2
#endif

namespace vlk {
namespace core {
namespace graph_detail {

// exp for x <= ~88 (Cephes expf: round-to-nearest range reduction by ln 2 with the 1.5 * 2^23
// trick, degree-6 polynomial on |r| <= ln2 / 2; relative error ~1e-7). Inputs below -87.3 give
// ~1e-38 (callers zero masked entries by select). Written without branches so it vectorizes.
VLK_INLINE float fexp(float x) {
  x = x < -87.3365f ? -87.3365f : x;
  const float t = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - t * 0.693359375f - t * -2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  // t is in [-126, 128] for every x but NaN and x > 88.7: converting a NaN or a huge float to int is
  // undefined, so those take t = 0 (NaN stays NaN through y) and t = 128 (exponent bits 255:
  // infinity, as exp overflows); the shifted value is then never negative.
  const float tc = t != t ? 0.0f : (t > 128.0f ? 128.0f : t);
  const int bits = (static_cast<int>(tc) + 127) << 23;
  return y * __builtin_bit_cast(float, bits);
}

}  // namespace graph_detail
}  // namespace core
}  // namespace vlk
