// C++ core tests of the FlatIndex file format (test/native, core/index/index_file): CRC32C (check
// value, known vectors, SSE4.2 == portable); bit-exact round trips through encode/decode and
// write/read (heap and mmap) for every storage, with and without f32, counts 0/1/37, dims 1/7/513,
// at the default and at a 64-byte chunk size; a table of corruptions, each run through decode and
// both file readers, asserting the exact code and that the message names the field; writer
// validation; atomic writes (missing directory, failed, cancelled and invalid writes leave an
// existing target byte-identical and no temporary file); progress reports.
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "common/cancel.hpp"
#include "common/status.hpp"
#include "index/flat_index.hpp"
#include "index/index_file.hpp"
#include "search/search.hpp"
#include "test_util.hpp"
#include "vlk_test.hpp"

namespace {

using vlk::CancelFlag;
using vlk::Code;
using vlk::Status;
using vlk::core::IndexImage;
using vlk::core::IoOptions;
using vlk::core::LoadedIndex;
using vlk::core::Metric;
using vlk::core::Storage;
using vlk_test::Rng;
namespace fmt = vlk::core::index_format;
using Bytes = std::vector<uint8_t>;

// ---- data -------------------------------------------------------------------------------------

// An image with owned arrays (pointers taken on demand, so copies stay valid).
struct Owned {
  int64_t dim = 1;
  Metric metric = Metric::kInnerProduct;
  Storage storage = Storage::kF32;
  bool has_f32 = true;
  int64_t count = 0;
  int64_t next_auto_id = 0;
  std::vector<int64_t> ids;
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  std::vector<int8_t> i8;
  std::vector<float> scales;

  IndexImage image() const {
    IndexImage im;
    im.dim = dim;
    im.metric = metric;
    im.storage = storage;
    im.has_f32 = has_f32;
    im.count = count;
    im.next_auto_id = next_auto_id;
    im.ids = count ? ids.data() : nullptr;
    im.f32 = has_f32 && count ? f32.data() : nullptr;
    if (storage == Storage::kBF16 && count) im.codes = bf16.data();
    if (storage == Storage::kI8 && count) im.codes = i8.data();
    im.scales = storage == Storage::kI8 && count ? scales.data() : nullptr;
    return im;
  }
};

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

Owned make_owned(Storage storage, bool has_f32, int64_t count, int64_t dim, uint64_t seed) {
  Rng rng(seed);
  Owned o;
  o.dim = dim;
  o.metric = static_cast<Metric>(seed % 3);
  o.storage = storage;
  o.has_f32 = has_f32;
  o.count = count;
  const size_t n = static_cast<size_t>(count * dim);
  std::vector<float> values(n);
  for (auto& v : values) v = rng.uniform() * 3.0f;
  // Values whose bits must survive exactly: -0, a subnormal, the largest float.
  if (n > 0) values[0] = -0.0f;
  if (n > 1) values[1] = 1e-40f;
  if (n > 2) values[n - 1] = std::numeric_limits<float>::max();
  int64_t max_id = -1;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t id = (i * 7919 + static_cast<int64_t>(seed % 1000)) % 100003 + (i == 0 ? 0 : 5);
    o.ids.push_back(id);
    max_id = std::max(max_id, id);
  }
  o.next_auto_id = max_id + 1 + static_cast<int64_t>(seed % 4);
  if (has_f32) o.f32 = values;
  if (storage == Storage::kBF16) {
    for (float v : values) o.bf16.push_back(static_cast<uint16_t>(float_bits(v) >> 16));
  }
  if (storage == Storage::kI8) {
    for (size_t i = 0; i < n; ++i) o.i8.push_back(static_cast<int8_t>(rng.next() & 0xff));
    for (int64_t r = 0; r < count; ++r) {
      if (r % 5 == 3) {  // an all-zero row has scale 0
        o.scales.push_back(0.0f);
        for (int64_t c = 0; c < dim; ++c) o.i8[static_cast<size_t>(r * dim + c)] = 0;
      } else {
        o.scales.push_back(std::fabs(rng.uniform()) + 1e-3f);
      }
    }
  }
  return o;
}

std::vector<uint8_t> encode(const IndexImage& im, const IoOptions& opts = IoOptions()) {
  const int64_t n = vlk::core::encoded_size(im);
  VLK_CHECK(n >= fmt::kHeaderSize) << n;
  std::vector<uint8_t> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
  const Status s = vlk::core::encode_index(im, out.data(), n, opts);
  VLK_CHECK(s.ok()) << s.message;
  return out;
}

bool same_bytes(const void* a, const void* b, int64_t n) {
  if (n == 0) return true;
  if (a == nullptr || b == nullptr) return false;
  return std::memcmp(a, b, static_cast<size_t>(n)) == 0;
}

// Bit-exact equality of two images (by content, not by pointer).
void check_same_image(const IndexImage& a, const IndexImage& b, const std::string& what) {
  VLK_CHECK_EQ(a.dim, b.dim) << what;
  VLK_CHECK_EQ(a.metric, b.metric) << what;
  VLK_CHECK(a.storage == b.storage) << what;
  VLK_CHECK_EQ(a.has_f32, b.has_f32) << what;
  VLK_CHECK_EQ(a.count, b.count) << what;
  VLK_CHECK_EQ(a.next_auto_id, b.next_auto_id) << what;
  const int64_t n = a.count, nd = a.count * a.dim;
  VLK_CHECK(same_bytes(a.ids, b.ids, n * 8)) << what << " ids";
  if (a.has_f32) {
    VLK_CHECK(same_bytes(a.f32, b.f32, nd * 4)) << what << " f32";
  }
  if (!a.has_f32) {
    VLK_CHECK(b.f32 == nullptr) << what;
  }
  if (a.storage == Storage::kBF16) {
    VLK_CHECK(same_bytes(a.codes, b.codes, nd * 2)) << what << " bf16";
  }
  if (a.storage == Storage::kI8) {
    VLK_CHECK(same_bytes(a.codes, b.codes, nd)) << what << " i8";
    VLK_CHECK(same_bytes(a.scales, b.scales, n * 4)) << what << " scales";
  }
  if (a.storage == Storage::kF32) {
    VLK_CHECK(b.codes == nullptr && b.scales == nullptr) << what;
  }
  if (b.f32 != nullptr) {
    VLK_CHECK(reinterpret_cast<uintptr_t>(b.f32) % 64 == 0) << what << " f32 alignment";
  }
}

