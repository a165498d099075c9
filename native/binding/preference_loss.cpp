// Preference-loss entry point (binding). Spec, every length checked against p (and q x n):
//   pair form:   { p, policyChosen, policyRejected, referenceChosen, referenceRejected: Float32Array (p),
//                  beta, labelSmoothing, sum, threads? } -> { loss, preferred, dPolicyChosen, dPolicyRejected }
//   matrix form: { p, q, n, scores, referenceScores: Float32Array (q * n), pairs: Int32Array (p * 3),
//                  beta, labelSmoothing, sum, threads? } -> { loss, preferred, dScores }
// A flat-spec call (common/spec_call.hpp); dScores is zero-filled before the run (scatter target).
#include "preference_loss.hpp"

#include <memory>

#include "common/spec_call.hpp"
#include "losses/preference_loss.hpp"

namespace vlk {
namespace binding {

namespace {

Status ParsePreferenceLoss(Napi::Env env, Napi::Object spec, SpecCall* call) {
  struct State {
    core::PreferenceLossArgs args;
    core::PreferenceLossOut out;
  };
  auto s = std::make_shared<State>();
  core::PreferenceLossArgs& a = s->args;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "p", &a.pairs));
  if (spec.Get("scores").IsUndefined()) {
    VLK_RETURN_IF_ERROR(SpecF32(spec, "policyChosen", a.pairs, false, call, &a.policy_chosen));
    VLK_RETURN_IF_ERROR(SpecF32(spec, "policyRejected", a.pairs, false, call, &a.policy_rejected));
    VLK_RETURN_IF_ERROR(SpecF32(spec, "referenceChosen", a.pairs, false, call, &a.reference_chosen));
    VLK_RETURN_IF_ERROR(SpecF32(spec, "referenceRejected", a.pairs, false, call, &a.reference_rejected));
  } else {
    VLK_RETURN_IF_ERROR(SpecSize(spec, "q", &a.q));
    VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &a.n));
    VLK_RETURN_IF_ERROR(SpecF32(spec, "scores", SizeMul(a.q, a.n), false, call, &a.scores));
    VLK_RETURN_IF_ERROR(SpecF32(spec, "referenceScores", SizeMul(a.q, a.n), false, call, &a.reference_scores));
    VLK_RETURN_IF_ERROR(SpecI32(spec, "pairs", SpecLen("", SizeMul(a.pairs, 3), " (3 per pair)"), false, call, &a.pair_ids));
  }
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "beta", &a.beta));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "labelSmoothing", &a.label_smoothing));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("sum"), "sum", false, &a.sum));
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  if (a.scores == nullptr) {
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dPolicyChosen", a.pairs, call, &s->out.d_chosen));
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dPolicyRejected", a.pairs, call, &s->out.d_rejected));
  } else {
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dScores", SpecProduct(a.q, a.n), call, &s->out.dscores));
  }
  call->run = [s](const Context& ctx) { return core::preference_loss(s->args, &s->out, ctx); };
  call->lead.emplace_back("loss", [s](Napi::Env env) { return Napi::Number::New(env, s->out.loss); });
  call->lead.emplace_back("preferred", [s](Napi::Env env) { return Napi::Number::New(env, double(s->out.preferred)); });
  return Status::Ok();
}

}  // namespace

Napi::Value PreferenceLossSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParsePreferenceLoss, "preferenceLoss");
}
Napi::Value PreferenceLossAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParsePreferenceLoss, "preferenceLoss");
}

}  // namespace binding
}  // namespace vlk
