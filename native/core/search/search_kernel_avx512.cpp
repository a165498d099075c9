// AVX-512 search kernels (core/search), compiled with the AVX-512 F/BW/DQ/VL flags only.
// Tile: 12 queries x 32 gallery rows = 24 zmm accumulators (fp32), the panel's two vectors and an
// embedded broadcast per query each step: 24 FMAs per 2 loads + 12 broadcasts. A 32-row panel is
// D x 32 floats (64 KiB at D = 512, L2-resident); a 12-query group is D x 12 (24 KiB). Packing
// transposes 16x16 blocks in registers. Keys are compared with per-query thresholds in registers;
// only lanes that pass leave the registers. Score order per pair: fma chain over d ascending.
#include <immintrin.h>

// GCC 12 flags the _mm512_undefined_* placeholders inside its own shuffle intrinsics as
// maybe-uninitialized under -Wall (a false positive); keep real builds quiet.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstdint>

#include "search/search_kernel.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int kNr = 32;
constexpr int kMr = 12;

inline __m512 shuf128(__m512 a, __m512 b, int imm_is_odd) {
  return imm_is_odd ? _mm512_shuffle_f32x4(a, b, 0xDD) : _mm512_shuffle_f32x4(a, b, 0x88);
}

// In place: r[c][i] <- r[i][c] for a 16 x 16 block.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int p = 0; p < 8; ++p) {
    t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
  }
  // v[4s + c]: 128-bit lane L holds column 4L + c of rows 4s..4s+3.
  __m512 v[16];
  for (int s = 0; s < 4; ++s) {
    const __m512d a0 = _mm512_castps_pd(t[4 * s]), a1 = _mm512_castps_pd(t[4 * s + 1]);
    const __m512d a2 = _mm512_castps_pd(t[4 * s + 2]), a3 = _mm512_castps_pd(t[4 * s + 3]);
    v[4 * s + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    v[4 * s + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    v[4 * s + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    v[4 * s + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
  // 4 x 4 transpose of 128-bit lanes across v[c], v[4 + c], v[8 + c], v[12 + c].
  for (int c = 0; c < 4; ++c) {
    const __m512 x0 = shuf128(v[c], v[4 + c], 0), x1 = shuf128(v[c], v[4 + c], 1);
    const __m512 x2 = shuf128(v[8 + c], v[12 + c], 0), x3 = shuf128(v[8 + c], v[12 + c], 1);
    r[c] = shuf128(x0, x2, 0);       // column c
    r[8 + c] = shuf128(x0, x2, 1);   // column 8 + c
    r[4 + c] = shuf128(x1, x3, 0);   // column 4 + c
    r[12 + c] = shuf128(x1, x3, 1);  // column 12 + c
  }
}

// Transposes rows [16h, 16h + 16) x columns [d0, d0 + 16) into the panel (columns past `cols` are
// zero), accumulating squared norms and the non-finite mask. Fully unrolled so the block stays in
// registers.
template <bool kFullCols>
inline void pack_block(const float* g, int64_t stride, int nrows, int h, int64_t d0, int w,
                       float* panel, __m512& norm, __mmask16& bad) {
  const __mmask16 cols = static_cast<__mmask16>(kFullCols ? 0xFFFF : ((1u << w) - 1));
  __m512 r[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    const int j = 16 * h + i;
    const float* src = g + j * stride + d0;
    r[i] = j < nrows ? (kFullCols ? _mm512_loadu_ps(src) : _mm512_maskz_loadu_ps(cols, src))
                     : _mm512_setzero_ps();
  }
  transpose16(r);
  float* dst = panel + d0 * kNr + 16 * h;
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c) {
    if (!kFullCols && c >= w) break;
    _mm512_store_ps(dst + c * kNr, r[c]);
    norm = _mm512_fmadd_ps(r[c], r[c], norm);
    bad |= _mm512_fpclass_ps_mask(r[c], 0x01 | 0x08 | 0x10 | 0x80);  // NaN, +Inf, -Inf
  }
}

bool pack_panel(const float* g, int64_t stride, int64_t dim, int nrows, float* panel,
                float* norms2) {
  __m512 n0 = _mm512_setzero_ps(), n1 = _mm512_setzero_ps();
  __mmask16 bad = 0;
  // One half panel (16 rows, 16 read streams) at a time: fewer streams for the prefetcher.
  const int64_t full = dim - dim % 16;
  for (int h = 0; h < 2; ++h) {
    __m512& n = h == 0 ? n0 : n1;
    for (int64_t d0 = 0; d0 < full; d0 += 16) pack_block<true>(g, stride, nrows, h, d0, 16, panel, n, bad);
    if (full < dim) pack_block<false>(g, stride, nrows, h, full, static_cast<int>(dim - full), panel, n, bad);
  }
  _mm512_storeu_ps(norms2, n0);
  _mm512_storeu_ps(norms2 + 16, n1);
  return bad == 0;
}

template <int M>
inline void tile(const float* __restrict panel, const float* __restrict qg, int64_t dim,
                 __m512 (&acc)[M][2]) {
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t d = 0; d < dim; ++d) {
    const __m512 b0 = _mm512_load_ps(panel + d * kNr);
    const __m512 b1 = _mm512_load_ps(panel + d * kNr + 16);
    const float* qd = qg + d * M;
#pragma GCC unroll 12
    for (int i = 0; i < M; ++i) {
      const __m512 a = _mm512_set1_ps(qd[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
}

template <ScanKey K>
inline __m512 make_key(__m512 acc, __m512 qaux, __m512 laux) {
  if (K == ScanKey::kCosine) return _mm512_mul_ps(_mm512_mul_ps(acc, qaux), laux);
  if (K == ScanKey::kL2) return _mm512_sub_ps(_mm512_add_ps(acc, acc), laux);
  return acc;
}

// Turns accumulators into keys, compares them with the thresholds, reports the lanes that pass.
template <int M, ScanKey K>
inline void select(const ScanArgs& a, int64_t g0, const __m512 (&acc)[M][2], __mmask16 valid0,
                   __mmask16 valid1, __m512 laux0, __m512 laux1) {
#pragma GCC unroll 12
  for (int i = 0; i < M; ++i) {
    const int64_t q = g0 + i;
    const __m512 qaux = K == ScanKey::kCosine ? _mm512_set1_ps(a.q_aux[q]) : _mm512_setzero_ps();
    const __m512 k0 = make_key<K>(acc[i][0], qaux, laux0);
    const __m512 k1 = make_key<K>(acc[i][1], qaux, laux1);
    const __m512 t = _mm512_set1_ps(a.thr[q]);
    const __mmask16 m0 = _mm512_mask_cmp_ps_mask(valid0, k0, t, _CMP_GT_OQ);
    const __mmask16 m1 = _mm512_mask_cmp_ps_mask(valid1, k1, t, _CMP_GT_OQ);
    if (__builtin_expect((m0 | m1) != 0, 0)) {
      alignas(64) float keys[kNr];
      _mm512_store_ps(keys, k0);
      _mm512_store_ps(keys + 16, k1);
      a.accept(a.sink, q, a.row0, keys,
               static_cast<uint32_t>(m0) | (static_cast<uint32_t>(m1) << 16));
    }
  }
}

template <int M, ScanKey K>
void group(const ScanArgs& a, int64_t g0, __mmask16 valid0, __mmask16 valid1, __m512 laux0,
           __m512 laux1) {
  __m512 acc[M][2];
  tile<M>(a.panel, a.qpack + g0 * a.dim, a.dim, acc);
  select<M, K>(a, g0, acc, valid0, valid1, laux0, laux1);
}

inline void lane_masks(int nrows, __mmask16* v0, __mmask16* v1) {
  const unsigned valid = nrows >= 32 ? 0xFFFFFFFFu : ((1u << nrows) - 1);
  *v0 = static_cast<__mmask16>(valid & 0xFFFF);
  *v1 = static_cast<__mmask16>(valid >> 16);
}

// Fused small-query path. Each 16-row half panel is copied, in address order, into a scratch
// block (the next half panel is prefetched into L2 meanwhile, also in address order): sequential
// reads stream at full memory bandwidth, where reading 16-32 rows in step does not. Each 16 x 16
// block of the scratch is then transposed in registers and its columns feed the accumulators in
// d order (the same fma chain as tile()), so results are identical to the packed path.
// One 16 x 16 block of the stage (rows past `rows` are masked to zero). Half of the transpose is
// done by loads: register t of group b gathers, in its 128-bit lane L, columns 4b..4b+3 of row
// 4L + t (one plain and three masked broadcast loads, cheap from L1), so only the in-lane 4 x 4
// transposes need shuffles: 32 per block instead of 64, and shuffles bound this path.
template <int M, int H, bool kFullCols>
inline void fused_block(const float* stage, int64_t sd, __mmask16 valid, int64_t d0, int w,
                        const float* qpack, __m512 (&acc)[M][2], __m512& norm, __mmask16& bad) {
  __m512 o[16];
#pragma GCC unroll 4
  for (int b = 0; b < 4; ++b) {
    const float* base = stage + d0 + 4 * b;
    __m512 x[4];
#pragma GCC unroll 4
    for (int t = 0; t < 4; ++t) {
      x[t] = _mm512_broadcast_f32x4(_mm_load_ps(base + t * sd));
      x[t] = _mm512_mask_broadcast_f32x4(x[t], 0x00F0, _mm_load_ps(base + (4 + t) * sd));
      x[t] = _mm512_mask_broadcast_f32x4(x[t], 0x0F00, _mm_load_ps(base + (8 + t) * sd));
      x[t] = _mm512_mask_broadcast_f32x4(x[t], 0xF000, _mm_load_ps(base + (12 + t) * sd));
    }
    const __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(x[0], x[1]));
    const __m512d t1 = _mm512_castps_pd(_mm512_unpackhi_ps(x[0], x[1]));
    const __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(x[2], x[3]));
    const __m512d t3 = _mm512_castps_pd(_mm512_unpackhi_ps(x[2], x[3]));
    // Lane j of o[c] is row j; stage rows past the panel hold stale data and become 0.
    o[4 * b + 0] = _mm512_maskz_mov_ps(valid, _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)));
    o[4 * b + 1] = _mm512_maskz_mov_ps(valid, _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2)));
    o[4 * b + 2] = _mm512_maskz_mov_ps(valid, _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)));
    o[4 * b + 3] = _mm512_maskz_mov_ps(valid, _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3)));
  }
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c) {
    if (!kFullCols && c >= w) break;
    norm = _mm512_fmadd_ps(o[c], o[c], norm);
    bad |= _mm512_fpclass_ps_mask(o[c], 0x01 | 0x08 | 0x10 | 0x80);
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
      acc[i][H] = _mm512_fmadd_ps(_mm512_set1_ps(qpack[(d0 + c) * M + i]), o[c], acc[i][H]);
    }
  }
}