// ---- files ------------------------------------------------------------------------------------

struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/vlk_index_file_XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) != nullptr) path = buf.data();
  }
  ~TempDir() { remove_tree(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }

  static void remove_tree(const std::string& p) {
    if (p.empty()) return;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
      if (DIR* d = opendir(p.c_str())) {
        while (dirent* e = readdir(d)) {
          const std::string name = e->d_name;
          if (name != "." && name != "..") remove_tree(p + "/" + name);
        }
        closedir(d);
      }
      rmdir(p.c_str());
    } else {
      unlink(p.c_str());
    }
  }
};

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

bool write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = b.empty() || std::fwrite(b.data(), 1, b.size(), f) == b.size();  // fwrite(NULL, ...) is UB
  return std::fclose(f) == 0 && ok;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::vector<uint8_t> b;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return b;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) b.insert(b.end(), buf, buf + n);
  std::fclose(f);
  return b;
}

// ---- raw format edits (the layout of docs/index-format.md) -------------------------------------

void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void put64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get64(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[at + i];
  return v;
}
uint64_t sec_off(const std::vector<uint8_t>& b, int s) { return get64(b, fmt::kOffSections + 16 * s); }
uint64_t sec_len(const std::vector<uint8_t>& b, int s) { return get64(b, fmt::kOffSections + 16 * s + 8); }
void set_sec(std::vector<uint8_t>& b, int s, uint64_t off, uint64_t len) {
  put64(b, fmt::kOffSections + 16 * s, off);
  put64(b, fmt::kOffSections + 16 * s + 8, len);
}

void fix_header_crc(std::vector<uint8_t>& b) {
  put32(b, fmt::kOffHeaderCrc, 0);
  put32(b, fmt::kOffHeaderCrc, vlk::core::crc32c(0, b.data(), fmt::kHeaderSize));
}

// Recomputes both checksums, so that only the deeper checks can catch an edit.
void fix_crcs(std::vector<uint8_t>& b) {
  put32(b, fmt::kOffPayloadCrc, vlk::core::crc32c(0, b.data() + fmt::kHeaderSize, b.size() - fmt::kHeaderSize));
  fix_header_crc(b);
}

// The canonical section table for count rows of an i8 + f32 image of dim d.
void set_i8_layout(std::vector<uint8_t>& b, uint64_t count, uint64_t d) {
  const uint64_t len[4] = {count * 8, count * d * 4, count * d, count * 4};
  uint64_t end = fmt::kHeaderSize;
  for (int s = 0; s < 4; ++s) {
    const uint64_t off = (end + 63) / 64 * 64;
    set_sec(b, s, off, len[s]);
    end = off + len[s];
  }
}

bool contains(const std::string& s, const std::string& w) { return s.find(w) != std::string::npos; }

// Decodes `bytes` through decode_index and both file readers (chunk sizes default and 64); each
// must fail with `code` and a message containing every word.
void expect_rejected(const std::string& name, const std::vector<uint8_t>& bytes, Code code,
                     const std::vector<std::string>& words, const TempDir& dir) {
  const std::string path = dir.file("case.vlk");
  VLK_CHECK(write_bytes(path, bytes)) << name;
  for (int64_t chunk : {int64_t(0), int64_t(64)}) {
    IoOptions opts;
    opts.chunk_bytes = chunk;
    for (int how = 0; how < 3; ++how) {
      LoadedIndex out;
      const Status s = how == 0 ? vlk::core::decode_index(bytes.data(), static_cast<int64_t>(bytes.size()), &out, opts)
                                : vlk::core::read_index_file(path, how == 2, &out, opts);
      const char* via = how == 0 ? "decode" : how == 1 ? "read" : "read mmap";
      VLK_CHECK_EQ(s.code, code) << name << " via " << via << ": " << s.message;
      for (const auto& w : words) {
        VLK_CHECK(contains(s.message, w)) << name << " via " << via << ": '" << w << "' not in: " << s.message;
      }
      if (how > 0) {
        VLK_CHECK(contains(s.message, path)) << name << ": path not in: " << s.message;
      }
      VLK_CHECK(out.owner == nullptr && out.image.count == 0) << name << ": output written on error";
    }
  }
}

// ---- progress ---------------------------------------------------------------------------------

struct ProgressLog {
  std::vector<std::pair<int64_t, int64_t>> calls;
  CancelFlag* cancel_after_first = nullptr;  // set the flag once done > 0
  static void fn(void* ctx, int64_t done, int64_t total) {
    auto* log = static_cast<ProgressLog*>(ctx);
    log->calls.emplace_back(done, total);
    if (log->cancel_after_first != nullptr && done > 0) log->cancel_after_first->cancel();
  }
  IoOptions opts(int64_t chunk) {
    IoOptions o;
    o.progress = &ProgressLog::fn;
    o.progress_ctx = this;
    o.chunk_bytes = chunk;
    return o;
  }
  // Starts at (0, total), never decreases, ends at (total, total), with more than `min_calls`.
  void check(int64_t total, size_t min_calls, const std::string& what) const {
    VLK_CHECK(calls.size() >= min_calls) << what << ": " << calls.size() << " calls";
    if (calls.empty()) return;
    VLK_CHECK_EQ(calls.front().first, 0) << what;
    VLK_CHECK_EQ(calls.back().first, total) << what;
    for (size_t i = 0; i < calls.size(); ++i) {
      VLK_CHECK_EQ(calls[i].second, total) << what << " call " << i;
      if (i > 0) {
        VLK_CHECK(calls[i].first >= calls[i - 1].first) << what << " call " << i;
      }
    }
  }
};

}  // namespace

// ---- CRC32C -----------------------------------------------------------------------------------

