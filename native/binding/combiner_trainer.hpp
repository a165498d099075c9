// Combiner training entry points (binding): a trainer is an External handle owning a
// core::CombinerTrainer (freed by the GC finalizer). See combiner_trainer.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

/// combinerTrainerCreate(dim, projection, hidden, seed) -> handle
Napi::Value CombinerTrainerCreate(const Napi::CallbackInfo& info);
/// combinerTrainerStepSync(handle, image, text, target, options) -> loss;
/// combinerTrainerStepAsync(handle, image, text, target, options, token?) -> Promise<loss>
Napi::Value CombinerTrainerStepSync(const Napi::CallbackInfo& info);
Napi::Value CombinerTrainerStepAsync(const Napi::CallbackInfo& info, AddonState& state);
/// combinerTrainerWeights(handle) -> { name: { shape, data: Float32Array (copy) } }
Napi::Value CombinerTrainerWeights(const Napi::CallbackInfo& info);
/// Two hops (core::TwoHopTrainer): create(dim, projection, hidden, seed) -> handle;
/// stepAsync(handle, image, text, target, reverse, options, token?) -> Promise<{ loss, align }>;
/// weights(handle) -> { hop1: {...}, hop2: {...} } (each as combinerTrainerWeights).
Napi::Value TwoHopTrainerCreate(const Napi::CallbackInfo& info);
Napi::Value TwoHopTrainerStepAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value TwoHopTrainerWeights(const Napi::CallbackInfo& info);

}  // namespace binding
}  // namespace vlk
