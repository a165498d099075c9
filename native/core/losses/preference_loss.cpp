// Pairwise preference loss (core/losses). See preference_loss.hpp. Pairs are processed in chunks
// of a fixed size whatever the thread count; chunk sums are added in chunk order, so the loss is
// bit-identical for any ctx.threads.
#include "losses/preference_loss.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/checked_size.hpp"
#include "common/finite.hpp"

namespace vlk {
namespace core {

namespace {

constexpr int64_t kChunk = 4096;

// log sigma(x) without overflow: for x >> 0 the log1p term vanishes, for x << 0 it is ~ x.
inline double log_sigmoid(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }

inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

struct Term {
  double loss, dh;
};

inline Term pair_term(double h, double beta, double eps) {
  const double z = beta * h;
  return {-(1.0 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z), beta * (eps * sigmoid(z) - (1.0 - eps) * sigmoid(-z))};
}

Status check_vector(const char* name, const float* x, int64_t n) {
  if (x == nullptr) return Status(Code::kInvalidArg, std::string(name) + ": null");
  if (all_finite(x, n)) return Status::Ok();
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + "[" + std::to_string(i) + "]: " + std::to_string(x[i]) +
                                          " is not finite");
    }
  }
  return Status::Ok();
}

Status check_matrix(const char* name, const float* x, int64_t rows, int64_t cols) {
  if (x == nullptr) return Status(Code::kInvalidArg, std::string(name) + ": null");
  if (all_finite(x, rows * cols)) return Status::Ok();
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i / cols) + ", column " +
                                          std::to_string(i % cols) + " is not finite (" + std::to_string(x[i]) + ")");
    }
  }
  return Status::Ok();
}

// h of pair i in either form.
inline double margin(const PreferenceLossArgs& a, int64_t i) {
  if (a.scores == nullptr) {
    return (double(a.policy_chosen[i]) - double(a.reference_chosen[i])) -
           (double(a.policy_rejected[i]) - double(a.reference_rejected[i]));
  }
  const int32_t* t = a.pair_ids + 3 * i;
  const int64_t w = int64_t(t[0]) * a.n + t[1], l = int64_t(t[0]) * a.n + t[2];
  return (double(a.scores[w]) - double(a.reference_scores[w])) - (double(a.scores[l]) - double(a.reference_scores[l]));
}

}  // namespace

// Allocation failures inside become kOutOfMemory (no exception leaves core).
static Status preference_loss_unguarded(const PreferenceLossArgs& a, PreferenceLossOut* out, const Context& ctx);

Status preference_loss(const PreferenceLossArgs& a, PreferenceLossOut* out, const Context& ctx) {
  return run_guarded("preferenceLoss", [&] { return preference_loss_unguarded(a, out, ctx); });
}

