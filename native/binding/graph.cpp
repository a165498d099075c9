// In-batch graph entry points (binding). Every spec is flat (lib has resolved the shapes): sizes
// as numbers, inputs as Float32Arrays (Int32Array wordLengths), options as numbers / booleans,
// threads?. Each input's length is checked against the sizes here; outputs (Float32Array, or
// Uint8Array for the mask) are V8-allocated before the job runs, and the call resolves with an
// object of them. One generic job runs any op: the parse step captures the core call in `run`.
#include "graph.hpp"

#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "graph/gcn.hpp"
#include "graph/relevance.hpp"
#include "graph/row_topk_mask.hpp"
#include "graph/scan_relevance.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

namespace {

struct GraphCall {
  std::vector<Napi::Object> keep;                            // inputs
  std::vector<std::pair<std::string, Napi::TypedArray>> out;  // outputs, in result order
  std::function<Status(const Context&)> run;
  int threads = 1;
};

using Parser = Status (*)(Napi::Env, Napi::Object, GraphCall*);

Status ReadF32(Napi::Object spec, const char* name, int64_t n, bool optional, GraphCall* call, const float** out) {
  Napi::Value v = spec.Get(name);
  *out = nullptr;
  if (optional && v.IsUndefined()) return Status::Ok();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    return Status(Code::kType, std::string(name) + ": expected a Float32Array, got " + Describe(v));
  }
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n) {
    return Status(Code::kShape, std::string(name) + ": length " + std::to_string(a.ElementLength()) + ", expected " +
                                    std::to_string(n));
  }
  if (n > 0 && a.Data() == nullptr) return Status(Code::kInvalidArg, std::string(name) + ": detached buffer");
  call->keep.push_back(a);
  *out = a.Data();
  return Status::Ok();
}

Status ReadNumber(Napi::Object spec, const char* name, double* out) {
  Napi::Value v = spec.Get(name);
  if (!v.IsNumber()) return Status(Code::kType, std::string(name) + ": expected a number, got " + Describe(v));
  *out = v.As<Napi::Number>().DoubleValue();
  return Status::Ok();
}

Status AllocF32(Napi::Env env, const char* name, int64_t n, GraphCall* call, float** out) {
  try {
    Napi::Float32Array a = Napi::Float32Array::New(env, static_cast<size_t>(n));
    *out = a.Data();
    call->out.emplace_back(name, a);
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, std::string(name) + ": could not allocate " + std::to_string(n) + " floats");
  }
  return Status::Ok();
}

Status AllocU8(Napi::Env env, const char* name, int64_t n, GraphCall* call, uint8_t** out) {
  try {
    Napi::Uint8Array a = Napi::Uint8Array::New(env, static_cast<size_t>(n));
    *out = a.Data();
    call->out.emplace_back(name, a);
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, std::string(name) + ": could not allocate " + std::to_string(n) + " bytes");
  }
  return Status::Ok();
}

// ---- relevance / relevanceBackward: { n, d, x, kind: 'gaussian' | 'cosine', sigma, gradOutput? }
Status ParseRelevanceArgs(Napi::Object spec, GraphCall* call, core::RelevanceArgs* a) {
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("n"), "n", &a->n));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("d"), "d", &a->d));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "x", a->n * a->d, false, call, &a->x));
  Napi::Value kind = spec.Get("kind");
  const std::string k = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : std::string();
  if (k == "gaussian") {
    a->kind = core::RelevanceKind::kGaussian;
  } else if (k == "cosine") {
    a->kind = core::RelevanceKind::kCosine;
  } else {
    return Status(Code::kInvalidArg, "options.kind: expected 'gaussian' or 'cosine', got " + Describe(kind));
  }
  return ReadNumber(spec, "sigma", &a->sigma);
}

Status ParseRelevance(Napi::Env env, Napi::Object spec, GraphCall* call) {
  core::RelevanceArgs a;
  VLK_RETURN_IF_ERROR(ParseRelevanceArgs(spec, call, &a));
  float* r = nullptr;
  VLK_RETURN_IF_ERROR(AllocF32(env, "relevance", a.n * a.n, call, &r));
  call->run = [a, r](const Context& ctx) { return core::relevance(a, r, ctx); };
  return Status::Ok();
}