VLK_TEST(index_file_crc32c_check_values) {
  using vlk::core::crc32c;
  using vlk::core::crc32c_portable;
  const char* check = "123456789";
  VLK_CHECK_EQ(crc32c(0, check, 9), 0xE3069283u);
  VLK_CHECK_EQ(crc32c_portable(0, check, 9), 0xE3069283u);
  VLK_CHECK_EQ(crc32c(0, check, 0), 0u);
  // RFC 3720 (iSCSI) B.4 vectors.
  uint8_t zeros[32] = {}, ones[32], inc[32], dec[32];
  for (int i = 0; i < 32; ++i) {
    ones[i] = 0xff;
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  VLK_CHECK_EQ(crc32c(0, zeros, 32), 0x8A9136AAu);
  VLK_CHECK_EQ(crc32c(0, ones, 32), 0x62A8AB43u);
  VLK_CHECK_EQ(crc32c(0, inc, 32), 0x46DD794Eu);
  VLK_CHECK_EQ(crc32c(0, dec, 32), 0x113FDB5Cu);
  VLK_CHECK_EQ(crc32c_portable(0, dec, 32), 0x113FDB5Cu);
  if (vlk::core::crc32c_hw_available()) {
    VLK_CHECK_EQ(vlk::core::crc32c_hw(0, check, 9), 0xE3069283u);
    VLK_CHECK_EQ(vlk::core::crc32c_hw(0, inc, 32), 0x46DD794Eu);
  } else {
    std::printf("note: no SSE4.2 here; only the portable CRC32C is tested\n");
  }
}

VLK_TEST(index_file_crc32c_hw_equals_portable_and_chains) {
  Rng rng(11);
  std::vector<uint8_t> buf(4096 + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng.next());
  const bool hw = vlk::core::crc32c_hw_available();
  for (size_t start = 0; start < 16; ++start) {
    for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(8), size_t(9), size_t(63), size_t(64), size_t(65),
                     size_t(255), size_t(1000), size_t(4096)}) {
      const uint32_t sw = vlk::core::crc32c_portable(0, buf.data() + start, n);
      if (hw) {
        VLK_CHECK_EQ(vlk::core::crc32c_hw(0, buf.data() + start, n), sw) << start << "+" << n;
      }
      VLK_CHECK_EQ(vlk::core::crc32c(0, buf.data() + start, n), sw) << start << "+" << n;
      // Running form: any split gives the same value.
      const size_t cut = n / 3;
      VLK_CHECK_EQ(vlk::core::crc32c(vlk::core::crc32c(0, buf.data() + start, cut), buf.data() + start + cut, n - cut),
                   sw)
          << start << "+" << n;
      VLK_CHECK_EQ(vlk::core::crc32c_portable(vlk::core::crc32c_portable(0, buf.data() + start, cut),
                                              buf.data() + start + cut, n - cut),
                   sw)
          << start << "+" << n;
    }
  }
}

// ---- round trips ------------------------------------------------------------------------------

VLK_TEST(index_file_round_trips_bit_exact) {
  TempDir dir;
  VLK_CHECK(!dir.path.empty());
  const std::string path = dir.file("rt.vlk");
  struct Mode {
    Storage storage;
    bool has_f32;
  };
  const Mode modes[] = {{Storage::kF32, true},
                        {Storage::kBF16, true},
                        {Storage::kBF16, false},
                        {Storage::kI8, true},
                        {Storage::kI8, false}};
  uint64_t seed = 100;
  for (const Mode& m : modes) {
    for (int64_t count : {int64_t(0), int64_t(1), int64_t(37)}) {
      for (int64_t dim : {int64_t(1), int64_t(7), int64_t(513)}) {
        const Owned o = make_owned(m.storage, m.has_f32, count, dim, ++seed);
        const IndexImage im = o.image();
        const std::string what = std::string(vlk::core::storage_name(m.storage)) + (m.has_f32 ? "+f32" : "") +
                                 " count " + std::to_string(count) + " dim " + std::to_string(dim);
        const std::vector<uint8_t> bytes = encode(im);
        VLK_CHECK_EQ(static_cast<int64_t>(bytes.size()), vlk::core::encoded_size(im)) << what;
        IoOptions small;
        small.chunk_bytes = 64;
        VLK_CHECK(encode(im, small) == bytes) << what << ": encoding depends on the chunk size";

        for (int64_t chunk : {int64_t(0), int64_t(64)}) {
          IoOptions opts;
          opts.chunk_bytes = chunk;
          LoadedIndex dec;
          Status s = vlk::core::decode_index(bytes.data(), static_cast<int64_t>(bytes.size()), &dec, opts);
          VLK_CHECK(s.ok()) << what << ": " << s.message;
          VLK_CHECK(!dec.mapped && dec.owner != nullptr) << what;
          check_same_image(im, dec.image, what + " decode");

          s = vlk::core::write_index_file(path, im, opts);
          VLK_CHECK(s.ok()) << what << ": " << s.message;
          VLK_CHECK(read_bytes(path) == bytes) << what << ": file differs from encode_index";
          VLK_CHECK_EQ(join(list_dir(dir.path)), "rt.vlk") << what;
          for (bool mmap : {false, true}) {
            LoadedIndex rd;
            s = vlk::core::read_index_file(path, mmap, &rd, opts);
            VLK_CHECK(s.ok()) << what << " mmap " << mmap << ": " << s.message;
            VLK_CHECK_EQ(rd.mapped, mmap) << what;
            check_same_image(im, rd.image, what + (mmap ? " read mmap" : " read"));
          }
        }
      }
    }
  }
}

VLK_TEST(index_file_mapping_outlives_the_loaded_index) {
  TempDir dir;
  const std::string path = dir.file("m.vlk");
  const Owned o = make_owned(Storage::kBF16, true, 50, 33, 7);
  VLK_CHECK(vlk::core::write_index_file(path, o.image(), IoOptions()).ok());
  std::shared_ptr<const void> keep;
  IndexImage view;
  {
    LoadedIndex li;
    VLK_CHECK(vlk::core::read_index_file(path, true, &li, IoOptions()).ok());
    keep = li.owner;
    view = li.image;
  }
  // The file may even go away: the mapping stays valid while the owner lives.
  VLK_CHECK_EQ(unlink(path.c_str()), 0);
  check_same_image(o.image(), view, "after the LoadedIndex is gone");
  keep.reset();
}

