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
#include "preference_loss.hpp"
#include "clip_loss.hpp"
#include "cluster.hpp"
#include "graph.hpp"
#include "global_local.hpp"
#include "expand_queries.hpp"
#include "biased_attention.hpp"
#include "flat_index.hpp"
#include "index_file.hpp"
#include "info.hpp"
#include "merge_top_k.hpp"
#include "rerank.hpp"
#include "safetensors.hpp"
#include "search.hpp"
#include "multi_query_search.hpp"
#include "prior_search.hpp"
#include "rank_of_targets.hpp"
#include "vectors_io.hpp"

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
                             InstanceMethod<&Addon::PreferenceLossSync>("preferenceLossSync", napi_enumerable),
                             InstanceMethod<&Addon::PreferenceLossAsync>("preferenceLossAsync", napi_enumerable),
                             InstanceMethod<&Addon::ClipLossSync>("clipLossSync", napi_enumerable),
                             InstanceMethod<&Addon::ClipLossAsync>("clipLossAsync", napi_enumerable),
                             InstanceMethod<&Addon::SinkhornSync>("sinkhornSync", napi_enumerable),
                             InstanceMethod<&Addon::SinkhornAsync>("sinkhornAsync", napi_enumerable),
                             InstanceMethod<&Addon::SwavLossSync>("swavLossSync", napi_enumerable),
                             InstanceMethod<&Addon::SwavLossAsync>("swavLossAsync", napi_enumerable),
                             InstanceMethod<&Addon::KmeansSync>("kmeansSync", napi_enumerable),
                             InstanceMethod<&Addon::KmeansAsync>("kmeansAsync", napi_enumerable),
                             InstanceMethod<&Addon::GraphRelevanceSync>("graphRelevanceSync", napi_enumerable),
                             InstanceMethod<&Addon::GraphRelevanceAsync>("graphRelevanceAsync", napi_enumerable),
                             InstanceMethod<&Addon::GraphRelevanceBackwardSync>("graphRelevanceBackwardSync", napi_enumerable),
                             InstanceMethod<&Addon::GraphRelevanceBackwardAsync>("graphRelevanceBackwardAsync", napi_enumerable),
                             InstanceMethod<&Addon::GraphScanRelevanceSync>("graphScanRelevanceSync", napi_enumerable),
                             InstanceMethod<&Addon::GraphScanRelevanceAsync>("graphScanRelevanceAsync", napi_enumerable),
                             InstanceMethod<&Addon::GraphRowTopkMaskSync>("graphRowTopkMaskSync", napi_enumerable),
                             InstanceMethod<&Addon::GraphRowTopkMaskAsync>("graphRowTopkMaskAsync", napi_enumerable),
                             InstanceMethod<&Addon::GraphGcnSync>("graphGcnSync", napi_enumerable),
                             InstanceMethod<&Addon::GraphGcnAsync>("graphGcnAsync", napi_enumerable),
                             InstanceMethod<&Addon::GraphGcnBackwardSync>("graphGcnBackwardSync", napi_enumerable),
                             InstanceMethod<&Addon::GraphGcnBackwardAsync>("graphGcnBackwardAsync", napi_enumerable),
                             InstanceMethod<&Addon::MaxkPoolSync>("maxkPoolSync", napi_enumerable),
                             InstanceMethod<&Addon::MaxkPoolAsync>("maxkPoolAsync", napi_enumerable),
                             InstanceMethod<&Addon::MaxkPoolBackwardSync>("maxkPoolBackwardSync", napi_enumerable),
                             InstanceMethod<&Addon::MaxkPoolBackwardAsync>("maxkPoolBackwardAsync", napi_enumerable),
                             InstanceMethod<&Addon::CosineMhaPoolSync>("cosineMhaPoolSync", napi_enumerable),
                             InstanceMethod<&Addon::CosineMhaPoolAsync>("cosineMhaPoolAsync", napi_enumerable),
                             InstanceMethod<&Addon::CosineMhaPoolBackwardSync>("cosineMhaPoolBackwardSync", napi_enumerable),
                             InstanceMethod<&Addon::CosineMhaPoolBackwardAsync>("cosineMhaPoolBackwardAsync", napi_enumerable),
                             InstanceMethod<&Addon::GatedFusionSync>("gatedFusionSync", napi_enumerable),
                             InstanceMethod<&Addon::GatedFusionAsync>("gatedFusionAsync", napi_enumerable),
                             InstanceMethod<&Addon::GatedFusionBackwardSync>("gatedFusionBackwardSync", napi_enumerable),
                             InstanceMethod<&Addon::GatedFusionBackwardAsync>("gatedFusionBackwardAsync", napi_enumerable),
                             InstanceMethod<&Addon::ScanSimilaritySync>("scanSimilaritySync", napi_enumerable),
                             InstanceMethod<&Addon::ScanSimilarityAsync>("scanSimilarityAsync", napi_enumerable),
                             InstanceMethod<&Addon::ExpandQueriesSync>("expandQueriesSync", napi_enumerable),
                             InstanceMethod<&Addon::ExpandQueriesAsync>("expandQueriesAsync", napi_enumerable),
                             InstanceMethod<&Addon::AugmentGallerySync>("augmentGallerySync", napi_enumerable),
                             InstanceMethod<&Addon::AugmentGalleryAsync>("augmentGalleryAsync", napi_enumerable),
                             InstanceMethod<&Addon::BiasedAttentionSync>("biasedAttentionSync", napi_enumerable),
                             InstanceMethod<&Addon::BiasedAttentionAsync>("biasedAttentionAsync", napi_enumerable),
                             InstanceMethod<&Addon::BiasedAttentionBackwardSync>("biasedAttentionBackwardSync", napi_enumerable),
                             InstanceMethod<&Addon::BiasedAttentionBackwardAsync>("biasedAttentionBackwardAsync", napi_enumerable),
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
                             InstanceMethod<&Addon::RankOfTargetsSync>("rankOfTargetsSync", napi_enumerable),
                             InstanceMethod<&Addon::RankOfTargetsAsync>("rankOfTargetsAsync", napi_enumerable),
                             InstanceMethod<&Addon::CrossModalRanksSync>("crossModalRanksSync", napi_enumerable),
                             InstanceMethod<&Addon::CrossModalRanksAsync>("crossModalRanksAsync", napi_enumerable),
                             InstanceMethod<&Addon::CreateCancelToken>("createCancelToken", napi_enumerable),
                             InstanceMethod<&Addon::Info>("info", napi_enumerable),
                             InstanceMethod<&Addon::CudaInfo>("cudaInfo", napi_enumerable),
                             InstanceMethod<&Addon::SetIsa>("setIsa", napi_enumerable),
                             InstanceMethod<&Addon::ReleaseMemory>("releaseMemory", napi_enumerable),
                             InstanceMethod<&Addon::ErrorCodes>("_errorCodes", napi_enumerable),
                             InstanceMethod<&Addon::MultiQuerySearchSync>("multiQuerySearchSync", napi_enumerable),
                             InstanceMethod<&Addon::MultiQuerySearchAsync>("multiQuerySearchAsync", napi_enumerable),
                             InstanceMethod<&Addon::PriorSearchSync>("priorSearchSync", napi_enumerable),
                             InstanceMethod<&Addon::PriorSearchAsync>("priorSearchAsync", napi_enumerable),
                             InstanceMethod<&Addon::NpyPreamble>("npyPreamble", napi_enumerable),
                             InstanceMethod<&Addon::NpyHeader>("npyHeader", napi_enumerable),
                             InstanceMethod<&Addon::VecsLayout>("vecsLayout", napi_enumerable),
                             InstanceMethod<&Addon::VecsUnpack>("vecsUnpack", napi_enumerable),
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
  Napi::Value PreferenceLossSync(const Napi::CallbackInfo& info) { return binding::PreferenceLossSync(info); }
  Napi::Value PreferenceLossAsync(const Napi::CallbackInfo& info) { return binding::PreferenceLossAsync(info, state_); }
  Napi::Value ClipLossSync(const Napi::CallbackInfo& info) { return binding::ClipLossSync(info); }
  Napi::Value ClipLossAsync(const Napi::CallbackInfo& info) { return binding::ClipLossAsync(info, state_); }
  Napi::Value SinkhornSync(const Napi::CallbackInfo& info) { return binding::SinkhornSync(info); }
  Napi::Value SinkhornAsync(const Napi::CallbackInfo& info) { return binding::SinkhornAsync(info, state_); }
  Napi::Value SwavLossSync(const Napi::CallbackInfo& info) { return binding::SwavLossSync(info); }
  Napi::Value SwavLossAsync(const Napi::CallbackInfo& info) { return binding::SwavLossAsync(info, state_); }
  Napi::Value KmeansSync(const Napi::CallbackInfo& info) { return binding::KmeansSync(info); }
  Napi::Value KmeansAsync(const Napi::CallbackInfo& info) { return binding::KmeansAsync(info, state_); }
  Napi::Value GraphRelevanceSync(const Napi::CallbackInfo& info) { return binding::GraphRelevanceSync(info); }
  Napi::Value GraphRelevanceAsync(const Napi::CallbackInfo& info) { return binding::GraphRelevanceAsync(info, state_); }
  Napi::Value GraphRelevanceBackwardSync(const Napi::CallbackInfo& info) { return binding::GraphRelevanceBackwardSync(info); }
  Napi::Value GraphRelevanceBackwardAsync(const Napi::CallbackInfo& info) { return binding::GraphRelevanceBackwardAsync(info, state_); }
  Napi::Value GraphScanRelevanceSync(const Napi::CallbackInfo& info) { return binding::GraphScanRelevanceSync(info); }
  Napi::Value GraphScanRelevanceAsync(const Napi::CallbackInfo& info) { return binding::GraphScanRelevanceAsync(info, state_); }
  Napi::Value GraphRowTopkMaskSync(const Napi::CallbackInfo& info) { return binding::GraphRowTopkMaskSync(info); }
  Napi::Value GraphRowTopkMaskAsync(const Napi::CallbackInfo& info) { return binding::GraphRowTopkMaskAsync(info, state_); }
  Napi::Value GraphGcnSync(const Napi::CallbackInfo& info) { return binding::GraphGcnSync(info); }
  Napi::Value GraphGcnAsync(const Napi::CallbackInfo& info) { return binding::GraphGcnAsync(info, state_); }
  Napi::Value GraphGcnBackwardSync(const Napi::CallbackInfo& info) { return binding::GraphGcnBackwardSync(info); }
  Napi::Value GraphGcnBackwardAsync(const Napi::CallbackInfo& info) { return binding::GraphGcnBackwardAsync(info, state_); }
  Napi::Value MaxkPoolSync(const Napi::CallbackInfo& info) { return binding::MaxkPoolSync(info); }
  Napi::Value MaxkPoolAsync(const Napi::CallbackInfo& info) { return binding::MaxkPoolAsync(info, state_); }
  Napi::Value MaxkPoolBackwardSync(const Napi::CallbackInfo& info) { return binding::MaxkPoolBackwardSync(info); }
  Napi::Value MaxkPoolBackwardAsync(const Napi::CallbackInfo& info) { return binding::MaxkPoolBackwardAsync(info, state_); }
  Napi::Value CosineMhaPoolSync(const Napi::CallbackInfo& info) { return binding::CosineMhaPoolSync(info); }
  Napi::Value CosineMhaPoolAsync(const Napi::CallbackInfo& info) { return binding::CosineMhaPoolAsync(info, state_); }
  Napi::Value CosineMhaPoolBackwardSync(const Napi::CallbackInfo& info) { return binding::CosineMhaPoolBackwardSync(info); }
  Napi::Value CosineMhaPoolBackwardAsync(const Napi::CallbackInfo& info) { return binding::CosineMhaPoolBackwardAsync(info, state_); }
  Napi::Value GatedFusionSync(const Napi::CallbackInfo& info) { return binding::GatedFusionSync(info); }
  Napi::Value GatedFusionAsync(const Napi::CallbackInfo& info) { return binding::GatedFusionAsync(info, state_); }
  Napi::Value GatedFusionBackwardSync(const Napi::CallbackInfo& info) { return binding::GatedFusionBackwardSync(info); }
  Napi::Value GatedFusionBackwardAsync(const Napi::CallbackInfo& info) { return binding::GatedFusionBackwardAsync(info, state_); }
  Napi::Value ScanSimilaritySync(const Napi::CallbackInfo& info) { return binding::ScanSimilaritySync(info); }
  Napi::Value ScanSimilarityAsync(const Napi::CallbackInfo& info) { return binding::ScanSimilarityAsync(info, state_); }
  Napi::Value ExpandQueriesSync(const Napi::CallbackInfo& info) { return binding::ExpandQueriesSync(info); }
  Napi::Value ExpandQueriesAsync(const Napi::CallbackInfo& info) { return binding::ExpandQueriesAsync(info, state_); }
  Napi::Value AugmentGallerySync(const Napi::CallbackInfo& info) { return binding::AugmentGallerySync(info); }
  Napi::Value AugmentGalleryAsync(const Napi::CallbackInfo& info) { return binding::AugmentGalleryAsync(info, state_); }
  Napi::Value BiasedAttentionSync(const Napi::CallbackInfo& info) { return binding::BiasedAttentionSync(info); }
  Napi::Value BiasedAttentionAsync(const Napi::CallbackInfo& info) { return binding::BiasedAttentionAsync(info, state_); }
  Napi::Value BiasedAttentionBackwardSync(const Napi::CallbackInfo& info) {
    return binding::BiasedAttentionBackwardSync(info);
  }
  Napi::Value BiasedAttentionBackwardAsync(const Napi::CallbackInfo& info) {
    return binding::BiasedAttentionBackwardAsync(info, state_);
  }
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
  Napi::Value RankOfTargetsSync(const Napi::CallbackInfo& info) { return binding::RankOfTargetsSync(info); }
  Napi::Value RankOfTargetsAsync(const Napi::CallbackInfo& info) { return binding::RankOfTargetsAsync(info, state_); }
  Napi::Value CrossModalRanksSync(const Napi::CallbackInfo& info) { return binding::CrossModalRanksSync(info); }
  Napi::Value CrossModalRanksAsync(const Napi::CallbackInfo& info) { return binding::CrossModalRanksAsync(info, state_); }
  Napi::Value CreateCancelToken(const Napi::CallbackInfo& info) { return binding::CreateCancelToken(info, state_); }
  Napi::Value Info(const Napi::CallbackInfo& info) { return binding::Info(info, state_); }
  Napi::Value CudaInfo(const Napi::CallbackInfo& info) { return binding::CudaInfo(info); }
  Napi::Value SetIsa(const Napi::CallbackInfo& info) { return binding::SetIsa(info); }
  Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) { return binding::ReleaseMemory(info); }
  Napi::Value ErrorCodes(const Napi::CallbackInfo& info) { return binding::ErrorCodes(info); }
  Napi::Value MultiQuerySearchSync(const Napi::CallbackInfo& info) { return binding::MultiQuerySearchSync(info); }
  Napi::Value MultiQuerySearchAsync(const Napi::CallbackInfo& info) {
    return binding::MultiQuerySearchAsync(info, state_);
  }
  Napi::Value PriorSearchSync(const Napi::CallbackInfo& info) { return binding::PriorSearchSync(info); }
  Napi::Value PriorSearchAsync(const Napi::CallbackInfo& info) { return binding::PriorSearchAsync(info, state_); }
  Napi::Value NpyPreamble(const Napi::CallbackInfo& info) { return binding::NpyPreamble(info); }
  Napi::Value NpyHeader(const Napi::CallbackInfo& info) { return binding::NpyHeader(info); }
  Napi::Value VecsLayout(const Napi::CallbackInfo& info) { return binding::VecsLayout(info); }
  Napi::Value VecsUnpack(const Napi::CallbackInfo& info) { return binding::VecsUnpack(info); }

  AddonState state_;
};

}  // namespace binding
}  // namespace vlk

// The macro pastes the name into an identifier, so it needs an unqualified one.
using VlkAddon = vlk::binding::Addon;
NODE_API_ADDON(VlkAddon)
