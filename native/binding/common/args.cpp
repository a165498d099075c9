// Argument parsing helpers (binding/common). See args.hpp. Every check here repeats one in lib/
// (which gives the same codes first); these exist so that no value reaching the addon directly
// can make core read outside a buffer.
#include "args.hpp"

#include "alloc_limit.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/thread_pool.hpp"

namespace vlk {
namespace binding {

namespace {

const char* TypedArrayName(napi_typedarray_type type) {
  switch (type) {
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

bool IsSafeSize(double v) { return std::isfinite(v) && v >= 0 && std::floor(v) == v && v <= 9007199254740991.0; }

std::string SizeText(int64_t v) { return std::to_string(v); }

// rows x cols with overflow and 2^53 checks.
bool MulSize(int64_t a, int64_t b, int64_t* out) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r) || r > kMaxSafeInteger) return false;
  *out = r;
  return true;
}

bool IsDetached(const Napi::TypedArray& array) {
  napi_value buffer = nullptr;
  if (napi_get_typedarray_info(array.Env(), array, nullptr, nullptr, nullptr, &buffer, nullptr) != napi_ok)
    return false;
  bool detached = false;
  return napi_is_detached_arraybuffer(array.Env(), buffer, &detached) == napi_ok && detached;
}

// data: the Float32Array of a view (or the plain input); rows*cols must equal its length.
Status CheckLength(const Napi::Float32Array& data, const std::string& name, int64_t rows, int64_t cols) {
  int64_t expected = 0;
  if (!MulSize(rows, cols, &expected)) {
    return Status(Code::kShape, name + ": rows x cols = " + SizeText(rows) + " x " + SizeText(cols) +
                                    " overflows the largest safe integer");
  }
  const int64_t length = static_cast<int64_t>(data.ElementLength());
  if (length == expected) return Status::Ok();
  if (data.ByteLength() == 0 && expected > 0) {
    return Status(Code::kInvalidArg, name + ".data: byteLength is 0 (" +
                                         (IsDetached(data) ? "detached buffer" : "empty buffer") +
                                         ") but rows x cols = " + SizeText(rows) + " x " +
                                         SizeText(cols) + " = " + SizeText(expected));
  }
  return Status(Code::kShape, name + ": data length " + SizeText(length) + " is not rows x cols = " +
                                  SizeText(rows) + " x " + SizeText(cols) + " = " + SizeText(expected));
}

bool IsFloat32Array(Napi::Value v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array;
}

}  // namespace

std::string FormatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  if (value == 0) return "0";
  char buf[40];
  if (std::floor(value) == value && std::fabs(value) < 1e21) {
    std::snprintf(buf, sizeof(buf), "%.0f", value);
    return buf;
  }
  // Shortest text that reads back to the same double, as JS prints it.
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

bool IsObject(Napi::Value value) { return value.IsObject(); }

std::string Describe(Napi::Value value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return value.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: return "a number (" + FormatNumber(value.As<Napi::Number>().DoubleValue()) + ")";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_bigint: return "a bigint";
    case napi_function: return "a function";
    case napi_external: return "an external";
    case napi_object:
      if (value.IsTypedArray()) return std::string("a ") + TypedArrayName(value.As<Napi::TypedArray>().TypedArrayType());
      if (value.IsArray()) return "an Array";
      if (value.IsArrayBuffer()) return "an ArrayBuffer";
      if (value.IsDataView()) return "a DataView";
      return "an object";
  }
  return "a value";
}

Status ReadSize(Napi::Value value, const std::string& name, int64_t* out) {
  if (!value.IsNumber()) {
    return Status(Code::kShape, name + ": expected a non-negative integer, got " + Describe(value));
  }
  const double v = value.As<Napi::Number>().DoubleValue();
  if (!IsSafeSize(v)) {
    return Status(Code::kShape, name + ": " + FormatNumber(v) + " is not a non-negative integer <= 2^53 - 1");
  }
  *out = static_cast<int64_t>(v);
  return Status::Ok();
}

Status ReadFlag(Napi::Value value, const std::string& name, bool fallback, bool* out) {
  if (value.IsUndefined()) {
    *out = fallback;
    return Status::Ok();
  }
  if (!value.IsBoolean()) return Status(Code::kInvalidArg, name + ": expected a boolean, got " + Describe(value));
  *out = value.As<Napi::Boolean>().Value();
  return Status::Ok();
}

Status ReadInt32s(Napi::Value value, const std::string& name, const int32_t** data, size_t* length) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    return Status(Code::kType, name + ": expected an Int32Array, got " + Describe(value));
  }
  Napi::Int32Array a = value.As<Napi::Int32Array>();
  *length = a.ElementLength();
  // Data(), not ArrayBuffer().ByteLength(): the latter throws a code-less "Invalid argument" for
  // a SharedArrayBuffer-backed array (napi_get_arraybuffer_info takes only ArrayBuffers).
  if (*length > 0 && a.Data() == nullptr) {
    return Status(Code::kInvalidArg, name + ": the buffer is detached");
  }
  *data = *length > 0 ? a.Data() : nullptr;
  return Status::Ok();
}

