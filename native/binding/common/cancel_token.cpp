// Cancel token (binding/common). See cancel_token.hpp.
#include "cancel_token.hpp"

#include "args.hpp"
#include "async_job.hpp"

namespace vlk {
namespace binding {

Napi::Function CancelToken::Define(Napi::Env env) {
  return DefineClass(env, "CancelToken",
                     {
                         InstanceMethod<&CancelToken::Cancel>("cancel"),
                         InstanceAccessor<&CancelToken::Cancelled>("cancelled"),
                     });
}

CancelToken::CancelToken(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CancelToken>(info), flag_(std::make_shared<CancelFlag>()) {}

Napi::Value CancelToken::Cancel(const Napi::CallbackInfo& info) {
  flag_->cancel();
  if (std::shared_ptr<JobRunner> runner = runner_.lock()) runner->CancelQueued(info.Env(), flag_.get());
  return info.Env().Undefined();
}

Napi::Value CancelToken::Cancelled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), flag_->cancelled());
}

Status ReadToken(Napi::Value token, AddonState& state, std::shared_ptr<CancelFlag>* out) {
  if (token.IsUndefined() || token.IsNull()) return Status::Ok();
  if (token.IsObject() && token.As<Napi::Object>().InstanceOf(state.cancel_token.Value())) {
    try {
      *out = CancelToken::Unwrap(token.As<Napi::Object>())->flag();
      return Status::Ok();
    } catch (const Napi::Error&) {
    }
  }
  return Status(Code::kInvalidArg, "token: expected a value from createCancelToken(), got " + Describe(token));
}

}  // namespace binding
}  // namespace vlk
