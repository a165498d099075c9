// Matching-loss entry points (binding). Specs (every array's length is checked against the sizes):
//   memoryInfoNce: { b, d, queries, keys: Float32Array (b * d), bank?: MemoryBank handle |
//     queue?: Float32Array (k * d) with k, queueIds?: Float64Array (k), queryIds?: Float64Array (b),
//     scale, inBatchNegatives, maskSameId, grads, threads? } -> { loss, masked, dqueries?, dkeys? }.
//     A bank is read as it is at CALL time (core::MemoryBank::view, copy-on-write).
//   vseHinge: { b, scores (b * b), ids?, margin, maxViolation, grads } ->
//     { loss, dscores?, hardestCaption, hardestImage: Int32Array }
//   weightedTriplet: { b, scores (b * b), ids?, margin, n, cutoff, maxDistance, seed, grads } ->
//     { loss, dscores?, direction, anchor, positive, negative: Int32Array }
// One generic call: inputs kept, Float32Array outputs V8-allocated before the job, a run closure
// (pool thread for the async form) and a result closure (JS thread).
#include "matching_losses.hpp"

#include <cmath>
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
#include "isa/isa.hpp"
#include "losses/memory_info_nce.hpp"
#include "losses/vse_hinge.hpp"
#include "losses/weighted_triplet.hpp"
#include "memory_bank.hpp"

namespace vlk {
namespace binding {

namespace {

struct LossCall {
  std::vector<Napi::Object> inputs;
  std::vector<Napi::Float32Array> outputs;  // may hold empty handles (not asked for)
  int threads = 1;
  std::function<Status(const Context&)> run;
  std::function<Napi::Value(Napi::Env, const std::vector<Napi::Value>&)> result;
};

Status ReadArray(Napi::Object spec, const char* name, int64_t n, bool optional, LossCall* call, const float** out) {
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
  call->inputs.push_back(a);
  *out = a.Data();
  return Status::Ok();
}

// Optional ids (Float64Array of n integers 0..2^53 - 1; -1 too with allow_none), copied.
Status ReadIdList(Napi::Object spec, const char* name, int64_t n, std::vector<int64_t>* out, bool* present,
                  bool allow_none = false) {
  Napi::Value v = spec.Get(name);
  *present = !v.IsUndefined();
  if (!*present) return Status::Ok();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    return Status(Code::kType, std::string(name) + ": expected a Float64Array, got " + Describe(v));
  }
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n) {
    return Status(Code::kShape, std::string(name) + ": length " + std::to_string(a.ElementLength()) + ", expected " +
                                    std::to_string(n));
  }
  try {
    out->resize(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, std::string(name) + ": out of memory");
  }
  for (int64_t i = 0; i < n; ++i) {
    const double x = a[static_cast<size_t>(i)];
    if (!(x >= 0 && x <= double(kMaxSafeInteger) && std::floor(x) == x) && !(allow_none && x == -1)) {
      return Status(Code::kInvalidArg, std::string(name) + "[" + std::to_string(i) + "]: " + FormatNumber(x) +
                                           " is not an integer in 0..2^53 - 1");
    }
    (*out)[static_cast<size_t>(i)] = static_cast<int64_t>(x);
  }
  return Status::Ok();
}

Status ReadNumber(Napi::Object spec, const char* name, double* out) {
  Napi::Value v = spec.Get(name);
  if (!v.IsNumber()) return Status(Code::kType, std::string(name) + ": expected a number, got " + Describe(v));
  *out = v.As<Napi::Number>().DoubleValue();
  return Status::Ok();
}

Status Allocate(Napi::Env env, LossCall* call, int64_t n, float** data) {
  try {
    Napi::Float32Array a = Napi::Float32Array::New(env, static_cast<size_t>(n));
    call->outputs.push_back(a);
    *data = a.Data();
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, "could not allocate the gradients");
  }
  return Status::Ok();
}

