// AVX2 + FMA scan kernels for reduced-precision storage (core/search), compiled with -mavx2 -mfma
// only: the scan on CPUs without AVX-512 BF16/VNNI (every AVX2-only CPU, Skylake-X, Ice Lake).
//
// Tile: 5 queries x 16 rows (half a panel) = 10 ymm accumulators, lanes = rows; a panel is two
// tiles. Per code unit the tile loads two panel vectors (8 rows x one unit each), widens them in
// registers and multiplies them against per-query broadcasts:
//  - bf16: a 32-bit lane holds a row's two bf16 codes; `<< 16` gives the first as fp32 and
//    `& 0xFFFF0000` the second (bf16 is the upper half of an fp32, so both are exact), then fp32
//    FMAs. A product of two bf16 (8-bit significands) is exact in fp32; only the summation rounds,
//    and the driver's gamma term holds for any summation order.
//  - int8: a 32-bit lane holds a row's four int8 codes; sign-extending its even and its odd bytes
//    to int16 pairs (16-bit shifts) lets vpmaddwd form c0 q0 + c2 q2 and c1 q1 + c3 q3 per row in
//    int32, with no saturation (|c q| <= 127 * 127). int32 accumulation is exact for dim <= 65536,
//    so the integer dot, and the key, are bit-identical to the scalar kernel's.
// Queries are widened once per group and chunk of units into a stack buffer (fp32 values; int8:
// the int16 pairs with the +128 removed, so lane_csum is not needed), so the inner loop only
// broadcasts from memory. Accumulators are parked on the stack between the two halves and between
// chunks (a few stores per kChunk units).
// Why 5 queries, not the fp32 kernel's 6: widening needs one or two more registers (the mask, the
// even and odd halves); at 6 x 16 GCC spills accumulators (bf16 runs at half speed), at 5 x 16 the
// bf16 loop fits in registers and both storages measure as fast as or faster than 6 x 16.
#include <immintrin.h>

#include <cstdint>

#include "search/search_quantized_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int kMr = 5;
constexpr int kChunk = 256;  // units widened at a time: 2 x 5 x 256 x 4 bytes = 10 KiB of stack

// ---- query widening: words [0, n) of a group (unit-major, m queries per unit) ---------------------
// bf16: lo[k] / hi[k] = the two bf16 of word k as fp32.
inline void widen_bf16(const uint32_t* __restrict w, int64_t n, float* __restrict lo, float* __restrict hi) {
  const __m256i mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k));
    _mm256_store_si256(reinterpret_cast<__m256i*>(lo + k), _mm256_slli_epi32(v, 16));
    _mm256_store_si256(reinterpret_cast<__m256i*>(hi + k), _mm256_and_si256(v, mask));
  }
  for (; k < n; ++k) {
    const uint32_t lb = w[k] << 16, hb = w[k] & 0xFFFF0000u;
    // Bit copies through the vector registers (no <cstring> / type punning here).
    lo[k] = _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(lb))));
    hi[k] = _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(hb))));
  }
}

// Even / odd bytes of each 32-bit lane, sign-extended to int16 pairs: (b0, b2) and (b1, b3).
inline __m256i even_i16(__m256i v) { return _mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8); }
inline __m256i odd_i16(__m256i v) { return _mm256_srai_epi16(v, 8); }

// int8: the query bytes carry +128; xor 0x80 per byte gives the signed codes back.
inline void widen_i8(const uint32_t* __restrict w, int64_t n, int32_t* __restrict ev, int32_t* __restrict od) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k)), flip);
    _mm256_store_si256(reinterpret_cast<__m256i*>(ev + k), even_i16(v));
    _mm256_store_si256(reinterpret_cast<__m256i*>(od + k), odd_i16(v));
  }
  for (; k < n; ++k) {
    const uint32_t x = w[k] ^ 0x80808080u;
    const uint32_t b0 = x & 0xFF, b1 = (x >> 8) & 0xFF, b2 = (x >> 16) & 0xFF, b3 = x >> 24;
    // Sign-extend a byte to 16 bits (0xFF00 when its top bit is set).
    auto s16 = [](uint32_t b) -> uint32_t { return (b & 0x80u) ? (b | 0xFF00u) : b; };
    ev[k] = static_cast<int32_t>(s16(b0) | (s16(b2) << 16));
    od[k] = static_cast<int32_t>(s16(b1) | (s16(b3) << 16));
  }
}

