// safetensors entry points (binding): read a file or a buffer into typed arrays (the natural
// TypedArray of each dtype, or Float32Array on request), encode tensors into a Buffer, write them
// to a file atomically; sync, and async on the addon's pool through AsyncJob.
//
// An async read is two jobs: the first reads and validates on the pool, then on the JS thread its
// result allocates every output array (V8 memory: the addon never hands out external buffers) and
// submits the second, which copies or converts into them on the pool; the first job's promise
// resolves with the second's. The event loop thus only allocates.
#include "safetensors.hpp"

#include <algorithm>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/args.hpp"
#include "common/async_job.hpp"
#include "common/cancel_token.hpp"
#include "common/errors.hpp"
#include "io/json.hpp"
#include "io/safetensors.hpp"

namespace vlk {
namespace binding {

namespace {

using core::DType;

constexpr int64_t kCopyChunk = int64_t(4) << 20;  // bytes per copy step between cancel checks

// The TypedArray a dtype's values come back in, and the one a writer takes.
napi_typedarray_type NaturalArray(DType d) {
  switch (d) {
    case DType::kF32:
    case DType::kC64: return napi_float32_array;
    case DType::kF64: return napi_float64_array;
    case DType::kI32: return napi_int32_array;
    case DType::kU32: return napi_uint32_array;
    case DType::kI64: return napi_bigint64_array;
    case DType::kU64: return napi_biguint64_array;
    case DType::kI16: return napi_int16_array;
    case DType::kU16:
    case DType::kF16:
    case DType::kBF16: return napi_uint16_array;
    case DType::kI8: return napi_int8_array;
    default: return napi_uint8_array;  // U8, BOOL, F8_*, and the packed sub-byte F4, F6_*
  }
}

int64_t ElementSize(napi_typedarray_type t) {
  switch (t) {
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array: return 8;
    default: return 1;
  }
}

const char* ArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "typed array";
  }
}

std::string Quoted(const std::string& s) {
  std::string out;
  core::json_append_quoted(&out, s.size() > 200 ? s.substr(0, 200) + "..." : s);
  return out;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Status ReadPathArg(Napi::Value v, std::string* out) {
  if (!v.IsString()) return Status(Code::kType, "path: expected a string, got " + Describe(v));
  *out = v.As<Napi::String>().Utf8Value();
  if (out->empty()) return Status(Code::kInvalidArg, "path: empty");
  if (out->find('\0') != std::string::npos) return Status(Code::kInvalidArg, "path: contains a NUL character");
  return Status::Ok();
}

// source: a path or a Uint8Array (Buffer).
Status ReadSource(Napi::Value v, std::string* path, Napi::Uint8Array* bytes, bool* from_buffer) {
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    *bytes = v.As<Napi::Uint8Array>();
    *from_buffer = true;
    return Status::Ok();
  }
  if (!v.IsString()) {
    return Status(Code::kType, "source: expected a file path (string) or a Buffer/Uint8Array, got " + Describe(v));
  }
  *from_buffer = false;
  return ReadPathArg(v, path);
}

// ---- reading: output arrays --------------------------------------------------------------------

struct OutArray {
  size_t tensor = 0;
  bool to_f32 = false;
  napi_typedarray_type type = napi_uint8_array;
  int64_t length = 0;  // elements of the typed array
  int64_t bytes = 0;
  uint8_t* dst = nullptr;  // set on the JS thread (V8 memory, kept alive by the result object)
};

// What each tensor becomes; pure (any thread). Errors: kType (float32 requested for a dtype that
// does not convert), kShape (a dimension a JS number cannot hold exactly).
Status PlanOutputs(const core::SafetensorsFile& f, bool to_f32, std::vector<OutArray>* out) {
  std::vector<OutArray> plan(f.tensors.size());
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const core::TensorInfo& t = f.tensors[i];
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] > kMaxSafeInteger) {
        return Status(Code::kShape, "tensor " + Quoted(t.name) + ": shape[" + std::to_string(d) + "] = " +
                                        std::to_string(t.shape[d]) + " is above 2^53 - 1 (not exact as a JS number)");
      }
    }
    OutArray& o = plan[i];
    o.tensor = i;
    if (to_f32) {
      if (!core::dtype_converts_to_f32(t.dtype)) {
        return Status(Code::kType, "tensor " + Quoted(t.name) + ": dtype " + core::dtype_name(t.dtype) +
                                       " does not convert to float32 (only F32, F64, F16 and BF16 do); read without "
                                       "{ dtype: 'float32' } to get its values as stored");
      }
      o.to_f32 = true;
      o.type = napi_float32_array;
      o.length = t.elements();
      o.bytes = o.length * 4;
    } else {
      o.type = NaturalArray(t.dtype);
      o.bytes = t.bytes;
      o.length = t.bytes / ElementSize(o.type);
    }
  }
  *out = std::move(plan);
  return Status::Ok();
}

