// Module registration (binding): a context-aware Napi::Addon, one instance per Node environment
// (main thread and each worker), holding that environment's state. Entry points live in one .cpp
// per operation; this file only wires names to them.
#include <napi.h>

#include "common/addon_state.hpp"
#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "combiner_trainer.hpp"
#include "compose.hpp"
#include "two_hop_loss.hpp"
#include "memory_bank.hpp"
#include "matching_losses.hpp"
#include "flat_index.hpp"
#include "index_file.hpp"
#include "info.hpp"
#include "merge_top_k.hpp"
#include "rerank.hpp"
#include "safetensors.hpp"
#include "search.hpp"

namespace vlk {
namespace binding {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    state_.runner = JobRunner::Create(env);
    state_.cancel_token = Napi::Persistent(CancelToken::Define(env));
    state_.flat_index = Napi::Persistent(FlatIndexWrap::Define(env));
    DefineAddon(exports, {
                             InstanceMethod<&Addon::SearchSync>("searchSync", napi_enumerable),
                             InstanceMethod<&Addon::SearchAsync>("searchAsync", napi_enumerable),
                             InstanceMethod<&Addon::MergeTopKSync>("mergeTopKSync", napi_enumerable),
                             InstanceMethod<&Addon::MergeTopKAsync>("mergeTopKAsync", napi_enumerable),
                             InstanceMethod<&Addon::RerankSync>("rerankSync", napi_enumerable),
                             InstanceMethod<&Addon::ComposeSync>("composeSync", napi_enumerable),
                             InstanceMethod<&Addon::CombinerTrainerCreate>("combinerTrainerCreate", napi_enumerable),
                             InstanceMethod<&Addon::CombinerTrainerStepSync>("combinerTrainerStepSync", napi_enumerable),
                             InstanceMethod<&Addon::CombinerTrainerStepAsync>("combinerTrainerStepAsync", napi_enumerable),
                             InstanceMethod<&Addon::CombinerTrainerWeights>("combinerTrainerWeights", napi_enumerable),
                             InstanceMethod<&Addon::TwoHopTrainerCreate>("twoHopTrainerCreate", napi_enumerable),
                             InstanceMethod<&Addon::TwoHopTrainerStepAsync>("twoHopTrainerStepAsync", napi_enumerable),
                             InstanceMethod<&Addon::TwoHopTrainerWeights>("twoHopTrainerWeights", napi_enumerable),
                             InstanceMethod<&Addon::ComposeAsync>("composeAsync", napi_enumerable),
                             InstanceMethod<&Addon::TwoHopLossSync>("twoHopLossSync", napi_enumerable),
                             InstanceMethod<&Addon::TwoHopLossAsync>("twoHopLossAsync", napi_enumerable),
                             InstanceMethod<&Addon::MemoryBankCreate>("memoryBankCreate", napi_enumerable),
                             InstanceMethod<&Addon::MemoryBankEnqueue>("memoryBankEnqueue", napi_enumerable),
                             InstanceMethod<&Addon::MemoryBankSnapshot>("memoryBankSnapshot", napi_enumerable),
                             InstanceMethod<&Addon::MemoryBankInfo>("memoryBankInfo", napi_enumerable),
                             InstanceMethod<&Addon::MemoryBankClear>("memoryBankClear", napi_enumerable),
                             InstanceMethod<&Addon::MemoryBankClose>("memoryBankClose", napi_enumerable),
                             InstanceMethod<&Addon::EmaUpdateSync>("emaUpdateSync", napi_enumerable),
                             InstanceMethod<&Addon::MemoryInfoNceSync>("memoryInfoNceSync", napi_enumerable),
                             InstanceMethod<&Addon::MemoryInfoNceAsync>("memoryInfoNceAsync", napi_enumerable),
                             InstanceMethod<&Addon::VseHingeSync>("vseHingeSync", napi_enumerable),
                             InstanceMethod<&Addon::VseHingeAsync>("vseHingeAsync", napi_enumerable),
                             InstanceMethod<&Addon::WeightedTripletSync>("weightedTripletSync", napi_enumerable),
                             InstanceMethod<&Addon::WeightedTripletAsync>("weightedTripletAsync", napi_enumerable),
                             InstanceMethod<&Addon::RerankAsync>("rerankAsync", napi_enumerable),
                             InstanceMethod<&Addon::CreateFlatIndex>("createFlatIndex", napi_enumerable),
                             InstanceMethod<&Addon::LoadFlatIndexSync>("loadFlatIndexSync", napi_enumerable),
                             InstanceMethod<&Addon::LoadFlatIndexAsync>("loadFlatIndexAsync", napi_enumerable),
                             InstanceMethod<&Addon::FlatIndexFromBufferSync>("flatIndexFromBufferSync", napi_enumerable),
                             InstanceMethod<&Addon::FlatIndexFromBufferAsync>("flatIndexFromBufferAsync", napi_enumerable),
                             InstanceMethod<&Addon::ReadSafetensorsSync>("readSafetensorsSync", napi_enumerable),
                             InstanceMethod<&Addon::ReadSafetensorsAsync>("readSafetensorsAsync", napi_enumerable),
                             InstanceMethod<&Addon::WriteSafetensorsSync>("writeSafetensorsSync", napi_enumerable),
                             InstanceMethod<&Addon::WriteSafetensorsAsync>("writeSafetensorsAsync", napi_enumerable),
                             InstanceMethod<&Addon::EncodeSafetensorsSync>("encodeSafetensorsSync", napi_enumerable),
                             InstanceMethod<&Addon::CreateCancelToken>("createCancelToken", napi_enumerable),
                             InstanceMethod<&Addon::Info>("info", napi_enumerable),
                             InstanceMethod<&Addon::CudaInfo>("cudaInfo", napi_enumerable),
                             InstanceMethod<&Addon::SetIsa>("setIsa", napi_enumerable),
                             InstanceMethod<&Addon::ErrorCodes>("_errorCodes", napi_enumerable),
                         });
  }