VLK_TEST(index_file_header_fields_are_as_documented) {
  const Owned o = make_owned(Storage::kI8, true, 5, 7, 3);
  const std::vector<uint8_t> b = encode(o.image());
  VLK_CHECK(std::memcmp(b.data(), "VLKFLAT\0", 8) == 0);
  VLK_CHECK_EQ(b[8], 1);       // version
  VLK_CHECK_EQ(b[12], 128);    // header size
  VLK_CHECK_EQ(b[16], 7);      // dim
  VLK_CHECK_EQ(b[24], 2);      // storage i8
  VLK_CHECK_EQ(b[28], 1);      // flags: has_f32
  VLK_CHECK_EQ(b[32], 5);      // count
  // ids at 128 (40 bytes), f32 at 192 (140), codes at 384 (35), scales at 448 (20); 468 bytes.
  VLK_CHECK_EQ(sec_off(b, 0), 128u);
  VLK_CHECK_EQ(sec_len(b, 0), 40u);
  VLK_CHECK_EQ(sec_off(b, 1), 192u);
  VLK_CHECK_EQ(sec_len(b, 1), 140u);
  VLK_CHECK_EQ(sec_off(b, 2), 384u);
  VLK_CHECK_EQ(sec_len(b, 2), 35u);
  VLK_CHECK_EQ(sec_off(b, 3), 448u);
  VLK_CHECK_EQ(sec_len(b, 3), 20u);
  VLK_CHECK_EQ(b.size(), 468u);
  for (int i = 116; i < 124; ++i) VLK_CHECK_EQ(b[i], 0) << i;
  // An empty index is the header alone.
  const Owned e = make_owned(Storage::kF32, true, 0, 4, 1);
  const std::vector<uint8_t> eb = encode(e.image());
  VLK_CHECK_EQ(eb.size(), 128u);
  for (int s = 0; s < 4; ++s) VLK_CHECK(sec_off(eb, s) == 0 && sec_len(eb, s) == 0) << s;
}

// ---- corruption -------------------------------------------------------------------------------

