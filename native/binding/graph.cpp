// In-batch graph entry points (binding). Every spec is flat (lib has resolved the shapes): sizes
// as numbers, inputs as Float32Arrays (Int32Array wordLengths), options as numbers / booleans,
// threads?. Each input's length is checked against the sizes here; outputs (Float32Array, or
// Uint8Array for the mask) are V8-allocated before the job runs, and the call resolves with an
// object of them. Each op is a flat-spec call (common/spec_call.hpp): the parse step captures the
// core call in `run`; threads? is read first, before the op's fields.
#include "graph.hpp"

#include <string>

#include "common/spec_call.hpp"
#include "graph/gcn.hpp"
#include "graph/relevance.hpp"
#include "graph/row_topk_mask.hpp"
#include "graph/scan_relevance.hpp"

namespace vlk {
namespace binding {

namespace {

// ---- relevance / relevanceBackward: { n, d, x, kind: 'gaussian' | 'cosine', sigma, gradOutput? }
Status ParseRelevanceArgs(Napi::Object spec, SpecCall* call, core::RelevanceArgs* a) {
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &a->n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a->d));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "x", SpecProduct(a->n, a->d), false, call, &a->x));
  Napi::Value kind = spec.Get("kind");
  const std::string k = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : std::string();
  if (k == "gaussian") {
    a->kind = core::RelevanceKind::kGaussian;
  } else if (k == "cosine") {
    a->kind = core::RelevanceKind::kCosine;
  } else {
    return Status(Code::kInvalidArg, "options.kind: expected 'gaussian' or 'cosine', got " + Describe(kind));
  }
  return SpecNumber(spec, "sigma", &a->sigma);
}

Status ParseRelevance(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::RelevanceArgs a;
  VLK_RETURN_IF_ERROR(ParseRelevanceArgs(spec, call, &a));
  float* r = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "relevance", SpecProduct(a.n, a.n), call, &r));
  call->run = [a, r](const Context& ctx) { return core::relevance(a, r, ctx); };
  return Status::Ok();
}

Status ParseRelevanceBackward(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::RelevanceArgs a;
  VLK_RETURN_IF_ERROR(ParseRelevanceArgs(spec, call, &a));
  const float* dr = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "gradOutput", SpecProduct(a.n, a.n), false, call, &dr));
  float* dx = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "x", SpecProduct(a.n, a.d), call, &dx));
  call->run = [a, dr, dx](const Context& ctx) { return core::relevance_backward(a, dr, dx, ctx); };
  return Status::Ok();
}

// ---- scanRelevance: { captions, maxWords, images, regionsPerImage, d, words, wordLengths, regions,
// negativeSlope, eps }
Status ParseScanRelevance(Napi::Env env, Napi::Object spec, SpecCall* call) {
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  core::ScanRelevanceArgs a;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "captions", &a.captions));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "maxWords", &a.max_words));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "images", &a.images));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "regionsPerImage", &a.regions_per_image));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a.d));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "words", SpecProduct(a.captions, a.max_words, a.d), false, call, &a.words));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "regions", SpecProduct(a.images, a.regions_per_image, a.d), false, call, &a.regions));
  VLK_RETURN_IF_ERROR(SpecI32(spec, "wordLengths", SpecLen("", a.captions, " (one per caption)"), false, call,
                              &a.word_lengths));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "negativeSlope", &a.negative_slope));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "eps", &a.eps));
  float *t2i = nullptr, *i2t = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "textToImage", SpecProduct(a.captions, a.images), call, &t2i));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "imageToText", SpecProduct(a.images, a.captions), call, &i2t));
  call->run = [a, t2i, i2t](const Context& ctx) { return core::scan_relevance(a, t2i, i2t, ctx); };
  return Status::Ok();
}

