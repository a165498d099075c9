// Global-local scoring entry points (binding). Flat specs (lib has resolved the shapes):
//   maxkPool[Backward]:      b, n, d, k, x, lengths? (Int32Array), dout (backward)
//                            -> { out } / { dx }
//   cosineMhaPool[Backward]: b, n, d, dg, heads, g, x, lengths?, wq, wk, wv, bq?, bk?, bv?,
//                            attention? (bool), dout (backward)
//                            -> { out, attention? } / { dg, dx, dwq, dwk, dwv, dbq, dbk, dbv }
//   gatedFusion[Backward]:   b, d, e, g, weight, bias?, dv (backward)
//                            -> { v, z } / { de, dg, dweight, dbias }
//   scanSimilarity:          q, l, d, words, wordLengths?, items, r, regions, offsets? + rows?
//                            (CSR, Int32Array) or candidates (dense C), mode, lambda1, lambda2, k
//                            -> { scores, positions?, indices?, topScores?, counts? }
// Every length is checked against the sizes; outputs are V8-allocated before the job runs.
#include "global_local.hpp"

#include <memory>
#include <string>
#include <vector>

#include "common/spec_call.hpp"
#include "pooling/cosine_mha_pool.hpp"
#include "pooling/gated_fusion.hpp"
#include "pooling/maxk_pool.hpp"
#include "search/scan_similarity.hpp"

namespace vlk {
namespace binding {

namespace {

Status ParseMaxk(Napi::Object spec, SpecCall* call, core::MaxkPoolArgs* a) {
  VLK_RETURN_IF_ERROR(SpecSize(spec, "b", &a->b));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &a->n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a->d));
  double k = 0;
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "k", &k));
  if (!(k >= -1e15 && k <= 1e15) || static_cast<double>(static_cast<int64_t>(k)) != k) {
    return Status(Code::kInvalidK, "k: " + FormatNumber(k) + " is not an integer >= 1");
  }
  a->k = static_cast<int64_t>(k);
  VLK_RETURN_IF_ERROR(SpecF32(spec, "x", SpecProduct(a->b, a->n, a->d), false, call, &a->x));
  return SpecI32(spec, "lengths", a->b, true, call, &a->lengths);
}

Status MaxkForward(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::MaxkPoolArgs a;
  VLK_RETURN_IF_ERROR(ParseMaxk(spec, call, &a));
  float* out = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "out", SpecProduct(a.b, a.d), call, &out));
  call->run = [a, out](const Context& ctx) { return core::maxk_pool(a, out, ctx); };
  return Status::Ok();
}

Status MaxkBackward(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::MaxkPoolArgs a;
  VLK_RETURN_IF_ERROR(ParseMaxk(spec, call, &a));
  const float* dout = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "dout", SpecProduct(a.b, a.d), false, call, &dout));
  float* dx = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dx", SpecProduct(a.b, a.n, a.d), call, &dx));
  call->run = [a, dout, dx](const Context& ctx) { return core::maxk_pool_backward(a, dout, dx, ctx); };
  return Status::Ok();
}

Status ParseMha(Napi::Object spec, SpecCall* call, core::CosineMhaPoolArgs* a) {
  VLK_RETURN_IF_ERROR(SpecSize(spec, "b", &a->b));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &a->n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a->d));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "dg", &a->dg));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "heads", &a->heads));
  const int64_t hd = SpecProduct(a->heads, a->d);
  VLK_RETURN_IF_ERROR(SpecF32(spec, "g", SpecProduct(a->b, a->dg), false, call, &a->g));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "x", SpecProduct(a->b, a->n, a->d), false, call, &a->x));
  VLK_RETURN_IF_ERROR(SpecI32(spec, "lengths", a->b, true, call, &a->lengths));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "wq", SpecProduct(hd, a->dg), false, call, &a->wq));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "wk", SpecProduct(hd, a->d), false, call, &a->wk));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "wv", SpecProduct(hd, a->d), false, call, &a->wv));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "bq", hd, true, call, &a->bq));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "bk", hd, true, call, &a->bk));
  return SpecF32(spec, "bv", hd, true, call, &a->bv);
}

Status MhaForward(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::CosineMhaPoolArgs a;
  VLK_RETURN_IF_ERROR(ParseMha(spec, call, &a));
  bool want_att = false;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("attention"), "attention", false, &want_att));
  float* out = nullptr;
  float* att = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "out", SpecProduct(a.b, a.d), call, &out));
  if (want_att) VLK_RETURN_IF_ERROR(SpecOutF32(env, "attention", SpecProduct(a.b, a.heads, a.n), call, &att));
  call->run = [a, out, att](const Context& ctx) { return core::cosine_mha_pool(a, out, att, ctx); };
  return Status::Ok();
}

Status MhaBackward(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::CosineMhaPoolArgs a;
  VLK_RETURN_IF_ERROR(ParseMha(spec, call, &a));
  const float* dout = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "dout", SpecProduct(a.b, a.d), false, call, &dout));
  const int64_t hd = SpecProduct(a.heads, a.d);
  core::CosineMhaPoolGrads o;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dg", SpecProduct(a.b, a.dg), call, &o.dg));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dx", SpecProduct(a.b, a.n, a.d), call, &o.dx));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dwq", SpecProduct(hd, a.dg), call, &o.dwq));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dwk", SpecProduct(hd, a.d), call, &o.dwk));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dwv", SpecProduct(hd, a.d), call, &o.dwv));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dbq", hd, call, &o.dbq));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dbk", hd, call, &o.dbk));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dbv", hd, call, &o.dbv));
  call->run = [a, dout, o](const Context& ctx) { return core::cosine_mha_pool_backward(a, dout, o, ctx); };
  return Status::Ok();
}

