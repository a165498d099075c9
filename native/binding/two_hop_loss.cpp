// twoHopLoss entry points (binding). The spec is flat (lib has resolved shapes): sizes b, d, m, kt
// (and k, kReverse, dp with prototypes), Float32Arrays query, targetTokens, textQuery?,
// prototype?, reversePrototype?, an Int32Array targets?, numbers scale, smoothingItc,
// smoothingRtc, wItc, wRtc, wAlign, threads?, and grads (boolean). Every array's length is checked
// against the sizes here. Gradient arrays are V8-allocated before the job runs.
#include "two_hop_loss.hpp"

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
#include "compose/two_hop_loss.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

namespace {

struct LossCall {
  core::TwoHopLossArgs args;
  std::vector<Napi::Object> keep;  // inputs (kept by the async job)
  Napi::Float32Array dprototype, dquery, dtext_query, dtarget_tokens;
  int threads = 1;
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

Status ParseLoss(Napi::Env env, Napi::Value value, LossCall* call) {
  if (!IsObject(value)) return Status(Code::kType, "twoHopLoss: expected a spec object, got " + Describe(value));
  Napi::Object spec = value.As<Napi::Object>();
  core::TwoHopLossArgs& a = call->args;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a.b));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("d"), "d", &a.d));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("m"), "m", &a.m));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("kt"), "kt", &a.kt));
  VLK_RETURN_IF_ERROR(ReadArray(spec, "query", a.b * a.d, false, call, &a.query));
  VLK_RETURN_IF_ERROR(ReadArray(spec, "textQuery", a.b * a.d, true, call, &a.text_query));
  VLK_RETURN_IF_ERROR(ReadArray(spec, "targetTokens", a.m * a.kt * a.d, false, call, &a.target_tokens));
  const bool hop1 = !spec.Get("prototype").IsUndefined();
  if (hop1) {
    VLK_RETURN_IF_ERROR(ReadSize(spec.Get("k"), "k", &a.k));
    VLK_RETURN_IF_ERROR(ReadSize(spec.Get("kReverse"), "kReverse", &a.k_reverse));
    VLK_RETURN_IF_ERROR(ReadSize(spec.Get("dp"), "dp", &a.dp));
    VLK_RETURN_IF_ERROR(ReadArray(spec, "prototype", a.b * a.k * a.dp, false, call, &a.prototype));
    VLK_RETURN_IF_ERROR(ReadArray(spec, "reversePrototype", a.b * a.k_reverse * a.dp, false, call, &a.reverse_prototype));
  }
  if (!spec.Get("targets").IsUndefined()) {
    const int32_t* t = nullptr;
    size_t n = 0;
    VLK_RETURN_IF_ERROR(ReadInt32s(spec.Get("targets"), "targets", &t, &n));
    if (static_cast<int64_t>(n) != a.b) {
      return Status(Code::kShape, "targets: length " + std::to_string(n) + ", expected B = " + std::to_string(a.b));
    }
    call->keep.push_back(spec.Get("targets").As<Napi::Object>());
    a.targets = t;
  }
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "scale", &a.scale));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "smoothingItc", &a.smoothing_itc));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "smoothingRtc", &a.smoothing_rtc));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "wItc", &a.w_itc));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "wRtc", &a.w_rtc));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "wAlign", &a.w_align));
  VLK_RETURN_IF_ERROR(ReadThreads(spec.Get("threads"), &call->threads));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) {
    try {
      call->dquery = Napi::Float32Array::New(env, static_cast<size_t>(a.b * a.d));
      call->dtarget_tokens = Napi::Float32Array::New(env, static_cast<size_t>(a.m * a.kt * a.d));
      if (a.text_query != nullptr) call->dtext_query = Napi::Float32Array::New(env, static_cast<size_t>(a.b * a.d));
      if (hop1) call->dprototype = Napi::Float32Array::New(env, static_cast<size_t>(a.b * a.k * a.dp));
    } catch (const Napi::Error&) {
      return Status(Code::kOutOfMemory, "twoHopLoss: could not allocate the gradients");
    }
  }
  return Status::Ok();
}

core::TwoHopLossOut Outputs(LossCall& call) {
  core::TwoHopLossOut o;
  auto data = [](Napi::Float32Array& a) -> float* { return a.IsEmpty() ? nullptr : a.Data(); };
  o.dprototype = data(call.dprototype);
  o.dquery = data(call.dquery);
  o.dtext_query = data(call.dtext_query);
  o.dtarget_tokens = data(call.dtarget_tokens);
  return o;
}

Napi::Object MakeResult(Napi::Env env, const core::TwoHopLossOut& o, Napi::Value dprototype, Napi::Value dquery,
                        Napi::Value dtext_query, Napi::Value dtarget_tokens) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("loss", o.loss);
  r.Set("itc", o.itc);
  r.Set("rtc", o.rtc);
  r.Set("align", o.align);
  r.Set("dscale", o.dscale);
  if (!dprototype.IsEmpty() && !dprototype.IsUndefined()) r.Set("dprototype", dprototype);
  if (!dquery.IsEmpty() && !dquery.IsUndefined()) r.Set("dquery", dquery);
  if (!dtext_query.IsEmpty() && !dtext_query.IsUndefined()) r.Set("dtextQuery", dtext_query);
  if (!dtarget_tokens.IsEmpty() && !dtarget_tokens.IsUndefined()) r.Set("dtargetTokens", dtarget_tokens);
  return r;
}

class LossJob final : public AsyncJob {
 public:
  LossJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, LossCall call, Isa isa)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    for (auto& k : call_.keep) Keep(k);
    call_.keep.clear();
    out_ = Outputs(call_);
    auto slot = [&](Napi::Float32Array& a) -> long {
      if (a.IsEmpty()) return -1;
      const long s = static_cast<long>(Keep(a));
      a = Napi::Float32Array();
      return s;
    };
    slots_[0] = slot(call_.dprototype);
    slots_[1] = slot(call_.dquery);
    slots_[2] = slot(call_.dtext_query);
    slots_[3] = slot(call_.dtarget_tokens);
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    return core::two_hop_loss(call_.args, &out_, MakeContext(call_.threads, isa_, &cancel));
  }
  Napi::Value Result(Napi::Env env) override {
    auto get = [&](int i) -> Napi::Value { return slots_[i] < 0 ? env.Undefined() : Napi::Value(Kept(static_cast<size_t>(slots_[i]))); };
    return MakeResult(env, out_, get(0), get(1), get(2), get(3));
  }

 private:
  LossCall call_;
  Isa isa_;
  core::TwoHopLossOut out_;
  long slots_[4] = {-1, -1, -1, -1};
};

}  // namespace

Napi::Value TwoHopLossSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LossCall call;
  Status st = ParseLoss(env, info[0], &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) ThrowStatus(env, st);
  core::TwoHopLossOut o = Outputs(call);
  st = core::two_hop_loss(call.args, &o, MakeContext(call.threads, isa, nullptr));
  if (!st.ok()) ThrowStatus(env, st);
  auto val = [&](Napi::Float32Array& a) -> Napi::Value { return a.IsEmpty() ? env.Undefined() : Napi::Value(a); };
  return MakeResult(env, o, val(call.dprototype), val(call.dquery), val(call.dtext_query), val(call.dtarget_tokens));
}

Napi::Value TwoHopLossAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  LossCall call;
  Status st = ParseLoss(env, info[0], &call);
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

}  // namespace binding
}  // namespace vlk
