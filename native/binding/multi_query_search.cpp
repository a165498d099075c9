// Multi-query fusion search entry points (binding). Flat spec (lib has resolved the shapes):
//   q (queries), r (rewrites), n, d, queries (q*r*d), gallery (n*d), k, metric, fusion,
//   weights? (r or q*r), rrfConstant, depth -> { indices (q*k), scores (q*k), k }
#include "multi_query_search.hpp"

#include <string>

#include "common/spec_call.hpp"
#include "search/multi_query_search.hpp"

namespace vlk {
namespace binding {

namespace {

Status Parse(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::MultiQuerySearchArgs a;
  int64_t q = 0, n = 0, d = 0;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "q", &q));
  VLK_RETURN_IF_ERROR(SpecInteger(spec, "r", 1, &a.rewrites));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &d));
  const float* qs = nullptr;
  const float* g = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "queries", SpecProduct(q, a.rewrites, d), false, call, &qs));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "gallery", SpecProduct(n, d), false, call, &g));
  a.queries = MatrixView<const float>(qs, SpecProduct(q, a.rewrites), d);
  a.gallery = MatrixView<const float>(g, n, d);
  VLK_RETURN_IF_ERROR(SpecSize(spec, "k", &a.k));
  std::string s;
  VLK_RETURN_IF_ERROR(SpecString(spec, "metric", &s));
  VLK_RETURN_IF_ERROR(core::parse_metric(s.c_str(), &a.metric));
  VLK_RETURN_IF_ERROR(SpecString(spec, "fusion", &s));
  VLK_RETURN_IF_ERROR(core::parse_fusion(s.c_str(), &a.fusion));
  if (!spec.Get("weights").IsUndefined()) {
    Napi::Value w = spec.Get("weights");
    const bool per_query = w.IsTypedArray() && static_cast<int64_t>(w.As<Napi::TypedArray>().ElementLength()) ==
                                                   q * a.rewrites && q > 1;
    VLK_RETURN_IF_ERROR(SpecF32(spec, "weights", per_query ? SizeMul(q, a.rewrites) : a.rewrites, false, call, &a.weights));
    a.weights_per_query = per_query;
  }
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "rrfConstant", &a.rrf_constant));
  VLK_RETURN_IF_ERROR(SpecInteger(spec, "depth", 1, &a.depth));
  if (a.k < 1 || a.k > n) {
    return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is not in 1.." + std::to_string(n) +
                                       " (gallery rows)");
  }
  core::MultiQuerySearchOut o;
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "indices", SpecProduct(q, a.k), call, &o.indices));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "scores", SpecProduct(q, a.k), call, &o.scores));
  const int64_t k = a.k;
  call->tail.emplace_back("k", [k](Napi::Env e) { return Napi::Number::New(e, double(k)); });
  call->run = [a, o](const Context& ctx) { return core::multi_query_search(a, o, ctx); };
  return Status::Ok();
}

}  // namespace

Napi::Value MultiQuerySearchSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, Parse, "multiQuerySearch");
}
Napi::Value MultiQuerySearchAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, Parse, "multiQuerySearch");
}

}  // namespace binding
}  // namespace vlk
