// InfoNCE against a memory bank (core/losses). See memory_info_nce.hpp. Rows are independent: each
// row's softmax is written in place over its similarities (as gradient coefficients), its loss
// into its own slot, summed in row order afterwards (deterministic for any thread count).
#include "losses/memory_info_nce.hpp"

#include <cmath>
#include <new>
#include <string>
#include <vector>

#include "common/checked_size.hpp"
#include "linalg/gemm.hpp"

namespace vlk {
namespace core {

namespace {

Status check_finite(const char* name, const float* x, int64_t rows, int64_t d) {
  for (int64_t i = 0; i < rows * d; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i / d) + ", element " +
                                          std::to_string(i % d) + " is not finite");
    }
  }
  return Status::Ok();
}

// C (m x n) = A (m x d) B^T (B: n x d).
Status abt(const float* a, const float* bm, int64_t m, int64_t n, int64_t d, float* c, const Context& ctx) {
  GemmArgs g;
  g.trans_b = true;
  g.m = m;
  g.n = n;
  g.k = d;
  g.a = a;
  g.lda = d;
  g.b = bm;
  g.ldb = d;
  g.c = c;
  g.ldc = n;
  return gemm(g, ctx);
}

}  // namespace

Status memory_info_nce(const MemoryInfoNceArgs& a, MemoryInfoNceOut* out, const Context& ctx, bool skip_queue_check) {
  if (out == nullptr) return Status(Code::kInvalidArg, "memoryInfoNce: null output");
  if (a.b <= 0 || a.d <= 0) {
    return Status(Code::kEmpty, "memoryInfoNce: B and D must be >= 1 (got B = " + std::to_string(a.b) +
                                    ", D = " + std::to_string(a.d) + ")");
  }
  if (a.k < 0) return Status(Code::kInvalidArg, "memoryInfoNce: negative bank size");
  if (a.queries == nullptr || a.keys == nullptr || (a.k > 0 && a.queue == nullptr)) {
    return Status(Code::kInvalidArg, "memoryInfoNce: queries, keys and the bank are required");
  }
  if (!(a.scale > 0) || !std::isfinite(a.scale)) {
    return Status(Code::kInvalidArg, "temperature: 1 / " + std::to_string(a.scale) + " is not a finite number > 0");
  }
  if (a.mask_same_id && a.query_ids == nullptr) {
    return Status(Code::kInvalidArg, "queryIds: required with maskSameId");
  }
  if (a.query_ids != nullptr) {
    for (int64_t i = 0; i < a.b; ++i) {
      if (a.query_ids[i] < 0) {
        return Status(Code::kInvalidArg, "queryIds[" + std::to_string(i) + "]: " + std::to_string(a.query_ids[i]) +
                                             " is negative (ids are integers >= 0)");
      }
    }
  }
  VLK_RETURN_IF_ERROR(check_finite("queries", a.queries, a.b, a.d));
  VLK_RETURN_IF_ERROR(check_finite("keys", a.keys, a.b, a.d));
  if (!skip_queue_check && a.k > 0) VLK_RETURN_IF_ERROR(check_finite("bank", a.queue, a.k, a.d));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");

  const int64_t b = a.b, d = a.d, k = a.k;
  // The logits are B x B (in-batch) plus B x K (bank) whatever D is.
  VLK_RETURN_IF_ERROR(check_alloc("memoryInfoNce: the B x B in-batch logits", {b, b}, sizeof(float)));
  VLK_RETURN_IF_ERROR(check_alloc("memoryInfoNce: the B x K bank logits", {b, k}, sizeof(float),
                                  uint64_t(b) * uint64_t(b) * sizeof(float)));
  std::vector<float> skk, sq;
  std::vector<double> row_loss;
  std::vector<int64_t> row_masked;
  try {
    skk.resize(static_cast<size_t>(b * b));
    sq.resize(static_cast<size_t>(b * k));
    row_loss.resize(static_cast<size_t>(b));
    row_masked.resize(static_cast<size_t>(b));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "memoryInfoNce: out of memory for the B x K logits");
  } catch (const std::length_error&) {
    return Status(Code::kOutOfMemory, "memoryInfoNce: the B x K logits exceed the address space");
  }
  VLK_RETURN_IF_ERROR(abt(a.queries, a.keys, b, b, d, skk.data(), ctx));
  if (k > 0) VLK_RETURN_IF_ERROR(abt(a.queries, a.queue, b, k, d, sq.data(), ctx));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");

  const double scale = a.scale, inv_b = 1.0 / double(b);
  const bool grads = out->dqueries != nullptr || out->dkeys != nullptr;
  // Row i: logits over {k_i} + in-batch keys + bank; the coefficients overwrite skk / sq rows.
  auto row = [&](int64_t i) {
    float* kk = skk.data() + i * b;
    float* qq = sq.data() + i * k;
    const int64_t id = a.query_ids != nullptr ? a.query_ids[i] : -1;
    auto in_batch = [&](int64_t j) {
      return a.in_batch_negatives && j != i && !(a.mask_same_id && a.query_ids[j] == id);
    };
    auto in_bank = [&](int64_t m) { return !(a.mask_same_id && a.queue_ids != nullptr && a.queue_ids[m] == id); };
    const double pos = scale * double(kk[i]);
    double mx = pos;
    int64_t masked = 0;
    for (int64_t j = 0; j < b; ++j) {
      if (in_batch(j)) mx = std::fmax(mx, scale * double(kk[j]));
      else if (a.in_batch_negatives && j != i) ++masked;
    }
    for (int64_t m = 0; m < k; ++m) {
      if (in_bank(m)) mx = std::fmax(mx, scale * double(qq[m]));
      else ++masked;
    }
    // exp(logit - max) of every kept column, kept (as fp32) in place for the gradient pass.
    const double e_pos = std::exp(pos - mx);
    double sum = e_pos;
    for (int64_t j = 0; j < b; ++j) {
      if (j == i) continue;
      double e = 0;
      if (in_batch(j)) {
        e = std::exp(scale * double(kk[j]) - mx);
        sum += e;
      }
      kk[j] = static_cast<float>(e);
    }
    for (int64_t m = 0; m < k; ++m) {
      double e = 0;
      if (in_bank(m)) {
        e = std::exp(scale * double(qq[m]) - mx);
        sum += e;
      }
      qq[m] = static_cast<float>(e);
    }
    const double lse = mx + std::log(sum);
    row_loss[static_cast<size_t>(i)] = lse - pos;
    row_masked[static_cast<size_t>(i)] = masked;
    if (!grads) return;
    // G = scale (p - y) / B with p = e / sum (masked columns hold e = 0).
    const double c = scale * inv_b, inv_sum = 1.0 / sum;
    for (int64_t j = 0; j < b; ++j) {
      kk[j] = j == i ? static_cast<float>(c * (e_pos * inv_sum - 1.0)) : static_cast<float>(c * (double(kk[j]) * inv_sum));
    }
    for (int64_t m = 0; m < k; ++m) qq[m] = static_cast<float>(c * (double(qq[m]) * inv_sum));
  };
  if (ctx.pool != nullptr && ctx.threads > 1 && b > 1) {
    ctx.pool->parallel_for(b, ctx.threads, row);
  } else {
    for (int64_t i = 0; i < b; ++i) row(i);
  }
  double loss = 0;
  int64_t masked = 0;
  for (int64_t i = 0; i < b; ++i) {
    loss += row_loss[static_cast<size_t>(i)];
    masked += row_masked[static_cast<size_t>(i)];
  }
  out->loss = loss * inv_b;
  out->masked = masked;
  if (!grads) return Status::Ok();
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");

  // dQ = G_k K + G_q Queue.
  std::vector<float> dq_tmp;
  float* dq = out->dqueries;
  if (dq == nullptr) {
    try {
      dq_tmp.resize(static_cast<size_t>(b * d));
    } catch (const std::bad_alloc&) {
      return Status(Code::kOutOfMemory, "memoryInfoNce: out of memory");
    }
    dq = dq_tmp.data();
  }
  GemmArgs g;
  g.m = b;
  g.n = d;
  g.k = b;
  g.a = skk.data();
  g.lda = b;
  g.b = a.keys;
  g.ldb = d;
  g.c = dq;
  g.ldc = d;
  VLK_RETURN_IF_ERROR(gemm(g, ctx));
  if (k > 0) {
    GemmArgs h;
    h.m = b;
    h.n = d;
    h.k = k;
    h.beta = 1.0f;
    h.a = sq.data();
    h.lda = k;
    h.b = a.queue;
    h.ldb = d;
    h.c = dq;
    h.ldc = d;
    VLK_RETURN_IF_ERROR(gemm(h, ctx));
  }
  // dK = G_k^T Q.
  if (out->dkeys != nullptr) {
    GemmArgs t;
    t.trans_a = true;
    t.m = b;
    t.n = d;
    t.k = b;
    t.a = skk.data();
    t.lda = b;
    t.b = a.queries;
    t.ldb = d;
    t.c = out->dkeys;
    t.ldc = d;
    VLK_RETURN_IF_ERROR(gemm(t, ctx));
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
