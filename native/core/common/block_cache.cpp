// Process-wide cache of large memory blocks (core/common). See block_cache.hpp. Free blocks sit in
// a multimap by size class (exact match only: a service repeats the same shapes, and a looser
// match would hold more memory than it saves) and in a FIFO by release order for eviction.
#include "common/block_cache.hpp"

#include <cstdlib>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#if defined(_WIN32)
#include <malloc.h>
#endif

#include "common/checked_size.hpp"

namespace vlk {
namespace core {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kPage = size_t(4) << 10;

size_t size_class(size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }

size_t default_limit() {
  const char* env = std::getenv("VLK_CACHE_MB");
  if (env != nullptr && *env != '\0') {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (end != nullptr && *end == '\0') return static_cast<size_t>(mb) << 20;
  }
  return size_t(256) << 20;
}

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_by_size;
  std::deque<std::pair<void*, size_t>> order;  // release order of what free_by_size holds
  size_t cached = 0;
  size_t limit = default_limit();
  uint64_t hits = 0, misses = 0;

  // Removes p (class bytes) from free_by_size; the caller holds mu.
  void erase_from_map(void* p, size_t bytes) {
    auto range = free_by_size.equal_range(bytes);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == p) {
        free_by_size.erase(it);
        return;
      }
    }
  }

  // Frees the oldest blocks until cached <= bound; collects them for freeing outside the lock.
  void evict_to(size_t bound, std::deque<std::pair<void*, size_t>>* out) {
    while (cached > bound && !order.empty()) {
      auto [p, bytes] = order.front();
      order.pop_front();
      erase_from_map(p, bytes);
      cached -= bytes;
      out->emplace_back(p, bytes);
    }
  }
};

// Never destroyed: an ArrayBuffer finalizer may return a block during process teardown.
Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

// (Transparent huge pages for big blocks were tried: with the usual defrag=madvise setting the
// first touch can stall in compaction, 10-15 ms spikes on a 10 ms call, so plain pages it is.)
void* raw_alloc(size_t bytes) {
  const size_t len = (bytes + kAlign - 1) / kAlign * kAlign;
#if defined(_WIN32)
  return _aligned_malloc(len, kAlign);
#else
  return std::aligned_alloc(kAlign, len);
#endif
}

void raw_free(void* p, size_t bytes) {
  (void)bytes;
#if defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

}  // namespace

void* block_acquire(size_t bytes, bool* recycled) {
  if (recycled != nullptr) *recycled = false;
  if (bytes == 0) bytes = 1;
  // More than the machine holds can never be served (and rounding it up to a size class could
  // wrap around): refuse before asking the OS, which may overcommit and kill the process later.
  if (bytes > memory_ceiling_bytes() || bytes > SIZE_MAX / 2) return nullptr;
  if (bytes < kMinBlockBytes) return raw_alloc(bytes);
  const size_t cls = size_class(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_by_size.find(cls);
    if (it != c.free_by_size.end()) {
      void* p = it->second;
      c.free_by_size.erase(it);
      for (auto o = c.order.begin(); o != c.order.end(); ++o) {
        if (o->first == p) {
          c.order.erase(o);
          break;
        }
      }
      c.cached -= cls;
      ++c.hits;
      if (recycled != nullptr) *recycled = true;
      return p;
    }
    ++c.misses;
  }
  return raw_alloc(cls);
}

void block_release(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes == 0) bytes = 1;
  if (bytes < kMinBlockBytes) {
    raw_free(p, bytes);
    return;
  }
  const size_t cls = size_class(bytes);
  Cache& c = cache();
  std::deque<std::pair<void*, size_t>> drop;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (cls > c.limit) {
      drop.emplace_back(p, cls);
    } else {
      c.evict_to(c.limit - cls, &drop);
      c.free_by_size.emplace(cls, p);
      c.order.emplace_back(p, cls);
      c.cached += cls;
    }
  }
  for (const auto& q : drop) raw_free(q.first, q.second);
}

size_t block_cache_trim() {
  Cache& c = cache();
  std::deque<std::pair<void*, size_t>> drop;
  size_t freed = 0;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    freed = c.cached;
    c.evict_to(0, &drop);
  }
  for (const auto& q : drop) raw_free(q.first, q.second);
  return freed;
}

void block_cache_set_limit(size_t bytes) {
  Cache& c = cache();
  std::deque<std::pair<void*, size_t>> drop;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.limit = bytes;
    c.evict_to(bytes, &drop);
  }
  for (const auto& q : drop) raw_free(q.first, q.second);
}

BlockCacheStats block_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  BlockCacheStats s;
  s.cached_bytes = c.cached;
  s.limit_bytes = c.limit;
  s.hits = c.hits;
  s.misses = c.misses;
  return s;
}

}  // namespace core
}  // namespace vlk