// ---- rowTopkMask: { rows, cols, scores, k, fraction, keepDiagonal }
Status ParseRowTopkMask(Napi::Env env, Napi::Object spec, SpecCall* call) {
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  core::RowTopkMaskArgs a;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "rows", &a.rows));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "cols", &a.cols));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "scores", SpecProduct(a.rows, a.cols), false, call, &a.scores));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "k", &a.k));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "fraction", &a.fraction));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("keepDiagonal"), "keepDiagonal", true, &a.keep_diagonal));
  uint8_t* mask = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutU8(env, "mask", SpecProduct(a.rows, a.cols), call, &mask));
  call->run = [a, mask](const Context& ctx) { return core::row_topk_mask(a, mask, ctx); };
  return Status::Ok();
}

// ---- gcn / gcnBackward: { n, din, dout, adjacency, input, weight, bias?, slope, gradOutput?,
// output?, hidden?, keepHidden? }
Status ParseGcnArgs(Napi::Object spec, SpecCall* call, core::GcnArgs* a) {
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &a->n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "din", &a->din));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "dout", &a->dout));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "adjacency", SpecProduct(a->n, a->n), false, call, &a->adjacency));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "input", SpecProduct(a->n, a->din), false, call, &a->input));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "weight", SpecProduct(a->din, a->dout), false, call, &a->weight));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "bias", a->dout, true, call, &a->bias));
  return SpecNumber(spec, "slope", &a->slope);
}

Status ParseGcn(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::GcnArgs a;
  VLK_RETURN_IF_ERROR(ParseGcnArgs(spec, call, &a));
  bool keep_hidden = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("keepHidden"), "keepHidden", true, &keep_hidden));
  float *y = nullptr, *h = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "output", SpecProduct(a.n, a.dout), call, &y));
  if (keep_hidden) VLK_RETURN_IF_ERROR(SpecOutF32(env, "hidden", SpecProduct(a.n, a.dout), call, &h));
  call->run = [a, y, h](const Context& ctx) { return core::gcn(a, y, h, ctx); };
  return Status::Ok();
}

Status ParseGcnBackward(Napi::Env env, Napi::Object spec, SpecCall* call) {
  core::GcnArgs a;
  VLK_RETURN_IF_ERROR(ParseGcnArgs(spec, call, &a));
  const float *dy = nullptr, *y = nullptr, *h = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "gradOutput", SpecProduct(a.n, a.dout), false, call, &dy));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "output", SpecProduct(a.n, a.dout), true, call, &y));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "hidden", SpecProduct(a.n, a.dout), true, call, &h));
  core::GcnGrads g;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "input", SpecProduct(a.n, a.din), call, &g.input));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "weight", SpecProduct(a.din, a.dout), call, &g.weight));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "bias", a.dout, call, &g.bias));
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "adjacency", SpecProduct(a.n, a.n), call, &g.adjacency));
  call->run = [a, dy, y, h, g](const Context& ctx) { return core::gcn_backward(a, dy, y, h, g, ctx); };
  return Status::Ok();
}

}  // namespace

Napi::Value GraphRelevanceSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseRelevance, "relevance");
}
Napi::Value GraphRelevanceAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseRelevance, "relevance");
}
Napi::Value GraphRelevanceBackwardSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseRelevanceBackward, "relevanceBackward");
}
Napi::Value GraphRelevanceBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseRelevanceBackward, "relevanceBackward");
}
Napi::Value GraphScanRelevanceSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseScanRelevance, "scanRelevance");
}
Napi::Value GraphScanRelevanceAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseScanRelevance, "scanRelevance");
}
Napi::Value GraphRowTopkMaskSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseRowTopkMask, "rowTopkMask");
}
Napi::Value GraphRowTopkMaskAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseRowTopkMask, "rowTopkMask");
}
Napi::Value GraphGcnSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, ParseGcn, "gcn"); }
Napi::Value GraphGcnAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseGcn, "gcn");
}
Napi::Value GraphGcnBackwardSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseGcnBackward, "gcnBackward");
}
Napi::Value GraphGcnBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseGcnBackward, "gcnBackward");
}

}  // namespace binding
}  // namespace vlk