Napi::Int32Array Int32s(Napi::Env env, const std::vector<int32_t>& v) {
  Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

// ---- memoryInfoNce ----
Status ParseMemoryInfoNce(Napi::Env env, Napi::Value value, LossCall* call) {
  if (!IsObject(value)) return Status(Code::kType, "memoryInfoNce: expected a spec object, got " + Describe(value));
  Napi::Object spec = value.As<Napi::Object>();
  struct State {
    core::MemoryInfoNceArgs args;
    core::MemoryInfoNceOut out;
    std::shared_ptr<const core::MemoryBank::State> bank;  // the contents at call time
    std::vector<int64_t> queue_ids, query_ids;
    bool trusted = false;
  };
  auto s = std::make_shared<State>();
  core::MemoryInfoNceArgs& a = s->args;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a.b));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("d"), "d", &a.d));
  VLK_RETURN_IF_ERROR(ReadArray(spec, "queries", a.b * a.d, false, call, &a.queries));
  VLK_RETURN_IF_ERROR(ReadArray(spec, "keys", a.b * a.d, false, call, &a.keys));
  bool present = false;
  if (!spec.Get("bank").IsUndefined()) {
    std::shared_ptr<core::MemoryBank> bank;
    VLK_RETURN_IF_ERROR(ReadMemoryBank(spec.Get("bank"), &bank));
    if (bank->dim() != a.d) {
      return Status(Code::kDimMismatch, "bank: dim " + std::to_string(bank->dim()) + " differs from the queries' " +
                                            std::to_string(a.d));
    }
    s->bank = bank->view();
    a.queue = s->bank->data.data();
    a.k = s->bank->count;
    a.queue_ids = s->bank->ids.data();
    s->trusted = true;
  } else {
    VLK_RETURN_IF_ERROR(ReadSize(spec.Get("k"), "k", &a.k));
    VLK_RETURN_IF_ERROR(ReadArray(spec, "queue", a.k * a.d, false, call, &a.queue));
    VLK_RETURN_IF_ERROR(ReadIdList(spec, "queueIds", a.k, &s->queue_ids, &present, true));
    if (present) a.queue_ids = s->queue_ids.data();
  }
  VLK_RETURN_IF_ERROR(ReadIdList(spec, "queryIds", a.b, &s->query_ids, &present));
  if (present) a.query_ids = s->query_ids.data();
  double scale = 0;
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "scale", &scale));
  a.scale = scale;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("inBatchNegatives"), "inBatchNegatives", false, &a.in_batch_negatives));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("maskSameId"), "maskSameId", false, &a.mask_same_id));
  VLK_RETURN_IF_ERROR(ReadThreads(spec.Get("threads"), &call->threads));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) {
    VLK_RETURN_IF_ERROR(Allocate(env, call, a.b * a.d, &s->out.dqueries));
    VLK_RETURN_IF_ERROR(Allocate(env, call, a.b * a.d, &s->out.dkeys));
  }
  call->run = [s](const Context& ctx) { return core::memory_info_nce(s->args, &s->out, ctx, s->trusted); };
  call->result = [s, grads](Napi::Env env, const std::vector<Napi::Value>& outs) -> Napi::Value {
    Napi::Object r = Napi::Object::New(env);
    r.Set("loss", s->out.loss);
    r.Set("masked", double(s->out.masked));
    if (grads) {
      r.Set("dqueries", outs[0]);
      r.Set("dkeys", outs[1]);
    }
    return r;
  };
  return Status::Ok();
}

// ---- vseHinge ----
Status ParseVseHinge(Napi::Env env, Napi::Value value, LossCall* call) {
  if (!IsObject(value)) return Status(Code::kType, "vseHinge: expected a spec object, got " + Describe(value));
  Napi::Object spec = value.As<Napi::Object>();
  struct State {
    core::VseHingeArgs args;
    core::VseHingeOut out;
    std::vector<int64_t> ids;
    std::vector<int32_t> caption, image;
  };
  auto s = std::make_shared<State>();
  core::VseHingeArgs& a = s->args;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a.b));
  VLK_RETURN_IF_ERROR(ReadArray(spec, "scores", a.b * a.b, false, call, &a.scores));
  bool present = false;
  VLK_RETURN_IF_ERROR(ReadIdList(spec, "ids", a.b, &s->ids, &present));
  if (present) a.ids = s->ids.data();
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "margin", &a.margin));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("maxViolation"), "maxViolation", true, &a.max_violation));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) VLK_RETURN_IF_ERROR(Allocate(env, call, a.b * a.b, &s->out.dscores));
  try {
    s->caption.resize(static_cast<size_t>(a.b));
    s->image.resize(static_cast<size_t>(a.b));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "vseHinge: out of memory");
  }
  s->out.hardest_caption = s->caption.data();
  s->out.hardest_image = s->image.data();
  call->run = [s](const Context&) { return core::vse_hinge(s->args, &s->out); };
  call->result = [s, grads](Napi::Env env, const std::vector<Napi::Value>& outs) -> Napi::Value {
    Napi::Object r = Napi::Object::New(env);
    r.Set("loss", s->out.loss);
    if (grads) r.Set("dscores", outs[0]);
    r.Set("hardestCaption", Int32s(env, s->caption));
    r.Set("hardestImage", Int32s(env, s->image));
    return r;
  };
  return Status::Ok();
}

