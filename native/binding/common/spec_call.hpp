// A flat-spec operation whose outputs are named typed arrays (binding/common), shared by the
// global-local ops (global_local.cpp) and query expansion (expand_queries.cpp): the op's parser
// reads the spec (lib has resolved the shapes; every array length is checked again here), keeps
// its inputs, V8-allocates its outputs, and leaves a closure that runs the core call. The same
// call then runs on this thread (Sync) or as a job on the addon's pool (Async, cancellable), and
// resolves with { name: array, ... }.
#pragma once

#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <napi.h>

#include "addon_state.hpp"
#include "args.hpp"
#include "async_job.hpp"
#include "cancel_token.hpp"
#include "common/cancel.hpp"
#include "common/context.hpp"
#include "common/status.hpp"
#include "errors.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

struct SpecCall {
  std::vector<Napi::Object> keep;                                 // inputs
  std::vector<std::pair<std::string, Napi::Object>> outs;         // named outputs
  std::vector<std::shared_ptr<void>> owned;                       // converted inputs (int64 offsets)
  std::function<Status(const Context&)> run;
  int threads = 1;
};

using SpecParser = Status (*)(Napi::Env, Napi::Object, SpecCall*);

inline Status SpecF32(Napi::Object spec, const char* name, int64_t n, bool optional, SpecCall* call,
                      const float** out) {
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

inline Status SpecI32(Napi::Object spec, const char* name, int64_t n, bool optional, SpecCall* call,
                      const int32_t** out) {
  Napi::Value v = spec.Get(name);
  *out = nullptr;
  if (optional && v.IsUndefined()) return Status::Ok();
  size_t len = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(v, name, out, &len));
  if (n >= 0 && static_cast<int64_t>(len) != n) {
    return Status(Code::kShape, std::string(name) + ": length " + std::to_string(len) + ", expected " +
                                    std::to_string(n));
  }
  call->keep.push_back(v.As<Napi::Object>());
  return Status::Ok();
}

inline Status SpecNumber(Napi::Object spec, const char* name, double* out) {
  Napi::Value v = spec.Get(name);
  if (!v.IsNumber()) return Status(Code::kType, std::string(name) + ": expected a number, got " + Describe(v));
  *out = v.As<Napi::Number>().DoubleValue();
  return Status::Ok();
}

inline Status SpecSize(Napi::Object spec, const char* name, int64_t* out) {
  return ReadSize(spec.Get(name), name, out);
}

inline Status SpecString(Napi::Object spec, const char* name, std::string* out) {
  Napi::Value v = spec.Get(name);
  if (!v.IsString()) return Status(Code::kType, std::string(name) + ": expected a string, got " + Describe(v));
  *out = v.As<Napi::String>().Utf8Value();
  return Status::Ok();
}

inline Status SpecOutF32(Napi::Env env, const char* name, int64_t n, SpecCall* call, float** out) {
  try {
    Napi::Float32Array a = Napi::Float32Array::New(env, static_cast<size_t>(n));
    call->outs.emplace_back(name, a);
    *out = n > 0 ? a.Data() : nullptr;
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, std::string(name) + ": could not allocate " + std::to_string(n) + " floats");
  }
  return Status::Ok();
}

inline Status SpecOutI32(Napi::Env env, const char* name, int64_t n, SpecCall* call, int32_t** out) {
  try {
    Napi::Int32Array a = Napi::Int32Array::New(env, static_cast<size_t>(n));
    call->outs.emplace_back(name, a);
    *out = n > 0 ? a.Data() : nullptr;
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, std::string(name) + ": could not allocate " + std::to_string(n) + " ints");
  }
  return Status::Ok();
}

class SpecJob final : public AsyncJob {
 public:
  SpecJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, SpecCall call, Isa isa)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    for (auto& k : call_.keep) Keep(k);
    call_.keep.clear();
    for (auto& o : call_.outs) slots_.emplace_back(o.first, Keep(o.second));
    call_.outs.clear();
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return call_.run(MakeContext(call_.threads, isa_, &cancel)); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object r = Napi::Object::New(env);
    for (auto& s : slots_) r.Set(s.first, Kept(s.second));
    return r;
  }

 private:
  SpecCall call_;
  Isa isa_;
  std::vector<std::pair<std::string, size_t>> slots_;
};

inline Status ParseSpec(Napi::Env env, Napi::Value value, SpecParser parse, const char* op, SpecCall* call) {
  if (!IsObject(value)) return Status(Code::kType, std::string(op) + ": expected a spec object, got " + Describe(value));
  Napi::Object spec = value.As<Napi::Object>();
  VLK_RETURN_IF_ERROR(parse(env, spec, call));
  return ReadThreads(spec.Get("threads"), &call->threads);
}

inline Napi::Value RunSpecSync(const Napi::CallbackInfo& info, SpecParser parse, const char* op) {
  Napi::Env env = info.Env();
  SpecCall call;
  Status st = ParseSpec(env, info[0], parse, op, &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) ThrowStatus(env, st);
  st = call.run(MakeContext(call.threads, isa, nullptr));
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Object r = Napi::Object::New(env);
  for (auto& o : call.outs) r.Set(o.first, o.second);
  return r;
}

inline Napi::Value RunSpecAsync(const Napi::CallbackInfo& info, AddonState& state, SpecParser parse, const char* op) {
  Napi::Env env = info.Env();
  SpecCall call;
  Status st = ParseSpec(env, info[0], parse, op, &call);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[1], state, &cancel);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<SpecJob>(env, std::move(cancel), std::move(call), isa);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace binding
}  // namespace vlk