Status ParseRelevanceBackward(Napi::Env env, Napi::Object spec, GraphCall* call) {
  core::RelevanceArgs a;
  VLK_RETURN_IF_ERROR(ParseRelevanceArgs(spec, call, &a));
  const float* dr = nullptr;
  VLK_RETURN_IF_ERROR(ReadF32(spec, "gradOutput", a.n * a.n, false, call, &dr));
  float* dx = nullptr;
  VLK_RETURN_IF_ERROR(AllocF32(env, "x", a.n * a.d, call, &dx));
  call->run = [a, dr, dx](const Context& ctx) { return core::relevance_backward(a, dr, dx, ctx); };
  return Status::Ok();
}

// ---- scanRelevance: { captions, maxWords, images, regionsPerImage, d, words, wordLengths, regions,
// negativeSlope, eps }
Status ParseScanRelevance(Napi::Env env, Napi::Object spec, GraphCall* call) {
  core::ScanRelevanceArgs a;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("captions"), "captions", &a.captions));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("maxWords"), "maxWords", &a.max_words));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("images"), "images", &a.images));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("regionsPerImage"), "regionsPerImage", &a.regions_per_image));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("d"), "d", &a.d));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "words", a.captions * a.max_words * a.d, false, call, &a.words));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "regions", a.images * a.regions_per_image * a.d, false, call, &a.regions));
  size_t len = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(spec.Get("wordLengths"), "wordLengths", &a.word_lengths, &len));
  if (static_cast<int64_t>(len) != a.captions) {
    return Status(Code::kShape, "wordLengths: length " + std::to_string(len) + ", expected " +
                                    std::to_string(a.captions) + " (one per caption)");
  }
  call->keep.push_back(spec.Get("wordLengths").As<Napi::Object>());
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "negativeSlope", &a.negative_slope));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "eps", &a.eps));
  float *t2i = nullptr, *i2t = nullptr;
  VLK_RETURN_IF_ERROR(AllocF32(env, "textToImage", a.captions * a.images, call, &t2i));
  VLK_RETURN_IF_ERROR(AllocF32(env, "imageToText", a.images * a.captions, call, &i2t));
  call->run = [a, t2i, i2t](const Context& ctx) { return core::scan_relevance(a, t2i, i2t, ctx); };
  return Status::Ok();
}

// ---- rowTopkMask: { rows, cols, scores, k, fraction, keepDiagonal }
Status ParseRowTopkMask(Napi::Env env, Napi::Object spec, GraphCall* call) {
  core::RowTopkMaskArgs a;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("rows"), "rows", &a.rows));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("cols"), "cols", &a.cols));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "scores", a.rows * a.cols, false, call, &a.scores));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("k"), "k", &a.k));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "fraction", &a.fraction));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("keepDiagonal"), "keepDiagonal", true, &a.keep_diagonal));
  uint8_t* mask = nullptr;
  VLK_RETURN_IF_ERROR(AllocU8(env, "mask", a.rows * a.cols, call, &mask));
  call->run = [a, mask](const Context& ctx) { return core::row_topk_mask(a, mask, ctx); };
  return Status::Ok();
}

// ---- gcn / gcnBackward: { n, din, dout, adjacency, input, weight, bias?, slope, gradOutput?,
// output?, hidden?, keepHidden? }
Status ParseGcnArgs(Napi::Object spec, GraphCall* call, core::GcnArgs* a) {
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("n"), "n", &a->n));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("din"), "din", &a->din));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("dout"), "dout", &a->dout));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "adjacency", a->n * a->n, false, call, &a->adjacency));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "input", a->n * a->din, false, call, &a->input));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "weight", a->din * a->dout, false, call, &a->weight));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "bias", a->dout, true, call, &a->bias));
  return ReadNumber(spec, "slope", &a->slope);
}

Status ParseGcn(Napi::Env env, Napi::Object spec, GraphCall* call) {
  core::GcnArgs a;
  VLK_RETURN_IF_ERROR(ParseGcnArgs(spec, call, &a));
  bool keep_hidden = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("keepHidden"), "keepHidden", true, &keep_hidden));
  float *y = nullptr, *h = nullptr;
  VLK_RETURN_IF_ERROR(AllocF32(env, "output", a.n * a.dout, call, &y));
  if (keep_hidden) VLK_RETURN_IF_ERROR(AllocF32(env, "hidden", a.n * a.dout, call, &h));
  call->run = [a, y, h](const Context& ctx) { return core::gcn(a, y, h, ctx); };
  return Status::Ok();
}