// JS thread: allocates every output array and builds the result object.
Status AllocateOutputs(Napi::Env env, const core::SafetensorsFile& f, std::vector<OutArray>* plan,
                       Napi::Object* result) {
  try {
    Napi::Array names = Napi::Array::New(env, f.tensors.size());
    Napi::Array dtypes = Napi::Array::New(env, f.tensors.size());
    Napi::Array shapes = Napi::Array::New(env, f.tensors.size());
    Napi::Array arrays = Napi::Array::New(env, f.tensors.size());
    for (size_t i = 0; i < plan->size(); ++i) {
      OutArray& o = (*plan)[i];
      const core::TensorInfo& t = f.tensors[o.tensor];
      Napi::ArrayBuffer buffer;
      try {
        buffer = Napi::ArrayBuffer::New(env, size_t(o.bytes));
      } catch (const Napi::Error&) {
        return Status(Code::kOutOfMemory, "tensor " + Quoted(t.name) + ": cannot allocate " + std::to_string(o.bytes) +
                                              " bytes for its " + ArrayName(o.type));
      }
      napi_value array = nullptr;
      if (napi_create_typedarray(env, o.type, size_t(o.length), buffer, 0, &array) != napi_ok) {
        // A pending exception (e.g. "Invalid typed array length") is dropped: the status says it.
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
        return Status(Code::kOutOfMemory, "tensor " + Quoted(t.name) + ": cannot create a " + ArrayName(o.type) +
                                              " of " + std::to_string(o.length) + " elements");
      }
      o.dst = static_cast<uint8_t*>(buffer.Data());
      names.Set(uint32_t(i), Napi::String::New(env, t.name));
      dtypes.Set(uint32_t(i), Napi::String::New(env, o.to_f32 ? "F32" : core::dtype_name(t.dtype)));
      Napi::Array shape = Napi::Array::New(env, t.shape.size());
      for (size_t d = 0; d < t.shape.size(); ++d) shape.Set(uint32_t(d), Napi::Number::New(env, double(t.shape[d])));
      shapes.Set(uint32_t(i), shape);
      arrays.Set(uint32_t(i), Napi::Value(env, array));
    }
    Napi::Array metadata = Napi::Array::New(env, 2 * f.metadata.size());
    for (size_t i = 0; i < f.metadata.size(); ++i) {
      metadata.Set(uint32_t(2 * i), Napi::String::New(env, f.metadata[i].first));
      metadata.Set(uint32_t(2 * i + 1), Napi::String::New(env, f.metadata[i].second));
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("names", names);
    r.Set("dtypes", dtypes);
    r.Set("shapes", shapes);
    r.Set("arrays", arrays);
    r.Set("metadata", metadata);
    *result = r;
    return Status::Ok();
  } catch (const Napi::Error& e) {
    return Status(Code::kOutOfMemory, std::string("cannot build the result: ") + e.Message());
  }
}

// Any thread: the tensors' bytes into the output arrays (host order, or float32).
Status FillOutputs(const core::SafetensorsFile& f, const std::vector<OutArray>& plan, const CancelFlag* cancel) {
  for (const OutArray& o : plan) {
    const core::TensorInfo& t = f.tensors[o.tensor];
    const uint8_t* src = f.tensor_data(t);
    if (o.to_f32) {
      const int64_t in_size = core::dtype_bits(t.dtype) / 8;
      const int64_t step = kCopyChunk / 8;  // elements
      for (int64_t e = 0; e < o.length; e += step) {
        if (cancel != nullptr && cancel->cancelled()) return Status(Code::kAborted, "The operation was aborted");
        const int64_t n = std::min(step, o.length - e);
        VLK_RETURN_IF_ERROR(core::convert_to_f32(t.dtype, src + e * in_size, n, reinterpret_cast<float*>(o.dst) + e));
      }
    } else {
      for (int64_t b = 0; b < o.bytes; b += kCopyChunk) {
        if (cancel != nullptr && cancel->cancelled()) return Status(Code::kAborted, "The operation was aborted");
        core::copy_to_host(t.dtype, src + b, std::min(kCopyChunk, o.bytes - b), o.dst + b);
      }
    }
  }
  return Status::Ok();
}

Status ReadCore(const std::string& path, const uint8_t* data, int64_t len, bool from_buffer, const CancelFlag* cancel,
                core::SafetensorsFile* f) {
  if (from_buffer) return core::parse_safetensors(data, len, f);
  core::SafetensorsReadOptions o;
  o.cancel = cancel;
  return core::read_safetensors_file(path, f, o);
}

// Second async step: copy/convert into the arrays allocated on the JS thread.
class ReadFillJob final : public AsyncJob {
 public:
  ReadFillJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, std::shared_ptr<core::SafetensorsFile> file,
              std::vector<OutArray> plan, Napi::Object result, Napi::Object source)
      : AsyncJob(env, std::move(cancel)), file_(std::move(file)), plan_(std::move(plan)) {
    result_slot_ = Keep(result);
    if (!source.IsEmpty()) Keep(source);  // the caller's buffer that `file_` points into
  }

 protected:
  Status Execute(const CancelFlag& cancel) override { return FillOutputs(*file_, plan_, &cancel); }
  Napi::Value Result(Napi::Env) override { return Kept(result_slot_); }

 private:
  std::shared_ptr<core::SafetensorsFile> file_;
  std::vector<OutArray> plan_;
  size_t result_slot_ = 0;
};

