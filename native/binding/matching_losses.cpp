// Matching-loss entry points (binding). Specs (every array's length is checked against the sizes):
//   memoryInfoNce: { b, d, queries, keys: Float32Array (b * d), bank?: MemoryBank handle |
//     queue?: Float32Array (k * d) with k, queueIds?: Float64Array (k), queryIds?: Float64Array (b),
//     scale, inBatchNegatives, maskSameId, grads, threads? } -> { loss, masked, dqueries?, dkeys? }.
//     A bank is read as it is at CALL time (core::MemoryBank::view, copy-on-write).
//   vseHinge: { b, scores (b * b), ids?, margin, maxViolation, grads } ->
//     { loss, dscores?, hardestCaption, hardestImage: Int32Array }
//   weightedTriplet: { b, scores (b * b), ids?, margin, n, cutoff, maxDistance, seed, grads } ->
//     { loss, dscores?, direction, anchor, positive, negative: Int32Array }
// Each op is a flat-spec call (common/spec_call.hpp): inputs kept, Float32Array outputs
// V8-allocated before the job, a run closure (pool thread for the async form), and the scalar /
// Int32Array results read from the run's state on the JS thread. vseHinge and weightedTriplet take
// no threads (single-threaded cores).
#include "matching_losses.hpp"

#include <algorithm>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/spec_call.hpp"
#include "losses/memory_info_nce.hpp"
#include "losses/vse_hinge.hpp"
#include "losses/weighted_triplet.hpp"
#include "memory_bank.hpp"

namespace vlk {
namespace binding {

namespace {

constexpr const char* kGradsOom = "could not allocate the gradients";

Napi::Int32Array Int32s(Napi::Env env, const std::vector<int32_t>& v) {
  Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

// ---- memoryInfoNce ----
Status ParseMemoryInfoNce(Napi::Env env, Napi::Object spec, SpecCall* call) {
  struct State {
    core::MemoryInfoNceArgs args;
    core::MemoryInfoNceOut out;
    std::shared_ptr<const core::MemoryBank::State> bank;  // the contents at call time
    std::vector<int64_t> queue_ids, query_ids;
    bool trusted = false;
  };
  auto s = std::make_shared<State>();
  core::MemoryInfoNceArgs& a = s->args;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a.b));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("d"), "d", &a.d));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "queries", SpecProduct(a.b, a.d), false, call, &a.queries));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "keys", SpecProduct(a.b, a.d), false, call, &a.keys));
  bool present = false;
  if (!spec.Get("bank").IsUndefined()) {
    std::shared_ptr<core::MemoryBank> bank;
    VLK_RETURN_IF_ERROR(ReadMemoryBank(spec.Get("bank"), &bank));
    if (bank->dim() != a.d) {
      return Status(Code::kDimMismatch, "bank: dim " + std::to_string(bank->dim()) + " differs from the queries' " +
                                            std::to_string(a.d));
    }
    s->bank = bank->view();
    a.queue = s->bank->data.data();
    a.k = s->bank->count;
    a.queue_ids = s->bank->ids.data();
    s->trusted = true;
  } else {
    VLK_RETURN_IF_ERROR(ReadSize(spec.Get("k"), "k", &a.k));
    VLK_RETURN_IF_ERROR(SpecF32(spec, "queue", SpecProduct(a.k, a.d), false, call, &a.queue));
    VLK_RETURN_IF_ERROR(SpecIds(spec, "queueIds", a.k, true, &s->queue_ids, &present));
    if (present) a.queue_ids = s->queue_ids.data();
  }
  VLK_RETURN_IF_ERROR(SpecIds(spec, "queryIds", a.b, false, &s->query_ids, &present));
  if (present) a.query_ids = s->query_ids.data();
  double scale = 0;
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "scale", &scale));
  a.scale = scale;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("inBatchNegatives"), "inBatchNegatives", false, &a.in_batch_negatives));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("maskSameId"), "maskSameId", false, &a.mask_same_id));
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) {
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dqueries", SpecProduct(a.b, a.d), call, &s->out.dqueries, kGradsOom));
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dkeys", SpecProduct(a.b, a.d), call, &s->out.dkeys, kGradsOom));
  }
  call->run = [s](const Context& ctx) { return core::memory_info_nce(s->args, &s->out, ctx, s->trusted); };
  call->lead.emplace_back("loss", [s](Napi::Env env) { return Napi::Number::New(env, s->out.loss); });
  call->lead.emplace_back("masked", [s](Napi::Env env) { return Napi::Number::New(env, double(s->out.masked)); });
  return Status::Ok();
}

