// The shared tail of the binding's operations that return Q x k { indices, scores, counts }
// (search, rerank): resolve the ISA, allocate the V8-owned outputs on the JS thread, then run on
// this thread (sync) or hand a job to the addon's pool (async). Each operation supplies only its
// parsing and the core call.
#pragma once

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

/// Sync: run(isa, outputs) -> Status on this thread; throws a JS error on failure.
template <class Run>
Napi::Value TopKSync(Napi::Env env, int64_t queries, int64_t k, Run run) {
  Isa isa = Isa::kScalar;
  Status status = active_isa(&isa);
  if (!status.ok()) ThrowStatus(env, status);
  TopKOutputs o;
  status = AllocateSearchResult(env, queries, k, &o.indices, &o.scores, &o.counts);
  if (!status.ok()) ThrowStatus(env, status);
  try {
    status = run(isa, o);
  } catch (const std::bad_alloc&) {
    status = Status(Code::kOutOfMemory, "out of memory");
  } catch (...) {
    status = Status(Code::kInternal, "unexpected native exception");
  }
  if (!status.ok()) ThrowStatus(env, status);
  return MakeSearchResult(env, o.indices, o.scores, o.counts, k, queries);
}

/// Async: make_job(cancel, isa, outputs) -> std::unique_ptr<AsyncJob> is submitted to the pool;
/// returns its promise (rejected, never thrown, on any failure here).
template <class MakeJob>
Napi::Value TopKAsync(Napi::Env env, AddonState& state, Napi::Value token, int64_t queries, int64_t k,
                      MakeJob make_job) {
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
    job = make_job(std::move(cancel), isa, o);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace binding
}  // namespace vlk