VLK_TEST(index_file_rejects_corruption) {
  TempDir dir;
  // i8 + f32, count 5, dim 7: all four sections (ids 128+40, f32 192+140, codes 384+35, scales 448+20).
  const Owned o = make_owned(Storage::kI8, true, 5, 7, 3);
  const std::vector<uint8_t> good = encode(o.image());
  VLK_CHECK_EQ(good.size(), 468u);
  const Owned of = make_owned(Storage::kF32, true, 4, 5, 4);
  const std::vector<uint8_t> good_f32 = encode(of.image());
  const Owned ob = make_owned(Storage::kBF16, false, 4, 5, 5);
  const std::vector<uint8_t> good_bf16 = encode(ob.image());

  struct Case {
    std::string name;
    const std::vector<uint8_t>* base;
    std::function<void(std::vector<uint8_t>&)> edit;
    Code code;
    std::vector<std::string> words;
  };
  std::vector<Case> cases;
  auto add = [&](std::string name, std::function<void(std::vector<uint8_t>&)> edit, std::vector<std::string> words,
                 const std::vector<uint8_t>* base = nullptr) {
    cases.push_back({std::move(name), base ? base : &good, std::move(edit), Code::kCorrupt, std::move(words)});
  };

  // Truncation at every header field boundary (and inside the header).
  for (size_t cut : {0, 1, 7, 8, 12, 16, 20, 24, 28, 32, 40, 48, 64, 80, 96, 112, 116, 124, 127}) {
    add("header truncated to " + std::to_string(cut), [cut](Bytes& b) { b.resize(cut); },
        {"header", "truncated"});
  }
  // Truncation inside each section, and at the section boundaries.
  const char* names[4] = {"ids", "f32", "codes", "scales"};
  const uint64_t offs[4] = {128, 192, 384, 448}, lens[4] = {40, 140, 35, 20};
  for (int s = 0; s < 4; ++s) {
    for (uint64_t at : {offs[s], offs[s] + 1, offs[s] + lens[s] / 2, offs[s] + lens[s] - 1}) {
      add(std::string("truncated inside ") + names[s] + " at " + std::to_string(at),
          [at](Bytes& b) { b.resize(at); }, {std::string("section ") + names[s], "past the end"});
    }
  }
  add("truncated in the padding after ids", [](Bytes& b) { b.resize(180); },
      {"section f32", "past the end"});

  // Every single flipped header byte: the field checked first names it.
  for (int i = 0; i < fmt::kHeaderSize; ++i) {
    const std::string word = i < 8    ? "magic"
                             : i < 12 ? "unsupported index format version"
                             : i < 16 ? "header_size"
                                      : "header checksum";
    add("header byte " + std::to_string(i) + " flipped", [i](Bytes& b) { b[size_t(i)] ^= 0x5a; }, {word});
  }
  // A sample of flipped payload bytes, in every section and in padding.
  for (size_t i = 128; i < 468; i += 9) {
    add("payload byte " + std::to_string(i) + " flipped", [i](Bytes& b) { b[i] ^= 0x01; },
        {"payload checksum"});
  }
  add("last byte flipped", [](Bytes& b) { b.back() ^= 0x80; }, {"payload checksum"});
  add("stored payload checksum changed", [](Bytes& b) { b[fmt::kOffPayloadCrc] ^= 1; fix_header_crc(b); },
      {"payload checksum", "stored", "computed"});
  add("stored header checksum changed", [](Bytes& b) { b[fmt::kOffHeaderCrc + 3] ^= 1; },
      {"header checksum"});

  // Header fields, with the header checksum recomputed so that only the field check catches them.
  add("wrong magic", [](Bytes& b) { b[6] = 'X'; fix_header_crc(b); }, {"magic", "VLKFLAX", "not a vlkernels index"});
  add("png magic", [](Bytes& b) { std::memcpy(b.data(), "\x89PNG\r\n\x1a\n", 8); }, {"magic", "\\x89PNG"});
  add("future version", [](Bytes& b) { put32(b, fmt::kOffVersion, 2); fix_header_crc(b); },
      {"unsupported index format version 2; this build reads version 1"});
  add("version 0", [](Bytes& b) { put32(b, fmt::kOffVersion, 0); fix_header_crc(b); },
      {"unsupported index format version 0"});
  add("future version in a short file", [](Bytes& b) { put32(b, fmt::kOffVersion, 7); b.resize(40); },
      {"unsupported index format version 7"});
  add("header_size 256", [](Bytes& b) { put32(b, fmt::kOffHeaderSize, 256); fix_header_crc(b); },
      {"header_size", "256", "expected 128"});
  add("unknown metric", [](Bytes& b) { put32(b, fmt::kOffMetric, 3); fix_header_crc(b); }, {"metric", "3"});
  add("unknown storage", [](Bytes& b) { put32(b, fmt::kOffStorage, 9); fix_header_crc(b); }, {"storage", "9"});
  add("unknown flag bit 1", [](Bytes& b) { put32(b, fmt::kOffFlags, 3); fix_header_crc(b); },
      {"flags", "unknown bits 0x00000002"});
  add("unknown flag bit 31", [](Bytes& b) { put32(b, fmt::kOffFlags, 0x80000001u); fix_header_crc(b); },
      {"flags", "0x80000000"});
  add("f32 storage without has_f32", [](Bytes& b) { put32(b, fmt::kOffFlags, 0); fix_header_crc(b); },
      {"flags", "has_f32"}, &good_f32);
  add("has_f32 cleared but f32 section present", [](Bytes& b) { put32(b, fmt::kOffFlags, 0); fix_header_crc(b); },
      {"section f32", "length 140, expected 0"});
  add("reserved byte 116", [](Bytes& b) { b[116] = 1; fix_header_crc(b); }, {"reserved", "offset 116"});
  add("reserved byte 123", [](Bytes& b) { b[123] = 0x80; fix_header_crc(b); }, {"reserved", "offset 123"});
  add("dim 0", [](Bytes& b) { put32(b, fmt::kOffDim, 0); fix_header_crc(b); }, {"dim", "found 0", "1..1048576"});
  add("dim 2^20 + 1", [](Bytes& b) { put32(b, fmt::kOffDim, (1u << 20) + 1); fix_header_crc(b); },
      {"dim", "1048577"});
  add("dim 2^32 - 1", [](Bytes& b) { put32(b, fmt::kOffDim, 0xffffffffu); fix_header_crc(b); },
      {"dim", "4294967295"});
  add("dim 8 instead of 7", [](Bytes& b) { put32(b, fmt::kOffDim, 8); fix_header_crc(b); },
      {"section f32", "length 140, expected 160", "dim 8"});
  add("negative count", [](Bytes& b) { put64(b, fmt::kOffCount, uint64_t(-1)); fix_header_crc(b); },
      {"count", "-1"});
  add("count whose count*dim*4 overflows", [](Bytes& b) {
        put64(b, fmt::kOffCount, uint64_t(INT64_MAX / 16)); fix_header_crc(b); }, {"count", "overflow"});
  add("count 2^62", [](Bytes& b) { put64(b, fmt::kOffCount, uint64_t(1) << 62); fix_header_crc(b); },
      {"count", "overflow"});
  add("count larger than the file", [](Bytes& b) {
        put64(b, fmt::kOffCount, 50); set_i8_layout(b, 50, 7); fix_header_crc(b); },
      {"section ids", "past the end", "count 50"});
  add("count 10^12 with a consistent section table", [](Bytes& b) {
        put64(b, fmt::kOffCount, 1000000000000ull); set_i8_layout(b, 1000000000000ull, 7); fix_header_crc(b); },
      {"past the end", "count 1000000000000"});
  add("count 6 with the last row missing", [](Bytes& b) {
        put64(b, fmt::kOffCount, 6); set_i8_layout(b, 6, 7); fix_header_crc(b); },
      {"section scales", "past the end", "count 6"});
  add("negative next_auto_id", [](Bytes& b) { put64(b, fmt::kOffNextAutoId, uint64_t(-5)); fix_header_crc(b); },
      {"next_auto_id", "-5"});

  // Section table, checksums recomputed.
  add("ids length off by 8", [](Bytes& b) { set_sec(b, 0, 128, 48); fix_header_crc(b); },
      {"section ids", "length 48, expected 40"});
  add("scales length 0", [](Bytes& b) { set_sec(b, 3, 0, 0); fix_header_crc(b); },
      {"section scales", "length 0, expected 20"});
  add("f32 offset misaligned", [](Bytes& b) { set_sec(b, 1, 200, 140); fix_header_crc(b); },
      {"section f32", "offset 200", "misaligned"});
  add("ids offset misaligned", [](Bytes& b) { set_sec(b, 0, 136, 40); fix_header_crc(b); },
      {"section ids", "misaligned"});
  add("f32 overlaps ids", [](Bytes& b) { set_sec(b, 1, 128, 140); fix_header_crc(b); },
      {"section f32", "overlaps section ids"});
  add("ids overlaps the header", [](Bytes& b) { set_sec(b, 0, 64, 40); fix_header_crc(b); },
      {"section ids", "overlaps the header"});
  add("ids at offset 0", [](Bytes& b) { set_sec(b, 0, 0, 40); fix_header_crc(b); },
      {"section ids", "overlaps the header"});
  add("scales overlaps codes", [](Bytes& b) { set_sec(b, 3, 384, 20); fix_header_crc(b); },
      {"section scales", "overlaps section codes"});
  add("ids placed after f32 (out of order)", [](Bytes& b) {
        set_sec(b, 0, 320, 40); set_sec(b, 1, 128, 140); fix_header_crc(b); }, {"section ids", "expected 128"});
  add("codes offset out of the file", [](Bytes& b) { set_sec(b, 2, uint64_t(1) << 40, 35); fix_header_crc(b); },
      {"section codes", "past the end"});
  add("codes offset + length wraps around", [](Bytes& b) { set_sec(b, 2, ~uint64_t(0) - 10, 35); fix_header_crc(b); },
      {"section codes", "past the end"});
  add("gap before f32", [](Bytes& b) { set_sec(b, 1, 256, 140); fix_header_crc(b); },
      {"section f32", "offset 256, expected 192"});
  add("empty codes section with an offset", [](Bytes& b) { set_sec(b, 2, 64, 0); fix_header_crc(b); },
      {"section codes", "empty but offset 64"}, &good_f32);
  add("trailing bytes", [](Bytes& b) { b.resize(b.size() + 64, 0); fix_crcs(b); }, {"trailing bytes"});
  add("one trailing byte", [](Bytes& b) { b.push_back(0); fix_crcs(b); }, {"1 trailing bytes"});

  // Contents, payload checksum recomputed.
  add("non-zero padding", [](Bytes& b) { b[170] = 1; fix_crcs(b); }, {"padding before section f32", "offset 170"});
  add("NaN in f32", [](Bytes& b) { put32(b, 192 + 4 * (2 * 7 + 3), 0x7fc00000u); fix_crcs(b); },
      {"section f32", "row 2 col 3", "NaN"});
  add("-Infinity in the last f32", [](Bytes& b) { put32(b, 192 + 4 * 34, 0xff800000u); fix_crcs(b); },
      {"section f32", "row 4 col 6", "-Infinity"});
  add("negative id", [](Bytes& b) { put64(b, 128 + 8, uint64_t(-3)); fix_crcs(b); },
      {"section ids", "row 1", "-3", "negative"});
  add("id not below next_auto_id", [](Bytes& b) {
        put64(b, 128 + 8 * 4, get64(b, fmt::kOffNextAutoId)); fix_crcs(b); }, {"section ids", "row 4", "next_auto_id"});
  add("negative i8 scale", [](Bytes& b) { put32(b, 448 + 4 * 2, float_bits(-0.5f)); fix_crcs(b); },
      {"section scales", "row 2", "-0.5"});
  add("NaN i8 scale", [](Bytes& b) { put32(b, 448 + 4 * 4, 0x7fc00000u); fix_crcs(b); },
      {"section scales", "row 4", "nan"});
  add("infinite bf16 code", [](Bytes& b) {
        b[sec_off(b, 2) + 2 * 6] = 0x80; b[sec_off(b, 2) + 2 * 6 + 1] = 0x7f; fix_crcs(b); },
      {"section codes", "row 1 col 1", "bf16"}, &good_bf16);

  for (const Case& c : cases) {
    std::vector<uint8_t> bytes = *c.base;
    c.edit(bytes);
    expect_rejected(c.name, bytes, c.code, c.words, dir);
  }
  VLK_CHECK(cases.size() >= 25) << cases.size();
  // The untouched encodings are accepted (the table tests edits, not the bases).
  for (const auto* b : {&good, &good_f32, &good_bf16}) {
    LoadedIndex li;
    VLK_CHECK(vlk::core::decode_index(b->data(), static_cast<int64_t>(b->size()), &li, IoOptions()).ok());
  }
}

