// ThreadPool implementation (core/common). See thread_pool.hpp.
#include "common/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace vlk {

namespace {

// Waking a sleeping thread can take milliseconds on a virtual machine (the host must reschedule a
// halted vCPU), which would dwarf a 3 ms search. So a thread that expects work soon spins for a
// short while before it sleeps, as BLAS thread pools do.
constexpr auto kWorkerSpin = std::chrono::microseconds(250);
constexpr auto kJoinSpin = std::chrono::microseconds(2000);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

template <class Pred>
bool spin_until(Pred ready, std::chrono::microseconds budget) {
  const auto end = std::chrono::steady_clock::now() + budget;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= end) return false;
    cpu_relax();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads < 1) threads = 1;
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
    queued_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_one();
}

int64_t ThreadPool::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size());
}

void ThreadPool::worker_loop() {
#if defined(__linux__)
  // Slightly below normal priority: compute must not delay the JS thread or libuv's I/O threads
  // (on Linux a nice value set through the thread id applies to that thread only).
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 2);
#endif
  for (;;) {
    spin_until([this] { return queued_.load(std::memory_order_acquire) > 0; }, kWorkerSpin);
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
      running_.fetch_add(1, std::memory_order_relaxed);
    }
    task();
    running_.fetch_sub(1, std::memory_order_release);
  }
}

namespace {

// Shared by the caller and its helpers; kept alive by shared_ptr until the last helper returns.
struct ForState {
  const std::function<void(int64_t)>* fn = nullptr;
  int64_t n = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;

  // Claims and runs indices until none are left.
  void drain() {
    int64_t finished = 0;
    for (;;) {
      const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) break;
      (*fn)(i);
      ++finished;
    }
    if (finished > 0 && done.fetch_add(finished, std::memory_order_acq_rel) + finished == n) {
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_all();
    }
  }
};

}  // namespace

void ThreadPool::parallel_for(int64_t n, int width, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (width > size() + 1) width = size() + 1;
  if (n == 1 || width <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  auto state = std::make_shared<ForState>();
  state->fn = &fn;
  state->n = n;
  // Only idle workers are recruited: under load each operation runs on its own thread.
  const int64_t idle = std::max<int64_t>(
      0, size() - running_.load(std::memory_order_relaxed) - queued_.load(std::memory_order_relaxed));
  const int64_t helpers = std::min<int64_t>({width - 1, n - 1, idle});
  // A helper that starts after every index is claimed returns at once without touching fn, so the
  // caller may return (and fn may die) while late helpers still hold the state.
  for (int64_t h = 0; h < helpers; ++h) submit([state] { state->drain(); });
  state->drain();
  if (spin_until([&] { return state->done.load(std::memory_order_acquire) == n; }, kJoinSpin)) {
    return;
  }
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done.load(std::memory_order_acquire) == n; });
}

ThreadPool& global_pool() {
  static ThreadPool* pool = [] {
    int threads = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("VLK_THREADS")) {
      const int v = std::atoi(env);
      if (v > 0) threads = v;
    }
    return new ThreadPool(threads < 1 ? 1 : threads);
  }();
  return *pool;
}

}  // namespace vlk