 private:
  Napi::Value SearchSync(const Napi::CallbackInfo& info) { return binding::SearchSync(info, state_); }
  Napi::Value SearchAsync(const Napi::CallbackInfo& info) { return binding::SearchAsync(info, state_); }
  Napi::Value MergeTopKSync(const Napi::CallbackInfo& info) { return binding::MergeTopKSync(info, state_); }
  Napi::Value MergeTopKAsync(const Napi::CallbackInfo& info) { return binding::MergeTopKAsync(info, state_); }
  Napi::Value RerankSync(const Napi::CallbackInfo& info) { return binding::RerankSync(info, state_); }
  Napi::Value ComposeSync(const Napi::CallbackInfo& info) { return binding::ComposeSync(info); }
  Napi::Value CombinerTrainerCreate(const Napi::CallbackInfo& info) { return binding::CombinerTrainerCreate(info); }
  Napi::Value CombinerTrainerStepSync(const Napi::CallbackInfo& info) { return binding::CombinerTrainerStepSync(info); }
  Napi::Value CombinerTrainerStepAsync(const Napi::CallbackInfo& info) {
    return binding::CombinerTrainerStepAsync(info, state_);
  }
  Napi::Value CombinerTrainerWeights(const Napi::CallbackInfo& info) { return binding::CombinerTrainerWeights(info); }
  Napi::Value TwoHopTrainerCreate(const Napi::CallbackInfo& info) { return binding::TwoHopTrainerCreate(info); }
  Napi::Value TwoHopTrainerStepAsync(const Napi::CallbackInfo& info) {
    return binding::TwoHopTrainerStepAsync(info, state_);
  }
  Napi::Value TwoHopTrainerWeights(const Napi::CallbackInfo& info) { return binding::TwoHopTrainerWeights(info); }
  Napi::Value ComposeAsync(const Napi::CallbackInfo& info) { return binding::ComposeAsync(info, state_); }
  Napi::Value TwoHopLossSync(const Napi::CallbackInfo& info) { return binding::TwoHopLossSync(info); }
  Napi::Value TwoHopLossAsync(const Napi::CallbackInfo& info) { return binding::TwoHopLossAsync(info, state_); }
  Napi::Value MemoryBankCreate(const Napi::CallbackInfo& info) { return binding::MemoryBankCreate(info); }
  Napi::Value MemoryBankEnqueue(const Napi::CallbackInfo& info) { return binding::MemoryBankEnqueue(info); }
  Napi::Value MemoryBankSnapshot(const Napi::CallbackInfo& info) { return binding::MemoryBankSnapshot(info); }
  Napi::Value MemoryBankInfo(const Napi::CallbackInfo& info) { return binding::MemoryBankInfo(info); }
  Napi::Value MemoryBankClear(const Napi::CallbackInfo& info) { return binding::MemoryBankClear(info); }
  Napi::Value MemoryBankClose(const Napi::CallbackInfo& info) { return binding::MemoryBankClose(info); }
  Napi::Value EmaUpdateSync(const Napi::CallbackInfo& info) { return binding::EmaUpdateSync(info); }
  Napi::Value MemoryInfoNceSync(const Napi::CallbackInfo& info) { return binding::MemoryInfoNceSync(info); }
  Napi::Value MemoryInfoNceAsync(const Napi::CallbackInfo& info) { return binding::MemoryInfoNceAsync(info, state_); }
  Napi::Value VseHingeSync(const Napi::CallbackInfo& info) { return binding::VseHingeSync(info); }
  Napi::Value VseHingeAsync(const Napi::CallbackInfo& info) { return binding::VseHingeAsync(info, state_); }
  Napi::Value WeightedTripletSync(const Napi::CallbackInfo& info) { return binding::WeightedTripletSync(info); }
  Napi::Value WeightedTripletAsync(const Napi::CallbackInfo& info) { return binding::WeightedTripletAsync(info, state_); }
  Napi::Value RerankAsync(const Napi::CallbackInfo& info) { return binding::RerankAsync(info, state_); }
  Napi::Value CreateFlatIndex(const Napi::CallbackInfo& info) { return binding::CreateFlatIndex(info, state_); }
  Napi::Value LoadFlatIndexSync(const Napi::CallbackInfo& info) { return binding::LoadFlatIndexSync(info, state_); }
  Napi::Value LoadFlatIndexAsync(const Napi::CallbackInfo& info) { return binding::LoadFlatIndexAsync(info, state_); }
  Napi::Value FlatIndexFromBufferSync(const Napi::CallbackInfo& info) {
    return binding::FlatIndexFromBufferSync(info, state_);
  }
  Napi::Value FlatIndexFromBufferAsync(const Napi::CallbackInfo& info) {
    return binding::FlatIndexFromBufferAsync(info, state_);
  }
  Napi::Value ReadSafetensorsSync(const Napi::CallbackInfo& info) { return binding::ReadSafetensorsSync(info, state_); }
  Napi::Value ReadSafetensorsAsync(const Napi::CallbackInfo& info) { return binding::ReadSafetensorsAsync(info, state_); }
  Napi::Value WriteSafetensorsSync(const Napi::CallbackInfo& info) { return binding::WriteSafetensorsSync(info, state_); }
  Napi::Value WriteSafetensorsAsync(const Napi::CallbackInfo& info) { return binding::WriteSafetensorsAsync(info, state_); }
  Napi::Value EncodeSafetensorsSync(const Napi::CallbackInfo& info) { return binding::EncodeSafetensorsSync(info, state_); }
  Napi::Value CreateCancelToken(const Napi::CallbackInfo& info) { return binding::CreateCancelToken(info, state_); }
  Napi::Value Info(const Napi::CallbackInfo& info) { return binding::Info(info, state_); }
  Napi::Value CudaInfo(const Napi::CallbackInfo& info) { return binding::CudaInfo(info); }
  Napi::Value SetIsa(const Napi::CallbackInfo& info) { return binding::SetIsa(info); }
  Napi::Value ErrorCodes(const Napi::CallbackInfo& info) { return binding::ErrorCodes(info); }

  AddonState state_;
};

}  // namespace binding
}  // namespace vlk

// The macro pastes the name into an identifier, so it needs an unqualified one.
using VlkAddon = vlk::binding::Addon;
NODE_API_ADDON(VlkAddon)
