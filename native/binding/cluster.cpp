// Clustering entry points (binding). Specs are flat (lib has resolved shapes):
//  sinkhorn: b, p, scores (Float32Array b*p), epsilon, iterations, threads?;
//  swavLoss: b, p, scoresV, scoresT, codesV, codesT (Float32Array b*p each), temperature, grads,
//            threads?;
//  kmeans:   n, d, data (Float32Array n*d), k, metric ('l2' | 'cosine'), iterations, seed
//            (integer 0..2^53-1), tolerance, init? (Float32Array k*d), threads?, progress?
//            (Float64Array(iterations + 1): the job stores inertia t at [t] and then t at [0]
//            with release order, lib polls it and calls onProgress on its own thread).
// Every array's length is checked against the sizes here. Outputs are V8-allocated before the job
// runs. Each op is a flat-spec call (common/spec_call.hpp): a run closure on the pool, the scalar
// results read from its state on the JS thread; sinkhorn resolves with the codes array itself.
#include "cluster.hpp"

#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "cluster/kmeans.hpp"
#include "cluster/sinkhorn.hpp"
#include "cluster/swav_loss.hpp"
#include "common/spec_call.hpp"

namespace vlk {
namespace binding {

namespace {

// What cluster's outputs report when V8 cannot allocate them.
std::string ResultOom(int64_t n) { return "could not allocate a result of " + std::to_string(n) + " elements"; }

constexpr int64_t kMaxIterations = 1000000;

// --- sinkhorn ---

Status ParseSinkhorn(Napi::Env env, Napi::Object spec, SpecCall* call) {
  auto a = std::make_shared<core::SinkhornArgs>();
  VLK_RETURN_IF_ERROR(SpecSize(spec, "b", &a->b));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "p", &a->p));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "scores", SpecProduct(a->b, a->p), false, call, &a->scores));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "epsilon", &a->epsilon));
  VLK_RETURN_IF_ERROR(SpecInteger(spec, "iterations", 1, &a->iterations));
  if (a->iterations > kMaxIterations) {
    return Status(Code::kInvalidArg, "options.iterations: " + std::to_string(a->iterations) + " is above " +
                                         std::to_string(kMaxIterations));
  }
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  float* out = nullptr;
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "codes", SizeMul(a->b, a->p), call, &out, ResultOom(SizeMul(a->b, a->p)).c_str()));
  call->run = [a, out](const Context& ctx) { return core::sinkhorn(*a, out, ctx); };
  call->finish = [](Napi::Env, Napi::Object r) { return r.Get("codes"); };
  return Status::Ok();
}

// --- swavLoss ---

Status ParseSwav(Napi::Env env, Napi::Object spec, SpecCall* call) {
  auto a = std::make_shared<core::SwavLossArgs>();
  VLK_RETURN_IF_ERROR(SpecSize(spec, "b", &a->b));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "p", &a->p));
  const int64_t n = SpecProduct(a->b, a->p);
  VLK_RETURN_IF_ERROR(SpecF32(spec, "scoresV", n, false, call, &a->scores_v));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "scoresT", n, false, call, &a->scores_t));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "codesV", n, false, call, &a->codes_v));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "codesT", n, false, call, &a->codes_t));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "temperature", &a->temperature));
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  auto out = std::make_shared<core::SwavLossOut>();
  if (grads) {
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dscoresV", n, call, &out->dscores_v, ResultOom(n).c_str()));
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dscoresT", n, call, &out->dscores_t, ResultOom(n).c_str()));
  }
  call->run = [a, out](const Context& ctx) { return core::swav_loss(*a, out.get(), ctx); };
  call->lead.emplace_back("loss", [out](Napi::Env env) { return Napi::Number::New(env, out->loss); });
  call->lead.emplace_back("lossV", [out](Napi::Env env) { return Napi::Number::New(env, out->loss_v); });
  call->lead.emplace_back("lossT", [out](Napi::Env env) { return Napi::Number::New(env, out->loss_t); });
  call->lead.emplace_back("dtemperature", [out](Napi::Env env) { return Napi::Number::New(env, out->dtemperature); });
  return Status::Ok();
}

// --- kmeans ---

void StoreProgress(void* ctx, int64_t iteration, double inertia) {
  double* cells = static_cast<double*>(ctx);
  uint64_t bits;
  std::memcpy(&bits, &inertia, sizeof bits);
  __atomic_store_n(reinterpret_cast<uint64_t*>(cells + iteration), bits, __ATOMIC_RELAXED);
  const double t = static_cast<double>(iteration);
  std::memcpy(&bits, &t, sizeof bits);
  __atomic_store_n(reinterpret_cast<uint64_t*>(cells), bits, __ATOMIC_RELEASE);
}

