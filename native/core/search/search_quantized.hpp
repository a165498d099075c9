// Search over reduced-precision storage (core/search): a gallery kept as bf16 or int8 codes is
// scanned cheaply (AVX-512 BF16 / VNNI where the CPU has them, else AVX2 + FMA: bf16 widened to
// fp32, int8 through 16-bit multiply-adds; portable code otherwise), and the candidates are re-scored
// from the fp32 vectors, so the result is exactly the fp32 top-k: the same ids and bit-identical
// scores as core::search over the fp32 vectors. An approximate mode skips the re-score.
//
// Why the result is exact. For a query q and a row g with codes g^ (residual r_g = g - g^) and the
// query's codes q^ (residual r_q), the scan value A approximates the fp32 score S that search
// reports; with gamma_n = n u / (1 - n u), u = 2^-24:
//   |A - q^.g^| <= gamma_{D+8} |q^| |g^|                    (fp32 accumulation and scaling; int8
//                                                            dot products are exact integers)
//   |q^.g^ - q.g| <= |q| |r_g| + |g^| |r_q|                  (Cauchy-Schwarz on q.(g - g^) and
//                                                            (q - q^).g^)
//   |q.g - S| <= gamma_{D+8} |q| |g|                        (search's fp32 fma chain; cosine and l2
//                                                            as documented below)
// so e(q, g) bounds |A - S| per row, from per-row norms stored when the row was added (rounded up).
// Each row gets an interval L = A - e <= S <= U = A + e (rounded to the fp32 key space, which
// keeps the order because rounding is monotone). Let t be the k-th largest L over the allowed rows:
// at least k rows have S >= t, so a row with U < t cannot be in the top k. The scan keeps every row
// with U >= t (the kernel tests A against t - max e in registers; exact per-row U in the callback),
// then re-scores them in fp32 in decreasing U and stops once the next U is below the k-th exact
// score. Rows skipped have S <= U < that score, so the top k (ties: lower row) is the fp32 top k.
//   cosine: codes of q/|q| and g/|g| (so A estimates the cosine); search's cosine is
//           (dot * qinv) * ginv in fp32, within 4 gamma_{D+8} of the true cosine;
//   l2:     the scan key 2A - |g|^2 bounds -|q - g|^2 + |q|^2 within 2 e plus its own rounding;
//           re-scored distances are float64 (as search computes them), rounded once.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"
#include "search/search.hpp"
#include "search/search_quantized_kernel.hpp"

namespace vlk {
namespace core {

/// How an index stores its vectors.
enum class Storage : uint32_t { kF32 = 0, kBF16 = 1, kI8 = 2 };

/// "f32", "bf16", "i8".
const char* storage_name(Storage s);
/// Parses a storage name; kInvalidArg otherwise.
Status parse_storage(const char* name, Storage* out);

/// Dimensions per 32-bit code unit: 2 (bf16) or 4 (int8).
inline int quant_step(Storage s) { return s == Storage::kI8 ? 4 : 2; }
/// Dimension padded to whole units.
inline int64_t quant_dpad(Storage s, int64_t dim) {
  const int64_t st = quant_step(s);
  return (dim + st - 1) / st * st;
}
/// Bytes of one panel of codes (kQuantPanel rows).
inline int64_t quant_panel_bytes(Storage s, int64_t dim) {
  return quant_dpad(s, dim) * kQuantPanel * (s == Storage::kI8 ? 1 : 2);
}

/// A gallery of codes and what the scan and the bound need per row. Rows are grouped in panels of
/// kQuantPanel: panel p holds rows 32p..32p+31 as units u = 0..dpad/step - 1, each unit the 32
/// rows' `step` consecutive codes: code(row 32p + j, dim step*u + t) at element
/// p * dpad * 32 + (u * 32 + j) * step + t (uint16 bf16 bits or int8). Per-row arrays have room
/// for whole panels (padding rows: codes 0, every value 0).
struct QuantGallery {
  Storage storage = Storage::kBF16;
  Metric metric = Metric::kInnerProduct;
  int64_t rows = 0;
  int64_t dim = 0;
  const void* codes = nullptr;
  const float* scale = nullptr;     // i8: per row, value = scale * code (0 for a zero row)
  const int32_t* csum = nullptr;    // i8: per row, sum of the codes
  const float* norm2 = nullptr;     // l2: per row |g|^2 rounded to fp32 (the scan's lane offset)
  const float* rnorm = nullptr;     // per row |g - g^| (cosine: of g/|g|), rounded up
  const float* hnorm = nullptr;     // per row |g^|, rounded up
  const float* gnorm = nullptr;     // per row |g|, rounded up
  const float* f32 = nullptr;       // rows x dim fp32 vectors (row stride dim) for the re-score;
                                    // null: approximate mode
};

/// Fills codes and the per-row arrays of rows [row0, row0 + n) of a QuantGallery whose buffers
/// are writable (the caller owns them, sized for whole panels). Values must be finite.
void quantize_rows(Storage storage, Metric metric, const float* src, int64_t n, int64_t dim, int64_t row0,
                   void* codes, float* scale, int32_t* csum, float* norm2, float* rnorm, float* hnorm,
                   float* gnorm);

/// Reconstructs row `row` (dim floats) from its codes (what an approximate index returns for get;
/// cosine codes hold the direction g / |g|, so that is what comes back).
void dequantize_row(const QuantGallery& g, int64_t row, float* out);

/// Copies row `row`'s codes out, row-major (dim uint16 bf16 bits or int8): the file layout.
void get_codes_row(const QuantGallery& g, int64_t row, void* out);

/// Approximate mode (no fp32): sets row `row` from row-major codes `src` (and its i8 scale) and
/// derives every per-row value from the codes alone, so an index loaded from codes is the index
/// that was saved: csum, norm2 = |g^|^2 (the l2 scan's offset), hnorm = gnorm = |g^|, rnorm = 0.
void set_codes_row(Storage storage, const void* src, float scale_value, int64_t dim, int64_t row, void* codes,
                   float* scale, int32_t* csum, float* norm2, float* rnorm, float* hnorm, float* gnorm);

struct QuantSearchArgs {
  MatrixView<const float> queries;  // Q x dim
  QuantGallery gallery;
  int64_t k = 0;                    // >= 1
  const uint64_t* allow = nullptr;  // optional bitset over rows
  const int64_t* exclude_offsets = nullptr;  // optional CSR per query (Q + 1)
  const int32_t* exclude_rows = nullptr;
};

struct QuantSearchOut {
  int32_t* indices = nullptr;   // Q x k rows, best first (ties: lower row); padding -1
  float* scores = nullptr;      // Q x k; padding NaN. Exact mode: as search; approximate: the
                                // scan's estimate (ip/cosine) or float64 |q|^2 + |g|^2 - 2A (l2)
  int32_t* counts = nullptr;    // optional, Q
  int32_t* rescored = nullptr;  // optional, Q: rows re-scored in fp32 (0 in approximate mode)
};

/// Errors: kEmpty, kDimMismatch, kInvalidK, kNonFinite (queries), kAborted, kOutOfMemory.
Status search_quantized(const QuantSearchArgs& args, const QuantSearchOut& out, const Context& ctx);

}  // namespace core
}  // namespace vlk
