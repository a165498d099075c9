// Cancel token (binding/common): a JS object from `createCancelToken()` owning a shared
// vlk::CancelFlag. lib calls `token.cancel()` on AbortSignal 'abort': jobs not started yet are
// rejected at once, running ones stop at core's next check. A job holds the same flag, so it stays
// valid however long the job outlives the token object.
#pragma once

#include <napi.h>

#include <memory>

#include "addon_state.hpp"
#include "common/cancel.hpp"
#include "common/status.hpp"

namespace vlk {
namespace binding {

class JobRunner;

class CancelToken : public Napi::ObjectWrap<CancelToken> {
 public:
  /// The class constructor for this addon instance (kept in its state for InstanceOf checks).
  static Napi::Function Define(Napi::Env env);

  explicit CancelToken(const Napi::CallbackInfo& info);

  const std::shared_ptr<CancelFlag>& flag() const { return flag_; }

  /// The runner whose queued jobs cancel() rejects at once (set by createCancelToken).
  void set_runner(std::weak_ptr<JobRunner> runner) { runner_ = std::move(runner); }

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Cancelled(const Napi::CallbackInfo& info);

  std::shared_ptr<CancelFlag> flag_;
  std::weak_ptr<JobRunner> runner_;
};

/// An async call's token argument: undefined / null (out stays null), or a value from this addon
/// instance's createCancelToken() (out: its flag). Anything else: kInvalidArg naming "token". JS thread.
Status ReadToken(Napi::Value token, AddonState& state, std::shared_ptr<CancelFlag>* out);

}  // namespace binding
}  // namespace vlk
