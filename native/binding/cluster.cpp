// Clustering entry points (binding). Specs are flat (lib has resolved shapes):
//  sinkhorn: b, p, scores (Float32Array b*p), epsilon, iterations, threads?;
//  swavLoss: b, p, scoresV, scoresT, codesV, codesT (Float32Array b*p each), temperature, grads,
//            threads?;
//  kmeans:   n, d, data (Float32Array n*d), k, metric ('l2' | 'cosine'), iterations, seed
//            (integer 0..2^53-1), tolerance, init? (Float32Array k*d), threads?, progress?
//            (Float64Array(iterations + 1): the job stores inertia t at [t] and then t at [0]
//            with release order, lib polls it and calls onProgress on its own thread).
// Every array's length is checked against the sizes here. Outputs are V8-allocated before the job
// runs; one job class serves the three ops (a run closure on the pool, a result closure on the JS
// thread).
#include "cluster.hpp"

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "cluster/kmeans.hpp"
#include "cluster/sinkhorn.hpp"
#include "cluster/swav_loss.hpp"
#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

namespace {

using Outputs = std::vector<Napi::Value>;

struct Call {
  std::vector<Napi::Object> keep;     // inputs, kept by the async job
  std::vector<Napi::Object> outputs;  // V8-allocated outputs, handed to `result` in this order
  int threads = 1;
  std::function<Status(const Context&)> run;                          // pool thread (or sync)
  std::function<Napi::Value(Napi::Env, const Outputs&)> result;       // JS thread
};

Status ReadF32(Napi::Object spec, const char* name, int64_t n, bool optional, Call* call, const float** out) {
  Napi::Value v = spec.Get(name);
  if (optional && v.IsUndefined()) {
    *out = nullptr;
    return Status::Ok();
  }
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

Status ReadInt(Napi::Object spec, const char* name, int64_t lo, int64_t* out) {
  double v = 0;
  VLK_RETURN_IF_ERROR(ReadNumber(spec, name, &v));
  if (!std::isfinite(v) || std::floor(v) != v || v < double(lo) || v > double(kMaxSafeInteger)) {
    return Status(Code::kInvalidArg, std::string(name) + ": " + FormatNumber(v) + " is not an integer >= " +
                                         std::to_string(lo));
  }
  *out = static_cast<int64_t>(v);
  return Status::Ok();
}

Status ReadSpec(Napi::Value value, const char* op, Napi::Object* spec) {
  if (!IsObject(value)) return Status(Code::kType, std::string(op) + ": expected a spec object, got " + Describe(value));
  *spec = value.As<Napi::Object>();
  return Status::Ok();
}

template <class A>
Status Allocate(Napi::Env env, int64_t n, Call* call, A* out) {
  try {
    *out = A::New(env, static_cast<size_t>(n));
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, "could not allocate a result of " + std::to_string(n) + " elements");
  }
  call->outputs.push_back(*out);
  return Status::Ok();
}

// --- sinkhorn ---

Status ParseSinkhorn(Napi::Env env, Napi::Value value, Call* call) {
  Napi::Object spec;
  VLK_RETURN_IF_ERROR(ReadSpec(value, "sinkhorn", &spec));
  auto a = std::make_shared<core::SinkhornArgs>();
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a->b));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("p"), "p", &a->p));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "scores", a->b * a->p, false, call, &a->scores));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "epsilon", &a->epsilon));
  VLK_RETURN_IF_ERROR(ReadInt(spec, "iterations", 1, &a->iterations));
  VLK_RETURN_IF_ERROR(ReadThreads(spec.Get("threads"), &call->threads));
  Napi::Float32Array codes;
  VLK_RETURN_IF_ERROR(Allocate(env, a->b * a->p, call, &codes));
  float* out = codes.Data();
  call->run = [a, out](const Context& ctx) { return core::sinkhorn(*a, out, ctx); };
  call->result = [](Napi::Env, const Outputs& o) { return o[0]; };
  return Status::Ok();
}

// --- swavLoss ---

Status ParseSwav(Napi::Env env, Napi::Value value, Call* call) {
  Napi::Object spec;
  VLK_RETURN_IF_ERROR(ReadSpec(value, "swavLoss", &spec));
  auto a = std::make_shared<core::SwavLossArgs>();
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a->b));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("p"), "p", &a->p));
  const int64_t n = a->b * a->p;
  VLK_RETURN_IF_ERROR(ReadF32(spec, "scoresV", n, false, call, &a->scores_v));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "scoresT", n, false, call, &a->scores_t));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "codesV", n, false, call, &a->codes_v));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "codesT", n, false, call, &a->codes_t));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "temperature", &a->temperature));
  VLK_RETURN_IF_ERROR(ReadThreads(spec.Get("threads"), &call->threads));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  auto out = std::make_shared<core::SwavLossOut>();
  if (grads) {
    Napi::Float32Array dv, dt;
    VLK_RETURN_IF_ERROR(Allocate(env, n, call, &dv));
    VLK_RETURN_IF_ERROR(Allocate(env, n, call, &dt));
    out->dscores_v = dv.Data();
    out->dscores_t = dt.Data();
  }
  call->run = [a, out](const Context& ctx) { return core::swav_loss(*a, out.get(), ctx); };
  call->result = [out](Napi::Env env, const Outputs& o) -> Napi::Value {
    Napi::Object r = Napi::Object::New(env);
    r.Set("loss", out->loss);
    r.Set("lossV", out->loss_v);
    r.Set("lossT", out->loss_t);
    r.Set("dtemperature", out->dtemperature);
    if (o.size() == 2) {
      r.Set("dscoresV", o[0]);
      r.Set("dscoresT", o[1]);
    }
    return r;
  };
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

