// Per-ISA kernel table for search (core/search). Each search_kernel_<isa>.cpp fills one table and
// includes only this header plus <immintrin.h>; the driver (search.cpp) picks a table per call.
//
// Data layout shared by every path:
//  - a gallery *panel* holds `panel_width` (NR) rows transposed: panel[d * NR + j] = g[row0 + j][d],
//    rows past the end of the gallery are zero; 64-byte aligned;
//  - a *query group* holds up to `query_group` (MR) queries interleaved: qg[d * m + i] = q[i][d],
//    where m is the group's own size (the last group may be smaller).
// Every path computes each (query, row) dot product the same way: one fp32 accumulator per pair,
// acc = fma(q[d], g[d], acc) for d = 0..D-1 starting from +0. That is why scalar, AVX2 and AVX-512
// give bit-identical scores, whatever the tiling, thread count or query batching.
#pragma once

#include <cstdint>

namespace vlk {
namespace core {

/// Scan-key transform applied to the dot product before selection (all fp32, fixed op order):
///  kIp:     key = acc
///  kCosine: key = (acc * q_aux[q]) * lane_aux[j]        (inverse norms)
///  kL2:     key = (acc + acc) - lane_aux[j]             (squared gallery norms; larger is nearer)
enum class ScanKey : int { kIp = 0, kCosine = 1, kL2 = 2 };

/// Reports the rows of one panel whose key beat thr[q] when the kernel tested them: lane j (row
/// row0 + j, key keys[j]) for each set bit j of `lanes`. May raise thr[q].
using AcceptFn = void (*)(void* sink, int64_t q, int64_t row0, const float* keys, uint32_t lanes);

struct ScanArgs {
  const float* panel = nullptr;     // D x NR, see above (scan_rows: 16 x (round_up(D, 16) + 16)
                                    // floats of scratch)
  const float* lane_aux = nullptr;  // NR values per ScanKey (unused for kIp)
  int64_t dim = 0;                  // D
  int nrows = 0;                    // valid lanes in the panel (1..NR)
  int64_t row0 = 0;                 // gallery index of lane 0
  ScanKey key = ScanKey::kIp;
  const float* qpack = nullptr;     // all query groups of the chunk, group g at qpack + g*MR*D
  int64_t nq = 0;                   // queries in the chunk
  const float* q_aux = nullptr;     // per query (kCosine: inverse norms)
  float* thr = nullptr;             // per query acceptance threshold in key space (read before
                                    // each group; accept() may raise it)
  void* sink = nullptr;
  AcceptFn accept = nullptr;
  /// Fused path only, called for every metric: checks the panel's squared norms and turns them
  /// into lane_aux before any key is compared; returns false to stop (a norm too large).
  bool (*prepare_lanes)(void* ctx, const float* norms2, int nrows, float* lane_aux) = nullptr;
  void* lanes_ctx = nullptr;
};

struct SearchKernels {
  int panel_width;  // NR
  int query_group;  // MR

  /// Packs `nrows` (1..NR) rows of g (row stride `stride`, D columns) into `panel` (D x NR, zero
  /// padded) and writes norms2[j] = sum_d g[j][d]^2 (fma chain, d ascending; 0 for padding).
  /// Returns false if any packed value is NaN or infinite (the panel is then unspecified).
  bool (*pack_panel)(const float* g, int64_t stride, int64_t dim, int nrows, float* panel,
                     float* norms2);

  /// Scores every query of the chunk against one panel and reports candidates through accept().
  void (*scan_panel)(const ScanArgs& args);

  /// Optional fused path for a few queries (nq <= small_queries): reads `nrows` gallery rows at
  /// `g` (row stride `stride`) directly, transposing in registers instead of storing a panel,
  /// computes their squared norms (calling args.prepare_lanes with them), then does what
  /// scan_panel does. Same arithmetic, same results. Returns false if a value is NaN/Inf or
  /// prepare_lanes refused. Null where the ISA has no such path.
  bool (*scan_rows)(const float* g, int64_t stride, const ScanArgs& args);
  int small_queries;

  /// Gathered rows (rerank): for the `nrows` (1..NR) rows at rows[0..nrows), dots[j] = q . row_j
  /// and norms2[j] = row_j . row_j, each the same fma chain over d ascending as above; entries past
  /// nrows are 0. Returns false if a row holds NaN or an infinity.
  bool (*score_rows)(const float* const* rows, int nrows, const float* q, int64_t dim, float* dots,
                     float* norms2);
};

const SearchKernels& search_kernels_scalar();
const SearchKernels& search_kernels_avx2();
const SearchKernels& search_kernels_avx512();
/// arm64 builds only (vlk_neon_sources).
const SearchKernels& search_kernels_neon();

}  // namespace core
}  // namespace vlk