static Status preference_loss_unguarded(const PreferenceLossArgs& a, PreferenceLossOut* out, const Context& ctx) {
  if (out == nullptr) return Status(Code::kInvalidArg, "preferenceLoss: null output");
  if (a.pairs <= 0) return Status(Code::kEmpty, "pairs: " + std::to_string(a.pairs) + " pairs (need at least one)");
  if (!(a.beta > 0) || !std::isfinite(a.beta)) {
    return Status(Code::kInvalidArg, "beta: " + std::to_string(a.beta) + " is not a finite number > 0");
  }
  if (!(a.label_smoothing >= 0 && a.label_smoothing < 1)) {
    return Status(Code::kInvalidArg, "labelSmoothing: " + std::to_string(a.label_smoothing) + " is not in [0, 1)");
  }
  const int64_t p = a.pairs;
  if (a.scores == nullptr) {
    VLK_RETURN_IF_ERROR(check_vector("policyChosen", a.policy_chosen, p));
    VLK_RETURN_IF_ERROR(check_vector("policyRejected", a.policy_rejected, p));
    VLK_RETURN_IF_ERROR(check_vector("referenceChosen", a.reference_chosen, p));
    VLK_RETURN_IF_ERROR(check_vector("referenceRejected", a.reference_rejected, p));
  } else {
    if (a.q <= 0 || a.n <= 0) {
      return Status(Code::kEmpty, "scores: " + std::to_string(a.q) + " x " + std::to_string(a.n) + " is empty");
    }
    if (a.pair_ids == nullptr) return Status(Code::kInvalidArg, "pairs: null");
    for (int64_t i = 0; i < p; ++i) {
      const int32_t* t = a.pair_ids + 3 * i;
      if (t[0] < 0 || t[0] >= a.q) {
        return Status(Code::kInvalidArg, "pairs[" + std::to_string(i) + "]: query " + std::to_string(t[0]) +
                                             " is not in 0.." + std::to_string(a.q - 1));
      }
      for (int k = 1; k < 3; ++k) {
        if (t[k] < 0 || t[k] >= a.n) {
          return Status(Code::kInvalidArg, "pairs[" + std::to_string(i) + "]: " + (k == 1 ? "winner " : "loser ") +
                                               std::to_string(t[k]) + " is not in 0.." + std::to_string(a.n - 1));
        }
      }
      if (t[1] == t[2]) {
        return Status(Code::kInvalidArg, "pairs[" + std::to_string(i) + "]: winner and loser are both item " +
                                             std::to_string(t[1]));
      }
    }
    VLK_RETURN_IF_ERROR(check_matrix("scores", a.scores, a.q, a.n));
    VLK_RETURN_IF_ERROR(check_matrix("referenceScores", a.reference_scores, a.q, a.n));
  }

  const double beta = a.beta, eps = a.label_smoothing, weight = a.sum ? 1.0 : 1.0 / double(p);
  const int64_t chunks = (p + kChunk - 1) / kChunk;
  std::vector<double> chunk_loss(static_cast<size_t>(chunks), 0.0);
  std::vector<int64_t> chunk_preferred(static_cast<size_t>(chunks), 0);
  const bool pair_grads = a.scores == nullptr && (out->d_chosen != nullptr || out->d_rejected != nullptr);
  auto chunk = [&](int64_t c) {
    if (ctx.cancelled()) return;
    const int64_t lo = c * kChunk, hi = std::min(p, lo + kChunk);
    double loss = 0;
    int64_t preferred = 0;
    for (int64_t i = lo; i < hi; ++i) {
      const double h = margin(a, i);
      const Term t = pair_term(h, beta, eps);
      loss += t.loss;
      preferred += h > 0;
      if (pair_grads) {
        if (out->d_chosen != nullptr) out->d_chosen[i] = static_cast<float>(t.dh * weight);
        if (out->d_rejected != nullptr) out->d_rejected[i] = static_cast<float>(-t.dh * weight);
      }
    }
    chunk_loss[static_cast<size_t>(c)] = loss;
    chunk_preferred[static_cast<size_t>(c)] = preferred;
  };
  if (ctx.pool != nullptr && ctx.threads > 1 && chunks > 1) {
    ctx.pool->parallel_for(chunks, ctx.threads, chunk);
  } else {
    for (int64_t c = 0; c < chunks; ++c) chunk(c);
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "preferenceLoss: cancelled");
  double loss = 0;
  int64_t preferred = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    loss += chunk_loss[static_cast<size_t>(c)];
    preferred += chunk_preferred[static_cast<size_t>(c)];
  }
  // The scatter runs in pair order on one thread: pairs sharing an item add up in a fixed order.
  if (a.scores != nullptr && out->dscores != nullptr) {
    for (int64_t i = 0; i < p; ++i) {
      const int32_t* t = a.pair_ids + 3 * i;
      const double g = pair_term(margin(a, i), beta, eps).dh * weight;
      float* row = out->dscores + int64_t(t[0]) * a.n;
      row[t[1]] = static_cast<float>(double(row[t[1]]) + g);
      row[t[2]] = static_cast<float>(double(row[t[2]]) - g);
    }
  }
  out->loss = loss * weight;
  out->preferred = preferred;
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