Status ReadMatrix(Napi::Value value, const char* name_c, MatrixArg* out) {
  const std::string name = name_c;
  if (value.IsTypedArray()) {
    if (!IsFloat32Array(value)) {
      return Status(Code::kType, name + ": expected a Float32Array or a { data, rows, cols } view, got " +
                                     Describe(value));
    }
    out->array = value.As<Napi::Float32Array>();
    out->plain = true;
    return Status::Ok();
  }
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    return Status(Code::kType, name + ": expected a Float32Array or a { data, rows, cols } view, got " +
                                   Describe(value));
  }
  Napi::Object view = value.As<Napi::Object>();
  Napi::Value data_value = view.Get("data");
  if (!IsFloat32Array(data_value)) {
    return Status(Code::kType, name + ".data: expected a Float32Array, got " + Describe(data_value));
  }
  Napi::Float32Array data = data_value.As<Napi::Float32Array>();
  int64_t rows = 0;
  int64_t cols = 0;
  Napi::Value rows_value = view.Get("rows");
  Napi::Value cols_value = view.Get("cols");
  if (!rows_value.IsUndefined() || !cols_value.IsUndefined()) {
    VLK_RETURN_IF_ERROR(ReadSize(rows_value, name + ".rows", &rows));
    VLK_RETURN_IF_ERROR(ReadSize(cols_value, name + ".cols", &cols));
  } else {
    Napi::Value dims_value = view.Get("dims");
    if (dims_value.IsUndefined()) {
      return Status(Code::kShape, name + ": a view needs rows and cols, or dims: [rows, cols]");
    }
    if (!dims_value.IsArray()) {
      return Status(Code::kShape, name + ".dims: expected an array [rows, cols], got " + Describe(dims_value));
    }
    Napi::Array dims = dims_value.As<Napi::Array>();
    if (dims.Length() != 2) {
      return Status(Code::kShape, name + ".dims: expected [rows, cols], got " + std::to_string(dims.Length()) +
                                      " dimensions");
    }
    VLK_RETURN_IF_ERROR(ReadSize(dims.Get(uint32_t{0}), name + ".dims[0]", &rows));
    VLK_RETURN_IF_ERROR(ReadSize(dims.Get(uint32_t{1}), name + ".dims[1]", &cols));
  }
  VLK_RETURN_IF_ERROR(CheckLength(data, name, rows, cols));
  out->array = data;
  out->plain = false;
  out->view = MatrixView<const float>(data.Data(), rows, cols);
  return Status::Ok();
}

Status ShapeMatrix(const char* name_c, bool has_dim, int64_t dim, MatrixArg* arg) {
  const std::string name = name_c;
  if (!arg->plain) {
    if (has_dim && arg->view.cols != dim) {
      return Status(Code::kDimMismatch, name + ": cols " + SizeText(arg->view.cols) + " differs from options.dim " +
                                            SizeText(dim));
    }
    return Status::Ok();
  }
  const Napi::Float32Array& data = arg->array;
  if (!has_dim) return Status(Code::kInvalidArg, "options.dim: required when " + name + " is a plain Float32Array");
  if (dim == 0) return Status(Code::kEmpty, "options.dim: 0 (a row needs at least one column)");
  const int64_t length = static_cast<int64_t>(data.ElementLength());
  if (length == 0 && IsDetached(data)) {
    return Status(Code::kInvalidArg, name + ": the Float32Array's buffer is detached");
  }
  if (length % dim != 0) {
    return Status(Code::kDimMismatch, name + ": length " + SizeText(length) + " is not a multiple of dim " +
                                          SizeText(dim));
  }
  arg->view = MatrixView<const float>(data.Data(), length / dim, dim);
  return Status::Ok();
}

Status AllocateSearchResult(Napi::Env env, int64_t count, int64_t k, Napi::Int32Array* indices,
                            Napi::Float32Array* scores, Napi::Int32Array* counts) {
  int64_t total = 0;
  const std::string what = "result arrays of Q x k = " + std::to_string(count) + " x " + std::to_string(k);
  if (__builtin_mul_overflow(count, k, &total) || total > kMaxSafeInteger / 4) {
    return Status(Code::kOutOfMemory, what + " entries are too large");
  }
  // indices + scores per entry, counts per query.
  if (Status s = CheckAllocation(what, total, 8, static_cast<uint64_t>(count) * 4); !s.ok()) return s;
  try {
    *indices = Napi::Int32Array::New(env, static_cast<size_t>(total));
    *scores = Napi::Float32Array::New(env, static_cast<size_t>(total));
    *counts = Napi::Int32Array::New(env, static_cast<size_t>(count));
  } catch (const Napi::Error&) {
    return Status(Code::kOutOfMemory, "cannot allocate " + what + " entries");
  }
  return Status::Ok();
}

Napi::Object MakeSearchResult(Napi::Env env, Napi::Value indices, Napi::Value scores, Napi::Value counts,
                              int64_t k, int64_t count) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("indices", indices);
  result.Set("scores", scores);
  result.Set("counts", counts);
  result.Set("k", Napi::Number::New(env, static_cast<double>(k)));
  result.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  return result;
}

