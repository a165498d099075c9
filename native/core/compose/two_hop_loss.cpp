// PTHA's training objective on token features (core/compose). See two_hop_loss.hpp. Inputs are
// checked here, naming them as the API does; the terms then run through token_max_similarity,
// info_nce and prototype_alignment, and the two contrastive terms' token gradients are summed.
#include "compose/two_hop_loss.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "common/checked_size.hpp"
#include "compose/token_max_similarity.hpp"
#include "losses/info_nce.hpp"
#include "losses/prototype_alignment.hpp"

namespace vlk {
namespace core {

namespace {

// The first non-finite value of a (rows x per) array, named as `name` row r, element e.
Status check_finite(const char* name, const float* x, int64_t rows, int64_t per) {
  for (int64_t i = 0; i < rows * per; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i / per) + ", element " +
                                          std::to_string(i % per) + " is not finite");
    }
  }
  return Status::Ok();
}

Status check_weight(const char* name, double w) {
  if (!(w >= 0) || !std::isfinite(w)) {
    return Status(Code::kInvalidArg, std::string("weights.") + name + ": " + std::to_string(w) +
                                         " is not a finite number >= 0");
  }
  return Status::Ok();
}

// One contrastive term: S = token-max(queries, Z), CE; adds weight * dS routed back to dq and dZ.
Status contrastive(const TwoHopLossArgs& a, const float* q, double smoothing, double weight, double* loss,
                   double* dscale, float* dq, std::vector<float>* dz_acc, const Context& ctx) {
  const int64_t b = a.b, m = a.m;
  std::vector<float> s(static_cast<size_t>(b * m));
  std::vector<int32_t> arg(static_cast<size_t>(b * m));
  TokenMaxSimilarityArgs ta;
  ta.f = q;
  ta.z = a.target_tokens;
  ta.b = b;
  ta.m = m;
  ta.k = a.kt;
  ta.d = a.d;
  VLK_RETURN_IF_ERROR(token_max_similarity(ta, s.data(), arg.data(), ctx));
  InfoNceArgs na;
  na.scores = s.data();
  na.rows = b;
  na.cols = m;
  na.targets = a.targets;
  na.scale = a.scale;
  na.label_smoothing = smoothing;
  std::vector<float> ds;
  InfoNceOut no;
  const bool grads = dq != nullptr || dz_acc != nullptr;
  if (grads) {
    ds.resize(static_cast<size_t>(b * m));
    no.dscores = ds.data();
  }
  VLK_RETURN_IF_ERROR(info_nce(na, &no, ctx));
  *loss = no.loss;
  *dscale += weight * no.dscale;
  if (!grads) return Status::Ok();
  for (float& v : ds) v = static_cast<float>(double(v) * weight);
  std::vector<float> dq_tmp, dz(static_cast<size_t>(m * a.kt * a.d));
  if (dq == nullptr) {
    dq_tmp.resize(static_cast<size_t>(b * a.d));
    dq = dq_tmp.data();
  }
  VLK_RETURN_IF_ERROR(token_max_similarity_backward(ta, ds.data(), arg.data(), dq, dz.data(), ctx));
  if (dz_acc != nullptr) {
    if (dz_acc->empty()) {
      dz_acc->swap(dz);
    } else {
      for (size_t i = 0; i < dz.size(); ++i) (*dz_acc)[i] += dz[i];
    }
  }
  return Status::Ok();
}

}  // namespace

