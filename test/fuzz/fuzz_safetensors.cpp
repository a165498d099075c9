// libFuzzer target (test/fuzz): core::parse_safetensors on arbitrary bytes, then, for an accepted
// buffer, every tensor's bytes read back (copy_to_host, convert_to_f32) and the file re-encoded and
// re-parsed: a buffer the reader accepts must describe tensors that lie inside it and survive a
// round trip through the writer unchanged.
#include <cstring>
#include <vector>

#include "fuzz_input.hpp"
#include "io/safetensors.hpp"

using namespace vlk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  core::SafetensorsFile file;
  const Status s = core::parse_safetensors(data, static_cast<int64_t>(size), &file);
  fuzz::check_status(s);
  if (!s.ok()) {
    FUZZ_CHECK(s.code == Code::kCorrupt || s.code == Code::kOutOfMemory);
    return 0;
  }
  FUZZ_CHECK(file.header_bytes + 8 + file.data_bytes == static_cast<int64_t>(size));
  std::vector<core::TensorInput> inputs;
  std::vector<std::vector<uint8_t>> host(file.tensors.size());
  int64_t end = 0;
  for (size_t t = 0; t < file.tensors.size(); ++t) {
    const core::TensorInfo& info = file.tensors[t];
    FUZZ_CHECK(info.offset == end && info.bytes >= 0 && info.offset + info.bytes <= file.data_bytes);
    end = info.offset + info.bytes;
    FUZZ_CHECK(file.find(info.name) == &info);
    host[t].resize(static_cast<size_t>(info.bytes));
    core::copy_to_host(info.dtype, file.tensor_data(info), info.bytes, host[t].data());
    if (core::dtype_converts_to_f32(info.dtype) && info.elements() <= (1 << 16)) {
      std::vector<float> f(static_cast<size_t>(info.elements()));
      FUZZ_CHECK(core::tensor_to_f32(file, info, f.data()).ok());
    }
    inputs.push_back({info.name, info.dtype, info.shape, host[t].data(), info.bytes});
  }
  FUZZ_CHECK(end == file.data_bytes);

  // Round trip. Metadata written by the writer is sorted and unique; the reader's is too.
  std::vector<uint8_t> again;
  const Status w = core::encode_safetensors(inputs, file.metadata, &again);
  fuzz::check_status(w);
  if (!w.ok()) {
    // The reader accepts names the writer refuses (the reference implementation does the same).
    FUZZ_CHECK(w.code == Code::kInvalidArg || w.code == Code::kOutOfMemory);
    return 0;
  }
  core::SafetensorsFile back;
  FUZZ_CHECK(core::parse_safetensors(again.data(), static_cast<int64_t>(again.size()), &back).ok());
  FUZZ_CHECK(back.tensors.size() == file.tensors.size());
  FUZZ_CHECK(back.metadata == file.metadata);
  for (const core::TensorInfo& info : file.tensors) {
    const core::TensorInfo* b = back.find(info.name);
    FUZZ_CHECK(b != nullptr && b->dtype == info.dtype && b->shape == info.shape && b->bytes == info.bytes);
    FUZZ_CHECK(info.bytes == 0 || std::memcmp(back.tensor_data(*b), file.tensor_data(info), info.bytes) == 0);
  }
  return 0;
}