Status ReadMetric(Napi::Value value, core::Metric* out) {
  if (value.IsUndefined()) return Status::Ok();
  const std::string metric = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (!value.IsString() || !core::parse_metric(metric.c_str(), out).ok()) {
    return Status(Code::kInvalidArg, "options.metric: expected 'ip', 'cosine' or 'l2', got " +
                                         (value.IsString() ? "'" + metric + "'" : Describe(value)));
  }
  return Status::Ok();
}

Status ReadThreads(Napi::Value value, int* out) {
  constexpr double kMaxThreads = 65536;
  *out = global_pool().size();
  if (value.IsUndefined()) return Status::Ok();
  const double t = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : 0;
  if (!value.IsNumber() || !std::isfinite(t) || std::floor(t) != t || t < 1) {
    return Status(Code::kInvalidArg, "options.threads: " + (value.IsNumber() ? FormatNumber(t) : Describe(value)) +
                                         " is not an integer >= 1");
  }
  *out = static_cast<int>(t < kMaxThreads ? t : kMaxThreads);
  return Status::Ok();
}

const char* DeviceName(Device device) {
  switch (device) {
    case Device::kCpu: return "cpu";
    case Device::kCuda: return "cuda";
    case Device::kAuto: return "auto";
  }
  return "cpu";
}

Status ReadDevice(Napi::Value value, Device* out) {
  *out = Device::kCpu;
  if (value.IsUndefined()) return Status::Ok();
  const std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (name == "cpu") {
    *out = Device::kCpu;
  } else if (name == "cuda") {
    *out = Device::kCuda;
  } else if (name == "auto") {
    *out = Device::kAuto;
  } else {
    return Status(Code::kInvalidArg, "options.device: expected 'cpu', 'cuda' or 'auto', got " +
                                         (value.IsString() ? "'" + name + "'" : Describe(value)));
  }
  return Status::Ok();
}

Status ReadPrecision(Napi::Value value, Device device, cuda::Precision* out) {
  *out = cuda::Precision::kExact;
  if (value.IsUndefined()) return Status::Ok();
  const std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (name == "exact") return Status::Ok();
  if (name != "bf16") {
    return Status(Code::kInvalidArg, "options.precision: expected 'exact' or 'bf16', got " +
                                         (value.IsString() ? "'" + name + "'" : Describe(value)));
  }
  if (device != Device::kCuda) {
    return Status(Code::kInvalidArg, std::string("options.precision: 'bf16' precision is for device 'cuda' "
                                                 "(got device '") +
                                         DeviceName(device) + "'); use precision 'exact' on the CPU");
  }
  *out = cuda::Precision::kBf16;
  return Status::Ok();
}

Status ResolveDevice(Device requested, bool gpu_capable, bool* use_cuda) {
  *use_cuda = false;
  if (requested == Device::kCpu) return Status::Ok();
  const cuda::DeviceInfo& device = cuda::device_info();
  if (requested == Device::kCuda) {
    if (!device.usable) {
      return Status(Code::kNoDevice, "options.device: 'cuda' is not usable here: " + device.reason);
    }
    *use_cuda = true;
    return Status::Ok();
  }
  *use_cuda = device.usable && gpu_capable;
  return Status::Ok();
}

Status ReadQueriesAndGallery(Napi::Value queries, Napi::Value gallery, Napi::Object options,
                             MatrixArg* qa, MatrixArg* ga) {
  VLK_RETURN_IF_ERROR(ReadMatrix(queries, "queries", qa));
  VLK_RETURN_IF_ERROR(ReadMatrix(gallery, "gallery", ga));
  bool has_dim = false;
  int64_t dim = 0;
  Napi::Value dim_value = options.Get("dim");
  if (!dim_value.IsUndefined()) {
    VLK_RETURN_IF_ERROR(ReadSize(dim_value, "options.dim", &dim));
    has_dim = true;
  }
  VLK_RETURN_IF_ERROR(ShapeMatrix("queries", has_dim, dim, qa));
  VLK_RETURN_IF_ERROR(ShapeMatrix("gallery", has_dim, dim, ga));
  const MatrixView<const float>& q = qa->view;
  const MatrixView<const float>& g = ga->view;
  auto shape = [](const MatrixView<const float>& m) {
    return std::to_string(m.rows) + " x " + std::to_string(m.cols);
  };
  if (q.rows == 0 || q.cols == 0) return Status(Code::kEmpty, "queries: shape " + shape(q) + " is empty");
  if (g.rows == 0 || g.cols == 0) return Status(Code::kEmpty, "gallery: shape " + shape(g) + " is empty");
  if (q.cols != g.cols) {
    return Status(Code::kDimMismatch, "queries have " + std::to_string(q.cols) + " columns but gallery has " +
                                          std::to_string(g.cols));
  }
  return Status::Ok();
}

Context MakeContext(int threads, Isa isa, const CancelFlag* cancel) {
  Context ctx;
  ctx.pool = &global_pool();
  ctx.threads = threads;
  ctx.isa = isa;
  ctx.cancel = cancel;
  return ctx;
}

}  // namespace binding
}  // namespace vlk
