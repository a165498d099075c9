// Query expansion entry points (binding). Flat specs (lib has resolved the shapes):
//   expandQueries:  q, n, d, queries, gallery, m, metric, temperature, selfWeight, k (0: no
//                   re-search), searchGallery? + searchRows (re-search gallery)
//                   -> { expanded, neighbours, weights, indices?, scores? }
//   augmentGallery: n, d, gallery, m, metric, temperature -> { expanded, neighbours, weights }
#include "expand_queries.hpp"

#include <string>

#include "common/spec_call.hpp"
#include "search/expand_queries.hpp"

namespace vlk {
namespace binding {

namespace {

Status Common(Napi::Object spec, SpecCall* call, core::ExpandQueriesArgs* a, int64_t* n, int64_t* d) {
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", d));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "m", &a->m));
  const float* g = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "gallery", SpecProduct(*n, *d), false, call, &g));
  a->gallery = MatrixView<const float>(g, *n, *d);
  std::string metric;
  VLK_RETURN_IF_ERROR(SpecString(spec, "metric", &metric));
  VLK_RETURN_IF_ERROR(core::parse_metric(metric.c_str(), &a->metric));
  return SpecNumber(spec, "temperature", &a->temperature);
}

Status Expand(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::ExpandQueriesArgs a;
  int64_t n = 0, d = 0, q = 0;
  VLK_RETURN_IF_ERROR(Common(spec, call, &a, &n, &d));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "q", &q));
  const float* qs = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "queries", SpecProduct(q, d), false, call, &qs));
  a.queries = MatrixView<const float>(qs, q, d);
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "selfWeight", &a.self_weight));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "k", &a.k));
  if (!spec.Get("searchGallery").IsUndefined()) {
    int64_t rows = 0;
    VLK_RETURN_IF_ERROR(SpecSize(spec, "searchRows", &rows));
    const float* sg = nullptr;
    VLK_RETURN_IF_ERROR(SpecF32(spec, "searchGallery", SpecProduct(rows, d), false, call, &sg));
    a.search_gallery = MatrixView<const float>(sg, rows, d);
  }
  core::ExpandQueriesOut o;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "expanded", SpecProduct(q, d), call, &o.expanded));
  const bool m_ok = a.m >= 1 && a.m <= n;  // search reports a bad m; do not allocate for it
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "neighbours", m_ok ? SpecProduct(q, a.m) : 0, call, &o.neighbours));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "weights", m_ok ? SpecProduct(q, a.m) : 0, call, &o.weights));
  if (!m_ok) o.neighbours = nullptr, o.weights = nullptr;
  const int64_t sn = a.search_gallery.data != nullptr ? a.search_gallery.rows : n;
  if (a.k > 0) {
    if (a.k > sn) {
      return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is outside 1.." + std::to_string(sn));
    }
    VLK_RETURN_IF_ERROR(SpecOutI32(env, "indices", SpecProduct(q, a.k), call, &o.indices));
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "scores", SpecProduct(q, a.k), call, &o.scores));
  }
  call->run = [a, o](const Context& ctx) { return core::expand_queries(a, o, ctx); };
  return Status::Ok();
}

Status Augment(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::ExpandQueriesArgs a;
  int64_t n = 0, d = 0;
  VLK_RETURN_IF_ERROR(Common(spec, call, &a, &n, &d));
  core::ExpandQueriesOut o;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "expanded", SizeMul(n, d), call, &o.expanded));
  const bool m_ok = a.m >= 1 && a.m < n;
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "neighbours", m_ok ? SizeMul(n, a.m) : 0, call, &o.neighbours));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "weights", m_ok ? n * (a.m + 1) : 0, call, &o.weights));
  if (!m_ok) o.neighbours = nullptr, o.weights = nullptr;
  call->run = [a, o](const Context& ctx) { return core::augment_gallery(a, o, ctx); };
  return Status::Ok();
}

}  // namespace

Napi::Value ExpandQueriesSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, Expand, "expandQueries"); }
Napi::Value ExpandQueriesAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, Expand, "expandQueries");
}
Napi::Value AugmentGallerySync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, Augment, "augmentGallery");
}
Napi::Value AugmentGalleryAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, Augment, "augmentGallery");
}

}  // namespace binding
}  // namespace vlk
