// MemoryBank and emaUpdate entry points (binding). See memory_bank.hpp. lib/memory_bank.ts
// resolves shapes and ids; lengths and values are checked again here and in core.
#include "memory_bank.hpp"

#include <cmath>
#include <new>
#include <string>
#include <vector>

#include "common/args.hpp"
#include "common/checked_size.hpp"
#include "common/errors.hpp"
#include "common/thread_pool.hpp"
#include "isa/isa.hpp"
#include "memory/ema_update.hpp"

namespace vlk {
namespace binding {

namespace {

// The External's payload: a tag (so other Externals are refused) and the bank (null once closed).
struct BankBox {
  static constexpr uint32_t kTag = 0x4d454d42;  // "MEMB"
  uint32_t tag = kTag;
  std::shared_ptr<core::MemoryBank> bank;
};

Status ReadBox(Napi::Value v, BankBox** out) {
  if (!v.IsExternal()) return Status(Code::kType, "bank: not a memory bank handle");
  BankBox* box = v.As<Napi::External<BankBox>>().Data();
  if (box == nullptr || box->tag != BankBox::kTag) return Status(Code::kType, "bank: not a memory bank handle");
  *out = box;
  return Status::Ok();
}

Status ReadFloats(Napi::Value v, const std::string& name, Napi::Float32Array* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    return Status(Code::kType, name + ": expected a Float32Array, got " + Describe(v));
  }
  *out = v.As<Napi::Float32Array>();
  if (out->ElementLength() > 0 && out->Data() == nullptr) return Status(Code::kInvalidArg, name + ": detached buffer");
  return Status::Ok();
}

}  // namespace

Status ReadMemoryBank(Napi::Value value, std::shared_ptr<core::MemoryBank>* out) {
  BankBox* box = nullptr;
  VLK_RETURN_IF_ERROR(ReadBox(value, &box));
  if (!box->bank) return Status(Code::kInvalidArg, "memory bank is closed");
  *out = box->bank;
  return Status::Ok();
}

Napi::Value MemoryBankCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t size = 0, dim = 0;
  Status st = ReadSize(info[0], "size", &size);
  if (st.ok()) st = ReadSize(info[1], "dim", &dim);
  if (st.ok() && (size < 1 || dim < 1)) {
    st = Status(Code::kEmpty, "memory bank: size and dim must be >= 1 (got " + std::to_string(size) + ", " +
                                  std::to_string(dim) + ")");
  }
  // The bank is allocated (and zeroed) up front: refuse what the machine cannot hold before the
  // OS overcommits it and the zero fill is killed.
  if (st.ok()) {
    st = core::check_alloc("memory bank (size x dim floats, plus size int64 ids)", {size, dim}, sizeof(float),
                           static_cast<uint64_t>(size) * sizeof(int64_t));
  }
  if (!st.ok()) ThrowStatus(env, st);
  BankBox* box = nullptr;
  try {
    box = new BankBox();
    box->bank = std::make_shared<core::MemoryBank>(size, dim);
  } catch (const std::bad_alloc&) {
    delete box;
    ThrowStatus(env, Status(Code::kOutOfMemory, "memory bank: out of memory for " + std::to_string(size) + " x " +
                                                    std::to_string(dim) + " floats"));
  }
  return Napi::External<BankBox>::New(env, box, [](Napi::Env, BankBox* p) { delete p; });
}

Napi::Value MemoryBankEnqueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<core::MemoryBank> bank;
  Status st = ReadMemoryBank(info[0], &bank);
  Napi::Float32Array keys;
  if (st.ok()) st = ReadFloats(info[1], "keys", &keys);
  int64_t b = 0;
  if (st.ok()) {
    const int64_t n = static_cast<int64_t>(keys.ElementLength());
    if (n % bank->dim() != 0) {
      st = Status(Code::kDimMismatch, "keys: length " + std::to_string(n) + " is not a multiple of the bank's dim " +
                                          std::to_string(bank->dim()));
    }
    b = n / bank->dim();
  }
  std::vector<int64_t> ids;
  const bool has_ids = st.ok() && !info[2].IsUndefined();
  if (has_ids) {
    if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      st = Status(Code::kType, "ids: expected a Float64Array, got " + Describe(info[2]));
    } else {
      Napi::Float64Array a = info[2].As<Napi::Float64Array>();
      if (static_cast<int64_t>(a.ElementLength()) != b) {
        st = Status(Code::kShape, "ids: length " + std::to_string(a.ElementLength()) + " is not the number of keys (" +
                                      std::to_string(b) + ")");
      }
      for (int64_t i = 0; st.ok() && i < b; ++i) {
        const double v = a[static_cast<size_t>(i)];
        if (!(v >= 0 && v <= double(kMaxSafeInteger) && std::floor(v) == v)) {
          st = Status(Code::kInvalidArg, "ids[" + std::to_string(i) + "]: " + FormatNumber(v) +
                                             " is not an integer in 0..2^53 - 1");
        } else {
          ids.push_back(static_cast<int64_t>(v));
        }
      }
    }
  }
  if (st.ok()) st = bank->enqueue(b > 0 ? keys.Data() : nullptr, has_ids ? ids.data() : nullptr, b);
  if (!st.ok()) ThrowStatus(env, st);
  return env.Undefined();
}

