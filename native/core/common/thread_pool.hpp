// The addon's own worker threads (core/common). Async jobs are submitted here (never to libuv's
// pool); an operation splits its work with parallel_for, in which the calling thread takes part,
// so a job running on a worker can fan out without deadlock even when every worker is busy.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vlk {

class ThreadPool {
 public:
  /// Starts `threads` workers (>= 1).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()); }

  /// Queues a task (FIFO). Thread-safe. The task must not throw.
  void submit(std::function<void()> task);

  /// Tasks queued but not yet started.
  int64_t queue_depth() const;

  /// Runs fn(i) for every i in [0, n), on the caller plus up to width-1 workers that are idle right
  /// now (busy workers are not queued for: under load each operation runs on its own thread and
  /// operations run side by side). Returns when all calls have finished. Indices are handed out in increasing order; which thread runs which index
  /// is unspecified, so fn must write only to index-owned outputs. fn must not throw.
  void parallel_for(int64_t n, int width, const std::function<void(int64_t)>& fn);

 private:
  void worker_loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
  std::atomic<int64_t> queued_{0};   // tasks in queue_ (read without the lock while spinning)
  std::atomic<int> running_{0};      // workers inside a task
  bool stopping_ = false;
};

/// The process-wide pool every addon instance shares (created on first use, never destroyed, so no
/// exit-time join races). Size: VLK_THREADS if set to a positive integer, else the number of cores.
ThreadPool& global_pool();

}  // namespace vlk