// First async step: read (or parse the kept buffer) and validate.
class ReadParseJob final : public AsyncJob {
 public:
  ReadParseJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, AddonState& state, bool to_f32)
      : AsyncJob(env, cancel), cancel_(std::move(cancel)), state_(state), to_f32_(to_f32),
        file_(std::make_shared<core::SafetensorsFile>()) {}
  void SetPath(std::string path) { path_ = std::move(path); }
  void SetBuffer(Napi::Uint8Array bytes) {
    source_slot_ = Keep(bytes);
    from_buffer_ = true;
    data_ = bytes.Data();
    len_ = static_cast<int64_t>(bytes.ByteLength());
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    VLK_RETURN_IF_ERROR(ReadCore(path_, data_, len_, from_buffer_, &cancel, file_.get()));
    return PlanOutputs(*file_, to_f32_, &plan_);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result;
    const Status st = AllocateOutputs(env, *file_, &plan_, &result);
    if (!st.ok()) return RejectedPromise(env, st);
    std::unique_ptr<AsyncJob> fill;
    try {
      fill = std::make_unique<ReadFillJob>(env, cancel_, std::move(file_), std::move(plan_), result,
                                           from_buffer_ ? Kept(source_slot_) : Napi::Object());
    } catch (const std::bad_alloc&) {
      return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
    }
    return state_.runner->Submit(env, std::move(fill));
  }

 private:
  std::shared_ptr<CancelFlag> cancel_;
  AddonState& state_;
  bool to_f32_ = false;
  std::string path_;
  bool from_buffer_ = false;
  size_t source_slot_ = 0;
  const uint8_t* data_ = nullptr;
  int64_t len_ = 0;
  std::shared_ptr<core::SafetensorsFile> file_;
  std::vector<OutArray> plan_;
};

