// FlatIndex persistence entry points (binding), see index_file.cpp. The instance methods
// (saveSync/saveAsync/toBufferSync/toBufferAsync) are FlatIndexWrap members defined there too.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

/// loadFlatIndexSync(path, mmap) -> FlatIndex; loadFlatIndexAsync(path, mmap, progress?, token?).
Napi::Value LoadFlatIndexSync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value LoadFlatIndexAsync(const Napi::CallbackInfo& info, AddonState& state);
/// flatIndexFromBufferSync(bytes) -> FlatIndex; flatIndexFromBufferAsync(bytes, progress?, token?).
Napi::Value FlatIndexFromBufferSync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value FlatIndexFromBufferAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
