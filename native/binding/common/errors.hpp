// Status -> JS Error (binding/common): every native failure reaches JS as an Error whose .code is
// the core's code string (ERR_VLK_SHAPE, ...); lib/errors.ts rethrows it as a VlkError.
#pragma once

#include <napi.h>

#include "common/status.hpp"

namespace vlk {
namespace binding {

/// An Error with `message` = status.message and `code` = code_string(status.code). JS thread only.
Napi::Error StatusToError(Napi::Env env, const Status& status);

/// Throws StatusToError as a C++ exception; node-addon-api turns it into a JS throw at the boundary.
[[noreturn]] void ThrowStatus(Napi::Env env, const Status& status);

/// Rejects `deferred` with StatusToError. JS thread only.
void RejectStatus(Napi::Env env, const Napi::Promise::Deferred& deferred, const Status& status);

/// A promise already rejected with StatusToError.
Napi::Value RejectedPromise(Napi::Env env, const Status& status);

/// `_errorCodes()`: every code string of the core list except "OK", in list order.
Napi::Value ErrorCodes(const Napi::CallbackInfo& info);

}  // namespace binding
}  // namespace vlk
