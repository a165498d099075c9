// Process-wide cache of large memory blocks (core/common). A kernel's big scratch buffers and the
// addon's big outputs come from here and go back here, so a service that calls the same operation
// again and again reuses pages that are already mapped instead of faulting fresh ones in on every
// call (malloc returns large freed blocks to the OS; a 512-node attention backward faulted about
// 22 MB, some 10 ms, per call that way). Blocks are 64-byte aligned and matched by exact size
// class (4 KiB multiples); what is cached is bounded (default 256 MiB, VLK_CACHE_MB overrides,
// 0 disables) and the oldest blocks are freed first when a release would pass the bound.
// Thread-safe. Small requests (< kMinBlockBytes) are plain allocations, never cached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace vlk {
namespace core {

struct BlockCacheStats {
  size_t cached_bytes = 0;  // held for reuse, not in use
  size_t limit_bytes = 0;
  uint64_t hits = 0;        // acquires served from the cache
  uint64_t misses = 0;      // acquires that allocated
};

/// Blocks of at least this many bytes are cached; smaller ones are plain allocations.
constexpr size_t kMinBlockBytes = size_t(64) << 10;

/// A block of >= bytes (64-byte aligned), or null when the allocation fails. *recycled (optional)
/// is set when the block comes from the cache: its contents are whatever its last user left.
void* block_acquire(size_t bytes, bool* recycled = nullptr);
/// Returns a block from block_acquire(bytes) (the same bytes); null is ignored.
void block_release(void* p, size_t bytes);
/// Frees every cached block; returns the bytes freed.
size_t block_cache_trim();
/// Sets the bound on cached bytes (frees the oldest blocks above it).
void block_cache_set_limit(size_t bytes);
BlockCacheStats block_cache_stats();

/// An uninitialised scratch array of n T from the block cache, returned on destruction.
/// Throws std::bad_alloc when the allocation fails or n * sizeof(T) overflows (the callers map it
/// to kOutOfMemory).
template <class T>
class CachedArray {
 public:
  CachedArray() = default;
  explicit CachedArray(size_t n) { reset(n); }
  ~CachedArray() { block_release(p_, n_ * sizeof(T)); }
  CachedArray(const CachedArray&) = delete;
  CachedArray& operator=(const CachedArray&) = delete;
  /// Drops the old block and takes one for n elements (uninitialised).
  void reset(size_t n) {
    block_release(p_, n_ * sizeof(T));
    p_ = nullptr;
    n_ = 0;
    if (n == 0) return;
    size_t bytes = 0;
    if (__builtin_mul_overflow(n, sizeof(T), &bytes)) throw std::bad_alloc();
    p_ = static_cast<T*>(block_acquire(bytes));
    if (p_ == nullptr) throw std::bad_alloc();
    n_ = n;
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

/// std::allocator over the block cache, for scratch vectors whose code wants std::vector's
/// interface: `ScratchVector<float> v(n)` zero-fills resident pages instead of faulting fresh ones.
template <class T>
struct BlockAllocator {
  using value_type = T;
  BlockAllocator() = default;
  template <class U>
  BlockAllocator(const BlockAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) {
    size_t bytes = 0;
    if (__builtin_mul_overflow(n, sizeof(T), &bytes)) throw std::bad_alloc();
    void* p = block_acquire(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept { block_release(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const BlockAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const BlockAllocator<U>&) const noexcept { return false; }
};

template <class T>
using ScratchVector = std::vector<T, BlockAllocator<T>>;

}  // namespace core
}  // namespace vlk