VLK_TEST(index_file_read_errors_are_io) {
  TempDir dir;
  LoadedIndex li;
  const std::string missing = dir.file("missing.vlk");
  for (bool mmap : {false, true}) {
    Status s = vlk::core::read_index_file(missing, mmap, &li, IoOptions());
    VLK_CHECK_EQ(s.code, Code::kIo) << s.message;
    VLK_CHECK(contains(s.message, missing) && contains(s.message, "No such file")) << s.message;
    s = vlk::core::read_index_file(dir.path, mmap, &li, IoOptions());
    VLK_CHECK_EQ(s.code, Code::kIo) << s.message;
    VLK_CHECK(contains(s.message, "not a regular file")) << s.message;
    // An empty file is a corrupt index, not an I/O error.
    const std::string empty = dir.file("empty.vlk");
    VLK_CHECK(write_bytes(empty, {}));
    s = vlk::core::read_index_file(empty, mmap, &li, IoOptions());
    VLK_CHECK_EQ(s.code, Code::kCorrupt) << s.message;
    VLK_CHECK(contains(s.message, "header")) << s.message;
  }
  VLK_CHECK(li.owner == nullptr);
  // decode_index's own argument checks.
  VLK_CHECK_EQ(vlk::core::decode_index(nullptr, 10, &li, IoOptions()).code, Code::kInvalidArg);
  VLK_CHECK_EQ(vlk::core::decode_index(nullptr, 0, &li, IoOptions()).code, Code::kCorrupt);
}

// ---- writer -----------------------------------------------------------------------------------

VLK_TEST(index_file_writer_validates_the_image) {
  const Owned good = make_owned(Storage::kI8, true, 6, 5, 9);
  std::vector<uint8_t> out(4096);
  auto enc = [&](const IndexImage& im) {
    return vlk::core::encode_index(im, out.data(), static_cast<int64_t>(out.size()), IoOptions());
  };
  VLK_CHECK(enc(good.image()).ok());
  struct Bad {
    const char* name;
    std::function<void(Owned&, IndexImage&)> edit;
    Code code;
    const char* word;
  };
  // Each edit changes the copy `o` (whose arrays `im` points into) or `im` itself.
  using Im = IndexImage;
  const std::vector<Bad> bads = {
      {"dim 0", [](Owned&, Im& im) { im.dim = 0; }, Code::kInvalidArg, "dim"},
      {"dim 2^20 + 1", [](Owned&, Im& im) { im.dim = (1 << 20) + 1; }, Code::kInvalidArg, "dim"},
      {"negative count", [](Owned&, Im& im) { im.count = -1; }, Code::kInvalidArg, "count"},
      {"huge count", [](Owned&, Im& im) { im.count = INT64_MAX / 8; }, Code::kInvalidArg, "too large"},
      {"unknown storage", [](Owned&, Im& im) { im.storage = static_cast<Storage>(5); }, Code::kInvalidArg, "storage"},
      {"f32 without has_f32", [](Owned&, Im& im) { im.storage = Storage::kF32; im.has_f32 = false; },
       Code::kInvalidArg, "has_f32"},
      {"null ids", [](Owned&, Im& im) { im.ids = nullptr; }, Code::kInvalidArg, "ids"},
      {"null f32", [](Owned&, Im& im) { im.f32 = nullptr; }, Code::kInvalidArg, "f32"},
      {"null codes", [](Owned&, Im& im) { im.codes = nullptr; }, Code::kInvalidArg, "codes"},
      {"null scales", [](Owned&, Im& im) { im.scales = nullptr; }, Code::kInvalidArg, "scales"},
      {"negative next_auto_id", [](Owned&, Im& im) { im.next_auto_id = -1; }, Code::kInvalidArg, "next_auto_id"},
      {"negative id", [](Owned& o, Im&) { o.ids[2] = -4; }, Code::kInvalidArg, "row 2"},
      {"id == next_auto_id", [](Owned& o, Im&) { o.ids[5] = o.next_auto_id; }, Code::kInvalidArg, "next_auto_id"},
      {"NaN in f32", [](Owned& o, Im&) { o.f32[7] = std::nanf(""); }, Code::kNonFinite, "row 1 col 2"},
      {"negative scale", [](Owned& o, Im&) { o.scales[4] = -1.0f; }, Code::kInvalidArg, "row 4"},
      {"infinite scale", [](Owned& o, Im&) { o.scales[0] = INFINITY; }, Code::kNonFinite, "row 0"},
  };
  for (const Bad& b : bads) {
    Owned o = good;
    IndexImage im = o.image();
    b.edit(o, im);
    const Status s = enc(im);
    VLK_CHECK_EQ(s.code, b.code) << b.name << ": " << s.message;
    VLK_CHECK(contains(s.message, b.word)) << b.name << ": " << s.message;
  }
  // An id equal to INT64_MAX is fine when next_auto_id saturated there (as FlatIndex does).
  {
    Owned o = good;
    o.ids[3] = INT64_MAX;
    o.next_auto_id = INT64_MAX;
    VLK_CHECK(enc(o.image()).ok());
    const std::vector<uint8_t> bytes = encode(o.image());
    LoadedIndex li;
    VLK_CHECK(vlk::core::decode_index(bytes.data(), static_cast<int64_t>(bytes.size()), &li, IoOptions()).ok());
  }
  // Output buffer too small.
  const int64_t need = vlk::core::encoded_size(good.image());
  const Status s = vlk::core::encode_index(good.image(), out.data(), need - 1, IoOptions());
  VLK_CHECK_EQ(s.code, Code::kInvalidArg) << s.message;
  VLK_CHECK(contains(s.message, std::to_string(need))) << s.message;
  VLK_CHECK_EQ(vlk::core::encoded_size(IndexImage()), -1);  // dim 0
}

