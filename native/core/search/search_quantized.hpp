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
//
// Token-max items (QuantSearchArgs::tokens = T > 1: item i is rows iT..iT+T-1, its score
// S_i = max over its rows, as core::search with SearchArgs::tokens). The bound stays per row; the
// filters are applied to the row's item before a row counts. t is the k-th largest L over
// DISTINCT items (each item counted once, with its largest L; two rows of one item are one item):
// every one of those k items has S_item >= its L >= t, so at least k items score >= t. Let r* be
// the row where an item reaches its score S_i. If the item belongs in the top k, S_i >= t (else
// k items would beat it), so U_{r*} >= S_{r*} = S_i >= t and r* is reported and kept (for every
// value t takes, since t only rises). Candidates are grouped per item with U_i = max U over its
// kept rows (>= S_i for a top-k item); each is re-scored in fp32 over its kept rows (each row's key
// exactly as core::search computes it, item key = their max) in decreasing U_i, stopping once the
// next U_i is below the k-th re-scored item key. Every re-scored key is <= the item's S_i, and for
// a top-k item it is S_i exactly (r* is among its kept rows; rows not kept have U < t <= S_i, so
// they are not its max). A top-k item is not skipped by the stop: U_i >= S_i, and a k-th key above
// that would mean k items scoring more. Items that are not in the top k get keys <= their S, so
// they rank no better than in core::search and stay out. So the top k items (ties: lower item) and
// their scores are core::search's. (Re-scoring only the kept rows, not all T, is what keeps the
// re-score cheap: typically one or two rows of an item pass.)
// Parts over row ranges are cut at panel boundaries, so an item may straddle two parts: the part
// holding its r* gives it the exact key (the argument above holds per part), the other a key no
// larger, and the merge keeps each item's largest.

#pragma once

#include <cstdint>
#include <vector>

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
  int64_t k = 0;                    // >= 1 (more than the items: the rest of each row is padding)
  const uint64_t* allow = nullptr;  // optional bitset over items (rows when tokens = 1)
  const int64_t* exclude_offsets = nullptr;  // optional CSR per query (Q + 1)
  const int32_t* exclude_rows = nullptr;     // items, each in 0..items-1
  /// Rows per item (token-max search, as SearchArgs::tokens): the gallery holds rows / tokens
  /// items of `tokens` consecutive rows, an item's key is the best of its rows' keys, and indices,
  /// k, allow, exclude and ties refer to items. 1: every row an item.
  int64_t tokens = 1;
};

struct QuantSearchOut {
  int32_t* indices = nullptr;   // Q x k items, best first (ties: lower item); padding -1
  float* scores = nullptr;      // Q x k; padding NaN. Exact mode: as search; approximate: the
                                // scan's estimate (ip/cosine) or float64 |q|^2 + |g|^2 - 2A (l2),
                                // of the item's best reported row
  int32_t* counts = nullptr;    // optional, Q
  int32_t* rescored = nullptr;  // optional, Q: items re-scored in fp32 (each over those of its rows
                                // whose bound passed; 0 in approximate mode; with several parts
                                // over row ranges an item straddling two parts may count twice)
};

/// Errors: kEmpty, kDimMismatch, kInvalidK, kShape (rows not whole items of `tokens`), kInvalidArg
/// (null output, an exclude offset list that decreases, an excluded item outside 0..items-1),
/// kNonFinite (queries), kAborted, kOutOfMemory.
Status search_quantized(const QuantSearchArgs& args, const QuantSearchOut& out, const Context& ctx);

/// A QuantGallery made for one call (quantize_gallery): owns the codes and per-row arrays; `f32`
/// points at the caller's fp32 rows (zero copy) or, when their row stride is not the dimension, at
/// a dense copy held here. Neither copyable nor movable (the view points into it).
struct QuantGalleryBuffers {
  QuantGallery gallery;
  void* codes = nullptr;  // 64-byte aligned, whole panels (+ one spare), freed with the object
  size_t codes_bytes = 0;  // its size (a later quantize_gallery into the same buffers reuses it)
  std::vector<float> scale, norm2, rnorm, hnorm, gnorm;
  std::vector<int32_t> csum;
  std::vector<float> dense;  // the strided rows' copy (else empty)

  QuantGalleryBuffers() = default;
  ~QuantGalleryBuffers();
  QuantGalleryBuffers(const QuantGalleryBuffers&) = delete;
  QuantGalleryBuffers& operator=(const QuantGalleryBuffers&) = delete;
};

/// Quantizes a fp32 gallery (rows x cols, any row stride) to `storage` (kBF16 or kI8) for
/// `metric`, rows split over ctx's pool: an exact-mode QuantGallery in out->gallery whose fp32 rows
/// are the caller's (which must outlive every search over it and stay unchanged). Errors:
/// kInvalidArg (storage kF32, null data), kEmpty, kShape (rows beyond int32), kNonFinite (NaN or
/// an infinity: the same message as core::search, naming "gallery" with the first such row and
/// column; a row whose squared norm exceeds 4.2e37: too large, as search), kAborted, kOutOfMemory.
Status quantize_gallery(Storage storage, Metric metric, const MatrixView<const float>& gallery,
                        QuantGalleryBuffers* out, const Context& ctx);

/// One-shot core::search through a reduced-precision scan: the same contract as core::search
/// (validation, error codes and messages, tokens, filters, and results bit for bit: indices, scores,
/// counts), computed by quantizing the gallery to `storage` (as quantize_gallery does) and
/// search_quantized in exact mode, in blocks of about 65,536 rows of whole items (so the codes
/// take 2 bytes (bf16) or 1 byte (i8) per value of a block, not of the gallery), the blocks' lists
/// merged by (key, lower item). Faster than search where the bf16 / int8 scan is (AVX-512 BF16 /
/// VNNI) and many queries share the call: the quantization is paid on every call. `rescored`
/// (optional, Q): items re-scored in fp32, summed over the blocks. kF32 runs core::search.
Status search_reduced(const SearchArgs& args, Storage storage, const SearchOut& out, const Context& ctx,
                      int32_t* rescored = nullptr);

}  // namespace core
}  // namespace vlk
