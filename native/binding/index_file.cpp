// FlatIndex persistence entry points (binding): save / toBuffer on an index, load / fromBuffer
// creating one, each sync and async (on the addon's pool). Core does the work
// (core/index/index_file for the format, FlatIndex::freeze / export_image / from_loaded).
// Progress: lib passes a Float64Array(2) that the job keeps and fills with (done, total) bytes as
// it goes (8-byte aligned atomic stores); lib polls it and calls onProgress on its own thread, so
// no JS runs on the pool and nothing waits for JS.
#include "index_file.hpp"

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "flat_index.hpp"
#include "index/index_file.hpp"

namespace vlk {
namespace binding {

namespace {

// (done, total) into two doubles the JS thread reads while the job runs.
void StoreProgress(void* ctx, int64_t done, int64_t total) {
  double* cells = static_cast<double*>(ctx);
  const double v[2] = {static_cast<double>(done), static_cast<double>(total)};
  uint64_t bits[2];
  std::memcpy(bits, v, sizeof bits);
  __atomic_store_n(reinterpret_cast<uint64_t*>(cells) + 1, bits[1], __ATOMIC_RELAXED);
  __atomic_store_n(reinterpret_cast<uint64_t*>(cells), bits[0], __ATOMIC_RELEASE);
}

// Optional progress cells: undefined, or a Float64Array of length 2.
Status ReadProgress(Napi::Value v, Napi::Float64Array* out) {
  if (v.IsUndefined()) return Status::Ok();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      v.As<Napi::TypedArray>().ElementLength() != 2) {
    return Status(Code::kType, "progress: expected a Float64Array(2)");
  }
  *out = v.As<Napi::Float64Array>();
  return Status::Ok();
}

Status ReadPath(Napi::Value v, std::string* out) {
  if (!v.IsString()) return Status(Code::kType, "path: expected a string, got " + Describe(v));
  *out = v.As<Napi::String>().Utf8Value();
  if (out->empty()) return Status(Code::kInvalidArg, "path: empty");
  if (out->find('\0') != std::string::npos) return Status(Code::kInvalidArg, "path: contains a NUL character");
  return Status::Ok();
}

core::IoOptions IoOf(double* cells, const CancelFlag* cancel) {
  core::IoOptions io;
  if (cells != nullptr) {
    io.progress = &StoreProgress;
    io.progress_ctx = cells;
  }
  io.cancel = cancel;
  return io;
}

Status Save(const core::FlatIndex& index, const std::shared_ptr<const core::IndexSnapshot>& snap,
            const std::string& path, const core::IoOptions& io) {
  core::IndexExport ex;
  VLK_RETURN_IF_ERROR(index.export_image(snap, &ex, io.cancel));
  return core::write_index_file(path, ex.image, io);
}

Status Encode(const core::FlatIndex& index, const std::shared_ptr<const core::IndexSnapshot>& snap, uint8_t* out,
              int64_t len, const core::IoOptions& io) {
  core::IndexExport ex;
  VLK_RETURN_IF_ERROR(index.export_image(snap, &ex, io.cancel));
  return core::encode_index(ex.image, out, len, io);
}

class SaveJob final : public AsyncJob {
 public:
  SaveJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, std::shared_ptr<core::FlatIndex> index, std::string path,
          Napi::Float64Array progress)
      : AsyncJob(env, std::move(cancel)), index_(std::move(index)), snap_(index_->freeze()), path_(std::move(path)) {
    if (!progress.IsEmpty()) {
      Keep(progress);
      cells_ = progress.Data();
    }
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return Save(*index_, snap_, path_, IoOf(cells_, &cancel)); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::shared_ptr<core::FlatIndex> index_;
  std::shared_ptr<const core::IndexSnapshot> snap_;
  std::string path_;
  double* cells_ = nullptr;
};

class EncodeJob final : public AsyncJob {
 public:
  EncodeJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, std::shared_ptr<core::FlatIndex> index,
            std::shared_ptr<const core::IndexSnapshot> snap, Napi::Buffer<uint8_t> out, Napi::Float64Array progress)
      : AsyncJob(env, std::move(cancel)), index_(std::move(index)), snap_(std::move(snap)) {
    out_slot_ = Keep(out);
    data_ = out.Data();
    len_ = static_cast<int64_t>(out.Length());
    if (!progress.IsEmpty()) {
      Keep(progress);
      cells_ = progress.Data();
    }
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    return Encode(*index_, snap_, data_, len_, IoOf(cells_, &cancel));
  }
  Napi::Value Result(Napi::Env) override { return Kept(out_slot_); }

