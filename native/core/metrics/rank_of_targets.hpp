// Streaming rank of ground-truth items (core/metrics): for queries Q x D against a gallery N x D,
// the 0-based position of each ground-truth item in its query's descending ordering, counted block
// by block from GEMM tiles (the Q x N score matrix is never held, nothing is sorted); and the
// both-directions pass of the Flickr30K / COCO protocol (images N x D, captions per*N x D).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace core {

/// How an exact score tie with the target counts (s: the item's key, s_g: the target's key).
enum class TieRule {
  kStable = 0,       // #{s > s_g} + #{s == s_g and index < g}: a stable descending sort
  kOptimistic = 1,   // #{s > s_g}
  kPessimistic = 2,  // #{s >= s_g} - 1 (the target itself is not counted)
};

/// "stable", "optimistic", "pessimistic".
const char* tie_rule_name(TieRule t);
/// Parses a tie rule name; kInvalidArg otherwise.
Status parse_tie_rule(const char* name, TieRule* out);

struct RankArgs {
  MatrixView<const float> queries;  // Q x D, row-major
  MatrixView<const float> gallery;  // N x D, row-major (N <= 2^31 - 1)
  Metric metric = Metric::kInnerProduct;
  TieRule ties = TieRule::kStable;
  const int64_t* gt_offsets = nullptr;   // Q + 1 non-decreasing offsets, gt_offsets[0] == 0 (CSR)
  const int32_t* gt_ids = nullptr;       // gt_offsets[Q] gallery rows: query q's targets are
                                         // gt_ids[gt_offsets[q] .. gt_offsets[q + 1]), any order
  const int64_t* exclude_offsets = nullptr;  // optional CSR like gt_offsets (null: none)
  const int32_t* exclude_ids = nullptr;      // rows removed from query q's ordering (CIRR's
                                             // reference image); duplicates are fine; a row that
                                             // is also one of q's targets is kInvalidArg
};

struct RankOut {
  int32_t* ranks = nullptr;  // gt_offsets[Q]: rank of each target under args.ties (CSR order)
  int32_t* best = nullptr;   // Q: min rank over the query's targets, -1 for a query with none
  int64_t ties = 0;          // queries whose best rank differs between the optimistic and the
                             // pessimistic rule: an exact score tie at the decision boundary
};

/// Ranks every target of every query. The key an item is ordered by:
///  - ip: the fp32 dot product q.g as core::gemm computes it;
///  - cosine: dot * (1/|g|) (fp32; 1/|q| is a positive per-query constant and cannot change the
///    order; a zero vector has key 0);
///  - l2: 2 q.g - |g|^2, i.e. ascending squared distance without the per-query |q|^2.
/// A target's own key is computed with the same GEMM element sequence, so a duplicated gallery row
/// ties it exactly. Excluded rows never count. Results do not depend on the thread count or ISA.
/// Errors: kEmpty (Q, N or D is 0), kDimMismatch, kShape (N above int32), kInvalidArg (offsets,
/// ids out of 0..N-1, a target that is also excluded), kNonFinite (NaN / infinity, or magnitudes
/// whose products overflow fp32), kAborted (ctx.cancel, polled between tiles), kOutOfMemory.
Status rank_of_targets(const RankArgs& args, RankOut& out, const Context& ctx);

struct CrossModalArgs {
  MatrixView<const float> images;    // N x D
  MatrixView<const float> captions;  // (N * per) x D, image-major: caption c belongs to image c / per
  int64_t per = 5;
  Metric metric = Metric::kInnerProduct;
  TieRule ties = TieRule::kStable;
};

struct CrossModalOut {
  int32_t* i2t = nullptr;  // N: min over image i's captions of their rank among all captions
  int32_t* t2i = nullptr;  // N * per: rank of image c / per among all images for caption c
  int64_t ties_i2t = 0;    // as RankOut::ties, per direction
  int64_t ties_t2i = 0;
};

/// Both directions from one pass over the images x captions tiles (half the GEMM work of two
/// rank_of_targets calls, with identical results: each direction keys by its own gallery side).
/// Errors: as rank_of_targets, plus kShape (captions not N * per rows) and kInvalidArg (per < 1).
Status cross_modal_ranks(const CrossModalArgs& args, CrossModalOut& out, const Context& ctx);

}  // namespace core
}  // namespace vlk
