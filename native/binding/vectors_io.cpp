// Embedding-file parsing entry points (binding), see vectors_io.hpp: argument checks, the core
// parser, and plain result objects. Errors reach JS through ThrowStatus (code + "<field>: ...";
// lib/vectors_io.ts prefixes the file name).
#include "vectors_io.hpp"

#include <string>
#include <vector>

#include "common/args.hpp"
#include "common/errors.hpp"
#include "io/npy.hpp"
#include "io/vecs.hpp"

namespace vlk {
namespace binding {

namespace {

Status ReadBytes(Napi::Value v, const char* name, const uint8_t** data, int64_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return Status(Code::kType, std::string(name) + ": expected a Uint8Array, got " + Describe(v));
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = static_cast<int64_t>(a.ElementLength());
  if (*data == nullptr && *len > 0) return Status(Code::kInvalidArg, std::string(name) + ": detached buffer");
  return Status::Ok();
}

Napi::Value Number(Napi::Env env, int64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

// (bytes, fileSize): the arguments of npyPreamble and npyHeader.
Status ReadBytesAndSize(const Napi::CallbackInfo& info, const uint8_t** data, int64_t* len, int64_t* file_size) {
  VLK_RETURN_IF_ERROR(ReadBytes(info[0], "bytes", data, len));
  return ReadSize(info[1], "fileSize", file_size);
}

}  // namespace

Napi::Value NpyPreamble(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data = nullptr;
  int64_t len = 0, file_size = 0;
  Status st = ReadBytesAndSize(info, &data, &len, &file_size);
  core::NpyPreamble p;
  if (st.ok()) st = core::parse_npy_preamble(data, len, file_size, &p);
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Object r = Napi::Object::New(env);
  r.Set("major", Number(env, p.major));
  r.Set("minor", Number(env, p.minor));
  r.Set("headerStart", Number(env, p.header_start));
  r.Set("headerLen", Number(env, p.header_len));
  return r;
}

Napi::Value NpyHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data = nullptr;
  int64_t len = 0, file_size = 0;
  Status st = ReadBytesAndSize(info, &data, &len, &file_size);
  core::NpyHeader h;
  if (st.ok()) st = core::parse_npy_header(data, len, file_size, &h);
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Array shape = Napi::Array::New(env, h.shape.size());
  for (size_t d = 0; d < h.shape.size(); ++d) shape.Set(uint32_t(d), Number(env, h.shape[d]));
  Napi::Object r = Napi::Object::New(env);
  r.Set("descr", Napi::String::New(env, h.descr));
  r.Set("kind", Napi::String::New(env, std::string(1, h.kind)));
  r.Set("itemSize", Number(env, h.item_size));
  r.Set("bigEndian", Napi::Boolean::New(env, h.big_endian));
  r.Set("fortranOrder", Napi::Boolean::New(env, h.fortran_order));
  r.Set("shape", shape);
  r.Set("count", Number(env, h.count));
  r.Set("dataOffset", Number(env, h.data_offset));
  r.Set("major", Number(env, h.preamble.major));
  return r;
}

Napi::Value VecsLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* head = nullptr;
  int64_t head_len = 0, file_size = 0, elem = 0;
  Status st = ReadBytes(info[0], "head", &head, &head_len);
  if (st.ok()) st = ReadSize(info[1], "fileSize", &file_size);
  if (st.ok()) st = ReadSize(info[2], "elemBytes", &elem);
  core::VecsLayout l;
  if (st.ok()) st = core::vecs_layout(head, head_len, file_size, elem == 1 ? 1 : elem == 4 ? 4 : 0, &l);
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Object r = Napi::Object::New(env);
  r.Set("rows", Number(env, l.rows));
  r.Set("cols", Number(env, l.cols));
  r.Set("recordBytes", Number(env, l.record_bytes));
  return r;
}

Napi::Value VecsUnpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* chunk = nullptr;
  int64_t chunk_len = 0, n = 0, first_row = 0, cols = 0, elem = 0, out_row0 = 0;
  Status st = ReadBytes(info[0], "chunk", &chunk, &chunk_len);
  if (st.ok()) st = ReadSize(info[1], "n", &n);
  if (st.ok()) st = ReadSize(info[2], "firstRow", &first_row);
  if (st.ok()) st = ReadSize(info[3], "cols", &cols);
  if (st.ok()) st = ReadSize(info[4], "elemBytes", &elem);
  if (st.ok()) st = ReadSize(info[6], "outRow0", &out_row0);
  core::VecsOut kind = core::VecsOut::kFloat32;
  void* out = nullptr;
  size_t out_len = 0;
  if (st.ok()) {
    Napi::Value o = info[5];
    napi_typedarray_type type = napi_uint8_array;
    if (!o.IsTypedArray() ||
        napi_get_typedarray_info(env, o, &type, &out_len, &out, nullptr, nullptr) != napi_ok) {
      st = Status(Code::kType, "out: expected a Float32Array, Int32Array or Uint8Array, got " + Describe(o));
    } else if (type == napi_float32_array) {
      kind = core::VecsOut::kFloat32;
    } else if (type == napi_int32_array) {
      kind = core::VecsOut::kInt32;
    } else if (type == napi_uint8_array) {
      kind = core::VecsOut::kUint8;
    } else {
      st = Status(Code::kType, "out: expected a Float32Array, Int32Array or Uint8Array, got " + Describe(o));
    }
  }
  core::VecsLayout l;
  if (st.ok()) {
    if ((elem != 1 && elem != 4) || cols < 1 || cols > INT32_MAX) {
      st = Status(Code::kInvalidArg, "vecsUnpack: cols " + std::to_string(cols) + ", elemBytes " + std::to_string(elem));
    } else {
      l.cols = cols;
      l.elem_bytes = int(elem);
      l.record_bytes = 4 + cols * elem;
    }
  }
  if (st.ok()) {
    st = core::unpack_vecs_records(chunk, chunk_len, n, first_row, l, kind, out, static_cast<int64_t>(out_len),
                                   out_row0);
  }
  if (!st.ok()) ThrowStatus(env, st);
  return env.Undefined();
}

}  // namespace binding
}  // namespace vlk
