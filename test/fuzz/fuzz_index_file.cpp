// libFuzzer target (test/fuzz): the index loader behind FlatIndex.load and FlatIndex.fromBuffer
// (core::decode_index, then FlatIndex::from_loaded) on arbitrary bytes, then a search of the loaded
// index and a re-encode that must reproduce the bytes it was loaded from.
//
// The first input byte picks a mode. Odd: the rest is decoded as it is (checksums included). Even:
// both CRC32C fields are recomputed before decoding, so that mutations reach the checks behind the
// checksums (a random mutation almost never keeps a CRC valid). The CRC check itself is covered by
// the odd mode and by test/native/index_file_test.cpp.
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "fuzz_input.hpp"
#include "index/flat_index.hpp"
#include "index/index_file.hpp"

using namespace vlk;
namespace fmt = core::index_format;

namespace {

void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }  // the fuzz builds are x86-64 (LE)

void fix_checksums(std::vector<uint8_t>& b) {
  if (b.size() < static_cast<size_t>(fmt::kHeaderSize)) return;
  put_u32(b.data() + fmt::kOffPayloadCrc, core::crc32c(0, b.data() + fmt::kHeaderSize, b.size() - fmt::kHeaderSize));
  put_u32(b.data() + fmt::kOffHeaderCrc, 0);
  put_u32(b.data() + fmt::kOffHeaderCrc, core::crc32c(0, b.data(), fmt::kHeaderSize));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> bytes(data + 1, data + size);
  if ((data[0] & 1) == 0) fix_checksums(bytes);

  core::IoOptions io;
  io.chunk_bytes = 64 + 64 * (data[0] >> 4);  // small chunks: chunk boundaries inside tiny images
  core::LoadedIndex loaded;
  const Status s = core::decode_index(bytes.data(), static_cast<int64_t>(bytes.size()), &loaded, io);
  fuzz::check_status(s);
  if (!s.ok()) {
    FUZZ_CHECK(s.code == Code::kCorrupt || s.code == Code::kOutOfMemory);
    return 0;
  }
  const core::IndexImage& img = loaded.image;
  FUZZ_CHECK(img.dim >= 1 && img.dim <= fmt::kMaxDim && img.count >= 0);
  FUZZ_CHECK(core::encoded_size(img) == static_cast<int64_t>(bytes.size()));

  std::shared_ptr<core::FlatIndex> index;
  const Status f = core::FlatIndex::from_loaded(loaded, &index);
  fuzz::check_status(f);
  if (!f.ok()) {
    FUZZ_CHECK(f.code == Code::kCorrupt || f.code == Code::kOutOfMemory);
    return 0;
  }
  FUZZ_CHECK(index->size() == img.count && index->dim() == img.dim);

  // Every stored id is found, and a search of stored row 0 (or zeros) returns valid ids.
  for (int64_t r = 0; r < img.count; ++r) FUZZ_CHECK(index->has(img.ids[r]));
  if (img.dim <= 4096) {
    std::vector<float> q(static_cast<size_t>(img.dim), 0.5f);
    if (img.has_f32 && img.count > 0) std::memcpy(q.data(), img.f32, static_cast<size_t>(img.dim) * 4);
    const int64_t k = 3;
    std::vector<int64_t> ids(k);
    std::vector<float> scores(k);
    std::vector<int32_t> counts(1);
    core::IndexSearchOut out{ids.data(), scores.data(), counts.data(), nullptr};
    Context ctx;
    const Status ss = index->search(MatrixView<const float>(q.data(), 1, img.dim), k, out, ctx);
    fuzz::check_status(ss);
    if (ss.ok()) {
      if (counts[0] != (img.count < k ? img.count : k)) {
        std::fprintf(stderr, "count %lld, dim %lld, storage %d, has_f32 %d, counts[0] %d, ids %lld %lld %lld\n",
                     static_cast<long long>(img.count), static_cast<long long>(img.dim), static_cast<int>(img.storage),
                     static_cast<int>(img.has_f32), counts[0], static_cast<long long>(ids[0]),
                     static_cast<long long>(ids[1]), static_cast<long long>(ids[2]));
      }
      FUZZ_CHECK(counts[0] == (img.count < k ? img.count : k));
      for (int64_t j = 0; j < counts[0]; ++j) FUZZ_CHECK(index->has(ids[j]));
      for (int64_t j = counts[0]; j < k; ++j) FUZZ_CHECK(ids[j] == -1);
    } else {
      // Rows whose products overflow fp32 are refused at search time, never a wrong answer.
      FUZZ_CHECK(ss.code == Code::kNonFinite || ss.code == Code::kOutOfMemory);
    }
  }

  // Save the loaded index again. f32 storage, or codes without fp32 rows: the canonical encoding
  // of what was accepted is the input itself. bf16/i8 with fp32 rows: the codes are re-derived from
  // the rows on load, so only the ids and rows must come back unchanged.
  core::IndexExport exp;
  const auto snap = index->freeze();
  const Status e = index->export_image(snap, &exp, nullptr);
  fuzz::check_status(e);
  if (!e.ok()) return 0;
  const int64_t n = core::encoded_size(exp.image);
  FUZZ_CHECK(n == static_cast<int64_t>(bytes.size()));
  std::vector<uint8_t> again(static_cast<size_t>(n));
  FUZZ_CHECK(core::encode_index(exp.image, again.data(), n, io).ok());
  if (img.storage == core::Storage::kF32 || !img.has_f32) {
    FUZZ_CHECK(again == bytes);
  } else {
    FUZZ_CHECK(exp.image.count == img.count && exp.image.has_f32);
    const size_t rows = static_cast<size_t>(img.count);
    FUZZ_CHECK(rows == 0 || std::memcmp(exp.image.ids, img.ids, rows * 8) == 0);
    FUZZ_CHECK(rows == 0 || std::memcmp(exp.image.f32, img.f32, rows * static_cast<size_t>(img.dim) * 4) == 0);
  }
  return 0;
}
