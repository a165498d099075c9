// A flat-spec operation whose outputs are named typed arrays (binding/common), shared by the
// flat-spec bindings (global_local, expand_queries, graph, cluster, matching_losses, two_hop_loss,
// biased_attention): the op's parser reads the spec (lib has resolved the shapes; every array length
// is checked again here), keeps its inputs, allocates its outputs (V8 or the block cache), and leaves a closure that runs
// the core call. The same call then runs on this thread (Sync) or as a job on the addon's pool
// (Async, cancellable), and resolves with { lead..., name: array, ..., tail... } where lead / tail
// are values the parser's closures compute on the JS thread after the run (scalars such as a loss,
// arrays sized by the run); an optional `finish` reshapes that object (unwraps or nests outputs).
// threads? is read after the parser unless the parser reads it itself (SpecThreads) or takes none
// (SpecNoThreads).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <napi.h>

#include "addon_state.hpp"
#include "alloc_limit.hpp"
#include "args.hpp"
#include "async_job.hpp"
#include "cancel_token.hpp"
#include "common/block_cache.hpp"
#include "common/cancel.hpp"
#include "common/checked_size.hpp"
#include "common/context.hpp"
#include "common/status.hpp"
#include "errors.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

// A result value computed on the JS thread after a successful run.
using SpecValue = std::function<Napi::Value(Napi::Env)>;

struct SpecCall {
  std::vector<Napi::Object> keep;                                 // inputs
  std::vector<std::pair<std::string, Napi::Object>> outs;         // named outputs, in result order
  std::vector<std::shared_ptr<void>> owned;                       // converted inputs (int64 offsets)
  std::function<Status(const Context&)> run;
  std::vector<std::pair<std::string, SpecValue>> lead;            // result values set before the outputs
  std::vector<std::pair<std::string, SpecValue>> tail;            // ... and after them
  std::function<Napi::Value(Napi::Env, Napi::Object)> finish;     // optional: reshapes the result object
  int threads = 1;
  bool threads_read = false;  // the parser read threads? itself, or takes none
  std::vector<std::pair<void*, size_t>> clear;                    // recycled output blocks, zeroed before the run
  uint64_t out_bytes = 0;  // outputs allocated so far: the memory check counts them all, not one at a time
};

// Zeroes the outputs that came from the block cache (a fresh V8 array is zero; a recycled block
// holds its last user's numbers) where the call runs, never on the JS thread of an async call:
// 1 MiB pieces spread over the call's threads.
inline void SpecClear(const SpecCall& call, const Context& ctx) {
  constexpr size_t kPiece = size_t(1) << 20;
  std::vector<std::pair<char*, size_t>> pieces;
  for (const auto& c : call.clear) {
    for (size_t off = 0; off < c.second; off += kPiece) {
      pieces.emplace_back(static_cast<char*>(c.first) + off, std::min(kPiece, c.second - off));
    }
  }
  auto zero = [&](int64_t i) { std::memset(pieces[size_t(i)].first, 0, pieces[size_t(i)].second); };
  if (ctx.pool != nullptr && ctx.threads > 1 && pieces.size() > 1) {
    ctx.pool->parallel_for(static_cast<int64_t>(pieces.size()), ctx.threads, zero);
  } else {
    for (size_t i = 0; i < pieces.size(); ++i) zero(static_cast<int64_t>(i));
  }
}

using SpecParser = Status (*)(Napi::Env, Napi::Object, SpecCall*);

// The product of a spec's sizes (n x d, b x heads x n): SizeMul (common/args.hpp), so an overflow
// is kSizeOverflow, which no length check or output allocation accepts.
template <class... T>
inline int64_t SpecProduct(T... factors) {
  return SizeMul(static_cast<int64_t>(factors)...);
}

// An expected length (n < 0: any) and how a mismatch names it: "<name>: length 3, expected <prefix>4<suffix>".
struct SpecLen {
  SpecLen(int64_t n) : n(n) {}  // NOLINT(google-explicit-constructor): plain lengths convert
  SpecLen(const char* prefix, int64_t n, const char* suffix = "") : n(n), prefix(prefix), suffix(suffix) {}
  Status Check(const std::string& name, size_t len) const {
    if (n < 0 || static_cast<int64_t>(len) == n) return Status::Ok();
    if (n == kSizeOverflow) {
      return Status(Code::kShape, name + ": length " + std::to_string(len) + ", expected " + prefix +
                                      "a product of the sizes that overflows 64-bit arithmetic" + suffix);
    }
    return Status(Code::kShape, name + ": length " + std::to_string(len) + ", expected " + prefix + std::to_string(n) +
                                    suffix);
  }
  int64_t n;
  const char* prefix = "";
  const char* suffix = "";
};

