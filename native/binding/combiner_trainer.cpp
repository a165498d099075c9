// Combiner training entry points (binding). The trainer's state lives in native memory behind an
// External; a mutex serialises steps and weight copies (lib awaits each step anyway). Steps take
// image, text and target features as B x D matrices (the forms search takes) and options
// { lr, beta1, beta2, eps, weightDecay, dropout, scale, labelSmoothing, threads }.
#include "combiner_trainer.hpp"

#include <cmath>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/checked_size.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "compose/combiner_trainer.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

namespace {

struct Trainer {
  std::mutex mu;
  core::CombinerTrainer t;
  Trainer(int64_t d, int64_t p, int64_t h, uint64_t seed) : t(d, p, h, seed) {}
};
using Handle = std::shared_ptr<Trainer>;

Status ReadHandle(Napi::Value v, Handle* out) {
  if (!v.IsExternal()) return Status(Code::kType, "trainer: not a combiner trainer handle");
  *out = *v.As<Napi::External<Handle>>().Data();
  return Status::Ok();
}

Status ReadNumber(Napi::Object o, const char* name, double* out) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return Status::Ok();
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
    return Status(Code::kType, std::string("options.") + name + ": expected a finite number, got " + Describe(v));
  }
  *out = v.As<Napi::Number>().DoubleValue();
  return Status::Ok();
}

// options { lr, beta1, beta2, eps, weightDecay, dropout, scale, labelSmoothing, threads } and,
// for two hops, alignWeight (align null: not read).
Status ReadTrainOptions(Napi::Value ov, core::CombinerTrainOptions* opt, double* align, int* threads) {
  if (ov.IsUndefined()) return Status::Ok();
  if (!ov.IsObject()) return Status(Code::kType, "options: expected an object, got " + Describe(ov));
  Napi::Object o = ov.As<Napi::Object>();
  double dropout = opt->dropout;
  VLK_RETURN_IF_ERROR(ReadNumber(o, "lr", &opt->adamw.lr));
  VLK_RETURN_IF_ERROR(ReadNumber(o, "beta1", &opt->adamw.beta1));
  VLK_RETURN_IF_ERROR(ReadNumber(o, "beta2", &opt->adamw.beta2));
  VLK_RETURN_IF_ERROR(ReadNumber(o, "eps", &opt->adamw.eps));
  VLK_RETURN_IF_ERROR(ReadNumber(o, "weightDecay", &opt->adamw.weight_decay));
  VLK_RETURN_IF_ERROR(ReadNumber(o, "dropout", &dropout));
  VLK_RETURN_IF_ERROR(ReadNumber(o, "scale", &opt->scale));
  VLK_RETURN_IF_ERROR(ReadNumber(o, "labelSmoothing", &opt->label_smoothing));
  if (align != nullptr) VLK_RETURN_IF_ERROR(ReadNumber(o, "alignWeight", align));
  opt->dropout = static_cast<float>(dropout);
  return ReadThreads(o.Get("threads"), threads);
}

// dim, projection, hidden (info[0..2]) and the seed (info[3]).
Status ReadSizes(const Napi::CallbackInfo& info, int64_t dims[3], uint64_t* seed) {
  const char* names[3] = {"dim", "projection", "hidden"};
  for (int i = 0; i < 3; ++i) {
    VLK_RETURN_IF_ERROR(ReadSize(info[i], names[i], &dims[i]));
    if (dims[i] < 1 || dims[i] > (int64_t{1} << 20)) {
      return Status(Code::kInvalidArg, std::string(names[i]) + ": " + std::to_string(dims[i]) + " is not in 1..1048576");
    }
  }
  // Each of the 12 parameter tensors has a weight, a gradient and two AdamW moments, allocated up
  // front: P x D (twice), H x 2P (twice), H, D x H and the biases. Sizes up to 2^20 each keep every
  // product below 2^62, so plain int64 sums cannot overflow here.
  const int64_t d = dims[0], p = dims[1], h = dims[2];
  const int64_t params = 2 * p * d + 2 * p + 4 * h * p + 2 * h + h + 1 + d * h + d;
  VLK_RETURN_IF_ERROR(core::check_alloc("combiner weights (" + std::to_string(params) +
                                            " parameters x weight, gradient, 2 moments; dim " + std::to_string(d) +
                                            ", projection " + std::to_string(p) + ", hidden " + std::to_string(h) + ")",
                                        {params, 4}, sizeof(float)));
  *seed = static_cast<uint64_t>(info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 0);
  return Status::Ok();
}