VLK_TEST(index_file_write_failures_leave_the_target_untouched) {
  TempDir dir;
  const std::string target = dir.file("index.vlk");
  const Owned old_index = make_owned(Storage::kF32, true, 10, 8, 21);
  VLK_CHECK(vlk::core::write_index_file(target, old_index.image(), IoOptions()).ok());
  const std::vector<uint8_t> before = read_bytes(target);
  VLK_CHECK_EQ(join(list_dir(dir.path)), "index.vlk");
  // About 2 MiB, written in 64 KiB chunks.
  const Owned big = make_owned(Storage::kBF16, true, 1000, 341, 22);

  // A directory that does not exist.
  {
    const std::string p = dir.file("no/such/dir/index.vlk");
    const Status s = vlk::core::write_index_file(p, big.image(), IoOptions());
    VLK_CHECK_EQ(s.code, Code::kIo) << s.message;
    VLK_CHECK(contains(s.message, "no/such/dir") && contains(s.message, "No such file or directory")) << s.message;
    VLK_CHECK_EQ(join(list_dir(dir.path)), "index.vlk");
  }
  // Cancelled before starting, and in the middle (from the progress callback).
  {
    CancelFlag flag;
    flag.cancel();
    IoOptions o;
    o.cancel = &flag;
    VLK_CHECK_EQ(vlk::core::write_index_file(target, big.image(), o).code, Code::kAborted);
    CancelFlag mid;
    ProgressLog log;
    log.cancel_after_first = &mid;
    IoOptions om = log.opts(64 * 1024);
    om.cancel = &mid;
    const Status s = vlk::core::write_index_file(target, big.image(), om);
    VLK_CHECK_EQ(s.code, Code::kAborted) << s.message;
    VLK_CHECK(log.calls.size() >= 2 && log.calls.back().first < vlk::core::encoded_size(big.image()));
    VLK_CHECK(read_bytes(target) == before);
    VLK_CHECK_EQ(join(list_dir(dir.path)), "index.vlk");
  }
  // Invalid contents discovered mid-write (a NaN in the last row).
  {
    Owned bad = big;
    bad.f32.back() = std::nanf("");
    IoOptions o;
    o.chunk_bytes = 64 * 1024;
    const Status s = vlk::core::write_index_file(target, bad.image(), o);
    VLK_CHECK_EQ(s.code, Code::kNonFinite) << s.message;
    VLK_CHECK(read_bytes(target) == before);
    VLK_CHECK_EQ(join(list_dir(dir.path)), "index.vlk");
  }
  // The target is a directory: the rename fails.
  {
    VLK_CHECK_EQ(mkdir(dir.file("sub").c_str(), 0755), 0);
    const Status s = vlk::core::write_index_file(dir.file("sub"), old_index.image(), IoOptions());
    VLK_CHECK_EQ(s.code, Code::kIo) << s.message;
    VLK_CHECK(contains(s.message, "rename")) << s.message;
    VLK_CHECK_EQ(join(list_dir(dir.path)), "index.vlk,sub");
    VLK_CHECK_EQ(join(list_dir(dir.file("sub"))), "");
  }
  // A write that the system refuses (file size limit: EFBIG) part way through.
  {
    struct rlimit old_limit;
    if (getrlimit(RLIMIT_FSIZE, &old_limit) == 0) {
      struct rlimit lim = old_limit;
      lim.rlim_cur = 1 << 20;  // 1 MiB; the image is about 2 MiB
      void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
      const bool limited = setrlimit(RLIMIT_FSIZE, &lim) == 0;
      IoOptions o;
      o.chunk_bytes = 64 * 1024;
      const Status s = limited ? vlk::core::write_index_file(target, big.image(), o) : Status();
      setrlimit(RLIMIT_FSIZE, &old_limit);
      signal(SIGXFSZ, old_handler);
      if (limited) {
        VLK_CHECK_EQ(s.code, Code::kIo) << s.message;
        VLK_CHECK(contains(s.message, "File too large") && contains(s.message, "index.vlk")) << s.message;
        VLK_CHECK(read_bytes(target) == before);
        VLK_CHECK_EQ(join(list_dir(dir.path)), "index.vlk,sub");
      }
    }
  }
  // And a successful write replaces it.
  VLK_CHECK(vlk::core::write_index_file(target, big.image(), IoOptions()).ok());
  VLK_CHECK(read_bytes(target) == encode(big.image()));
  VLK_CHECK_EQ(join(list_dir(dir.path)), "index.vlk,sub");
  struct stat st;
  VLK_CHECK(stat(target.c_str(), &st) == 0 && (st.st_mode & 0600) == 0600);
  // A relative path (no directory part) works too.
  char cwd[4096];
  VLK_CHECK(getcwd(cwd, sizeof(cwd)) != nullptr);
  VLK_CHECK_EQ(chdir(dir.path.c_str()), 0);
  VLK_CHECK(vlk::core::write_index_file("rel.vlk", old_index.image(), IoOptions()).ok());
  VLK_CHECK_EQ(chdir(cwd), 0);
  VLK_CHECK(read_bytes(dir.file("rel.vlk")) == before);
}

