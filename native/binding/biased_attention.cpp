// biasedAttention entry points (binding). The spec is flat (lib has resolved shapes): sizes n, d,
// heads, blockQuery, blockKey; Float32Arrays x (n*d), wq, wk, wv, wo (d*d), bq, bk, bv, bo, gamma,
// beta (d), relevance (n*n); a Uint8Array mask (n*n); numbers biasWeight, eps; booleans selfLoops,
// save (forward: return the saved tensors); threads?. The backward adds dOutput (n*d) and an
// optional saved object { q, k, v, o, xhat (n*d), lse (heads*n), rstd (n) }. Every array's type and
// length is checked here; outputs are V8-allocated before the job runs.
#include "biased_attention.hpp"

#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "graph/biased_attention.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

namespace {

struct AttnCall;

struct Out {
  std::string name;  // result key ("output", "q" under saved, "wq" ...)
  Napi::Float32Array array;
  float** (*slot)(AttnCall&);  // where the core pointer goes (re-resolved after the call moves)
};

struct AttnCall {
  core::BiasedAttentionArgs args;
  core::BiasedAttentionSaved saved;
  core::BiasedAttentionGrads grads;
  bool backward = false;
  bool has_saved = false;  // backward: saved tensors given; forward: saved tensors returned
  const float* dy = nullptr;
  float* y = nullptr;
  std::vector<Napi::Object> keep;
  std::vector<Out> outs;
  int threads = 1;
};

Status ReadFloats(Napi::Object spec, const char* name, const char* label, int64_t n, AttnCall* call, const float** out) {
  Napi::Value v = spec.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    return Status(Code::kType, std::string(label) + ": expected a Float32Array, got " + Describe(v));
  }
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n) {
    return Status(Code::kShape, std::string(label) + ": length " + std::to_string(a.ElementLength()) + ", expected " +
                                    std::to_string(n));
  }
  if (n > 0 && a.Data() == nullptr) return Status(Code::kInvalidArg, std::string(label) + ": detached buffer");
  call->keep.push_back(a);
  *out = a.Data();
  return Status::Ok();
}

Status ReadNumber(Napi::Object spec, const char* name, double* out) {
  Napi::Value v = spec.Get(name);
  if (!v.IsNumber()) return Status(Code::kType, std::string(name) + ": expected a number, got " + Describe(v));
  *out = v.As<Napi::Number>().DoubleValue();
  return Status::Ok();
}

Status AddOut(Napi::Env env, AttnCall* call, const char* name, int64_t n, float** (*slot)(AttnCall&)) {
  try {
    call->outs.push_back(Out{name, Napi::Float32Array::New(env, static_cast<size_t>(n)), slot});
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, std::string("biasedAttention: could not allocate ") + name);
  }
  return Status::Ok();
}