Status ParseGcnBackward(Napi::Env env, Napi::Object spec, GraphCall* call) {
  core::GcnArgs a;
  VLK_RETURN_IF_ERROR(ParseGcnArgs(spec, call, &a));
  const float *dy = nullptr, *y = nullptr, *h = nullptr;
  VLK_RETURN_IF_ERROR(ReadF32(spec, "gradOutput", a.n * a.dout, false, call, &dy));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "output", a.n * a.dout, true, call, &y));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "hidden", a.n * a.dout, true, call, &h));
  core::GcnGrads g;
  VLK_RETURN_IF_ERROR(AllocF32(env, "input", a.n * a.din, call, &g.input));
  VLK_RETURN_IF_ERROR(AllocF32(env, "weight", a.din * a.dout, call, &g.weight));
  VLK_RETURN_IF_ERROR(AllocF32(env, "bias", a.dout, call, &g.bias));
  VLK_RETURN_IF_ERROR(AllocF32(env, "adjacency", a.n * a.n, call, &g.adjacency));
  call->run = [a, dy, y, h, g](const Context& ctx) { return core::gcn_backward(a, dy, y, h, g, ctx); };
  return Status::Ok();
}

Status Parse(Napi::Env env, Napi::Value value, const char* api, Parser parser, GraphCall* call) {
  if (!IsObject(value)) return Status(Code::kType, std::string(api) + ": expected a spec object, got " + Describe(value));
  Napi::Object spec = value.As<Napi::Object>();
  VLK_RETURN_IF_ERROR(ReadThreads(spec.Get("threads"), &call->threads));
  return parser(env, spec, call);
}

class GraphJob final : public AsyncJob {
 public:
  GraphJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, GraphCall call, Isa isa)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    for (auto& k : call_.keep) Keep(k);
    call_.keep.clear();
    for (auto& o : call_.out) {
      slots_.emplace_back(o.first, Keep(o.second));
      o.second = Napi::TypedArray();
    }
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return call_.run(MakeContext(call_.threads, isa_, &cancel)); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object r = Napi::Object::New(env);
    for (const auto& s : slots_) r.Set(s.first, Kept(s.second));
    return r;
  }

 private:
  GraphCall call_;
  Isa isa_;
  std::vector<std::pair<std::string, size_t>> slots_;
};

Napi::Value RunSync(const Napi::CallbackInfo& info, const char* api, Parser parser) {
  Napi::Env env = info.Env();
  GraphCall call;
  Status st = Parse(env, info[0], api, parser, &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) ThrowStatus(env, st);
  st = call.run(MakeContext(call.threads, isa, nullptr));
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Object r = Napi::Object::New(env);
  for (const auto& o : call.out) r.Set(o.first, o.second);
  return r;
}

Napi::Value RunAsync(const Napi::CallbackInfo& info, AddonState& state, const char* api, Parser parser) {
  Napi::Env env = info.Env();
  GraphCall call;
  Status st = Parse(env, info[0], api, parser, &call);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[1], state, &cancel);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<GraphJob>(env, std::move(cancel), std::move(call), isa);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace

Napi::Value GraphRelevanceSync(const Napi::CallbackInfo& info) {
  return RunSync(info, "relevance", ParseRelevance);
}
Napi::Value GraphRelevanceAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, "relevance", ParseRelevance);
}
Napi::Value GraphRelevanceBackwardSync(const Napi::CallbackInfo& info) {
  return RunSync(info, "relevanceBackward", ParseRelevanceBackward);
}
Napi::Value GraphRelevanceBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, "relevanceBackward", ParseRelevanceBackward);
}
Napi::Value GraphScanRelevanceSync(const Napi::CallbackInfo& info) {
  return RunSync(info, "scanRelevance", ParseScanRelevance);
}
Napi::Value GraphScanRelevanceAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, "scanRelevance", ParseScanRelevance);
}
Napi::Value GraphRowTopkMaskSync(const Napi::CallbackInfo& info) {
  return RunSync(info, "rowTopkMask", ParseRowTopkMask);
}
Napi::Value GraphRowTopkMaskAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, "rowTopkMask", ParseRowTopkMask);
}
Napi::Value GraphGcnSync(const Napi::CallbackInfo& info) { return RunSync(info, "gcn", ParseGcn); }
Napi::Value GraphGcnAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, "gcn", ParseGcn);
}
Napi::Value GraphGcnBackwardSync(const Napi::CallbackInfo& info) {
  return RunSync(info, "gcnBackward", ParseGcnBackward);
}
Napi::Value GraphGcnBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, "gcnBackward", ParseGcnBackward);
}

}  // namespace binding
}  // namespace vlk
