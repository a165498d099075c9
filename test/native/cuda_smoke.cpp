// Smoke check of the CUDA backend without Node (CMake target vlk_cuda_smoke, built with VLK_CUDA=ON):
// links native/cuda with the core, prints device_info(), and
//  - without a usable GPU: cuda::search must fail with kNoDevice naming device_info().reason
//    (exit 0: that is the expected state of a CI machine; the line says "skipped");
//  - with one: kExact must equal core::search (ids and scores, bit for bit) for ip, cosine and l2
//    on small shapes with ties, per call (cuda::search) and against a resident gallery
//    (upload_gallery once, search_resident, with host rows and without), with and without filters
//    (allow bits, unsorted per-query exclusions with duplicates); kBf16 must succeed and return valid rows.
//    Without a usable GPU upload_gallery must be kNoDevice too.
// Exit status 0 on success, 1 on a mismatch. The full comparison lives in test/cuda.test.ts.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"
#include "cuda/common/cuda_api.hpp"
#include "search/search.hpp"
#include "test_util.hpp"

namespace {

using vlk::Code;
using vlk::Context;
using vlk::MatrixView;
using vlk::Status;
using vlk::core::Metric;

std::string version(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

struct Run {
  std::vector<int32_t> ids;
  std::vector<float> scores;
  std::vector<int32_t> counts;
  Status status;
};

// Where a run goes: core::search, cuda::search, or search_resident on `resident` (with the host
// rows in args.gallery, or with null data).
enum class Path { kCore, kCuda, kResident, kResidentNoHost };

Run run(Path path, vlk::cuda::Precision precision, const std::vector<float>& q, const std::vector<float>& g,
        int64_t nq, int64_t n, int64_t d, int64_t k, Metric metric, const vlk::core::SearchFilter& filter = {},
        const vlk::cuda::DeviceGallery* resident = nullptr) {
  vlk::core::SearchArgs args;
  args.queries = MatrixView<const float>(q.data(), nq, d);
  args.gallery = MatrixView<const float>(path == Path::kResidentNoHost ? nullptr : g.data(), n, d);
  args.k = k;
  args.metric = metric;
  args.filter = filter;
  Run r;
  r.ids.assign(static_cast<size_t>(nq * k), -2);
  r.scores.assign(static_cast<size_t>(nq * k), 0.0f);
  r.counts.assign(static_cast<size_t>(nq), -2);
  vlk::core::SearchOut out;
  out.indices = r.ids.data();
  out.scores = r.scores.data();
  out.counts = r.counts.data();
  Context ctx;  // calling thread, scalar path: the reference
  switch (path) {
    case Path::kCore:
      r.status = vlk::core::search(args, out, ctx);
      break;
    case Path::kCuda:
      r.status = vlk::cuda::search(args, out, ctx, precision);
      break;
    default:
      r.status = resident != nullptr ? vlk::cuda::search_resident(*resident, args, out, ctx, precision)
                                     : Status(Code::kInternal, "no resident gallery");
  }
  return r;
}

// Differences between two runs' entries (ids, scores, counts), printed once; 0 or 1.
int compare(const Run& want, const Run& got, const std::string& where) {
  if (!want.status.ok() || !got.status.ok()) {
    std::printf("FAIL %s: reference %s, under test %s (%s)\n", where.c_str(), vlk::code_string(want.status.code),
                vlk::code_string(got.status.code), got.status.message.c_str());
    return 1;
  }
  for (size_t i = 0; i < want.ids.size(); ++i) {
    const bool same_score = want.scores[i] == got.scores[i] || (std::isnan(want.scores[i]) && std::isnan(got.scores[i]));
    if (want.ids[i] != got.ids[i] || !same_score) {
      std::printf("FAIL %s: entry %zu: cpu %d %.9g, cuda %d %.9g\n", where.c_str(), i, want.ids[i],
                  static_cast<double>(want.scores[i]), got.ids[i], static_cast<double>(got.scores[i]));
      return 1;
    }
  }
  if (want.counts != got.counts) {
    std::printf("FAIL %s: counts differ\n", where.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main() {
  const vlk::cuda::DeviceInfo& info = vlk::cuda::device_info();
  std::printf("cuda: built %s, usable %s, devices %d, runtime %s, driver %s\n", info.built ? "yes" : "no",
              info.usable ? "yes" : "no", info.device_count, version(info.runtime_version).c_str(),
              info.driver_version ? version(info.driver_version).c_str() : "none");
  if (!info.name.empty()) {
    std::printf("cuda: device 0 %s, compute capability %d.%d, %.1f GiB\n", info.name.c_str(), info.cc_major,
                info.cc_minor, static_cast<double>(info.total_memory) / (1024.0 * 1024.0 * 1024.0));
  }
  if (!info.built) {
    std::printf("FAIL: vlk_cuda_smoke links the CUDA backend, but device_info().built is false\n");
    return 1;
  }

  vlk_test::Rng rng(7);
  const int64_t d = 33;
  const std::vector<int64_t> sizes = {1, 7, 513};
  if (!info.usable) {
    std::printf("cuda: reason: %s\n", info.reason.c_str());
    std::vector<float> q(static_cast<size_t>(d), 0.5f), g(static_cast<size_t>(7 * d), 0.25f);
    const Run r = run(Path::kCuda, vlk::cuda::Precision::kExact, q, g, 1, 7, d, 3, Metric::kInnerProduct);
    if (r.status.code != Code::kNoDevice || info.reason.empty() ||
        r.status.message.find(info.reason) == std::string::npos) {
      std::printf("FAIL: without a usable device cuda::search returned %s \"%s\"; expected "
                  "ERR_VLK_NO_DEVICE naming the reason\n",
                  vlk::code_string(r.status.code), r.status.message.c_str());
      return 1;
    }
    std::shared_ptr<vlk::cuda::DeviceGallery> resident;
    const Status up = vlk::cuda::upload_gallery(MatrixView<const float>(g.data(), 7, d), Metric::kInnerProduct, &resident);
    if (up.code != Code::kNoDevice || up.message.find(info.reason) == std::string::npos || resident) {
      std::printf("FAIL: without a usable device upload_gallery returned %s \"%s\"; expected ERR_VLK_NO_DEVICE "
                  "naming the reason and no gallery\n",
                  vlk::code_string(up.code), up.message.c_str());
      return 1;
    }
    std::printf("skipped: no usable CUDA device (%s); cuda::search correctly reports %s\n", info.reason.c_str(),
                vlk::code_string(r.status.code));
    return 0;
  }

  int failures = 0, checks = 0;
  for (int64_t n : sizes) {
    const int64_t nq = 5;
    std::vector<float> q(static_cast<size_t>(nq * d)), g(static_cast<size_t>(n * d));
    for (float& v : q) v = rng.uniform();
    for (float& v : g) v = rng.uniform();
    // Ties: every fourth row repeats row 0.
    for (int64_t r = 4; r < n; r += 4) {
      for (int64_t c = 0; c < d; ++c) g[static_cast<size_t>(r * d + c)] = g[static_cast<size_t>(c)];
    }
    // Filter: every third row not allowed; per query an unsorted exclusion list with a duplicate.
    std::vector<uint64_t> allow(static_cast<size_t>((n + 63) / 64), 0);
    for (int64_t r = 0; r < n; ++r) {
      if (r % 3 != 2) allow[static_cast<size_t>(r >> 6)] |= uint64_t{1} << (r & 63);
    }
    std::vector<int64_t> excl_off(static_cast<size_t>(nq) + 1, 0);
    std::vector<int32_t> excl_rows;
    for (int64_t i = 0; i < nq; ++i) {
      for (int32_t r : {static_cast<int32_t>((5 * i + 4) % n), 0, static_cast<int32_t>(n - 1), 0,
                        static_cast<int32_t>(n / 2)}) {
        excl_rows.push_back(r);
      }
      excl_off[static_cast<size_t>(i) + 1] = static_cast<int64_t>(excl_rows.size());
    }
    vlk::core::SearchFilter filter;
    filter.allow = allow.data();
    filter.exclude_offsets = excl_off.data();
    filter.exclude_rows = excl_rows.data();
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      std::shared_ptr<vlk::cuda::DeviceGallery> resident;
      const Status up = vlk::cuda::upload_gallery(MatrixView<const float>(g.data(), n, d), metric, &resident);
      if (!up.ok() || !resident || resident->rows() != n || resident->dim() != d) {
        std::printf("FAIL %s n=%lld: upload_gallery %s (%s)\n", vlk::core::metric_name(metric),
                    static_cast<long long>(n), vlk::code_string(up.code), up.message.c_str());
        ++failures;
        continue;
      }
      for (int64_t k : {int64_t{1}, int64_t{10}, int64_t{100}}) {
        if (k > n) continue;
        ++checks;
        const auto exact = vlk::cuda::Precision::kExact;
        const Run cpu = run(Path::kCore, exact, q, g, nq, n, d, k, metric);
        const Run gpu = run(Path::kCuda, exact, q, g, nq, n, d, k, metric);
        const Run bf16 = run(Path::kCuda, vlk::cuda::Precision::kBf16, q, g, nq, n, d, k, metric);
        const std::string where = std::string(vlk::core::metric_name(metric)) + " n=" + std::to_string(n) +
                                  " k=" + std::to_string(k);
        if (!bf16.status.ok()) {
          std::printf("FAIL %s: bf16 %s (%s)\n", where.c_str(), vlk::code_string(bf16.status.code),
                      bf16.status.message.c_str());
          ++failures;
          continue;
        }
        int bad = compare(cpu, gpu, where + " cuda::search");
        bad += compare(cpu, run(Path::kResident, exact, q, g, nq, n, d, k, metric, {}, resident.get()),
                       where + " search_resident");
        bad += compare(cpu, run(Path::kResidentNoHost, exact, q, g, nq, n, d, k, metric, {}, resident.get()),
                       where + " search_resident (no host rows)");
        const Run cpu_f = run(Path::kCore, exact, q, g, nq, n, d, k, metric, filter);
        bad += compare(cpu_f, run(Path::kCuda, exact, q, g, nq, n, d, k, metric, filter), where + " filtered cuda::search");
        bad += compare(cpu_f, run(Path::kResidentNoHost, exact, q, g, nq, n, d, k, metric, filter, resident.get()),
                       where + " filtered search_resident");
        failures += bad > 0 ? 1 : 0;
        for (int32_t id : bf16.ids) {
          if (id < 0 || id >= n) {
            std::printf("FAIL %s: bf16 returned row %d\n", where.c_str(), id);
            ++failures;
            break;
          }
        }
      }
    }
  }
  std::printf("%s: %d of %d cuda::search checks equal core::search\n", failures ? "FAIL" : "ok",
              checks - failures, checks);
  return failures ? 1 : 0;
}