struct KmeansState {
  core::KmeansArgs args;
  core::KmeansOut out;
  std::vector<double> history;
};


Status ParseKmeans(Napi::Env env, Napi::Object spec, SpecCall* call) {
  auto s = std::make_shared<KmeansState>();
  core::KmeansArgs& a = s->args;
  int64_t n = 0, d = 0;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &d));
  const float* data = nullptr;
  VLK_RETURN_IF_ERROR(SpecF32(spec, "data", SpecProduct(n, d), false, call, &data));
  a.x = MatrixView<const float>(data, n, d);
  double kv = 0;
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "k", &kv));
  if (!std::isfinite(kv) || std::floor(kv) != kv || kv < 1 || kv > double(n)) {
    return Status(Code::kInvalidK, "k: " + FormatNumber(kv) + " is not an integer in 1.." + std::to_string(n) +
                                       " (the number of rows)");
  }
  a.k = static_cast<int64_t>(kv);
  Napi::Value metric = spec.Get("metric");
  const std::string m = metric.IsString() ? metric.As<Napi::String>().Utf8Value() : "";
  if (m == "l2") {
    a.metric = core::Metric::kL2;
  } else if (m == "cosine") {
    a.metric = core::Metric::kCosine;
  } else {
    return Status(Code::kInvalidArg, "options.metric: expected 'l2' or 'cosine', got " +
                                         (metric.IsString() ? "'" + m + "'" : Describe(metric)));
  }
  VLK_RETURN_IF_ERROR(SpecInteger(spec, "iterations", 0, &a.iterations));
  if (a.iterations > kMaxIterations) {
    return Status(Code::kInvalidArg, "options.iterations: " + std::to_string(a.iterations) + " is above " +
                                         std::to_string(kMaxIterations));
  }
  int64_t seed = 0;
  VLK_RETURN_IF_ERROR(SpecInteger(spec, "seed", 0, &seed));
  a.seed = static_cast<uint64_t>(seed);
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "tolerance", &a.tolerance));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "init", SpecProduct(a.k, d), true, call, &a.init));
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  Napi::Value progress = spec.Get("progress");
  if (!progress.IsUndefined()) {
    if (!progress.IsTypedArray() || progress.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        static_cast<int64_t>(progress.As<Napi::TypedArray>().ElementLength()) != a.iterations + 1) {
      return Status(Code::kType, "progress: expected a Float64Array(iterations + 1)");
    }
    Napi::Float64Array cells = progress.As<Napi::Float64Array>();
    call->keep.push_back(cells);
    a.progress = &StoreProgress;
    a.progress_ctx = cells.Data();
  }
  VLK_RETURN_IF_ERROR(SpecOutF32(env, "centroids", SizeMul(a.k, d), call, &s->out.centroids, ResultOom(SizeMul(a.k, d)).c_str()));
  VLK_RETURN_IF_ERROR(SpecOutI32(env, "assignments", n, call, &s->out.assignments, ResultOom(n).c_str()));
  try {
    s->history.resize(static_cast<size_t>(a.iterations));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "kmeans: could not allocate the inertia history");
  }
  s->out.inertia_history = s->history.data();
  call->run = [s](const Context& ctx) { return core::kmeans(s->args, &s->out, ctx); };
  call->tail.emplace_back("inertia", [s](Napi::Env env) { return Napi::Number::New(env, s->out.inertia); });
  call->tail.emplace_back("iterations", [s](Napi::Env env) {
    return Napi::Number::New(env, static_cast<double>(s->out.iterations_run));
  });
  call->tail.emplace_back("converged", [s](Napi::Env env) { return Napi::Boolean::New(env, s->out.converged); });
  call->tail.emplace_back("inertiaHistory", [s](Napi::Env env) -> Napi::Value {
    Napi::Float64Array h = Napi::Float64Array::New(env, static_cast<size_t>(s->out.iterations_run));
    for (int64_t i = 0; i < s->out.iterations_run; ++i) h[static_cast<size_t>(i)] = s->history[static_cast<size_t>(i)];
    return h;
  });
  return Status::Ok();
}

}  // namespace

Napi::Value SinkhornSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, ParseSinkhorn, "sinkhorn"); }
Napi::Value SinkhornAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseSinkhorn, "sinkhorn");
}
Napi::Value SwavLossSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, ParseSwav, "swavLoss"); }
Napi::Value SwavLossAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseSwav, "swavLoss");
}
Napi::Value KmeansSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, ParseKmeans, "kmeans"); }
Napi::Value KmeansAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseKmeans, "kmeans");
}

}  // namespace binding
}  // namespace vlk