Napi::Value MemoryBankSnapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<core::MemoryBank> bank;
  Status st = ReadMemoryBank(info[0], &bank);
  if (!st.ok()) ThrowStatus(env, st);
  // One view for both arrays (a concurrent enqueue cannot split them).
  std::shared_ptr<const core::MemoryBank::State> v = bank->view();
  const int64_t n = v->count, d = bank->dim(), size = bank->size();
  Napi::Float32Array data;
  Napi::Float64Array ids;
  try {
    data = Napi::Float32Array::New(env, static_cast<size_t>(n * d));
    ids = Napi::Float64Array::New(env, static_cast<size_t>(n));
  } catch (const Napi::Error&) {
    ThrowStatus(env, Status(Code::kOutOfMemory, "memory bank: could not allocate the snapshot"));
  }
  const int64_t start = n == size ? v->head : 0;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t slot = (start + r) % size;
    std::copy(v->data.begin() + slot * d, v->data.begin() + (slot + 1) * d, data.Data() + r * d);
    ids[static_cast<size_t>(r)] = double(v->ids[static_cast<size_t>(slot)]);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", data);
  out.Set("ids", ids);
  return out;
}

Napi::Value MemoryBankInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<core::MemoryBank> bank;
  Status st = ReadMemoryBank(info[0], &bank);
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Object out = Napi::Object::New(env);
  out.Set("size", double(bank->size()));
  out.Set("dim", double(bank->dim()));
  out.Set("count", double(bank->count()));
  out.Set("bytes", double(bank->bytes()));
  return out;
}

Napi::Value MemoryBankClear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<core::MemoryBank> bank;
  Status st = ReadMemoryBank(info[0], &bank);
  if (st.ok()) st = bank->clear();
  if (!st.ok()) ThrowStatus(env, st);
  return env.Undefined();
}

Napi::Value MemoryBankClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BankBox* box = nullptr;
  const Status st = ReadBox(info[0], &box);
  if (!st.ok()) ThrowStatus(env, st);
  box->bank.reset();  // losses in flight keep the contents they read
  return env.Undefined();
}

Napi::Value EmaUpdateSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Status st;
  if (!info[0].IsArray() || !info[1].IsArray()) {
    st = Status(Code::kType, "emaUpdate: expected arrays of targets and sources");
  }
  std::vector<core::EmaPair> pairs;
  std::vector<std::string> name_store;
  std::vector<const char*> names;
  double momentum = 0;
  if (st.ok()) {
    Napi::Array t = info[0].As<Napi::Array>(), s = info[1].As<Napi::Array>();
    Napi::Value nv = info[3];
    if (t.Length() != s.Length()) st = Status(Code::kShape, "emaUpdate: targets and sources differ in count");
    for (uint32_t i = 0; st.ok() && i < t.Length(); ++i) {
      std::string name = nv.IsArray() && nv.As<Napi::Array>().Get(i).IsString()
                             ? nv.As<Napi::Array>().Get(i).As<Napi::String>().Utf8Value()
                             : std::string();
      const std::string label = name.empty() ? (t.Length() == 1 ? std::string() : "[" + std::to_string(i) + "]")
                                             : "['" + name + "']";
      Napi::Float32Array ta, sa;
      st = ReadFloats(t.Get(i), "target" + label, &ta);
      if (st.ok()) st = ReadFloats(s.Get(i), "source" + label, &sa);
      if (st.ok() && ta.ElementLength() != sa.ElementLength()) {
        st = Status(Code::kShape, "source" + label + ": length " + std::to_string(sa.ElementLength()) +
                                      " differs from the target's " + std::to_string(ta.ElementLength()));
      }
      if (st.ok()) {
        pairs.push_back({ta.Data(), sa.Data(), static_cast<int64_t>(ta.ElementLength())});
        name_store.push_back(name);
      }
    }
    if (st.ok() && !info[2].IsNumber()) st = Status(Code::kType, "momentum: expected a number, got " + Describe(info[2]));
    if (st.ok()) momentum = info[2].As<Napi::Number>().DoubleValue();
  }
  int threads = 1;
  if (st.ok()) st = ReadThreads(info[4], &threads);
  Isa isa = Isa::kScalar;
  if (st.ok()) st = active_isa(&isa);
  if (st.ok()) {
    for (const auto& n : name_store) names.push_back(n.empty() ? nullptr : n.c_str());
    st = core::ema_update(pairs.data(), static_cast<int64_t>(pairs.size()), momentum, names.data(),
                          MakeContext(threads, isa, nullptr));
  }
  if (!st.ok()) ThrowStatus(env, st);
  return env.Undefined();
}

}  // namespace binding
}  // namespace vlk
