// FlatIndex entry points of the binding (binding): a Napi::ObjectWrap owning a core::FlatIndex by
// std::shared_ptr (an async search holds its own copy, so close() or GC mid-search is safe), its
// native bytes reported to V8 (AdjustExternalMemory), add/remove/has/get on the JS thread (core's
// mutex, briefly), search on the JS thread (sync) or the addon's pool (async). ids: int64 in core,
// a Float64Array (exact integers 0..2^53-1) or, once the index was given BigInt64Array ids, a
// BigInt64Array in JS.
// Device 'cuda' (f32 storage): the index stays a core::FlatIndex (core is CUDA-free) plus a
// CudaResidency, a mirror of its live rows resident on the GPU (cuda::DeviceGallery), rebuilt by
// the first search after a change (core's version()); searches run on the mirror.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "common/addon_state.hpp"
#include "index/flat_index.hpp"

namespace vlk {
namespace binding {

/// A 'cuda' index's GPU mirror and the lock that serializes its rebuilds (flat_index.cpp).
class CudaResidency;

class FlatIndexWrap : public Napi::ObjectWrap<FlatIndexWrap> {
 public:
  /// The class constructor for this addon instance (kept in its state; created only through
  /// createFlatIndex, which passes the state as an External).
  static Napi::Function Define(Napi::Env env);

  /// new (dim, metric, storage, approximate, External<AddonState>, device). Throws kInvalidArg (dim
  /// not an integer in 1..2^31 - 1, unknown metric, storage or device, device 'cuda' without f32
  /// storage, no state), kNoDevice (device 'cuda' with CUDA unusable, naming the reason). JS thread.
  explicit FlatIndexWrap(const Napi::CallbackInfo& info);

  /// A wrap around an index built in core (load / fromBuffer): results are BigInt64Array when an
  /// id is beyond 2^53 - 1. JS thread.
  static Napi::Value Adopt(Napi::Env env, AddonState& state, std::shared_ptr<core::FlatIndex> index);

  /// GC finalizer: gives the reported bytes back to V8; the shared_ptr frees the index (or an
  /// in-flight search frees it when it ends).
  void Finalize(Napi::BasicEnv env) override;

 private:
  /// add(vectors, ids?) -> firstId (a number, or a bigint once BigInt64Array ids were given) when
  /// ids is undefined, else undefined. vectors: n x dim (Float32Array or { data, rows, cols });
  /// ids: Float64Array (integers 0..2^53-1) or BigInt64Array (>= 0), n entries. All or nothing.
  Napi::Value Add(const Napi::CallbackInfo& info);
  /// remove(ids: Float64Array | BigInt64Array) -> how many removed (all, or throws and removes none).
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value Compact(const Napi::CallbackInfo& info);
  /// has(id: number | bigint) -> boolean.
  Napi::Value Has(const Napi::CallbackInfo& info);
  /// get(id: number | bigint) -> Float32Array(dim), a copy; kInvalidArg if unknown.
  Napi::Value Get(const Napi::CallbackInfo& info);
  /// size() -> live vectors; memoryUsage() -> bytes held (core memory_usage()).
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value MemoryUsage(const Napi::CallbackInfo& info);
  /// searchSync(queries, { k, threads?, filter?, precision? }) -> { ids, scores, counts, k, count }
  /// (count x k). precision 'bf16': only on a 'cuda' index.
  Napi::Value SearchSync(const Napi::CallbackInfo& info);
  /// searchAsync(queries, { k, threads?, filter?, precision? }, token?) -> Promise of the same result.
  Napi::Value SearchAsync(const Napi::CallbackInfo& info);
  Napi::Value ComposedSearchAsync(const Napi::CallbackInfo& info);
  /// describe() -> { dim, metric, storage, approximate, device } (device: 'cpu' | 'cuda', resolved).
  Napi::Value Options(const Napi::CallbackInfo& info);
  /// setDevice(device: 'cpu' | 'cuda' | 'auto' | undefined) -> the resolved device ('cpu' | 'cuda'):
  /// where searches run from now on (FlatIndex.load's options.device). Throws as the constructor.
  Napi::Value SetDevice(const Napi::CallbackInfo& info);
  /// saveSync(path); saveAsync(path, progress?: Float64Array(2), token?) -> Promise<undefined>.
  /// toBufferSync() -> Buffer; toBufferAsync(progress?, token?) -> Promise<Buffer>. (index_file.cpp)
  Napi::Value SaveSync(const Napi::CallbackInfo& info);
  Napi::Value SaveAsync(const Napi::CallbackInfo& info);
  Napi::Value ToBufferSync(const Napi::CallbackInfo& info);
  Napi::Value ToBufferAsync(const Napi::CallbackInfo& info);
  Napi::Value ToBuffer(const Napi::CallbackInfo& info, bool async);
  /// close(): frees the index now (an in-flight search keeps its own reference); idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info);

  // The index (a reference of the call's own, so a user getter that closes the index mid-call
  // cannot free it under the call), or throws kInvalidArg "index is closed". JS thread.
  std::shared_ptr<core::FlatIndex> Live(Napi::Env env) const;
  // Reports memory_usage() - reported_bytes_ to V8. JS thread.
  void SyncExternalMemory(Napi::Env env);

  std::shared_ptr<core::FlatIndex> index_;  // null once closed
  std::shared_ptr<CudaResidency> cuda_;     // device 'cuda': the GPU mirror; null: 'cpu'
  AddonState* state_ = nullptr;             // the addon instance's state (outlives every call)
  int64_t dim_ = 0;
  // Ever given BigInt64Array ids: results are BigInt64Array. Shared with async searches, which read
  // it when their search ends (so it covers every id of their snapshot).
  std::shared_ptr<std::atomic<bool>> bigint_ids_;
  int64_t next_auto_id_ = 0;                // mirrors core's next automatic id (only this object adds)
  int64_t reported_bytes_ = 0;              // bytes reported to V8 through AdjustExternalMemory
};

/// createFlatIndex(dim, metric, storage?, approximate?, device?) -> a FlatIndexWrap of this addon
/// instance. Throws as its constructor.
Napi::Value CreateFlatIndex(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