// ---- weightedTriplet ----
Status ParseWeightedTriplet(Napi::Env env, Napi::Value value, LossCall* call) {
  if (!IsObject(value)) return Status(Code::kType, "weightedTriplet: expected a spec object, got " + Describe(value));
  Napi::Object spec = value.As<Napi::Object>();
  struct State {
    core::WeightedTripletArgs args;
    core::WeightedTripletOut out;
    std::vector<int64_t> ids;
  };
  auto s = std::make_shared<State>();
  core::WeightedTripletArgs& a = s->args;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a.b));
  VLK_RETURN_IF_ERROR(ReadArray(spec, "scores", a.b * a.b, false, call, &a.scores));
  bool present = false;
  VLK_RETURN_IF_ERROR(ReadIdList(spec, "ids", a.b, &s->ids, &present));
  if (present) a.ids = s->ids.data();
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "margin", &a.margin));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "n", &a.n));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "cutoff", &a.cutoff));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "maxDistance", &a.max_distance));
  int64_t seed = 0;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("seed"), "seed", &seed));
  a.seed = static_cast<uint64_t>(seed);
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) VLK_RETURN_IF_ERROR(Allocate(env, call, a.b * a.b, &s->out.dscores));
  call->run = [s](const Context&) { return core::weighted_triplet(s->args, &s->out); };
  call->result = [s, grads](Napi::Env env, const std::vector<Napi::Value>& outs) -> Napi::Value {
    Napi::Object r = Napi::Object::New(env);
    r.Set("loss", s->out.loss);
    if (grads) r.Set("dscores", outs[0]);
    r.Set("direction", Int32s(env, s->out.direction));
    r.Set("anchor", Int32s(env, s->out.anchor));
    r.Set("positive", Int32s(env, s->out.positive));
    r.Set("negative", Int32s(env, s->out.negative));
    return r;
  };
  return Status::Ok();
}

using Parser = Status (*)(Napi::Env, Napi::Value, LossCall*);

class LossJob final : public AsyncJob {
 public:
  LossJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, LossCall call, Isa isa)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    for (auto& k : call_.inputs) Keep(k);
    call_.inputs.clear();
    for (auto& o : call_.outputs) slots_.push_back(Keep(o));
    call_.outputs.clear();
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return call_.run(MakeContext(call_.threads, isa_, &cancel)); }
  Napi::Value Result(Napi::Env env) override {
    std::vector<Napi::Value> outs;
    for (size_t s : slots_) outs.push_back(Kept(s));
    return call_.result(env, outs);
  }

 private:
  LossCall call_;
  Isa isa_;
  std::vector<size_t> slots_;
};

Napi::Value RunSync(const Napi::CallbackInfo& info, Parser parse) {
  Napi::Env env = info.Env();
  LossCall call;
  Status st = parse(env, info[0], &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (st.ok()) st = call.run(MakeContext(call.threads, isa, nullptr));
  if (!st.ok()) ThrowStatus(env, st);
  std::vector<Napi::Value> outs(call.outputs.begin(), call.outputs.end());
  return call.result(env, outs);
}

Napi::Value RunAsync(const Napi::CallbackInfo& info, AddonState& state, Parser parse) {
  Napi::Env env = info.Env();
  LossCall call;
  Status st = parse(env, info[0], &call);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[1], state, &cancel);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<LossJob>(env, std::move(cancel), std::move(call), isa);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace

Napi::Value MemoryInfoNceSync(const Napi::CallbackInfo& info) { return RunSync(info, ParseMemoryInfoNce); }
Napi::Value MemoryInfoNceAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, ParseMemoryInfoNce);
}
Napi::Value VseHingeSync(const Napi::CallbackInfo& info) { return RunSync(info, ParseVseHinge); }
Napi::Value VseHingeAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, ParseVseHinge);
}
Napi::Value WeightedTripletSync(const Napi::CallbackInfo& info) { return RunSync(info, ParseWeightedTriplet); }
Napi::Value WeightedTripletAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunAsync(info, state, ParseWeightedTriplet);
}

}  // namespace binding
}  // namespace vlk
