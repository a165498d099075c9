// SCAN-style local (word-region) scoring of candidate pairs (core/search, seed 004's reference local
// scorer and AAHR's cross-modal relevance): re-rank the candidates a global search returned.
// For a query's words W (L_q x D, L_q = its valid words) and a candidate's regions V (R x D):
//   A0 = W V^T (L_q x R, fp32 multiply-add over D ascending: scan_kernel.hpp), A = LeakyReLU_0.1(A0),
//   A[:, r] /= (||A[:, r]|| + 1e-8)              L2-normalised over the (valid) words, per region
//   't2i-lse' / 't2i-mean' (SCAN t2i, kuanghuei/SCAN model.py xattn_score_t2i):
//     alpha_w = softmax_r(lambda1 A[w, :]), attended a_w = sum_r alpha_wr v_r,
//     r_w = (w_w . a_w) / max(||w_w|| ||a_w||, 1e-8)       (cosine with the old-PyTorch clamp)
//     score = (1 / lambda2) log sum_w exp(lambda2 r_w)    ('t2i-lse', max-subtracted)
//           = mean_w r_w                                   ('t2i-mean')
//     Computed without forming a_w when candidates repeat: w_w . a_w = sum_r alpha_wr A0[w, r] and
//     ||a_w||^2 = alpha_w^T (V V^T) alpha_w with V V^T computed once per region set (GEMM) and
//     alpha rounded to fp32 for that product; otherwise a_w = alpha V by GEMM. Both are the same
//     quantities (fp32 products, double elsewhere).
//   'mean-max' (AAHR's R_tv): score = mean_w max_r A[w, r].
// Words and regions are used as given (SCAN/AAHR L2-normalise them upstream). All regions of a
// set count (no region mask). Candidates: a region bank (N x R x D) with CSR lists
// (offsets[Q + 1], rows), or dense (Q x C x R x D: query q's candidates are bank rows q C .. q C +
// C - 1). A row listed twice is scored twice. Threaded over queries; a query's words are packed
// once and each candidate's regions stream from the bank in place (no gather); results do not
// depend on the thread count. Top-k: the k best candidates of each query, ties by lower position in the
// query's list; fewer than k candidates: padding (-1, NaN).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

enum class ScanMode { kT2iLse = 0, kT2iMean = 1, kMeanMax = 2 };

/// Parses "t2i-lse" | "t2i-mean" | "mean-max"; kInvalidArg otherwise.
Status parse_scan_mode(const char* name, ScanMode* out);

struct ScanSimilarityArgs {
  const float* words = nullptr;           // Q x L x D
  int64_t q = 0, l = 0, d = 0;
  const int32_t* word_lengths = nullptr;  // Q, in 1..L; null: all L
  const float* regions = nullptr;         // N x R x D region sets
  int64_t items = 0, r = 0;
  const int64_t* offsets = nullptr;       // Q + 1 CSR offsets (offsets[0] = 0); null: dense
  const int32_t* rows = nullptr;          // candidate bank rows (CSR)
  int64_t candidates = 0;                 // dense: C per query (N must equal Q C)
  ScanMode mode = ScanMode::kT2iLse;
  double lambda1 = 9.0, lambda2 = 6.0;
  int64_t k = 0;                          // 0: scores only
};

struct ScanSimilarityOut {
  float* scores = nullptr;        // one per candidate, in list order (offsets[Q] or Q C)
  int32_t* positions = nullptr;   // Q x k: position in the query's candidate list, best first
  int32_t* indices = nullptr;     // Q x k: bank row of that candidate
  float* top_scores = nullptr;    // Q x k
  int32_t* counts = nullptr;      // Q: valid top-k entries
};

/// Errors: kEmpty (a size 0), kInvalidK (k < 0), kInvalidArg (null inputs, bad offsets, a row
/// outside 0..N-1, a word length outside 1..L, dense N != Q C, lambdas not finite and > 0),
/// kNonFinite (naming words or regions), kOutOfMemory, kAborted.
Status scan_similarity(const ScanSimilarityArgs& a, const ScanSimilarityOut& out, const Context& ctx);

}  // namespace core
}  // namespace vlk
