// MemoryBank and emaUpdate entry points (binding). A bank is an External handle owning a
// shared_ptr<core::MemoryBank> (freed by the GC finalizer, or at once by memoryBankClose); a loss
// in flight holds its own reference to the contents it read (core's copy-on-write), so closing or
// enqueueing never races with it.
//   memoryBankCreate(size, dim) -> handle
//   memoryBankEnqueue(handle, keys: Float32Array (B * dim), ids?: Float64Array (B)) -> undefined
//   memoryBankSnapshot(handle) -> { data: Float32Array (count * dim, oldest first), ids: Float64Array }
//   memoryBankInfo(handle) -> { size, dim, count, bytes }
//   memoryBankClear(handle), memoryBankClose(handle)
//   emaUpdateSync(targets: Float32Array[], sources: Float32Array[], momentum, names: string[], threads?)
#pragma once

#include <napi.h>

#include <memory>

#include "common/status.hpp"
#include "memory/memory_bank.hpp"

namespace vlk {
namespace binding {

Napi::Value MemoryBankCreate(const Napi::CallbackInfo& info);
Napi::Value MemoryBankEnqueue(const Napi::CallbackInfo& info);
Napi::Value MemoryBankSnapshot(const Napi::CallbackInfo& info);
Napi::Value MemoryBankInfo(const Napi::CallbackInfo& info);
Napi::Value MemoryBankClear(const Napi::CallbackInfo& info);
Napi::Value MemoryBankClose(const Napi::CallbackInfo& info);
Napi::Value EmaUpdateSync(const Napi::CallbackInfo& info);

/// The open bank behind a handle. Errors: kType (not a bank handle), kInvalidArg (closed).
Status ReadMemoryBank(Napi::Value value, std::shared_ptr<core::MemoryBank>* out);

}  // namespace binding
}  // namespace vlk
