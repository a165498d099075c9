// Introspection entry points (binding). See info.hpp.
#include "info.hpp"

#include <string>

#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

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
  return out;
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