// Rows [16H, 16H + 16) of the panel.
template <int M, int H>
inline void fused_half(const float* g, int64_t stride, const ScanArgs& a, float* stage,
                       __m512 (&acc)[M][2], __m512& norm, __mmask16& bad) {
  const int rows = a.nrows - 16 * H < 16 ? a.nrows - 16 * H : 16;
  if (rows <= 0) return;
  const int64_t dim = a.dim;
  // Stage row stride: D rounded up to 16 floats (aligned loads) plus one cache line, so the 16
  // rows of a block fall in different L1 sets (a power-of-two stride would put them in two).
  const int64_t sd = ((dim + 15) & ~int64_t(15)) + 16;
  for (int i = 0; i < rows; ++i) {
    const float* src = g + (16 * H + i) * stride;
    float* dst = stage + i * sd;
    int64_t c = 0;
    for (; c + 16 <= dim; c += 16) _mm512_store_ps(dst + c, _mm512_loadu_ps(src + c));
    if (c < dim) {  // the tail block is stored whole: columns past D read as zeros
      const __mmask16 m = static_cast<__mmask16>((1u << (dim - c)) - 1);
      _mm512_store_ps(dst + c, _mm512_maskz_loadu_ps(m, src + c));
    }
  }
  const __mmask16 valid = static_cast<__mmask16>(rows >= 16 ? 0xFFFF : ((1u << rows) - 1));
  // The next 16 rows, in address order, spread over this half's blocks (a prefetch never faults).
  const uintptr_t next = reinterpret_cast<uintptr_t>(g + (16 * H + 16) * stride);
  const int64_t blocks = (dim + 15) / 16;
  const int64_t lines = stride == dim ? (16 * dim * 4 + 63) / 64 : 0;
  const int64_t per_block = (lines + blocks - 1) / blocks;
  const int64_t full = dim - dim % 16;
  int64_t line = 0;
  for (int64_t d0 = 0; d0 < full; d0 += 16) {
    for (int64_t l = 0; l < per_block && line < lines; ++l, ++line) {
      _mm_prefetch(reinterpret_cast<const char*>(next + uintptr_t(line * 64)), _MM_HINT_T1);
    }
    fused_block<M, H, true>(stage, sd, valid, d0, 16, a.qpack, acc, norm, bad);
  }
  if (full < dim) {
    fused_block<M, H, false>(stage, sd, valid, full, static_cast<int>(dim - full), a.qpack, acc,
                             norm, bad);
  }
}

