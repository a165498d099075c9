// Introspection entry points (binding). See info.hpp.
#include "info.hpp"

#include <string>

#include "common/block_cache.hpp"
#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "cuda/common/cuda_api.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

namespace {

// 13000 -> "13.0", 12020 -> "12.2" (CUDA's major * 1000 + minor * 10).
std::string CudaVersion(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

}  // namespace

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const cuda::DeviceInfo& d = cuda::device_info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("built", d.built);
  o.Set("usable", d.usable);
  o.Set("reason", d.reason);
  o.Set("deviceCount", d.device_count);
  if (d.runtime_version > 0) o.Set("runtimeVersion", CudaVersion(d.runtime_version));
  if (d.driver_version > 0) o.Set("driverVersion", CudaVersion(d.driver_version));
  if (!d.name.empty()) {
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("name", d.name);
    dev.Set("computeCapability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor));
    dev.Set("memoryBytes", static_cast<double>(d.total_memory));
    dev.Set("driverVersion", d.driver_version > 0 ? CudaVersion(d.driver_version) : std::string());
    dev.Set("runtimeVersion", d.runtime_version > 0 ? CudaVersion(d.runtime_version) : std::string());
    o.Set("device", dev);
  }
  return o;
}

Napi::Value Info(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Isa isa = Isa::kScalar;
  const Status s = active_isa(&isa);
  if (s.ok()) {
    out.Set("isa", isa_name(isa));
  } else {
    out.Set("isa", env.Null());
    Napi::Object err = Napi::Object::New(env);
    err.Set("code", code_string(s.code));
    err.Set("message", s.message);
    out.Set("isaError", err);
  }
  Napi::Array isas = Napi::Array::New(env);
  uint32_t i = 0;
  for (Isa each : supported_isas()) isas.Set(i++, Napi::String::New(env, isa_name(each)));
  out.Set("isas", isas);
  out.Set("detectedIsa", isa_name(detected_isa()));
  out.Set("threads", global_pool().size());
  out.Set("queueDepth", static_cast<double>(global_pool().queue_depth()));
  out.Set("inFlight", static_cast<double>(state.runner->in_flight()));
  out.Set("napiVersion", NAPI_VERSION);
  const core::BlockCacheStats m = core::block_cache_stats();
  Napi::Object mem = Napi::Object::New(env);
  mem.Set("cachedBytes", static_cast<double>(m.cached_bytes));
  mem.Set("limitBytes", static_cast<double>(m.limit_bytes));
  mem.Set("hits", static_cast<double>(m.hits));
  mem.Set("misses", static_cast<double>(m.misses));
  out.Set("memory", mem);
  return out;
}

Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(core::block_cache_trim()));
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value arg = info[0];
  Status s;
  if (arg.IsUndefined() || arg.IsNull()) {
    s = set_isa(nullptr);
  } else if (!arg.IsString()) {
    s = Status(Code::kInvalidArg, "isa: expected 'scalar', 'avx2', 'avx512' or null");
  } else {
    const std::string name = arg.As<Napi::String>().Utf8Value();
    Isa isa = Isa::kScalar;
    s = parse_isa(name.c_str(), &isa);
    if (s.ok()) s = set_isa(&isa);
  }
  if (!s.ok()) ThrowStatus(env, s);
  return env.Undefined();
}

Napi::Value CreateCancelToken(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Object token = state.cancel_token.New({});
  CancelToken::Unwrap(token)->set_runner(state.runner);
  return token;
}

}  // namespace binding
}  // namespace vlk
