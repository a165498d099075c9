// biasedAttention entry points (binding). The spec is flat (lib has resolved shapes): sizes n, d,
// heads, blockQuery, blockKey; Float32Arrays x (n*d), wq, wk, wv, wo (d*d), bq, bk, bv, bo, gamma,
// beta (d), relevance (n*n); a Uint8Array mask (n*n); numbers biasWeight, eps; booleans selfLoops,
// save (forward: return the saved tensors); threads?. The backward adds dOutput (n*d) and an
// optional saved object { q, k, v, o, xhat (n*d), lse (heads*n), rstd (n) }. Every array's type and
// length is checked here; outputs are V8-allocated before the job runs. A flat-spec call
// (common/spec_call.hpp): the forward resolves with { output, saved?: { q, k, v, o, lse, xhat, rstd } },
// the backward with { x, wq, wk, wv, wo, bq, bk, bv, bo, gamma, beta, relevance, biasWeight }.
#include "biased_attention.hpp"

#include <memory>
#include <string>

#include "common/spec_call.hpp"
#include "graph/biased_attention.hpp"

namespace vlk {
namespace binding {

namespace {

struct AttnState {
  core::BiasedAttentionArgs args;
  core::BiasedAttentionSaved saved;
  core::BiasedAttentionGrads grads;
  bool has_saved = false;  // backward: saved tensors given; forward: saved tensors returned
  const float* dy = nullptr;
  float* y = nullptr;
};

constexpr const char* kSavedNames[] = {"q", "k", "v", "o", "lse", "xhat", "rstd"};

Status Parse(Napi::Env env, Napi::Object spec, bool backward, SpecCall* call) {
  const char* op = backward ? "biasedAttentionBackward" : "biasedAttention";
  auto st = std::make_shared<AttnState>();
  core::BiasedAttentionArgs& a = st->args;
  VLK_RETURN_IF_ERROR(SpecSize(spec, "n", &a.n));
  VLK_RETURN_IF_ERROR(SpecSize(spec, "d", &a.d));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("heads"), "options.heads", &a.heads));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("blockQuery"), "options.blockQuery", &a.block_q));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("blockKey"), "options.blockKey", &a.block_k));
  const int64_t n = a.n, d = a.d;
  if (n > (int64_t{1} << 26) || d > (int64_t{1} << 26)) {
    return Status(Code::kShape, std::string(op) + ": n = " + std::to_string(n) + ", D = " + std::to_string(d) + " too large");
  }
  VLK_RETURN_IF_ERROR(SpecF32(spec, "x", SpecProduct(n, d), false, call, &a.x));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "wq", SpecProduct(d, d), false, call, &a.wq));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "wk", SpecProduct(d, d), false, call, &a.wk));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "wv", SpecProduct(d, d), false, call, &a.wv));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "wo", SpecProduct(d, d), false, call, &a.wo));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "bq", d, false, call, &a.bq));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "bk", d, false, call, &a.bk));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "bv", d, false, call, &a.bv));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "bo", d, false, call, &a.bo));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "gamma", d, false, call, &a.gamma));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "beta", d, false, call, &a.beta));
  VLK_RETURN_IF_ERROR(SpecF32(spec, "relevance", SpecProduct(n, n), false, call, &a.relevance));
  VLK_RETURN_IF_ERROR(SpecU8(spec, "mask", SpecLen("n * n = ", SpecProduct(n, n)), false, call, &a.mask));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "biasWeight", &a.bias_weight));
  VLK_RETURN_IF_ERROR(SpecNumber(spec, "eps", &a.eps));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("selfLoops"), "options.selfLoops", true, &a.self_loops));
  VLK_RETURN_IF_ERROR(SpecThreads(spec, call));
  const int64_t hn = SpecProduct(a.heads, n);
  core::BiasedAttentionSaved& s = st->saved;
  // Output arrays: one allocation-failure message for both directions.
  auto out = [&](const char* name, int64_t count, float** p) {
    return SpecOutF32(env, name, count, call, p, (std::string("biasedAttention: could not allocate ") + name).c_str());
  };
  if (!backward) {
    bool save = true;
    VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("save"), "save", true, &save));
    st->has_saved = save;
    VLK_RETURN_IF_ERROR(out("output", SpecProduct(n, d), &st->y));
    if (save) {
      VLK_RETURN_IF_ERROR(out("q", SpecProduct(n, d), &s.q));
      VLK_RETURN_IF_ERROR(out("k", SpecProduct(n, d), &s.k));
      VLK_RETURN_IF_ERROR(out("v", SpecProduct(n, d), &s.v));
      VLK_RETURN_IF_ERROR(out("o", SpecProduct(n, d), &s.o));
      VLK_RETURN_IF_ERROR(out("lse", hn, &s.lse));
      VLK_RETURN_IF_ERROR(out("xhat", SpecProduct(n, d), &s.xhat));
      VLK_RETURN_IF_ERROR(out("rstd", n, &s.rstd));
    }
    call->run = [st](const Context& ctx) {
      return core::biased_attention(st->args, st->y, st->has_saved ? &st->saved : nullptr, ctx);
    };
    // { output, saved: { q, k, v, o, lse, xhat, rstd } }
    call->finish = [save](Napi::Env env, Napi::Object flat) -> Napi::Value {
      Napi::Object r = Napi::Object::New(env);
      r.Set("output", flat.Get("output"));
      if (save) {
        Napi::Object saved = Napi::Object::New(env);
        for (const char* name : kSavedNames) saved.Set(name, flat.Get(name));
        r.Set("saved", saved);
      }
      return r;
    };
    return Status::Ok();
  }
  VLK_RETURN_IF_ERROR(SpecF32(spec, "dOutput", SpecProduct(n, d), false, call, &st->dy));
  Napi::Value sv = spec.Get("saved");
  if (!sv.IsUndefined()) {
    if (!IsObject(sv)) return Status(Code::kType, "options.saved: expected the forward's saved object, got " + Describe(sv));
    Napi::Object so = sv.As<Napi::Object>();
    float** const slots[] = {&s.q, &s.k, &s.v, &s.o, &s.lse, &s.xhat, &s.rstd};
    const int64_t lengths[] = {SizeMul(n, d), SizeMul(n, d), SizeMul(n, d), SizeMul(n, d), hn, SizeMul(n, d), n};
    for (size_t i = 0; i < 7; ++i) {
      const float* p = nullptr;
      VLK_RETURN_IF_ERROR(SpecF32Value(so.Get(kSavedNames[i]), std::string("options.saved.") + kSavedNames[i],
                                       lengths[i], false, call, &p));
      *slots[i] = const_cast<float*>(p);
    }
    st->has_saved = true;
  }
  core::BiasedAttentionGrads& g = st->grads;
  VLK_RETURN_IF_ERROR(out("x", SpecProduct(n, d), &g.dx));
  VLK_RETURN_IF_ERROR(out("wq", SpecProduct(d, d), &g.dwq));
  VLK_RETURN_IF_ERROR(out("wk", SpecProduct(d, d), &g.dwk));
  VLK_RETURN_IF_ERROR(out("wv", SpecProduct(d, d), &g.dwv));
  VLK_RETURN_IF_ERROR(out("wo", SpecProduct(d, d), &g.dwo));
  VLK_RETURN_IF_ERROR(out("bq", d, &g.dbq));
  VLK_RETURN_IF_ERROR(out("bk", d, &g.dbk));
  VLK_RETURN_IF_ERROR(out("bv", d, &g.dbv));
  VLK_RETURN_IF_ERROR(out("bo", d, &g.dbo));
  VLK_RETURN_IF_ERROR(out("gamma", d, &g.dgamma));
  VLK_RETURN_IF_ERROR(out("beta", d, &g.dbeta));
  VLK_RETURN_IF_ERROR(out("relevance", SpecProduct(n, n), &g.drelevance));
  call->run = [st](const Context& ctx) {
    return core::biased_attention_backward(st->args, st->has_saved ? &st->saved : nullptr, st->dy, &st->grads, ctx);
  };
  call->tail.emplace_back("biasWeight", [st](Napi::Env env) { return Napi::Number::New(env, st->grads.dbias_weight); });
  return Status::Ok();
}

Status ParseForward(Napi::Env env, Napi::Object spec, SpecCall* call) { return Parse(env, spec, false, call); }
Status ParseBackward(Napi::Env env, Napi::Object spec, SpecCall* call) { return Parse(env, spec, true, call); }

}  // namespace

Napi::Value BiasedAttentionSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseForward, "biasedAttention");
}
Napi::Value BiasedAttentionAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseForward, "biasedAttention");
}
Napi::Value BiasedAttentionBackwardSync(const Napi::CallbackInfo& info) {
  return RunSpecSync(info, ParseBackward, "biasedAttentionBackward");
}
Napi::Value BiasedAttentionBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return RunSpecAsync(info, state, ParseBackward, "biasedAttentionBackward");
}

}  // namespace binding
}  // namespace vlk