template <int M, ScanKey K>
bool fused(const float* g, int64_t stride, const ScanArgs& a) {
  __m512 acc[M][2];
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  __m512 norm0 = _mm512_setzero_ps(), norm1 = _mm512_setzero_ps();
  __mmask16 bad = 0;
  float* stage = const_cast<float*>(a.panel);  // scratch: 16 x (round_up(D, 16) + 16) floats
  fused_half<M, 0>(g, stride, a, stage, acc, norm0, bad);
  fused_half<M, 1>(g, stride, a, stage, acc, norm1, bad);
  if (bad != 0) return false;
  alignas(64) float n2[kNr];
  _mm512_store_ps(n2, norm0);
  _mm512_store_ps(n2 + 16, norm1);
  alignas(64) float aux[kNr] = {};
  if (!a.prepare_lanes(a.lanes_ctx, n2, a.nrows, aux)) return false;  // also the overflow check
  __mmask16 v0, v1;
  lane_masks(a.nrows, &v0, &v1);
  select<M, K>(a, 0, acc, v0, v1, _mm512_load_ps(aux), _mm512_load_ps(aux + 16));
  return true;
}

// Gathered rows: like pack_block, but each of the 16 rows comes from its own pointer and the
// transposed columns feed the dot and norm chains directly.
template <bool kFullCols>
inline void gather_block(const float* const* rows, int nrows, int h, int64_t d0, int w,
                         const float* q, __m512& acc, __m512& norm, __mmask16& bad) {
  const __mmask16 cols = static_cast<__mmask16>(kFullCols ? 0xFFFF : ((1u << w) - 1));
  __m512 r[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    const int j = 16 * h + i;
    r[i] = j < nrows ? (kFullCols ? _mm512_loadu_ps(rows[j] + d0) : _mm512_maskz_loadu_ps(cols, rows[j] + d0))
                     : _mm512_setzero_ps();
  }
  transpose16(r);
#pragma GCC unroll 16
  for (int c = 0; c < 16; ++c) {
    if (!kFullCols && c >= w) break;
    acc = _mm512_fmadd_ps(_mm512_set1_ps(q[d0 + c]), r[c], acc);
    norm = _mm512_fmadd_ps(r[c], r[c], norm);
    bad |= _mm512_fpclass_ps_mask(r[c], 0x01 | 0x08 | 0x10 | 0x80);
  }
}