// ---- vseHinge ----
Status ParseVseHinge(Napi::Env env, Napi::Object spec, SpecCall* call) {
  struct State {
    core::VseHingeArgs args;
    core::VseHingeOut out;
    std::vector<int64_t> ids;
    std::vector<int32_t> caption, image;
  };
  SpecNoThreads(call);
  auto s = std::make_shared<State>();
  core::VseHingeArgs& a = s->args;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a.b));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "scores", SpecProduct(a.b, a.b), false, call, &a.scores));
  bool present = false;
  VLK_RETURN_IF_ERROR(SpecIds(spec, "ids", a.b, false, &s->ids, &present));
  if (present) a.ids = s->ids.data();
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "margin", &a.margin));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("maxViolation"), "maxViolation", true, &a.max_violation));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) VLK_RETURN_IF_ERROR(SpecOutF32(env, "dscores", SpecProduct(a.b, a.b), call, &s->out.dscores, kGradsOom));
  try {
    s->caption.resize(static_cast<size_t>(a.b));
    s->image.resize(static_cast<size_t>(a.b));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "vseHinge: out of memory");
  }
  s->out.hardest_caption = s->caption.data();
  s->out.hardest_image = s->image.data();
  call->run = [s](const Context&) { return core::vse_hinge(s->args, &s->out); };
  call->lead.emplace_back("loss", [s](Napi::Env env) { return Napi::Number::New(env, s->out.loss); });
  call->tail.emplace_back("hardestCaption", [s](Napi::Env env) { return Int32s(env, s->caption); });
  call->tail.emplace_back("hardestImage", [s](Napi::Env env) { return Int32s(env, s->image); });
  return Status::Ok();
}

// ---- weightedTriplet ----
Status ParseWeightedTriplet(Napi::Env env, Napi::Object spec, SpecCall* call) {
  struct State {
    core::WeightedTripletArgs args;
    core::WeightedTripletOut out;
    std::vector<int64_t> ids;
  };
  SpecNoThreads(call);
  auto s = std::make_shared<State>();
  core::WeightedTripletArgs& a = s->args;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("b"), "b", &a.b));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "scores", SpecProduct(a.b, a.b), false, call, &a.scores));
  bool present = false;
  VLK_RETURN_IF_ERROR(SpecIds(spec, "ids", a.b, false, &s->ids, &present));
  if (present) a.ids = s->ids.data();
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "margin", &a.margin));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "n", &a.n));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "cutoff", &a.cutoff));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "maxDistance", &a.max_distance));
  int64_t seed = 0;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("seed"), "seed", &seed));
  a.seed = static_cast<uint64_t>(seed);
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) VLK_RETURN_IF_ERROR(SpecOutF32(env, "dscores", SpecProduct(a.b, a.b), call, &s->out.dscores, kGradsOom));
  call->run = [s](const Context&) { return core::weighted_triplet(s->args, &s->out); };
  call->lead.emplace_back("loss", [s](Napi::Env env) { return Napi::Number::New(env, s->out.loss); });
  call->tail.emplace_back("direction", [s](Napi::Env env) { return Int32s(env, s->out.direction); });
  call->tail.emplace_back("anchor", [s](Napi::Env env) { return Int32s(env, s->out.anchor); });
  call->tail.emplace_back("positive", [s](Napi::Env env) { return Int32s(env, s->out.positive); });
  call->tail.emplace_back("negative", [s](Napi::Env env) { return Int32s(env, s->out.negative); });
  return Status::Ok();
}

}  // namespace

Napi::Value MemoryInfoNceSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseMemoryInfoNce, "memoryInfoNce");
}
Napi::Value MemoryInfoNceAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseMemoryInfoNce, "memoryInfoNce");
}
Napi::Value VseHingeSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, ParseVseHinge, "vseHinge"); }
Napi::Value VseHingeAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseVseHinge, "vseHinge");
}
Napi::Value WeightedTripletSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseWeightedTriplet, "weightedTriplet");
}
Napi::Value WeightedTripletAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseWeightedTriplet, "weightedTriplet");
}

}  // namespace binding
}  // namespace vlk