// ---- tiles: M queries x 16 rows (half h of the panel) over units [u0, u1) ---------------------
// acc[i][0..1] = rows 16h..16h+7, 16h+8..16h+15 of query i; qa / qb: the chunk's widened queries.
template <int M>
inline void tile_bf16(const uint8_t* __restrict panel, int h, int64_t u0, int64_t u1, const float* __restrict qa,
                      const float* __restrict qb, __m256 (&acc)[M][2]) {
  const __m256i mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  const uint8_t* p = panel + h * 64;
  for (int64_t u = u0; u < u1; ++u) {
    const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + u * 128));
    const __m256i r1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + u * 128 + 32));
    const float* a = qa + (u - u0) * M;
    const float* b = qb + (u - u0) * M;
    {
      const __m256 w0 = _mm256_castsi256_ps(_mm256_slli_epi32(r0, 16));
      const __m256 w1 = _mm256_castsi256_ps(_mm256_slli_epi32(r1, 16));
#pragma GCC unroll 5
      for (int i = 0; i < M; ++i) {
        const __m256 q = _mm256_broadcast_ss(a + i);
        acc[i][0] = _mm256_fmadd_ps(q, w0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(q, w1, acc[i][1]);
      }
    }
    {
      const __m256 w0 = _mm256_castsi256_ps(_mm256_and_si256(r0, mask));
      const __m256 w1 = _mm256_castsi256_ps(_mm256_and_si256(r1, mask));
#pragma GCC unroll 5
      for (int i = 0; i < M; ++i) {
        const __m256 q = _mm256_broadcast_ss(b + i);
        acc[i][0] = _mm256_fmadd_ps(q, w0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(q, w1, acc[i][1]);
      }
    }
  }
}

// int32 accumulators typed as 8 x int32 (GCC keeps arrays of the 4 x int64 __m256i in registers
// poorly across casts, as in the AVX-512 kernel).
typedef int v8si __attribute__((vector_size(32)));

template <int M>
inline void tile_i8(const uint8_t* __restrict panel, int h, int64_t u0, int64_t u1, const int32_t* __restrict qa,
                    const int32_t* __restrict qb, v8si (&acc)[M][2]) {
  const uint8_t* p = panel + h * 64;
  for (int64_t u = u0; u < u1; ++u) {
    const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + u * 128));
    const __m256i r1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + u * 128 + 32));
    const __m256i e0 = even_i16(r0), e1 = even_i16(r1), o0 = odd_i16(r0), o1 = odd_i16(r1);
    const int32_t* a = qa + (u - u0) * M;
    const int32_t* b = qb + (u - u0) * M;
    // Even and odd products summed before the accumulator: one dependent add per unit (measured
    // faster than two, although GCC then keeps two accumulators on the stack).
#pragma GCC unroll 5
    for (int i = 0; i < M; ++i) {
      const __m256i qe = _mm256_set1_epi32(a[i]);
      const __m256i qo = _mm256_set1_epi32(b[i]);
      acc[i][0] += (v8si)_mm256_add_epi32(_mm256_madd_epi16(qe, e0), _mm256_madd_epi16(qo, o0));
      acc[i][1] += (v8si)_mm256_add_epi32(_mm256_madd_epi16(qe, e1), _mm256_madd_epi16(qo, o1));
    }
  }
}

inline __m256 to_float(__m256 v) { return v; }
inline __m256 to_float(v8si v) { return _mm256_cvtepi32_ps((__m256i)v); }

// Per storage: accumulator and widened-query types (what std::conditional would give; <type_traits>
// stays out of ISA files, see search_quantized_kernel.hpp).
template <bool kI8> struct Types { typedef __m256 acc; typedef float q; };
template <> struct Types<true> { typedef v8si acc; typedef int32_t q; };

inline void zero(__m256& v) { v = _mm256_setzero_ps(); }
inline void zero(v8si& v) { v = v8si{}; }

template <int M>
inline void tile(const uint8_t* panel, int h, int64_t u0, int64_t u1, const float* qa, const float* qb,
                 __m256 (&acc)[M][2]) {
  tile_bf16<M>(panel, h, u0, u1, qa, qb, acc);
}
template <int M>
inline void tile(const uint8_t* panel, int h, int64_t u0, int64_t u1, const int32_t* qa, const int32_t* qb,
                 v8si (&acc)[M][2]) {
  tile_i8<M>(panel, h, u0, u1, qa, qb, acc);
}

