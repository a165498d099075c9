// Status -> JS Error conversion (binding/common). See errors.hpp.
#include "errors.hpp"

#include <string>

namespace vlk {
namespace binding {

Napi::Error StatusToError(Napi::Env env, const Status& status) {
  const std::string message = status.message.empty() ? code_string(status.code) : status.message;
  Napi::Error error = Napi::Error::New(env, message);
  error.Value().Set("code", Napi::String::New(env, code_string(status.code)));
  return error;
}

void ThrowStatus(Napi::Env env, const Status& status) { throw StatusToError(env, status); }

void RejectStatus(Napi::Env env, const Napi::Promise::Deferred& deferred, const Status& status) {
  deferred.Reject(StatusToError(env, status).Value());
}

Napi::Value RejectedPromise(Napi::Env env, const Status& status) {
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  RejectStatus(env, deferred, status);
  return deferred.Promise();
}

Napi::Value ErrorCodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array codes = Napi::Array::New(env);
  uint32_t n = 0;
  for (int i = 0; i < code_count(); ++i) {
    const Code code = code_at(i);
    if (code == Code::kOk) continue;
    codes.Set(n++, Napi::String::New(env, code_string(code)));
  }
  return codes;
}

}  // namespace binding
}  // namespace vlk
