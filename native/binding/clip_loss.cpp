// CLIP-loss entry point (binding). Spec: { b, d, images, texts: Float32Array (b * d), logitScale,
// maxScale, labelSmoothing, normalize, grads, threads? } -> { loss, scale, clipped, dLogitScale,
// dImages?, dTexts? } (the gradients unless grads is false). A flat-spec call (common/spec_call.hpp).
#include "clip_loss.hpp"

#include <memory>

#include "common/spec_call.hpp"
#include "losses/clip_loss.hpp"

namespace vlk {
namespace binding {

namespace {

Status ParseClipLoss(Napi::Env env, Napi::Object spec, SpecCall* call) {
  struct State {
    core::ClipLossArgs args;
    core::ClipLossOut out;
  };
  auto s = std::make_shared<State>();
  core::ClipLossArgs& a = s->args;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "b", &a.b));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a.d));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "images", SpecProduct(a.b, a.d), false, call, &a.images));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "texts", SpecProduct(a.b, a.d), false, call, &a.texts));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "logitScale", &a.logit_scale));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "maxScale", &a.max_scale));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "labelSmoothing", &a.label_smoothing));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("normalize"), "normalize", true, &a.normalize));
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  bool grads = true;
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("grads"), "grads", true, &grads));
  if (grads) {
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dImages", SpecProduct(a.b, a.d), call, &s->out.dimages));
    VLK_RETURN_IF_ERROR(SpecOutF32(env, "dTexts", SpecProduct(a.b, a.d), call, &s->out.dtexts));
  }
  call->run = [s](const Context& ctx) { return core::clip_loss(s->args, &s->out, ctx); };
  call->lead.emplace_back("loss", [s](Napi::Env env) { return Napi::Number::New(env, s->out.loss); });
  call->lead.emplace_back("scale", [s](Napi::Env env) { return Napi::Number::New(env, s->out.scale); });
  call->lead.emplace_back("clipped", [s](Napi::Env env) { return Napi::Boolean::New(env, s->out.clipped); });
  call->lead.emplace_back("dLogitScale", [s](Napi::Env env) { return Napi::Number::New(env, s->out.dlogit_scale); });
  return Status::Ok();
}

}  // namespace

Napi::Value ClipLossSync(const Napi::CallbackInfo& info) { return RunSpecSync(info, ParseClipLoss, "clipLoss"); }
Napi::Value ClipLossAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseClipLoss, "clipLoss");
}

}  // namespace binding
}  // namespace vlk