// A head's tensors as { name: { shape, data: Float32Array (copy) } }.
Napi::Object TensorsOf(Napi::Env env, core::CombinerTrainer& t) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& e : t.tensors()) {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array shape = Napi::Array::New(env, e.shape.size());
    for (size_t i = 0; i < e.shape.size(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, double(e.shape[i])));
    Napi::Float32Array data = Napi::Float32Array::New(env, e.data->size());
    std::copy(e.data->begin(), e.data->end(), data.Data());
    o.Set("shape", shape);
    o.Set("data", data);
    out.Set(e.name, o);
  }
  return out;
}

struct StepCall {
  Handle trainer;
  MatrixArg image, text, target;
  core::CombinerTrainOptions opt;
  int threads = 1;
};

Status ParseStep(const Napi::CallbackInfo& info, StepCall* c) {
  VLK_RETURN_IF_ERROR(ReadHandle(info[0], &c->trainer));
  const int64_t d = c->trainer->t.d();
  const char* names[3] = {"image", "text", "target"};
  MatrixArg* args[3] = {&c->image, &c->text, &c->target};
  for (int i = 0; i < 3; ++i) {
    VLK_RETURN_IF_ERROR(ReadMatrix(info[1 + i], names[i], args[i]));
    VLK_RETURN_IF_ERROR(ShapeMatrix(names[i], true, d, args[i]));
    if (args[i]->view.stride != d) return Status(Code::kShape, std::string(names[i]) + ": strided views are not supported");
  }
  if (c->text.view.rows != c->image.view.rows || c->target.view.rows != c->image.view.rows) {
    return Status(Code::kShape, "image, text and target have " + std::to_string(c->image.view.rows) + ", " +
                                    std::to_string(c->text.view.rows) + " and " + std::to_string(c->target.view.rows) +
                                    " rows (they must be equal)");
  }
  return ReadTrainOptions(info[4], &c->opt, nullptr, &c->threads);
}


Status RunStep(StepCall& c, Isa isa, const CancelFlag* cancel, double* loss) {
  std::lock_guard<std::mutex> lock(c.trainer->mu);
  return c.trainer->t.step(c.image.view.data, c.text.view.data, c.target.view.data, c.image.view.rows, c.opt, loss,
                           MakeContext(c.threads, isa, cancel));
}

class StepJob final : public AsyncJob {
 public:
  StepJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, StepCall call, Isa isa)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    Keep(call_.image.array);
    Keep(call_.text.array);
    Keep(call_.target.array);
    call_.image.array = call_.text.array = call_.target.array = Napi::Float32Array();
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return RunStep(call_, isa_, &cancel, &loss_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, loss_); }

 private:
  StepCall call_;
  Isa isa_;
  double loss_ = 0;
};

}  // namespace

Napi::Value CombinerTrainerCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t dims[3];
  uint64_t seed = 0;
  const Status st = ReadSizes(info, dims, &seed);
  if (!st.ok()) ThrowStatus(env, st);
  Handle* h = nullptr;
  try {
    h = new Handle(std::make_shared<Trainer>(dims[0], dims[1], dims[2], seed));
  } catch (const std::bad_alloc&) {
    ThrowStatus(env, Status(Code::kOutOfMemory, "out of memory for the combiner's weights"));
  }
  return Napi::External<Handle>::New(env, h, [](Napi::Env, Handle* p) { delete p; });
}

Napi::Value CombinerTrainerStepSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StepCall call;
  Status st = ParseStep(info, &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  double loss = 0;
  if (st.ok()) st = RunStep(call, isa, nullptr, &loss);
  if (!st.ok()) ThrowStatus(env, st);
  return Napi::Number::New(env, loss);
}

Napi::Value CombinerTrainerStepAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  StepCall call;
  Status st = ParseStep(info, &call);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[5], state, &cancel);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<StepJob>(env, std::move(cancel), std::move(call), isa);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

Napi::Value CombinerTrainerWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle h;
  const Status st = ReadHandle(info[0], &h);
  if (!st.ok()) ThrowStatus(env, st);
  std::lock_guard<std::mutex> lock(h->mu);
  return TensorsOf(env, h->t);
}