bool score_rows(const float* const* rows, int nrows, const float* q, int64_t dim, float* dots,
                float* norms2) {
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  __m512 norm[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  __mmask16 bad = 0;
  const int64_t full = dim - dim % 16;
  const int halves = nrows > 16 ? 2 : 1;
  for (int64_t d0 = 0; d0 < full; d0 += 16) {
    gather_block<true>(rows, nrows, 0, d0, 16, q, acc[0], norm[0], bad);
    if (halves == 2) gather_block<true>(rows, nrows, 1, d0, 16, q, acc[1], norm[1], bad);
  }
  if (full < dim) {
    const int w = static_cast<int>(dim - full);
    gather_block<false>(rows, nrows, 0, full, w, q, acc[0], norm[0], bad);
    if (halves == 2) gather_block<false>(rows, nrows, 1, full, w, q, acc[1], norm[1], bad);
  }
  _mm512_storeu_ps(dots, acc[0]);
  _mm512_storeu_ps(dots + 16, acc[1]);
  _mm512_storeu_ps(norms2, norm[0]);
  _mm512_storeu_ps(norms2 + 16, norm[1]);
  return bad == 0;
}

template <ScanKey K>
bool scan_rows_k(const float* g, int64_t stride, const ScanArgs& a) {
  switch (a.nq) {
    case 1: return fused<1, K>(g, stride, a);
    case 2: return fused<2, K>(g, stride, a);
    case 3: return fused<3, K>(g, stride, a);
    case 4: return fused<4, K>(g, stride, a);
    default: return false;
  }
}

bool scan_rows(const float* g, int64_t stride, const ScanArgs& a) {
  switch (a.key) {
    case ScanKey::kIp: return scan_rows_k<ScanKey::kIp>(g, stride, a);
    case ScanKey::kCosine: return scan_rows_k<ScanKey::kCosine>(g, stride, a);
    case ScanKey::kL2: return scan_rows_k<ScanKey::kL2>(g, stride, a);
  }
  return false;
}

template <ScanKey K>
void scan(const ScanArgs& a) {
  __mmask16 v0, v1;
  lane_masks(a.nrows, &v0, &v1);
  const __m512 l0 = K == ScanKey::kIp ? _mm512_setzero_ps() : _mm512_loadu_ps(a.lane_aux);
  const __m512 l1 = K == ScanKey::kIp ? _mm512_setzero_ps() : _mm512_loadu_ps(a.lane_aux + 16);
  int64_t g0 = 0;
  for (; g0 + kMr <= a.nq; g0 += kMr) group<kMr, K>(a, g0, v0, v1, l0, l1);
  switch (a.nq - g0) {
    case 1: group<1, K>(a, g0, v0, v1, l0, l1); break;
    case 2: group<2, K>(a, g0, v0, v1, l0, l1); break;
    case 3: group<3, K>(a, g0, v0, v1, l0, l1); break;
    case 4: group<4, K>(a, g0, v0, v1, l0, l1); break;
    case 5: group<5, K>(a, g0, v0, v1, l0, l1); break;
    case 6: group<6, K>(a, g0, v0, v1, l0, l1); break;
    case 7: group<7, K>(a, g0, v0, v1, l0, l1); break;
    case 8: group<8, K>(a, g0, v0, v1, l0, l1); break;
    case 9: group<9, K>(a, g0, v0, v1, l0, l1); break;
    case 10: group<10, K>(a, g0, v0, v1, l0, l1); break;
    case 11: group<11, K>(a, g0, v0, v1, l0, l1); break;
    default: break;
  }
}

void scan_panel(const ScanArgs& a) {
  switch (a.key) {
    case ScanKey::kIp: return scan<ScanKey::kIp>(a);
    case ScanKey::kCosine: return scan<ScanKey::kCosine>(a);
    case ScanKey::kL2: return scan<ScanKey::kL2>(a);
  }
}

}  // namespace

const SearchKernels& search_kernels_avx512() {
  static const SearchKernels k{kNr, kMr, &pack_panel, &scan_panel, &scan_rows, 4, &score_rows};
  return k;
}

}  // namespace core
}  // namespace vlk
