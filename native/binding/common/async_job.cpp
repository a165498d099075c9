// Async job machinery (binding/common). See async_job.hpp. Lock order: JobRunner::mu_ is taken
// before N-API's own thread-safe-function lock (NonBlockingCall under mu_), never the reverse.
#include "async_job.hpp"

#include <new>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include "common/thread_pool.hpp"
#include "errors.hpp"

namespace vlk {
namespace binding {

AsyncJob::AsyncJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel)
    : deferred_(Napi::Promise::Deferred::New(env)),
      cancel_(cancel ? std::move(cancel) : std::make_shared<CancelFlag>()) {}

size_t AsyncJob::Keep(Napi::Object object) {
  kept_.push_back(Napi::Persistent(object));
  return kept_.size() - 1;
}

void AsyncJob::Settle(Napi::Env env) {
  if (!status_.ok()) {
    RejectStatus(env, deferred_, status_);
    return;
  }
  Napi::Value result;
  try {
    result = Result(env);
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
    return;
  }
  deferred_.Resolve(result);
}

void AsyncJob::Abandon(AsyncJob* job) {
  for (auto& ref : job->kept_) ref.SuppressDestruct();
  delete job;
}

void CompleteOnJsThread(Napi::Env env, Napi::Function, std::weak_ptr<JobRunner>*, AsyncJob* job) {
  if (job == nullptr) return;
  if (env == nullptr) {
    AsyncJob::Abandon(job);
    return;
  }
  std::shared_ptr<JobRunner> runner = job->runner_;
  try {
    Napi::HandleScope scope(env);
    job->Settle(env);
  } catch (...) {
    // Settling failed (the env is terminating); the promise can no longer be observed.
  }
  try {
    runner->Done(env);
  } catch (...) {
  }
  delete job;
}

namespace {

// Node dlcloses an addon when the last environment that loaded it is torn down (e.g. the only
// worker that required it exits), but the global pool's threads live on and run code from this
// library, so it must never be unmapped. Re-opening it with RTLD_NODELETE pins it for good.
void PinLibrary() {
#if defined(__unix__) || defined(__APPLE__)
  static const bool pinned = [] {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&PinLibrary), &info) == 0 || info.dli_fname == nullptr) return false;
    return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
  }();
  (void)pinned;
#endif
}

}  // namespace

std::shared_ptr<JobRunner> JobRunner::Create(Napi::Env env) {
  PinLibrary();
  std::shared_ptr<JobRunner> runner(new JobRunner());
  // The context outlives nothing: the finalizer (env teardown) closes the runner and frees it.
  auto* context = new std::weak_ptr<JobRunner>(runner);
  runner->tsfn_ = Tsfn::New(
      env, "vlkernels", 0, 1, context,
      [](Napi::Env, void*, std::weak_ptr<JobRunner>* ctx) {
        if (std::shared_ptr<JobRunner> r = ctx->lock()) r->Shutdown();
        delete ctx;
      },
      static_cast<void*>(nullptr));
  runner->tsfn_.Unref(env);
  // Registered after the thread-safe function, so it runs before N-API tears that function down
  // (cleanup hooks run in reverse order).
  std::weak_ptr<JobRunner> weak = runner;
  env.AddCleanupHook([weak]() {
    if (std::shared_ptr<JobRunner> r = weak.lock()) r->Shutdown();
  });
  return runner;
}

Napi::Value JobRunner::Submit(Napi::Env env, std::unique_ptr<AsyncJob> job) {
  AsyncJob* raw = job.get();
  Napi::Promise promise = raw->deferred_.Promise();
  raw->runner_ = shared_from_this();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.insert(raw);
  }
  if (js_in_flight_++ == 0) tsfn_.Ref(env);
  try {
    global_pool().submit([raw] { Run(raw); });
  } catch (const std::bad_alloc&) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.erase(raw);
    }
    Done(env);
    RejectStatus(env, raw->deferred_, Status(Code::kOutOfMemory, "out of memory queuing the job"));
    return promise;  // `job` frees it
  }
  job.release();  // owned by the pool task until handed back
  return promise;
}

void JobRunner::Run(AsyncJob* job) {
  // Keeps the runner alive through this call even if the job, its last owner, is freed here.
  std::shared_ptr<JobRunner> self = job->runner_;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    if (job->shell_) {
      delete job;  // cancelled while queued: settled and its references released on the JS thread
      return;
    }
    if (!self->open_) {
      self->pending_.erase(job);
      AsyncJob::Abandon(job);  // env gone before the job started: its data may be freed already
      return;
    }
    job->started_ = true;
    ++self->running_;
  }
  Status status;
  if (job->cancel_->cancelled()) {
    status = Status(Code::kAborted, "The operation was aborted");
  } else {
    try {
      status = job->Execute(*job->cancel_);
    } catch (const std::bad_alloc&) {
      status = Status(Code::kOutOfMemory, "out of memory");
    } catch (...) {
      status = Status(Code::kInternal, "unexpected native exception");
    }
  }
  job->status_ = std::move(status);
  bool handed_back = false;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    --self->running_;
    self->pending_.erase(job);
    if (self->open_) handed_back = self->tsfn_.NonBlockingCall(job) == napi_ok;
  }
  self->idle_.notify_all();
  if (!handed_back) AsyncJob::Abandon(job);
}

void JobRunner::CancelQueued(Napi::Env env, const CancelFlag* flag) {
  struct Cancelled {
    Napi::Promise::Deferred deferred;
    std::vector<Napi::ObjectReference> kept;  // released (on this thread) when `cancelled` dies
  };
  std::vector<Cancelled> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      AsyncJob* job = *it;
      if (job->cancel_.get() == flag && !job->started_) {
        job->shell_ = true;
        cancelled.push_back({job->deferred_, std::move(job->kept_)});
        job->kept_.clear();
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Cancelled& c : cancelled) {
    RejectStatus(env, c.deferred, Status(Code::kAborted, "The operation was aborted"));
    Done(env);
  }
}

void JobRunner::Done(Napi::Env env) {
  if (--js_in_flight_ == 0) tsfn_.Unref(env);
}

void JobRunner::Shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  open_ = false;
  for (AsyncJob* job : pending_) job->cancel_->cancel();
  idle_.wait(lock, [this] { return running_ == 0; });
}

}  // namespace binding
}  // namespace vlk