constexpr int64_t kMaxIterations = 1000000;

Status ParseKmeans(Napi::Env env, Napi::Value value, Call* call) {
  Napi::Object spec;
  VLK_RETURN_IF_ERROR(ReadSpec(value, "kmeans", &spec));
  auto s = std::make_shared<KmeansState>();
  core::KmeansArgs& a = s->args;
  int64_t n = 0, d = 0;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("n"), "n", &n));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("d"), "d", &d));
  const float* data = nullptr;
  VLK_RETURN_IF_ERROR(ReadF32(spec, "data", n * d, false, call, &data));
  a.x = MatrixView<const float>(data, n, d);
  double kv = 0;
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "k", &kv));
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
  VLK_RETURN_IF_ERROR(ReadInt(spec, "iterations", 0, &a.iterations));
  if (a.iterations > kMaxIterations) {
    return Status(Code::kInvalidArg, "options.iterations: " + std::to_string(a.iterations) + " is above " +
                                         std::to_string(kMaxIterations));
  }
  int64_t seed = 0;
  VLK_RETURN_IF_ERROR(ReadInt(spec, "seed", 0, &seed));
  a.seed = static_cast<uint64_t>(seed);
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "tolerance", &a.tolerance));
  VLK_RETURN_IF_ERROR(ReadF32(spec, "init", a.k * d, true, call, &a.init));
  VLK_RETURN_IF_ERROR(ReadThreads(spec.Get("threads"), &call->threads));
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
  Napi::Float32Array centroids;
  Napi::Int32Array assignments;
  VLK_RETURN_IF_ERROR(Allocate(env, a.k * d, call, &centroids));
  VLK_RETURN_IF_ERROR(Allocate(env, n, call, &assignments));
  try {
    s->history.resize(static_cast<size_t>(a.iterations));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "kmeans: could not allocate the inertia history");
  }
  s->out.centroids = centroids.Data();
  s->out.assignments = assignments.Data();
  s->out.inertia_history = s->history.data();
  call->run = [s](const Context& ctx) { return core::kmeans(s->args, &s->out, ctx); };
  call->result = [s](Napi::Env env, const Outputs& o) -> Napi::Value {
    Napi::Object r = Napi::Object::New(env);
    r.Set("centroids", o[0]);
    r.Set("assignments", o[1]);
    r.Set("inertia", s->out.inertia);
    r.Set("iterations", static_cast<double>(s->out.iterations_run));
    r.Set("converged", s->out.converged);
    Napi::Float64Array h = Napi::Float64Array::New(env, static_cast<size_t>(s->out.iterations_run));
    for (int64_t i = 0; i < s->out.iterations_run; ++i) h[static_cast<size_t>(i)] = s->history[static_cast<size_t>(i)];
    r.Set("inertiaHistory", h);
    return r;
  };
  return Status::Ok();
}

// --- sync / async plumbing ---

class ClusterJob final : public AsyncJob {
 public:
  ClusterJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, Call call, Isa isa)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    for (auto& k : call_.keep) Keep(k);
    call_.keep.clear();
    for (auto& o : call_.outputs) slots_.push_back(Keep(o));
    call_.outputs.clear();
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return call_.run(MakeContext(call_.threads, isa_, &cancel)); }
  Napi::Value Result(Napi::Env env) override {
    Outputs o;
    for (size_t s : slots_) o.push_back(Kept(s));
    return call_.result(env, o);
  }

 private:
  Call call_;
  Isa isa_;
  std::vector<size_t> slots_;
};

using Parser = Status (*)(Napi::Env, Napi::Value, Call*);

Napi::Value RunSync(const Napi::CallbackInfo& info, Parser parse) {
  Napi::Env env = info.Env();
  Call call;
  Status st = parse(env, info[0], &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (st.ok()) st = call.run(MakeContext(call.threads, isa, nullptr));
  if (!st.ok()) ThrowStatus(env, st);
  Outputs o(call.outputs.begin(), call.outputs.end());
  return call.result(env, o);
}

Napi::Value RunAsync(const Napi::CallbackInfo& info, AddonState& state, Parser parse) {
  Napi::Env env = info.Env();
  Call call;
  Status st = parse(env, info[0], &call);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[1], state, &cancel);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<ClusterJob>(env, std::move(cancel), std::move(call), isa);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace

Napi::Value SinkhornSync(const Napi::CallbackInfo& info) { return RunSync(info, &ParseSinkhorn); }
Napi::Value SinkhornAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, &ParseSinkhorn);
}
Napi::Value SwavLossSync(const Napi::CallbackInfo& info) { return RunSync(info, &ParseSwav); }
Napi::Value SwavLossAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, &ParseSwav);
}
Napi::Value KmeansSync(const Napi::CallbackInfo& info) { return RunSync(info, &ParseKmeans); }
Napi::Value KmeansAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, &ParseKmeans);
}

}  // namespace binding
}  // namespace vlk