Napi::Value Read(const Napi::CallbackInfo& info, AddonState& state, bool async) {
  Napi::Env env = info.Env();
  std::string path;
  Napi::Uint8Array bytes;
  bool from_buffer = false;
  Status st = ReadSource(info[0], &path, &bytes, &from_buffer);
  bool to_f32 = false;
  if (st.ok()) st = ReadFlag(info[1], "toFloat32", false, &to_f32);
  if (!async) {
    if (!st.ok()) ThrowStatus(env, st);
    core::SafetensorsFile f;
    st = ReadCore(path, from_buffer ? bytes.Data() : nullptr, from_buffer ? int64_t(bytes.ByteLength()) : 0,
                  from_buffer, nullptr, &f);
    std::vector<OutArray> plan;
    if (st.ok()) st = PlanOutputs(f, to_f32, &plan);
    Napi::Object result;
    if (st.ok()) st = AllocateOutputs(env, f, &plan, &result);
    if (st.ok()) st = FillOutputs(f, plan, nullptr);
    if (!st.ok()) ThrowStatus(env, st);
    return result;
  }
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[2], state, &cancel);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<ReadParseJob> job;
  try {
    job = std::make_unique<ReadParseJob>(env, std::move(cancel), state, to_f32);
    if (from_buffer) {
      job->SetBuffer(bytes);
    } else {
      job->SetPath(std::move(path));
    }
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

// ---- writing: inputs ---------------------------------------------------------------------------

struct WriteInputs {
  std::vector<core::TensorInput> tensors;
  core::SafetensorsMetadata metadata;
  std::vector<Napi::Object> arrays;  // the typed arrays, for an async job to keep
};

// tensors: [{ name, dtype, shape, data }], each checked as lib checks it (same codes).
Status ReadTensors(Napi::Value list, WriteInputs* out) {
  if (!list.IsArray()) return Status(Code::kType, "tensors: expected an array, got " + Describe(list));
  Napi::Array a = list.As<Napi::Array>();
  const uint32_t n = a.Length();
  out->tensors.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Value entry = a.Get(i);
    if (!IsObject(entry)) return Status(Code::kType, "tensors[" + std::to_string(i) + "]: expected an object");
    Napi::Object e = entry.As<Napi::Object>();
    Napi::Value name = e.Get("name");
    if (!name.IsString()) return Status(Code::kType, "tensors[" + std::to_string(i) + "].name: expected a string");
    core::TensorInput t;
    t.name = name.As<Napi::String>().Utf8Value();
    const std::string label = "tensors[" + Quoted(t.name) + "]";
    Napi::Value dtype = e.Get("dtype");
    if (!dtype.IsString()) return Status(Code::kInvalidArg, label + ".dtype: expected a dtype name, got " + Describe(dtype));
    const std::string dname = dtype.As<Napi::String>().Utf8Value();
    if (!core::dtype_from_name(dname, &t.dtype)) {
      return Status(Code::kInvalidArg, label + ".dtype: unknown dtype " + Quoted(dname));
    }
    Napi::Value shape = e.Get("shape");
    if (!shape.IsArray()) return Status(Code::kShape, label + ".shape: expected an array of sizes, got " + Describe(shape));
    Napi::Array sa = shape.As<Napi::Array>();
    if (sa.Length() > uint32_t(core::safetensors_format::kMaxRank)) {
      return Status(Code::kShape, label + ".shape: more than " + std::to_string(core::safetensors_format::kMaxRank) +
                                      " dimensions");
    }
    for (uint32_t d = 0; d < sa.Length(); ++d) {
      int64_t size = 0;
      VLK_RETURN_IF_ERROR(ReadSize(sa.Get(d), label + ".shape[" + std::to_string(d) + "]", &size));
      t.shape.push_back(size);
    }
    Napi::Value data = e.Get("data");
    const napi_typedarray_type want = NaturalArray(t.dtype);
    if (!data.IsTypedArray()) {
      return Status(Code::kType, label + ".data: expected a " + ArrayName(want) + ", got " + Describe(data));
    }
    napi_typedarray_type type;
    size_t length = 0;
    void* ptr = nullptr;
    if (napi_get_typedarray_info(data.Env(), data, &type, &length, &ptr, nullptr, nullptr) != napi_ok) {
      return Status(Code::kType, label + ".data: not a readable typed array");
    }
    if (type != want && !(want == napi_uint8_array && type == napi_uint8_clamped_array)) {
      return Status(Code::kType, label + ".data: dtype " + dname + " is written from a " + ArrayName(want) + ", got a " +
                                     ArrayName(type));
    }
    int64_t bytes = 0;
    std::string why;
    if (!core::tensor_byte_size(t.dtype, t.shape, &bytes, &why)) {
      return Status(Code::kShape, label + ": dtype " + dname + ", shape " + ShapeText(t.shape) + ": " + why);
    }
    const int64_t expected = bytes / ElementSize(want);
    if (int64_t(length) != expected) {
      return Status(Code::kShape, label + ": data has " + std::to_string(length) + " elements, but shape " +
                                      ShapeText(t.shape) + " of " + dname + " needs " + std::to_string(expected));
    }
    t.data = ptr;
    t.bytes = bytes;
    out->tensors.push_back(std::move(t));
    out->arrays.push_back(data.As<Napi::Object>());
  }
  return Status::Ok();
}

