// AVX-512 scan kernels for reduced-precision storage (core/search). Compiled with the AVX-512 F/BW
// flags of the avx512 object plus BF16 and VNNI for this file's functions only (a target pragma),
// so it is only called where cpu_has_avx512_bf16_vnni() holds.
// Tile: 12 queries x 32 rows = 24 zmm accumulators, like the fp32 kernel, but each instruction now
// does 2 (vdpbf16ps: bf16 pairs into fp32) or 4 (vpdpbusd: uint8 x int8 quads into int32)
// multiply-adds per lane, at the fp32 FMA's throughput, on a panel half (bf16) or a quarter (int8)
// the size. Query codes are broadcast as 32-bit units; int8 queries carry +128 so they are
// unsigned, removed afterwards with the row's code sum (exact integer arithmetic).
#include <immintrin.h>

#include <cstdint>

#include "search/search_quantized_kernel.hpp"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512bf16,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512bf16,avx512vnni")
#endif

namespace vlk {
namespace core {

namespace {

constexpr int kMr = 12;

// bf16: fp32 accumulators.
template <int M>
inline void tile(const uint8_t* __restrict panel, const uint32_t* __restrict qg, int64_t units, __m512 (&acc)[M][2]) {
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t u = 0; u < units; ++u) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(panel + u * 128);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(panel + u * 128 + 64);
    const uint32_t* qu = qg + u * M;
#pragma GCC unroll 12
    for (int i = 0; i < M; ++i) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(qu[i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
    }
  }
}

// int8: int32 accumulators, typed as 16 x int32 (GCC keeps arrays of the 8 x int64 __m512i in
// registers poorly across the dpbusd casts and spills them every step).
typedef int v16si __attribute__((vector_size(64)));

template <int M>
inline void tile(const uint8_t* __restrict panel, const uint32_t* __restrict qg, int64_t units, v16si (&acc)[M][2]) {
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = v16si{};
  for (int64_t u = 0; u < units; ++u) {
    const __m512i b0 = _mm512_load_si512(panel + u * 128);
    const __m512i b1 = _mm512_load_si512(panel + u * 128 + 64);
    const uint32_t* qu = qg + u * M;
#pragma GCC unroll 12
    for (int i = 0; i < M; ++i) {
      const __m512i a = _mm512_set1_epi32(static_cast<int>(qu[i]));
      acc[i][0] = (v16si)_mm512_dpbusd_epi32((__m512i)acc[i][0], a, b0);
      acc[i][1] = (v16si)_mm512_dpbusd_epi32((__m512i)acc[i][1], a, b1);
    }
  }
}

// Accumulator type per storage (what std::conditional would give; <type_traits> stays out of ISA
// files, see search_quantized_kernel.hpp).
template <bool kI8> struct Acc { typedef __m512 type; };
template <> struct Acc<true> { typedef v16si type; };

inline __m512 to_float(__m512 acc, __m512i) { return acc; }
inline __m512 to_float(v16si acc, __m512i bias) { return _mm512_cvtepi32_ps(_mm512_sub_epi32((__m512i)acc, bias)); }

template <bool kI8, int M>
inline void group(const QuantScanArgs& a, int64_t g0, const uint32_t* qg, const __m512i (&lane_bias)[2],
                  const __m512 (&ls)[2], const __m512 (&lo)[2], const __mmask16 (&valid)[2]) {
  typename Acc<kI8>::type acc[M][2];
  tile<M>(static_cast<const uint8_t*>(a.panel), qg, a.units, acc);
#pragma GCC unroll 12
  for (int i = 0; i < M; ++i) {
    const int64_t q = g0 + i;
    const __m512 qs = _mm512_set1_ps(a.q_scale[q]);
    const __m512 t = _mm512_set1_ps(a.thr[q]);
    __m512 key[2];
    __mmask16 m[2];
    for (int h = 0; h < 2; ++h) {
      const __m512 v = to_float(acc[i][h], lane_bias[h]);
      key[h] = _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(v, ls[h]), qs), lo[h]);
      m[h] = _mm512_mask_cmp_ps_mask(valid[h], key[h], t, _CMP_GT_OQ);
    }
    const uint32_t lanes = static_cast<uint32_t>(m[0]) | (static_cast<uint32_t>(m[1]) << 16);
    if (__builtin_expect(lanes != 0, 0)) {
      alignas(64) float keys[kQuantPanel];
      _mm512_store_ps(keys, key[0]);
      _mm512_store_ps(keys + 16, key[1]);
      a.accept(a.sink, q, a.row0, keys, lanes);
    }
  }
}

template <bool kI8, int M>
inline void run_group(const QuantScanArgs& a, int64_t g0, const __m512i (&bias)[2], const __m512 (&ls)[2],
                      const __m512 (&lo)[2], const __mmask16 (&valid)[2]) {
  group<kI8, M>(a, g0, a.qpack + g0 * a.units, bias, ls, lo, valid);
}

template <bool kI8>
void scan(const QuantScanArgs& a) {
  __m512i bias[2];
  __m512 ls[2], lo[2];
  __mmask16 valid[2];
  for (int h = 0; h < 2; ++h) {
    const int n = a.nrows - 16 * h;
    valid[h] = n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
    bias[h] = kI8 ? _mm512_slli_epi32(_mm512_loadu_si512(a.lane_csum + 16 * h), 7) : _mm512_setzero_si512();
    ls[h] = a.lane_scale != nullptr ? _mm512_loadu_ps(a.lane_scale + 16 * h) : _mm512_set1_ps(1.0f);
    lo[h] = a.lane_off != nullptr ? _mm512_loadu_ps(a.lane_off + 16 * h) : _mm512_setzero_ps();
  }
  int64_t g0 = 0;
  for (; g0 + kMr <= a.nq; g0 += kMr) run_group<kI8, kMr>(a, g0, bias, ls, lo, valid);
  switch (a.nq - g0) {
    case 0: break;
    case 1: run_group<kI8, 1>(a, g0, bias, ls, lo, valid); break;
    case 2: run_group<kI8, 2>(a, g0, bias, ls, lo, valid); break;
    case 3: run_group<kI8, 3>(a, g0, bias, ls, lo, valid); break;
    case 4: run_group<kI8, 4>(a, g0, bias, ls, lo, valid); break;
    case 5: run_group<kI8, 5>(a, g0, bias, ls, lo, valid); break;
    case 6: run_group<kI8, 6>(a, g0, bias, ls, lo, valid); break;
    case 7: run_group<kI8, 7>(a, g0, bias, ls, lo, valid); break;
    case 8: run_group<kI8, 8>(a, g0, bias, ls, lo, valid); break;
    case 9: run_group<kI8, 9>(a, g0, bias, ls, lo, valid); break;
    case 10: run_group<kI8, 10>(a, g0, bias, ls, lo, valid); break;
    default: run_group<kI8, 11>(a, g0, bias, ls, lo, valid); break;
  }
}

}  // namespace

const QuantKernels& quant_kernels_avx512() {
  static const QuantKernels k{kMr, &scan<false>, &scan<true>};
  return k;
}

}  // namespace core
}  // namespace vlk

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