namespace {

Status two_hop_loss_checked(const TwoHopLossArgs& a, TwoHopLossOut* out, const Context& ctx) {
  if (out == nullptr) return Status(Code::kInvalidArg, "two-hop loss: null output");
  if (a.b <= 0 || a.m <= 0 || a.kt <= 0 || a.d <= 0) {
    return Status(Code::kEmpty, "two-hop loss: B, M, Kt and D must be >= 1 (got B = " + std::to_string(a.b) +
                                    ", M = " + std::to_string(a.m) + ", Kt = " + std::to_string(a.kt) +
                                    ", D = " + std::to_string(a.d) + ")");
  }
  if (a.query == nullptr || a.target_tokens == nullptr) {
    return Status(Code::kInvalidArg, "two-hop loss: query and targetTokens are required");
  }
  const bool hop1 = a.prototype != nullptr || a.reverse_prototype != nullptr;
  if (hop1 && (a.prototype == nullptr || a.reverse_prototype == nullptr)) {
    return Status(Code::kInvalidArg, "two-hop loss: give both prototype and reversePrototype, or neither");
  }
  if (hop1 && (a.k <= 0 || a.k_reverse <= 0 || a.dp <= 0)) {
    return Status(Code::kEmpty, "two-hop loss: prototype tokens and width must be >= 1");
  }
  VLK_RETURN_IF_ERROR(check_weight("itc", a.w_itc));
  VLK_RETURN_IF_ERROR(check_weight("rtc", a.w_rtc));
  VLK_RETURN_IF_ERROR(check_weight("align", a.w_align));
  VLK_RETURN_IF_ERROR(check_finite("query", a.query, a.b, a.d));
  if (a.text_query != nullptr) VLK_RETURN_IF_ERROR(check_finite("textQuery", a.text_query, a.b, a.d));
  VLK_RETURN_IF_ERROR(check_finite("targetTokens", a.target_tokens, a.m * a.kt, a.d));
  if (hop1) {
    VLK_RETURN_IF_ERROR(check_finite("prototype", a.prototype, a.b * a.k, a.dp));
    VLK_RETURN_IF_ERROR(check_finite("reversePrototype", a.reverse_prototype, a.b * a.k_reverse, a.dp));
  }
  // Each contrastive term holds B x M scores, argmaxes and score gradients, and M x Kt x D token
  // gradients (twice while they accumulate): M and B come from different inputs, so their product
  // can exceed memory while both inputs are small.
  VLK_RETURN_IF_ERROR(check_alloc("twoHopLoss: the B x M token-max scores (scores, argmax, gradient)", {3, a.b, a.m},
                                  sizeof(float)));
  VLK_RETURN_IF_ERROR(check_alloc("twoHopLoss: the M x Kt x D target-token gradients", {2, a.m, a.kt, a.d},
                                  sizeof(float)));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");

  TwoHopLossOut& o = *out;
  o.loss = o.itc = o.rtc = o.align = o.dscale = 0;
  std::vector<float> dz;
  std::vector<float>* dz_acc = o.dtarget_tokens != nullptr ? &dz : nullptr;
  VLK_RETURN_IF_ERROR(contrastive(a, a.query, a.smoothing_itc, a.w_itc, &o.itc, &o.dscale, o.dquery, dz_acc, ctx));
  if (a.text_query != nullptr) {
    VLK_RETURN_IF_ERROR(
        contrastive(a, a.text_query, a.smoothing_rtc, a.w_rtc, &o.rtc, &o.dscale, o.dtext_query, dz_acc, ctx));
  } else if (o.dtext_query != nullptr) {
    return Status(Code::kInvalidArg, "two-hop loss: a textQuery gradient was asked for without a textQuery");
  }
  if (o.dtarget_tokens != nullptr) {
    for (size_t i = 0; i < dz.size(); ++i) o.dtarget_tokens[i] = dz[i];
  }
  if (hop1) {
    PrototypeAlignmentArgs pa;
    pa.p = a.prototype;
    pa.target = a.reverse_prototype;
    pa.b = a.b;
    pa.k = a.k;
    pa.k_target = a.k_reverse;
    pa.d = a.dp;
    VLK_RETURN_IF_ERROR(prototype_alignment(pa, &o.align, o.dprototype));
    if (o.dprototype != nullptr) {
      const int64_t n = a.b * a.k * a.dp;
      for (int64_t i = 0; i < n; ++i) o.dprototype[i] = static_cast<float>(double(o.dprototype[i]) * a.w_align);
    }
  } else if (o.dprototype != nullptr) {
    return Status(Code::kInvalidArg, "two-hop loss: a prototype gradient was asked for without prototypes");
  }
  o.loss = a.w_itc * o.itc + a.w_rtc * o.rtc + a.w_align * o.align;
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace

Status two_hop_loss(const TwoHopLossArgs& a, TwoHopLossOut* out, const Context& ctx) {
  return run_guarded("twoHopLoss", [&] { return two_hop_loss_checked(a, out, ctx); });
}

}  // namespace core
}  // namespace vlk