Status ParseGated(Napi::Object spec, SpecCall* call, core::GatedFusionArgs* a) {
  VLK_RETURN_IF_ERROR(SpecSize(spec, "b", &a->b));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a->d));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "e", SizeMul(a->b, a->d), false, call, &a->e));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "g", SizeMul(a->b, a->d), false, call, &a->g));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "weight", SizeMul(a->d, 2, a->d), false, call, &a->w));
  return SpecF32(spec, "bias", a->d, true, call, &a->bias);
}

Status GatedForward(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::GatedFusionArgs a;
  VLK_RETURN_IF_ERROR(ParseGated(spec, call, &a));
  float* v = nullptr;
  float* z = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "v", SpecProduct(a.b, a.d), call, &v));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "z", SpecProduct(a.b, a.d), call, &z));
  call->run = [a, v, z](const Context& ctx) { return core::gated_fusion(a, v, z, ctx); };
  return Status::Ok();
}

Status GatedBackward(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::GatedFusionArgs a;
  VLK_RETURN_IF_ERROR(ParseGated(spec, call, &a));
  const float* dv = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "dv", SizeMul(a.b, a.d), false, call, &dv));
  core::GatedFusionGrads o;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "de", SizeMul(a.b, a.d), call, &o.de));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dg", SizeMul(a.b, a.d), call, &o.dg));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dweight", SizeMul(a.d, 2, a.d), call, &o.dw));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "dbias", a.d, call, &o.dbias));
  call->run = [a, dv, o](const Context& ctx) { return core::gated_fusion_backward(a, dv, o, ctx); };
  return Status::Ok();
}

Status Scan(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::ScanSimilarityArgs a;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "q", &a.q));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "l", &a.l));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a.d));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "items", &a.items));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "r", &a.r));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "words", SpecProduct(a.q, a.l, a.d), false, call, &a.words));
  VLK_RETURN_IF_ERROR(SpecI32(spec, "wordLengths", a.q, true, call, &a.word_lengths));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "regions", SpecProduct(a.items, a.r, a.d), false, call, &a.regions));
  std::string mode;
  VLK_RETURN_IF_ERROR(SpecString(spec, "mode", &mode));
  VLK_RETURN_IF_ERROR(core::parse_scan_mode(mode.c_str(), &a.mode));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "lambda1", &a.lambda1));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "lambda2", &a.lambda2));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "k", &a.k));
  int64_t total = 0;
  if (!spec.Get("offsets").IsUndefined()) {
    const int32_t* off = nullptr;
    VLK_RETURN_IF_ERROR(SpecI32(spec, "offsets", a.q + 1, false, call, &off));
    const int32_t* rows = nullptr;
    VLK_RETURN_IF_ERROR(SpecI32(spec, "rows", -1, false, call, &rows));
    auto o64 = std::make_shared<std::vector<int64_t>>(off, off + a.q + 1);
    const size_t nrows = spec.Get("rows").As<Napi::Int32Array>().ElementLength();
    if (off[0] != 0 || static_cast<size_t>(off[a.q]) != nrows) {
      return Status(Code::kShape, "candidates.offsets: must start at 0 and end at rows.length (" +
                                      std::to_string(nrows) + ")");
    }
    call->owned.push_back(o64);
    a.offsets = o64->data();
    a.rows = rows;
    total = static_cast<int64_t>(nrows);
  } else {
    VLK_RETURN_IF_ERROR(SpecSize(spec, "candidates", &a.candidates));
    total = SpecProduct(a.q, a.candidates);
  }
  core::ScanSimilarityOut o;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "scores", total, call, &o.scores));
  if (a.k > 0) {
    VLK_RETURN_IF_ERROR(SpecOutI32(env, "positions", SpecProduct(a.q, a.k), call, &o.positions));
    VLK_RETURN_IF_ERROR(SpecOutI32(env, "indices", SpecProduct(a.q, a.k), call, &o.indices));
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "topScores", SpecProduct(a.q, a.k), call, &o.top_scores));
    VLK_RETURN_IF_ERROR(SpecOutI32(env, "counts", a.q, call, &o.counts));
  }
  call->run = [a, o](const Context& ctx) { return core::scan_similarity(a, o, ctx); };
  return Status::Ok();
}

}  // namespace

Napi::Value MaxkPoolSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, MaxkForward, "maxkPool"); }
Napi::Value MaxkPoolAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, MaxkForward, "maxkPool");
}
Napi::Value MaxkPoolBackwardSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, MaxkBackward, "maxkPoolBackward");
}
Napi::Value MaxkPoolBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, MaxkBackward, "maxkPoolBackward");
}
Napi::Value CosineMhaPoolSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, MhaForward, "cosineMhaPool");
}
Napi::Value CosineMhaPoolAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, MhaForward, "cosineMhaPool");
}
Napi::Value CosineMhaPoolBackwardSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, MhaBackward, "cosineMhaPoolBackward");
}
Napi::Value CosineMhaPoolBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, MhaBackward, "cosineMhaPoolBackward");
}
Napi::Value GatedFusionSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, GatedForward, "gatedFusion");
}
Napi::Value GatedFusionAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, GatedForward, "gatedFusion");
}
Napi::Value GatedFusionBackwardSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, GatedBackward, "gatedFusionBackward");
}
Napi::Value GatedFusionBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, GatedBackward, "gatedFusionBackward");
}
Napi::Value ScanSimilaritySync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, Scan, "scanSimilarity");
}
Napi::Value ScanSimilarityAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, Scan, "scanSimilarity");
}

}  // namespace binding
}  // namespace vlk