 private:
  std::shared_ptr<core::FlatIndex> index_;
  std::shared_ptr<const core::IndexSnapshot> snap_;
  size_t out_slot_ = 0;
  uint8_t* data_ = nullptr;
  int64_t len_ = 0;
  double* cells_ = nullptr;
};

// load (path) or fromBuffer (kept bytes): read, validate, build the core index; the wrap is made
// on the JS thread.
class LoadJob final : public AsyncJob {
 public:
  LoadJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, AddonState& state, std::string path, bool mmap,
          Napi::Float64Array progress)
      : AsyncJob(env, std::move(cancel)), state_(state), path_(std::move(path)), mmap_(mmap) {
    if (!progress.IsEmpty()) {
      Keep(progress);
      cells_ = progress.Data();
    }
  }
  LoadJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, AddonState& state, Napi::Uint8Array bytes,
          Napi::Float64Array progress)
      : AsyncJob(env, std::move(cancel)), state_(state) {
    Keep(bytes);
    data_ = bytes.Data();
    len_ = static_cast<int64_t>(bytes.ByteLength());
    from_buffer_ = true;
    if (!progress.IsEmpty()) {
      Keep(progress);
      cells_ = progress.Data();
    }
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    core::LoadedIndex li;
    const core::IoOptions io = IoOf(cells_, &cancel);
    VLK_RETURN_IF_ERROR(from_buffer_ ? core::decode_index(data_, len_, &li, io)
                                     : core::read_index_file(path_, mmap_, &li, io));
    return core::FlatIndex::from_loaded(li, &index_);
  }
  Napi::Value Result(Napi::Env env) override { return FlatIndexWrap::Adopt(env, state_, std::move(index_)); }

 private:
  AddonState& state_;
  std::string path_;
  bool mmap_ = false;
  bool from_buffer_ = false;
  const uint8_t* data_ = nullptr;
  int64_t len_ = 0;
  double* cells_ = nullptr;
  std::shared_ptr<core::FlatIndex> index_;
};

Napi::Value Settle(Napi::Env env, const Status& status, bool async) {
  if (async) return RejectedPromise(env, status);
  ThrowStatus(env, status);
  return env.Undefined();
}

// Shared by the sync and async forms of load / fromBuffer: (path, mmap, progress?, token?) or
// (bytes, progress?, token?).
Napi::Value Load(const Napi::CallbackInfo& info, AddonState& state, bool from_buffer, bool async) {
  Napi::Env env = info.Env();
  std::string path;
  bool mmap = false;
  Napi::Uint8Array bytes;
  size_t next = 1;
  if (from_buffer) {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      return Settle(env, Status(Code::kType, "buffer: expected a Buffer or Uint8Array, got " + Describe(info[0])), async);
    }
    bytes = info[0].As<Napi::Uint8Array>();
  } else {
    Status st = ReadPath(info[0], &path);
    if (!st.ok()) return Settle(env, st, async);
    mmap = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    next = 2;
  }
  if (!async) {
    core::LoadedIndex li;
    std::shared_ptr<core::FlatIndex> index;
    Status st = from_buffer ? core::decode_index(bytes.Data(), static_cast<int64_t>(bytes.ByteLength()), &li, {})
                            : core::read_index_file(path, mmap, &li, {});
    if (st.ok()) st = core::FlatIndex::from_loaded(li, &index);
    if (!st.ok()) ThrowStatus(env, st);
    return FlatIndexWrap::Adopt(env, state, std::move(index));
  }
  Napi::Float64Array progress;
  Status st = ReadProgress(info[next], &progress);
  if (!st.ok()) return RejectedPromise(env, st);
  std::shared_ptr<CancelFlag> cancel;
  st = ReadToken(info[next + 1], state, &cancel);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    if (from_buffer) {
      job = std::make_unique<LoadJob>(env, std::move(cancel), state, bytes, progress);
    } else {
      job = std::make_unique<LoadJob>(env, std::move(cancel), state, std::move(path), mmap, progress);
    }
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

}  // namespace