inline void widen(const uint32_t* w, int64_t n, float* a, float* b) { widen_bf16(w, n, a, b); }
inline void widen(const uint32_t* w, int64_t n, int32_t* a, int32_t* b) { widen_i8(w, n, a, b); }

struct Lanes {
  __m256 ls[4], lo[4];  // per 8 rows: lane_scale (1 when null), lane_off (0 when null)
  uint32_t valid;       // bits of the lanes < nrows
};

// One group of M queries (g0..g0+M-1) against the panel: both halves, chunk by chunk, then keys.
template <bool kI8, int M>
void group(const QuantScanArgs& a, int64_t g0, const Lanes& L) {
  typedef typename Types<kI8>::acc Acc;
  typedef typename Types<kI8>::q QWord;
  const uint8_t* panel = static_cast<const uint8_t*>(a.panel);
  const uint32_t* qg = a.qpack + g0 * a.units;
  alignas(32) QWord qa[kChunk * M];
  alignas(32) QWord qb[kChunk * M];
  Acc part[2][M][2];  // [half][query][8 rows]
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < M; ++i) zero(part[h][i][0]), zero(part[h][i][1]);
  }
  for (int64_t u0 = 0; u0 < a.units; u0 += kChunk) {
    const int64_t u1 = a.units - u0 < kChunk ? a.units : u0 + kChunk;
    widen(qg + u0 * M, (u1 - u0) * M, qa, qb);
    for (int h = 0; h < 2; ++h) {
      Acc acc[M][2];
      for (int i = 0; i < M; ++i) acc[i][0] = part[h][i][0], acc[i][1] = part[h][i][1];
      tile<M>(panel, h, u0, u1, qa, qb, acc);
      for (int i = 0; i < M; ++i) part[h][i][0] = acc[i][0], part[h][i][1] = acc[i][1];
    }
  }
  for (int i = 0; i < M; ++i) {
    const int64_t q = g0 + i;
    const __m256 qs = _mm256_set1_ps(a.q_scale[q]);
    const __m256 t = _mm256_set1_ps(a.thr[q]);  // read after the tile: accept may have raised it
    __m256 key[4];
    uint32_t lanes = 0;
    for (int v = 0; v < 4; ++v) {
      const __m256 x = to_float(part[v >> 1][i][v & 1]);
      key[v] = _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(x, L.ls[v]), qs), L.lo[v]);
      lanes |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(key[v], t, _CMP_GT_OQ))) << (8 * v);
    }
    lanes &= L.valid;
    if (__builtin_expect(lanes != 0, 0)) {
      alignas(32) float keys[kQuantPanel];
      for (int v = 0; v < 4; ++v) _mm256_store_ps(keys + 8 * v, key[v]);
      a.accept(a.sink, q, a.row0, keys, lanes);
    }
  }
}

template <bool kI8>
void scan(const QuantScanArgs& a) {
  Lanes L;
  L.valid = a.nrows >= 32 ? 0xFFFFFFFFu : ((1u << a.nrows) - 1);
  for (int v = 0; v < 4; ++v) {
    L.ls[v] = a.lane_scale != nullptr ? _mm256_loadu_ps(a.lane_scale + 8 * v) : _mm256_set1_ps(1.0f);
    L.lo[v] = a.lane_off != nullptr ? _mm256_loadu_ps(a.lane_off + 8 * v) : _mm256_setzero_ps();
  }
  int64_t g0 = 0;
  for (; g0 + kMr <= a.nq; g0 += kMr) group<kI8, kMr>(a, g0, L);
  switch (a.nq - g0) {
    case 1: group<kI8, 1>(a, g0, L); break;
    case 2: group<kI8, 2>(a, g0, L); break;
    case 3: group<kI8, 3>(a, g0, L); break;
    case 4: group<kI8, 4>(a, g0, L); break;
    default: break;
  }
}

}  // namespace

const QuantKernels& quant_kernels_avx2() {
  static const QuantKernels k{kMr, &scan<false>, &scan<true>};
  return k;
}

}  // namespace core
}  // namespace vlk