// metadata: [key, value, key, value, ...], all strings.
Status ReadMetadata(Napi::Value v, core::SafetensorsMetadata* out) {
  if (v.IsUndefined() || v.IsNull()) return Status::Ok();
  if (!v.IsArray()) return Status(Code::kType, "metadata: expected an array of strings, got " + Describe(v));
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() % 2 != 0) return Status(Code::kType, "metadata: expected (key, value) pairs");
  for (uint32_t i = 0; i < a.Length(); i += 2) {
    Napi::Value k = a.Get(i), val = a.Get(i + 1);
    if (!k.IsString() || !val.IsString()) {
      return Status(Code::kType, "metadata[" + std::to_string(i / 2) + "]: expected a string key and value");
    }
    out->emplace_back(k.As<Napi::String>().Utf8Value(), val.As<Napi::String>().Utf8Value());
  }
  return Status::Ok();
}

class WriteJob final : public AsyncJob {
 public:
  WriteJob(Napi::Env env, std::shared_ptr<CancelFlag> cancel, std::string path, WriteInputs inputs)
      : AsyncJob(env, std::move(cancel)), path_(std::move(path)), inputs_(std::move(inputs)) {
    for (Napi::Object& a : inputs_.arrays) Keep(a);
    inputs_.arrays.clear();
  }

 protected:
  Status Execute(const CancelFlag& cancel) override {
    return core::write_safetensors_file(path_, inputs_.tensors, inputs_.metadata, &cancel);
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::string path_;
  WriteInputs inputs_;
};

}  // namespace

Napi::Value ReadSafetensorsSync(const Napi::CallbackInfo& info, AddonState& state) { return Read(info, state, false); }
Napi::Value ReadSafetensorsAsync(const Napi::CallbackInfo& info, AddonState& state) { return Read(info, state, true); }

Napi::Value WriteSafetensorsSync(const Napi::CallbackInfo& info, AddonState&) {
  Napi::Env env = info.Env();
  std::string path;
  WriteInputs in;
  Status st = ReadPathArg(info[0], &path);
  if (st.ok()) st = ReadTensors(info[1], &in);
  if (st.ok()) st = ReadMetadata(info[2], &in.metadata);
  if (st.ok()) st = core::write_safetensors_file(path, in.tensors, in.metadata);
  if (!st.ok()) ThrowStatus(env, st);
  return env.Undefined();
}

Napi::Value WriteSafetensorsAsync(const Napi::CallbackInfo& info, AddonState& state) {
  Napi::Env env = info.Env();
  std::string path;
  WriteInputs in;
  Status st = ReadPathArg(info[0], &path);
  if (st.ok()) st = ReadTensors(info[1], &in);
  if (st.ok()) st = ReadMetadata(info[2], &in.metadata);
  // Input errors reject before any work is queued (the plan is repeated on the pool).
  core::SafetensorsPlan plan;
  if (st.ok()) st = core::plan_safetensors(in.tensors, in.metadata, &plan);
  std::shared_ptr<CancelFlag> cancel;
  if (st.ok()) st = ReadToken(info[3], state, &cancel);
  if (!st.ok()) return RejectedPromise(env, st);
  std::unique_ptr<AsyncJob> job;
  try {
    job = std::make_unique<WriteJob>(env, std::move(cancel), std::move(path), std::move(in));
  } catch (const std::bad_alloc&) {
    return RejectedPromise(env, Status(Code::kOutOfMemory, "out of memory creating the job"));
  }
  return state.runner->Submit(env, std::move(job));
}

Napi::Value EncodeSafetensorsSync(const Napi::CallbackInfo& info, AddonState&) {
  Napi::Env env = info.Env();
  WriteInputs in;
  Status st = ReadTensors(info[0], &in);
  if (st.ok()) st = ReadMetadata(info[1], &in.metadata);
  core::SafetensorsPlan plan;
  if (st.ok()) st = core::plan_safetensors(in.tensors, in.metadata, &plan);
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Buffer<uint8_t> out;
  try {
    out = Napi::Buffer<uint8_t>::New(env, size_t(plan.total_bytes));
  } catch (const Napi::Error&) {
    ThrowStatus(env, Status(Code::kOutOfMemory, "encodeSafetensors: cannot allocate " +
                                                    std::to_string(plan.total_bytes) + " bytes"));
  }
  st = core::encode_safetensors_into(in.tensors, plan, out.Data(), int64_t(out.Length()));
  if (!st.ok()) ThrowStatus(env, st);
  return out;
}

}  // namespace binding
}  // namespace vlk