Napi::Value FlatIndexWrap::SaveSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = Live(env);
  std::string path;
  Status st = ReadPath(info[0], &path);
  if (st.ok()) st = Save(*index, index->freeze(), path, {});
  if (!st.ok()) ThrowStatus(env, st);
  return env.Undefined();
}

Napi::Value FlatIndexWrap::SaveAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = index_;
  if (!index) return RejectedPromise(env, Status(Code::kInvalidArg, "index is closed"));
  std::string path;
  Status st = ReadPath(info[0], &path);
  Napi::Float64Array progress;
  if (st.ok()) st = ReadProgress(info[1], &progress);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[2], *state_, &cancel);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<SaveJob>(env, std::move(cancel), index, std::move(path), progress);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state_->runner->Submit(env, std::move(job));
}

// The Buffer is allocated here (V8 memory, the exact encoded size of the snapshot taken now); the
// encoding fills it, on the pool for the async form.
Napi::Value FlatIndexWrap::ToBuffer(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const std::shared_ptr<core::FlatIndex> index = async ? index_ : Live(env);
  if (!index) return RejectedPromise(env, Status(Code::kInvalidArg, "index is closed"));
  const std::shared_ptr<const core::IndexSnapshot> snap = index->freeze();
  const int64_t size = index->encoded_size(*snap);
  if (size < 0) return Settle(env, Status(Code::kInvalidArg, "toBuffer: the index is too large to encode"), async);
  Napi::Buffer<uint8_t> out;
  try {
    out = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(size));
  } catch (const Napi::Error&) {
    return Settle(env, Status(Code::kOutOfMemory, "toBuffer: cannot allocate " + std::to_string(size) + " bytes"),
                  async);
  }
  if (!async) {
    const Status st = Encode(*index, snap, out.Data(), size, {});
    if (!st.ok()) ThrowStatus(env, st);
    return out;
  }
  Napi::Float64Array progress;
  Status st = ReadProgress(info[0], &progress);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[1], *state_, &cancel);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<EncodeJob>(env, std::move(cancel), index, snap, out, progress);
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state_->runner->Submit(env, std::move(job));
}

Napi::Value FlatIndexWrap::ToBufferSync(const Napi::CallbackInfo& info) { return ToBuffer(info, false); }
Napi::Value FlatIndexWrap::ToBufferAsync(const Napi::CallbackInfo& info) { return ToBuffer(info, true); }

Napi::Value LoadFlatIndexSync(const Napi::CallbackInfo& info, AddonState& state) { return Load(info, state, false, false); }
Napi::Value LoadFlatIndexAsync(const Napi::CallbackInfo& info, AddonState& state) { return Load(info, state, false, true); }
Napi::Value FlatIndexFromBufferSync(const Napi::CallbackInfo& info, AddonState& state) {
  return Load(info, state, true, false);
}
Napi::Value FlatIndexFromBufferAsync(const Napi::CallbackInfo& info, AddonState& state) {
  return Load(info, state, true, true);
}

}  // namespace binding
}  // namespace vlk
