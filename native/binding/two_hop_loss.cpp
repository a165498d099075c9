// twoHopLoss entry points (binding). The spec is flat (lib has resolved shapes): sizes b, d, m, kt
// (and k, kReverse, dp with prototypes), Float32Arrays query, targetTokens, textQuery?,
// prototype?, reversePrototype?, an Int32Array targets?, numbers scale, smoothingItc,
// smoothingRtc, wItc, wRtc, wAlign, threads?, and grads (boolean). Every array's length is checked
// against the sizes here. Gradient arrays are V8-allocated before the job runs. A flat-spec call
// (common/spec_call.hpp) resolving with { loss, itc, rtc, align, dscale, dprototype?, dquery?,
// dtextQuery?, dtargetTokens? }.
#include "two_hop_loss.hpp"

#include <memory>
#include <string>

#include "common/spec_call.hpp"
#include "compose/two_hop_loss.hpp"

namespace vlk {
namespace binding {

namespace {

Status ParseLoss(Napi::Env env, Napi::Object spec, SpecCall* call) {
  struct State {
    core::TwoHopLossArgs args;
    core::TwoHopLossOut out;
  };
  auto s = std::make_shared<State>();
  core::TwoHopLossArgs& a = s->args;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "b", &a.b));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a.d));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "m", &a.m));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "kt", &a.kt));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "query", SpecProduct(a.b, a.d), false, call, &a.query));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "textQuery", SpecProduct(a.b, a.d), true, call, &a.text_query));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "targetTokens", SpecProduct(a.m, a.kt, a.d), false, call, &a.target_tokens));
  const bool hop1 = !spec.Get("prototype").IsUndefined();
  if (hop1) {
    VLK_RETURN_IF_ERROR(SpecSize(spec, "k", &a.k));
    VLK_RETURN_IF_ERROR(SpecSize(spec, "kReverse", &a.k_reverse));
    VLK_RETURN_IF_ERROR(SpecSize(spec, "dp", &a.dp));
    VLK_RETURN_IF_ERROR(SpecF32(spec, "prototype", SpecProduct(a.b, a.k, a.dp), false, call, &a.prototype));
    VLK_RETURN_IF_ERROR(SpecF32(spec, "reversePrototype", SpecProduct(a.b, a.k_reverse, a.dp), false, call, &a.reverse_prototype));
  }
  VLK_RETURN_IF_ERROR(SpecI32(spec, "targets", SpecLen("B = ", a.b), true, call, &a.targets));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "scale", &a.scale));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "smoothingItc", &a.smoothing_itc));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "smoothingRtc", &a.smoothing_rtc));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "wItc", &a.w_itc));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "wRtc", &a.w_rtc));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "wAlign", &a.w_align));
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) {
    const char* oom = "twoHopLoss: could not allocate the gradients";
    core::TwoHopLossOut& o = s->out;
    if (hop1) VLK_RETURN_IF_ERROR(SpecOutF32(env, "dprototype", SpecProduct(a.b, a.k, a.dp), call, &o.dprototype, oom));
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dquery", SpecProduct(a.b, a.d), call, &o.dquery, oom));
    if (a.text_query != nullptr) {
      VLK_RETURN_IF_ERROR(SpecOutF32(env, "dtextQuery", SpecProduct(a.b, a.d), call, &o.dtext_query, oom));
    }
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dtargetTokens", SpecProduct(a.m, a.kt, a.d), call, &o.dtarget_tokens, oom));
  }
  call->run = [s](const Context& ctx) { return core::two_hop_loss(s->args, &s->out, ctx); };
  const std::pair<const char*, double core::TwoHopLossOut::*> scalars[] = {
      {"loss", &core::TwoHopLossOut::loss},   {"itc", &core::TwoHopLossOut::itc},
      {"rtc", &core::TwoHopLossOut::rtc},     {"align", &core::TwoHopLossOut::align},
      {"dscale", &core::TwoHopLossOut::dscale}};
  for (const auto& f : scalars) {
    auto field = f.second;
    call->lead.emplace_back(f.first, [s, field](Napi::Env env) { return Napi::Number::New(env, s->out.*field); });
  }
  return Status::Ok();
}

}  // namespace

Napi::Value TwoHopLossSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, ParseLoss, "twoHopLoss"); }

Napi::Value TwoHopLossAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseLoss, "twoHopLoss");
}

}  // namespace binding
}  // namespace vlk
