// Smoke check of the CUDA backend without Node (CMake target vlk_cuda_smoke, built with VLK_CUDA=ON):
// links native/cuda with the core, prints device_info(), and
//  - without a usable GPU: cuda::search must fail with kNoDevice naming device_info().reason
//    (exit 0: that is the expected state of a CI machine; the line says "skipped");
//  - with one: kExact must equal core::search (ids and scores, bit for bit) for ip, cosine and l2
//    on small shapes with ties, and kBf16 must succeed and return valid rows.
// Exit status 0 on success, 1 on a mismatch. The full comparison lives in test/cuda.test.ts.
#include <cmath>
#include <cstdint>
#include <cstdio>
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

Run run(bool gpu, vlk::cuda::Precision precision, const std::vector<float>& q, const std::vector<float>& g,
        int64_t nq, int64_t n, int64_t d, int64_t k, Metric metric) {
  vlk::core::SearchArgs args;
  args.queries = MatrixView<const float>(q.data(), nq, d);
  args.gallery = MatrixView<const float>(g.data(), n, d);
  args.k = k;
  args.metric = metric;
  Run r;
  r.ids.assign(static_cast<size_t>(nq * k), -2);
  r.scores.assign(static_cast<size_t>(nq * k), 0.0f);
  r.counts.assign(static_cast<size_t>(nq), -2);
  vlk::core::SearchOut out;
  out.indices = r.ids.data();
  out.scores = r.scores.data();
  out.counts = r.counts.data();
  Context ctx;  // calling thread, scalar path: the reference
  r.status = gpu ? vlk::cuda::search(args, out, ctx, precision) : vlk::core::search(args, out, ctx);
  return r;
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
    const Run r = run(true, vlk::cuda::Precision::kExact, q, g, 1, 7, d, 3, Metric::kInnerProduct);
    if (r.status.code != Code::kNoDevice || info.reason.empty() ||
        r.status.message.find(info.reason) == std::string::npos) {
      std::printf("FAIL: without a usable device cuda::search returned %s \"%s\"; expected "
                  "ERR_VLK_NO_DEVICE naming the reason\n",
                  vlk::code_string(r.status.code), r.status.message.c_str());
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
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      for (int64_t k : {int64_t{1}, int64_t{10}, int64_t{100}}) {
        if (k > n) continue;
        ++checks;
        const Run cpu = run(false, vlk::cuda::Precision::kExact, q, g, nq, n, d, k, metric);
        const Run gpu = run(true, vlk::cuda::Precision::kExact, q, g, nq, n, d, k, metric);
        const Run bf16 = run(true, vlk::cuda::Precision::kBf16, q, g, nq, n, d, k, metric);
        const std::string where = std::string(vlk::core::metric_name(metric)) + " n=" + std::to_string(n) +
                                  " k=" + std::to_string(k);
        if (!cpu.status.ok() || !gpu.status.ok() || !bf16.status.ok()) {
          std::printf("FAIL %s: cpu %s, cuda %s (%s), bf16 %s (%s)\n", where.c_str(),
                      vlk::code_string(cpu.status.code), vlk::code_string(gpu.status.code),
                      gpu.status.message.c_str(), vlk::code_string(bf16.status.code), bf16.status.message.c_str());
          ++failures;
          continue;
        }
        for (size_t i = 0; i < cpu.ids.size(); ++i) {
          if (cpu.ids[i] != gpu.ids[i] || cpu.scores[i] != gpu.scores[i]) {
            std::printf("FAIL %s: entry %zu: cpu %d %.9g, cuda %d %.9g\n", where.c_str(), i, cpu.ids[i],
                        static_cast<double>(cpu.scores[i]), gpu.ids[i], static_cast<double>(gpu.scores[i]));
            ++failures;
            break;
          }
        }
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