// Reads a typed array of kind `type` (C++ element T) from v; `name` labels the errors.
template <class T>
inline Status SpecTyped(Napi::Value v, const std::string& name, napi_typedarray_type type, const char* type_name,
                        const SpecLen& n, bool optional, SpecCall* call, const T** out) {
  *out = nullptr;
  if (optional && v.IsUndefined()) return Status::Ok();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    return Status(Code::kType, name + ": expected a " + type_name + ", got " + Describe(v));
  }
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  VLK_RETURN_IF_ERROR(n.Check(name, a.ElementLength()));
  if (a.ElementLength() > 0 && a.Data() == nullptr) return Status(Code::kInvalidArg, name + ": detached buffer");
  call->keep.push_back(a);
  *out = a.Data();
  return Status::Ok();
}

// A Float32Array input read from a value (name: the label used in errors, e.g. "options.saved.q").
inline Status SpecF32Value(Napi::Value v, const std::string& name, const SpecLen& n, bool optional, SpecCall* call,
                           const float** out) {
  return SpecTyped(v, name, napi_float32_array, "Float32Array", n, optional, call, out);
}

inline Status SpecF32(Napi::Object spec, const char* name, const SpecLen& n, bool optional, SpecCall* call,
                      const float** out) {
  return SpecF32Value(spec.Get(name), name, n, optional, call, out);
}

inline Status SpecU8(Napi::Object spec, const char* name, const SpecLen& n, bool optional, SpecCall* call,
                     const uint8_t** out) {
  return SpecTyped(spec.Get(name), name, napi_uint8_array, "Uint8Array", n, optional, call, out);
}

inline Status SpecI32(Napi::Object spec, const char* name, const SpecLen& n, bool optional, SpecCall* call,
                      const int32_t** out) {
  Napi::Value v = spec.Get(name);
  *out = nullptr;
  if (optional && v.IsUndefined()) return Status::Ok();
  size_t len = 0;
  VLK_RETURN_IF_ERROR(ReadInt32s(v, name, out, &len));
  VLK_RETURN_IF_ERROR(n.Check(name, len));
  call->keep.push_back(v.As<Napi::Object>());
  return Status::Ok();
}

// Optional ids (Float64Array of n integers 0..2^53 - 1; -1 too with allow_none), copied into *out.
inline Status SpecIds(Napi::Object spec, const char* name, int64_t n, bool allow_none, std::vector<int64_t>* out,
                      bool* present) {
  Napi::Value v = spec.Get(name);
  *present = !v.IsUndefined();
  if (!*present) return Status::Ok();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    return Status(Code::kType, std::string(name) + ": expected a Float64Array, got " + Describe(v));
  }
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  VLK_RETURN_IF_ERROR(SpecLen(n).Check(name, a.ElementLength()));
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

inline Status SpecNumber(Napi::Object spec, const char* name, double* out) {
  Napi::Value v = spec.Get(name);
  if (!v.IsNumber()) return Status(Code::kType, std::string(name) + ": expected a number, got " + Describe(v));
  *out = v.As<Napi::Number>().DoubleValue();
  return Status::Ok();
}

