// The shared tail of the binding's operations that return Q x k { indices, scores, counts }
// (search, rerank): resolve the ISA, allocate the V8-owned outputs on the JS thread, then run on
// this thread (sync) or hand a job to the addon's pool (async). Each operation supplies only its
// parsing and the core call.
#pragma once

#include <initializer_list>
#include <memory>
#include <new>
#include <utility>

#include <napi.h>

#include "addon_state.hpp"
#include "args.hpp"
#include "async_job.hpp"
#include "cancel_token.hpp"
#include "common/cancel.hpp"
#include "common/status.hpp"
#include "errors.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace binding {

struct TopKOutputs {
  Napi::Int32Array indices;
  Napi::Float32Array scores;
  Napi::Int32Array counts;
};

/// Where core writes one call's results (the outputs' data).
struct TopKBuffers {
  int32_t* indices = nullptr;
  float* scores = nullptr;
  int32_t* counts = nullptr;
};

/// An operation's core call: Status run(Isa isa, const CancelFlag* cancel, const TopKBuffers& out).
/// The same functor serves both paths; for the async one it must own (or share) everything it
/// points into, since it runs on the pool after the JS call has returned.
template <class Run>
class TopKJob final : public AsyncJob {
 public:
  TopKJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, std::initializer_list<Napi::Object> inputs,
          TopKOutputs& o, int64_t queries, int64_t k, Isa isa, Run run)
      : AsyncJob(env, std::move(cancel)), queries_(queries), k_(k), isa_(isa), run_(std::move(run)) {
    for (const Napi::Object& input : inputs) Keep(input);  // the caller's arrays stay put
    indices_slot_ = Keep(o.indices);
    scores_slot_ = Keep(o.scores);
    counts_slot_ = Keep(o.counts);
    buffers_ = TopKBuffers{o.indices.Data(), o.scores.Data(), o.counts.Data()};
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return run_(isa_, &cancel, buffers_); }

  Napi::Value Result(Napi::Env env) override {
    return MakeSearchResult(env, Kept(indices_slot_), Kept(scores_slot_), Kept(counts_slot_), k_, queries_);
  }

 private:
  int64_t queries_;
  int64_t k_;
  Isa isa_;
  Run run_;
  TopKBuffers buffers_;
  size_t indices_slot_ = 0;
  size_t scores_slot_ = 0;
  size_t counts_slot_ = 0;
};

/// Sync: runs on this thread; throws a JS error on failure.
template <class Run>
Napi::Value TopKSync(Napi::Env env, int64_t queries, int64_t k, const Run& run) {
  Isa isa = Isa::kScalar;
  Status status = active_isa(&isa);
  if (!status.ok()) ThrowStatus(env, status);
  TopKOutputs o;
  status = AllocateSearchResult(env, queries, k, &o.indices, &o.scores, &o.counts);
  if (!status.ok()) ThrowStatus(env, status);
  try {
    status = run(isa, nullptr, TopKBuffers{o.indices.Data(), o.scores.Data(), o.counts.Data()});
  } catch (const std::bad_alloc&) {
    status = Status(Code::kOutOfMemory, "out of memory");
  } catch (...) {
    status = Status(Code::kInternal, "unexpected native exception");
  }
  if (!status.ok()) ThrowStatus(env, status);
  return MakeSearchResult(env, o.indices, o.scores, o.counts, k, queries);
}

/// Async: the job goes to the addon's pool; returns its promise (rejected, never thrown, on any
/// failure here). `inputs` are the caller's arrays the run reads in place.
template <class Run>
Napi::Value TopKAsync(Napi::Env env, AddonState& state, Napi::Value token, int64_t queries, int64_t k,
                      std::initializer_list<Napi::Object> inputs, Run run) {
  std::shared_ptr<CancelFlag> cancel;
  Status status = ReadToken(token, state, &cancel);
  if (!status.ok()) return RejectedPromise(env, status);
  Isa isa = Isa::kScalar;
  status = active_isa(&isa);
  if (!status.ok()) return RejectedPromise(env, status);
  TopKOutputs o;
  status = AllocateSearchResult(env, queries, k, &o.indices, &o.scores, &o.counts);
  if (!status.ok()) return RejectedPromise(env, status);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<TopKJob<Run>>(env, std::move(cancel), inputs, o, queries, k, isa, std::move(run));
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace binding
}  // namespace vlk
