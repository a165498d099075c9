// twoHopLoss entry points (binding): twoHopLossSync(spec) -> { loss, itc, rtc, align, dscale,
// dprototype?, dquery?, dtextQuery?, dtargetTokens? } and twoHopLossAsync(spec, token?) -> Promise
// of it. lib/two_hop_loss.ts reads the user's tensors into the flat spec; see two_hop_loss.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value TwoHopLossSync(const Napi::CallbackInfo& info);
Napi::Value TwoHopLossAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
