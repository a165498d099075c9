// InfoNCE against a memory bank (core/losses, seed 004): MoCo's loss as AAHR uses it, with the
// two extensions of issue 7 (in-batch negatives, same-id masking). For query i (q_i, its own key
// k_i, the bank's entries Queue_m, m = 0..K-1, and with in_batch_negatives the other keys k_j):
//   logits_i = [ q_i.k_i | q_i.k_j (j != i, in-batch) | q_i.Queue_m ] * scale      (scale = 1 / tau)
//   loss = (1/B) sum_i ( logsumexp(logits_i) - logits_i[0] )       (positive at column 0)
// mask_same_id: a negative whose id equals the query's id is excluded (its logit is -inf, i.e. it
// is left out of the logsumexp): bank entries with queue_id == query_id[i], and in-batch keys k_j
// with query_id[j] == query_id[i] (key j belongs to sample j). The positive column is never
// masked, so no row is empty. Bank entries with id -1 ("no id") are never masked.
// Gradients (the bank is a constant; keys get the positive and in-batch terms):
//   p_i = softmax(logits_i);  G_k[i, j] = scale (p_i,kj - [j == i]) / B  (p of column k_j; k_i's is
//   the positive's),  G_q[i, m] = scale p_i,m / B
//   dQ = G_k K + G_q Queue,   dK = G_k^T Q
// Products run through core::gemm (fp32, results independent of the thread count); the softmax
// rows are float64 with the row maximum subtracted (each exp kept in fp32 for the gradient pass,
// p = e / sum); gradients are rounded to fp32.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct MemoryInfoNceArgs {
  const float* queries = nullptr;  // B x D
  const float* keys = nullptr;     // B x D (row i: the positive of query i)
  int64_t b = 0, d = 0;
  const float* queue = nullptr;    // K x D bank entries (any order); K may be 0
  int64_t k = 0;
  const int64_t* queue_ids = nullptr;  // K ids (-1: no id), optional
  const int64_t* query_ids = nullptr;  // B ids (>= 0), needed by mask_same_id
  double scale = 1.0 / 0.07;           // 1 / temperature, > 0
  bool in_batch_negatives = false;
  bool mask_same_id = false;
};

struct MemoryInfoNceOut {
  double loss = 0;
  int64_t masked = 0;             // negatives excluded by mask_same_id, over the batch
  float* dqueries = nullptr;      // optional B x D
  float* dkeys = nullptr;         // optional B x D
};

/// Errors: kEmpty (B or D = 0), kInvalidArg (null arrays, scale, mask_same_id without query ids,
/// a negative query id), kNonFinite (queries / keys / bank, naming row and element; skip_queue_check
/// trusts the bank, which checks on enqueue), kAborted, kOutOfMemory.
Status memory_info_nce(const MemoryInfoNceArgs& a, MemoryInfoNceOut* out, const Context& ctx,
                       bool skip_queue_check = false);

}  // namespace core
}  // namespace vlk
