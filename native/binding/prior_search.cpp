// Prior-fused search entry points (binding). Flat spec (lib has resolved the shapes):
//   q, n, d, queries (q*d), gallery (n*d), k, metric, prior (n), lambda (q)
//   -> { indices (q*k), scores (q*k), k }
#include "prior_search.hpp"

#include <string>

#include "common/spec_call.hpp"
#include "search/prior_search.hpp"

namespace vlk {
namespace binding {

namespace {

Status Parse(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::PriorSearchArgs a;
  int64_t q = 0, n = 0, d = 0;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "q", &q));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &d));
  const float* qs = nullptr;
  const float* g = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "queries", SpecProduct(q, d), false, call, &qs));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "gallery", SpecProduct(n, d), false, call, &g));
  a.queries = MatrixView<const float>(qs, q, d);
  a.gallery = MatrixView<const float>(g, n, d);
  VLK_RETURN_IF_ERROR(SpecF32(spec, "prior", n, false, call, &a.prior));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "lambda", q, false, call, &a.lambda));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "k", &a.k));
  std::string s;
  VLK_RETURN_IF_ERROR(SpecString(spec, "metric", &s));
  VLK_RETURN_IF_ERROR(core::parse_metric(s.c_str(), &a.metric));
  if (a.k < 1 || a.k > n) {
    return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is not in 1.." + std::to_string(n) +
                                       " (gallery rows)");
  }
  int32_t* oi = nullptr;
  float* os = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "indices", SpecProduct(q, a.k), call, &oi));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "scores", SpecProduct(q, a.k), call, &os));
  const int64_t k = a.k;
  call->tail.emplace_back("k", [k](Napi::Env e) { return Napi::Number::New(e, double(k)); });
  call->run = [a, oi, os](const Context& ctx) { return core::prior_search(a, oi, os, ctx); };
  return Status::Ok();
}

}  // namespace

Napi::Value PriorSearchSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, Parse, "priorSearch"); }
Napi::Value PriorSearchAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, Parse, "priorSearch");
}

}  // namespace binding
}  // namespace vlk