Status Parse(Napi::Env env, Napi::Value value, bool backward, AttnCall* call) {
  const char* op = backward ? "biasedAttentionBackward" : "biasedAttention";
  if (!IsObject(value)) return Status(Code::kType, std::string(op) + ": expected a spec object, got " + Describe(value));
  Napi::Object spec = value.As<Napi::Object>();
  core::BiasedAttentionArgs& a = call->args;
  call->backward = backward;
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("n"), "n", &a.n));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("d"), "d", &a.d));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("heads"), "options.heads", &a.heads));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("blockQuery"), "options.blockQuery", &a.block_q));
  VLK_RETURN_IF_ERROR(ReadSize(spec.Get("blockKey"), "options.blockKey", &a.block_k));
  const int64_t n = a.n, d = a.d;
  if (n > (int64_t{1} << 26) || d > (int64_t{1} << 26)) {
    return Status(Code::kShape, std::string(op) + ": n = " + std::to_string(n) + ", D = " + std::to_string(d) + " too large");
  }
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "x", "x", n * d, call, &a.x));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "wq", "wq", d * d, call, &a.wq));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "wk", "wk", d * d, call, &a.wk));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "wv", "wv", d * d, call, &a.wv));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "wo", "wo", d * d, call, &a.wo));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "bq", "bq", d, call, &a.bq));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "bk", "bk", d, call, &a.bk));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "bv", "bv", d, call, &a.bv));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "bo", "bo", d, call, &a.bo));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "gamma", "gamma", d, call, &a.gamma));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "beta", "beta", d, call, &a.beta));
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "relevance", "relevance", n * n, call, &a.relevance));
  {
    Napi::Value m = spec.Get("mask");
    if (!m.IsTypedArray() || m.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      return Status(Code::kType, "mask: expected a Uint8Array, got " + Describe(m));
    }
    Napi::Uint8Array mu = m.As<Napi::Uint8Array>();
    if (static_cast<int64_t>(mu.ElementLength()) != n * n) {
      return Status(Code::kShape, "mask: length " + std::to_string(mu.ElementLength()) + ", expected n * n = " +
                                      std::to_string(n * n));
    }
    if (n > 0 && mu.Data() == nullptr) return Status(Code::kInvalidArg, "mask: detached buffer");
    call->keep.push_back(mu);
    a.mask = mu.Data();
  }
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "biasWeight", &a.bias_weight));
  VLK_RETURN_IF_ERROR(ReadNumber(spec, "eps", &a.eps));
  VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("selfLoops"), "options.selfLoops", true, &a.self_loops));
  VLK_RETURN_IF_ERROR(ReadThreads(spec.Get("threads"), &call->threads));
  const int64_t hn = a.heads * n;
  core::BiasedAttentionSaved& s = call->saved;
  if (!backward) {
    bool save = true;
    VLK_RETURN_IF_ERROR(ReadFlag(spec.Get("save"), "save", true, &save));
    call->has_saved = save;
    VLK_RETURN_IF_ERROR(AddOut(env, call, "output", n * d, [](AttnCall& c) { return &c.y; }));
    if (save) {
      VLK_RETURN_IF_ERROR(AddOut(env, call, "q", n * d, [](AttnCall& c) { return &c.saved.q; }));
      VLK_RETURN_IF_ERROR(AddOut(env, call, "k", n * d, [](AttnCall& c) { return &c.saved.k; }));
      VLK_RETURN_IF_ERROR(AddOut(env, call, "v", n * d, [](AttnCall& c) { return &c.saved.v; }));
      VLK_RETURN_IF_ERROR(AddOut(env, call, "o", n * d, [](AttnCall& c) { return &c.saved.o; }));
      VLK_RETURN_IF_ERROR(AddOut(env, call, "lse", hn, [](AttnCall& c) { return &c.saved.lse; }));
      VLK_RETURN_IF_ERROR(AddOut(env, call, "xhat", n * d, [](AttnCall& c) { return &c.saved.xhat; }));
      VLK_RETURN_IF_ERROR(AddOut(env, call, "rstd", n, [](AttnCall& c) { return &c.saved.rstd; }));
    }
    return Status::Ok();
  }
  VLK_RETURN_IF_ERROR(ReadFloats(spec, "dOutput", "dOutput", n * d, call, &call->dy));
  Napi::Value sv = spec.Get("saved");
  if (!sv.IsUndefined()) {
    if (!IsObject(sv)) return Status(Code::kType, "options.saved: expected the forward's saved object, got " + Describe(sv));
    Napi::Object so = sv.As<Napi::Object>();
    const float* p = nullptr;
    VLK_RETURN_IF_ERROR(ReadFloats(so, "q", "options.saved.q", n * d, call, &p));
    s.q = const_cast<float*>(p);
    VLK_RETURN_IF_ERROR(ReadFloats(so, "k", "options.saved.k", n * d, call, &p));
    s.k = const_cast<float*>(p);
    VLK_RETURN_IF_ERROR(ReadFloats(so, "v", "options.saved.v", n * d, call, &p));
    s.v = const_cast<float*>(p);
    VLK_RETURN_IF_ERROR(ReadFloats(so, "o", "options.saved.o", n * d, call, &p));
    s.o = const_cast<float*>(p);
    VLK_RETURN_IF_ERROR(ReadFloats(so, "lse", "options.saved.lse", hn, call, &p));
    s.lse = const_cast<float*>(p);
    VLK_RETURN_IF_ERROR(ReadFloats(so, "xhat", "options.saved.xhat", n * d, call, &p));
    s.xhat = const_cast<float*>(p);
    VLK_RETURN_IF_ERROR(ReadFloats(so, "rstd", "options.saved.rstd", n, call, &p));
    s.rstd = const_cast<float*>(p);
    call->has_saved = true;
  }
  VLK_RETURN_IF_ERROR(AddOut(env, call, "x", n * d, [](AttnCall& c) { return &c.grads.dx; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "wq", d * d, [](AttnCall& c) { return &c.grads.dwq; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "wk", d * d, [](AttnCall& c) { return &c.grads.dwk; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "wv", d * d, [](AttnCall& c) { return &c.grads.dwv; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "wo", d * d, [](AttnCall& c) { return &c.grads.dwo; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "bq", d, [](AttnCall& c) { return &c.grads.dbq; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "bk", d, [](AttnCall& c) { return &c.grads.dbk; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "bv", d, [](AttnCall& c) { return &c.grads.dbv; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "bo", d, [](AttnCall& c) { return &c.grads.dbo; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "gamma", d, [](AttnCall& c) { return &c.grads.dgamma; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "beta", d, [](AttnCall& c) { return &c.grads.dbeta; }));
  VLK_RETURN_IF_ERROR(AddOut(env, call, "relevance", n * n, [](AttnCall& c) { return &c.grads.drelevance; }));
  return Status::Ok();
}

// Points the core outputs at the arrays' memory.
void Bind(AttnCall* call) {
  for (Out& o : call->outs) *o.slot(*call) = o.array.IsEmpty() ? nullptr : o.array.Data();
}

Status Run(AttnCall& call, const Context& ctx) {
  if (call.backward) {
    return core::biased_attention_backward(call.args, call.has_saved ? &call.saved : nullptr, call.dy, &call.grads, ctx);
  }
  return core::biased_attention(call.args, call.y, call.has_saved ? &call.saved : nullptr, ctx);
}

// values[i] is outs[i]'s array.
Napi::Object MakeResult(Napi::Env env, const AttnCall& call, const std::vector<Napi::Value>& values) {
  Napi::Object r = Napi::Object::New(env);
  if (call.backward) {
    for (size_t i = 0; i < call.outs.size(); ++i) r.Set(call.outs[i].name, values[i]);
    r.Set("biasWeight", call.grads.dbias_weight);
    return r;
  }
  r.Set("output", values[0]);
  if (call.has_saved) {
    Napi::Object s = Napi::Object::New(env);
    for (size_t i = 1; i < call.outs.size(); ++i) s.Set(call.outs[i].name, values[i]);
    r.Set("saved", s);
  }
  return r;
}

class AttnJob final : public AsyncJob {
 public:
  AttnJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, AttnCall call, Isa isa)
      : AsyncJob(env, std::move(cancel)), call_(std::move(call)), isa_(isa) {
    for (auto& k : call_.keep) Keep(k);
    call_.keep.clear();
    Bind(&call_);
    for (Out& o : call_.outs) {
      slots_.push_back(Keep(o.array));
      o.array = Napi::Float32Array();
    }
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return Run(call_, MakeContext(call_.threads, isa_, &cancel)); }
  Napi::Value Result(Napi::Env env) override {
    std::vector<Napi::Value> values;
    for (size_t s : slots_) values.push_back(Kept(s));
    return MakeResult(env, call_, values);
  }

 private:
  AttnCall call_;
  Isa isa_;
  std::vector<size_t> slots_;
};

Napi::Value SyncCall(const Napi::CallbackInfo& info, bool backward) {
  Napi::Env env = info.Env();
  AttnCall call;
  Status st = Parse(env, info[0], backward, &call);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) ThrowStatus(env, st);
  Bind(&call);
  st = Run(call, MakeContext(call.threads, isa, nullptr));
  if (!st.ok()) ThrowStatus(env, st);
  std::vector<Napi::Value> values;
  for (Out& o : call.outs) values.push_back(o.array);
  return MakeResult(env, call, values);
}

Napi::Value AsyncCall(const Napi::CallbackInfo& info, AddonState& state, bool backward) {
  Napi::Env env = info.Env();
  AttnCall call;
  Status st = Parse(env, info[0], backward, &call);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[1], state, &cancel);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<AttnJob>(env, std::move(cancel), std::move(call), isa);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace

Napi::Value BiasedAttentionSync(const Napi::CallbackInfo& info) { return SyncCall(info, false); }
Napi::Value BiasedAttentionAsync(const Napi::CallbackInfo& info, AddonState& state) { return AsyncCall(info, state, false); }
Napi::Value BiasedAttentionBackwardSync(const Napi::CallbackInfo& info) { return SyncCall(info, true); }
Napi::Value BiasedAttentionBackwardAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return AsyncCall(info, state, true);
}

}  // namespace binding
}  // namespace vlk