// A number that must be an integer in lo..2^53 - 1.
inline Status SpecInteger(Napi::Object spec, const char* name, int64_t lo, int64_t* out) {
  double v = 0;
  VLK_RETURN_IF_ERROR(SpecNumber(spec, name, &v));
  if (!std::isfinite(v) || std::floor(v) != v || v < double(lo) || v > double(kMaxSafeInteger)) {
    return Status(Code::kInvalidArg, std::string(name) + ": " + FormatNumber(v) + " is not an integer >= " +
                                         std::to_string(lo));
  }
  *out = static_cast<int64_t>(v);
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

// Reads threads? at this point of the parse (otherwise it is read after the parser).
inline Status SpecThreads(Napi::Object spec, SpecCall* call) {
  call->threads_read = true;
  return ReadThreads(spec.Get("threads"), &call->threads);
}

// The op takes no threads? (runs on one thread; the spec's threads is not read).
inline void SpecNoThreads(SpecCall* call) { call->threads_read = true; }

template <class T>
constexpr napi_typedarray_type SpecArrayType();
template <>
constexpr napi_typedarray_type SpecArrayType<float>() { return napi_float32_array; }
template <>
constexpr napi_typedarray_type SpecArrayType<int32_t>() { return napi_int32_array; }
template <>
constexpr napi_typedarray_type SpecArrayType<uint8_t>() { return napi_uint8_array; }

// A typed array of n T over a block from core's block cache (core/common/block_cache), which goes
// back to the cache when V8 collects the array; an empty A when the block or the external buffer
// cannot be had (a runtime without external buffers), so the caller falls back to V8's allocator.
// The finalizer's hint. Node runs the finalizer itself when it refuses the buffer (a length above
// its Buffer limit, 4 GiB on Node 20), but not in every failing case (no external buffers at all):
// `released` tells the caller which happened, so the block is released exactly once.
struct SpecBlockHint {
  size_t bytes;
  bool* released;
};

// Drops the JS exception a failed napi call left pending (the caller falls back, or returns a Status).
inline void SpecClearPending(Napi::Env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored = nullptr;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

template <class A, class T>
inline A SpecCachedArray(Napi::Env env, napi_typedarray_type type, int64_t n, SpecCall* call) {
  const size_t bytes = static_cast<size_t>(n) * sizeof(T);
  bool recycled = false;
  void* block = core::block_acquire(bytes, &recycled);
  if (block == nullptr) return A();
  bool released = false;
  auto* hint = new SpecBlockHint{bytes, &released};
  napi_value ab = nullptr;
  napi_status st = napi_create_external_arraybuffer(
      env, block, bytes,
      [](napi_env, void* data, void* h) {
        auto* bh = static_cast<SpecBlockHint*>(h);
        if (bh->released != nullptr) *bh->released = true;
        core::block_release(data, bh->bytes);
        delete bh;
      },
      hint, &ab);
  if (st != napi_ok) {
    if (!released) {
      core::block_release(block, bytes);
      delete hint;
    }
    SpecClearPending(env);
    return A();
  }
  hint->released = nullptr;  // the finalizer now runs when V8 collects the buffer, long after this frame
  napi_value ta = nullptr;
  if (napi_create_typedarray(env, type, static_cast<size_t>(n), ab, 0, &ta) != napi_ok) {
    SpecClearPending(env);
    return A();
  }
  if (recycled) call->clear.emplace_back(block, bytes);
  return A(env, ta);
}

// Allocates a named output of n elements (A: Napi::Float32Array ...), zero-filled when the call
// runs: large ones from the block cache (see SpecCachedArray), small ones from V8; on failure, oom
// (or "<name>: could not allocate <n> <unit>").
template <class A, class T>
inline Status SpecOut(Napi::Env env, const char* name, int64_t n, const char* unit, const char* oom, SpecCall* call,
                      T** out) {
  if (Status s = CheckAllocation(std::string(name), n, sizeof(T), call->out_bytes); !s.ok()) {
    return oom != nullptr ? Status(Code::kOutOfMemory, std::string(oom) + " (" + s.message + ")") : s;
  }
  call->out_bytes += static_cast<uint64_t>(n) * sizeof(T);
  try {
    A a;
    if (static_cast<size_t>(n) * sizeof(T) >= core::kMinBlockBytes) {
      a = SpecCachedArray<A, T>(env, SpecArrayType<T>(), n, call);
    }
    if (a.IsEmpty()) a = A::New(env, static_cast<size_t>(n));
    call->outs.emplace_back(name, a);
    *out = n > 0 ? a.Data() : nullptr;
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, oom != nullptr ? std::string(oom)
                                                     : std::string(name) + ": could not allocate " + std::to_string(n) +
                                                           " " + unit);
  }
  return Status::Ok();
}

inline Status SpecOutF32(Napi::Env env, const char* name, int64_t n, SpecCall* call, float** out,
                         const char* oom = nullptr) {
  return SpecOut<Napi::Float32Array>(env, name, n, "floats", oom, call, out);
}

inline Status SpecOutI32(Napi::Env env, const char* name, int64_t n, SpecCall* call, int32_t** out,
                         const char* oom = nullptr) {
  return SpecOut<Napi::Int32Array>(env, name, n, "ints", oom, call, out);
}

inline Status SpecOutU8(Napi::Env env, const char* name, int64_t n, SpecCall* call, uint8_t** out,
                        const char* oom = nullptr) {
  return SpecOut<Napi::Uint8Array>(env, name, n, "bytes", oom, call, out);
}

// The result object: lead values, the outputs, tail values, then `finish`.
inline Napi::Value SpecResult(Napi::Env env, const SpecCall& call,
                              const std::vector<std::pair<std::string, Napi::Value>>& outs) {
  Napi::Object r = Napi::Object::New(env);
  for (const auto& v : call.lead) r.Set(v.first, v.second(env));
  for (const auto& o : outs) r.Set(o.first, o.second);
  for (const auto& v : call.tail) r.Set(v.first, v.second(env));
  return call.finish ? call.finish(env, r) : Napi::Value(r);
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
  Status Execute(const CancelFlag& cancel) override {
    const Context ctx = MakeContext(call_.threads, isa_, &cancel);
    SpecClear(call_, ctx);
    return call_.run(ctx);
  }
  Napi::Value Result(Napi::Env env) override {
    std::vector<std::pair<std::string, Napi::Value>> outs;
    for (auto& s : slots_) outs.emplace_back(s.first, Kept(s.second));
    return SpecResult(env, call_, outs);
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
  if (call->threads_read) return Status::Ok();
  return ReadThreads(spec.Get("threads"), &call->threads);
}

inline Napi::Value RunSpecSync(const Napi::CallbackInfo& info, SpecParser parse, const char* op) {
  Napi::Env env = info.Env();
  SpecCall call;
  Status st = ParseSpec(env, info[0], parse, op, &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) ThrowStatus(env, st);
  const Context ctx = MakeContext(call.threads, isa, nullptr);
  // Core returns Status; should an allocation exception escape it anyway, it must become a typed
  // error here, not terminate the process (node-addon-api only catches Napi::Error).
  st = core::run_guarded(op, [&] {
    SpecClear(call, ctx);
    return call.run(ctx);
  });
  if (!st.ok()) ThrowStatus(env, st);
  std::vector<std::pair<std::string, Napi::Value>> outs(call.outs.begin(), call.outs.end());
  return SpecResult(env, call, outs);
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
