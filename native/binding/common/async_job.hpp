// Async jobs on the addon's own thread pool (binding/common). A job is built on the JS thread
// (inputs parsed into views, outputs allocated, every object it touches referenced), runs on
// vlk::global_pool() (never libuv's pool), and comes back through ONE thread-safe function per
// addon instance, which settles its promise. The thread-safe function is ref'd only while jobs are
// in flight, so it never keeps the process alive. Env teardown (a worker terminated mid-job)
// cancels the jobs, waits until none is still reading JS memory, and frees them without N-API.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "common/cancel.hpp"
#include "common/status.hpp"

namespace vlk {
namespace binding {

class JobRunner;

/// One asynchronous operation. Subclasses hold the core arguments (views into kept objects).
class AsyncJob {
 public:
  /// JS thread. Creates the promise; `cancel` may be null (the job gets a private flag).
  AsyncJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel);
  virtual ~AsyncJob() = default;
  AsyncJob(const AsyncJob&) = delete;
  AsyncJob& operator=(const AsyncJob&) = delete;

  /// Keeps `object` alive until the job completes (its backing store stays put); returns the slot
  /// for Kept(). JS thread.
  size_t Keep(Napi::Object object);

 protected:
  /// Pool thread: the work. Must not touch JS; should poll `cancel` and return kAborted.
  virtual Status Execute(const CancelFlag& cancel) = 0;
  /// JS thread: the value the promise resolves with; called only after Execute returned ok.
  virtual Napi::Value Result(Napi::Env env) = 0;
  /// An object passed to Keep(). JS thread.
  Napi::Object Kept(size_t slot) const { return kept_[slot].Value(); }

 private:
  friend class JobRunner;
  friend void CompleteOnJsThread(Napi::Env, Napi::Function, std::weak_ptr<JobRunner>*, AsyncJob*);

  void Settle(Napi::Env env);
  // Frees the job without any N-API call (the env is gone; N-API frees its references itself).
  static void Abandon(AsyncJob* job);

  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> kept_;
  std::shared_ptr<CancelFlag> cancel_;
  std::shared_ptr<JobRunner> runner_;
  Status status_;
  bool started_ = false;  // guarded by JobRunner::mu_: a pool thread took it
  bool shell_ = false;    // guarded by JobRunner::mu_: cancelled before starting, already settled
};

/// Thread-safe-function callback (JS thread; env is null while the function is being torn down).
void CompleteOnJsThread(Napi::Env env, Napi::Function, std::weak_ptr<JobRunner>* context, AsyncJob* job);

/// Per addon instance: submits jobs to the global pool and routes completions back.
class JobRunner : public std::enable_shared_from_this<JobRunner> {
 public:
  /// JS thread, once per addon instance: creates the (unref'd) thread-safe function and an env
  /// cleanup hook.
  static std::shared_ptr<JobRunner> Create(Napi::Env env);

  /// Takes the job, queues it on vlk::global_pool() and returns its promise. JS thread.
  Napi::Value Submit(Napi::Env env, std::unique_ptr<AsyncJob> job);

  /// Jobs submitted by this instance and not yet settled. JS thread.
  int64_t in_flight() const { return js_in_flight_; }

  /// After `flag` was set: rejects (kAborted) every job using it that no pool thread has taken
  /// yet, at once rather than when the pool reaches it, and releases its references. The pool
  /// later frees the empty shell. Jobs already running stop at core's next cancel check. JS thread.
  void CancelQueued(Napi::Env env, const CancelFlag* flag);

 private:
  using Tsfn = Napi::TypedThreadSafeFunction<std::weak_ptr<JobRunner>, AsyncJob, CompleteOnJsThread>;
  friend void CompleteOnJsThread(Napi::Env, Napi::Function, std::weak_ptr<JobRunner>*, AsyncJob*);

  JobRunner() = default;
  // Pool thread.
  static void Run(AsyncJob* job);
  // JS thread: one job fewer in flight; unrefs the function when none is left.
  void Done(Napi::Env env);
  // Env teardown: no more calls into the thread-safe function; cancels pending jobs and waits
  // until no job is executing (their inputs and outputs are about to be freed).
  void Shutdown();

  std::mutex mu_;
  std::condition_variable idle_;
  bool open_ = true;                        // guarded by mu_: the thread-safe function may be called
  int running_ = 0;                         // guarded by mu_: jobs inside Execute
  std::unordered_set<AsyncJob*> pending_;   // guarded by mu_: submitted, not yet handed back
  Tsfn tsfn_;
  int64_t js_in_flight_ = 0;                // JS thread only
};

}  // namespace binding
}  // namespace vlk