VLK_TEST(index_file_progress_is_monotone_and_ends_at_total) {
  TempDir dir;
  const std::string path = dir.file("p.vlk");
  const Owned o = make_owned(Storage::kI8, true, 300, 100, 31);  // about 160 KB
  const int64_t total = vlk::core::encoded_size(o.image());
  const int64_t chunk = 4096;
  const size_t min_calls = static_cast<size_t>(total / chunk);  // one per chunk, give or take
  {
    ProgressLog log;
    std::vector<uint8_t> out(static_cast<size_t>(total));
    VLK_CHECK(vlk::core::encode_index(o.image(), out.data(), total, log.opts(chunk)).ok());
    log.check(total, min_calls, "encode");
  }
  {
    ProgressLog log;
    VLK_CHECK(vlk::core::write_index_file(path, o.image(), log.opts(chunk)).ok());
    log.check(total, min_calls, "write");
  }
  {
    ProgressLog log;
    const std::vector<uint8_t> bytes = read_bytes(path);
    LoadedIndex li;
    VLK_CHECK(vlk::core::decode_index(bytes.data(), total, &li, log.opts(chunk)).ok());
    log.check(total, min_calls, "decode");
  }
  for (bool mmap : {false, true}) {
    ProgressLog log;
    LoadedIndex li;
    VLK_CHECK(vlk::core::read_index_file(path, mmap, &li, log.opts(chunk)).ok());
    log.check(total, min_calls, mmap ? "read mmap" : "read");
  }
  {  // Default chunk: start and end only.
    ProgressLog log;
    LoadedIndex li;
    VLK_CHECK(vlk::core::read_index_file(path, false, &li, log.opts(0)).ok());
    log.check(total, 2, "read, default chunk");
    VLK_CHECK_EQ(log.calls.size(), 2u);
  }
  {  // Cancelled reads return nothing.
    CancelFlag flag;
    ProgressLog log;
    log.cancel_after_first = &flag;
    for (bool mmap : {false, true}) {
      IoOptions opts = log.opts(chunk);
      opts.cancel = &flag;
      LoadedIndex li;
      const Status s = vlk::core::read_index_file(path, mmap, &li, opts);
      VLK_CHECK_EQ(s.code, Code::kAborted) << s.message;
      VLK_CHECK(li.owner == nullptr);
    }
  }
}

// Found by fuzz_index_file: a bf16 approximate image whose row decodes to -6.6e35 loaded, and an l2
// search then dropped that row silently (1 result of 2). Rows add() refuses are refused at load,
// in every storage mode, naming the row and the id.
VLK_TEST(index_file_rows_whose_products_overflow_are_corrupt_at_load) {
  const float huge = -6.64614e35f;  // squared: 4.4e71, far above float32
  for (int mode = 0; mode < 4; ++mode) {
    Owned o;
    o.dim = 4;
    o.metric = Metric::kL2;
    o.count = 2;
    o.next_auto_id = 9;
    o.ids = {1, 8};
    o.storage = mode == 0 ? Storage::kF32 : mode == 3 ? Storage::kI8 : Storage::kBF16;
    o.has_f32 = mode == 0 || mode == 1;
    o.f32 = {0, 0, 0, 0, huge, 0, 0, -3.25f};
    if (o.storage == Storage::kBF16) {
      for (float v : o.f32) o.bf16.push_back(static_cast<uint16_t>(float_bits(v) >> 16));
    } else if (o.storage == Storage::kI8) {
      o.i8 = {0, 0, 0, 0, -127, 0, 0, 1};
      o.scales = {1.0f, 5e36f};  // row 1: 127 x 5e36 = 6.4e38 overflows; a finite scale the writer takes
    }
    const std::string what = "mode " + std::to_string(mode);
    const std::vector<uint8_t> bytes = encode(o.image());
    LoadedIndex li;
    Status s = vlk::core::decode_index(bytes.data(), static_cast<int64_t>(bytes.size()), &li, IoOptions());
    VLK_CHECK(s.ok()) << what << ": " << s.message;
    std::shared_ptr<vlk::core::FlatIndex> index;
    s = vlk::core::FlatIndex::from_loaded(li, &index);
    VLK_CHECK_EQ(static_cast<int>(s.code), static_cast<int>(vlk::Code::kCorrupt)) << what << ": " << s.message;
    VLK_CHECK(s.message.find("row 1 (id 8)") != std::string::npos) << what << ": " << s.message;
    // The same rows at a magnitude add() takes load.
    for (float& v : o.f32) v = v == huge ? -3.0e10f : v;
    for (uint16_t& b : o.bf16) b = b == static_cast<uint16_t>(float_bits(huge) >> 16) ? static_cast<uint16_t>(float_bits(-3.0e10f) >> 16) : b;
    if (o.storage == Storage::kI8) o.scales[1] = 1e8f;
    const std::vector<uint8_t> ok_bytes = encode(o.image());
    LoadedIndex li2;
    VLK_CHECK(vlk::core::decode_index(ok_bytes.data(), static_cast<int64_t>(ok_bytes.size()), &li2, IoOptions()).ok()) << what;
    s = vlk::core::FlatIndex::from_loaded(li2, &index);
    VLK_CHECK(s.ok()) << what << ": " << s.message;
  }
}