namespace {

struct TwoHop {
  std::mutex mu;
  core::TwoHopTrainer t;
  TwoHop(int64_t d, int64_t p, int64_t h, uint64_t seed) : t(d, p, h, seed) {}
};
using TwoHopHandle = std::shared_ptr<TwoHop>;

Status ReadTwoHop(Napi::Value v, TwoHopHandle* out) {
  if (!v.IsExternal()) return Status(Code::kType, "trainer: not a two-hop trainer handle");
  *out = *v.As<Napi::External<TwoHopHandle>>().Data();
  return Status::Ok();
}

struct TwoHopCall {
  TwoHopHandle trainer;
  MatrixArg image, text, target, reverse;
  core::TwoHopOptions opt;
  int threads = 1;
};

Status ParseTwoHop(const Napi::CallbackInfo& info, TwoHopCall* c) {
  VLK_RETURN_IF_ERROR(ReadTwoHop(info[0], &c->trainer));
  const int64_t d = c->trainer->t.hop1().d();
  const char* names[4] = {"image", "text", "target", "reverse"};
  MatrixArg* args[4] = {&c->image, &c->text, &c->target, &c->reverse};
  for (int i = 0; i < 4; ++i) {
    VLK_RETURN_IF_ERROR(ReadMatrix(info[1 + i], names[i], args[i]));
    VLK_RETURN_IF_ERROR(ShapeMatrix(names[i], true, d, args[i]));
    if (args[i]->view.stride != d) return Status(Code::kShape, std::string(names[i]) + ": strided views are not supported");
    if (args[i]->view.rows != c->image.view.rows) {
      return Status(Code::kShape, std::string(names[i]) + " has " + std::to_string(args[i]->view.rows) +
                                      " rows, image has " + std::to_string(c->image.view.rows));
    }
  }
  return ReadTrainOptions(info[5], &c->opt.base, &c->opt.align_weight, &c->threads);
}

class TwoHopJob final : public AsyncJob {
 public:
  TwoHopJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, TwoHopCall call, Isa isa)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    for (MatrixArg* a : {&call_.image, &call_.text, &call_.target, &call_.reverse}) {
      Keep(a->array);
      a->array = Napi::Float32Array();
    }
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    std::lock_guard<std::mutex> lock(call_.trainer->mu);
    return call_.trainer->t.step(call_.image.view.data, call_.text.view.data, call_.target.view.data,
                                 call_.reverse.view.data, call_.image.view.rows, call_.opt, &loss_, &align_,
                                 MakeContext(call_.threads, isa_, &cancel));
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", Napi::Number::New(env, loss_));
    o.Set("align", Napi::Number::New(env, align_));
    return o;
  }

 private:
  TwoHopCall call_;
  Isa isa_;
  double loss_ = 0, align_ = 0;
};


}  // namespace

Napi::Value TwoHopTrainerCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t dims[3];
  uint64_t seed = 0;
  const Status st = ReadSizes(info, dims, &seed);
  if (!st.ok()) ThrowStatus(env, st);
  TwoHopHandle* h = nullptr;
  try {
    h = new TwoHopHandle(std::make_shared<TwoHop>(dims[0], dims[1], dims[2], seed));
  } catch (const std::bad_alloc&) {
    ThrowStatus(env, Status(Code::kOutOfMemory, "out of memory for the two combiners' weights"));
  }
  return Napi::External<TwoHopHandle>::New(env, h, [](Napi::Env, TwoHopHandle* p) { delete p; });
}

Napi::Value TwoHopTrainerStepAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  TwoHopCall call;
  Status st = ParseTwoHop(info, &call);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[6], state, &cancel);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<TwoHopJob>(env, std::move(cancel), std::move(call), isa);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

Napi::Value TwoHopTrainerWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TwoHopHandle h;
  const Status st = ReadTwoHop(info[0], &h);
  if (!st.ok()) ThrowStatus(env, st);
  std::lock_guard<std::mutex> lock(h->mu);
  Napi::Object out = Napi::Object::New(env);
  out.Set("hop1", TensorsOf(env, h->t.hop1()));
  out.Set("hop2", TensorsOf(env, h->t.hop2()));
  return out;
}

}  // namespace binding
}  // namespace vlk
