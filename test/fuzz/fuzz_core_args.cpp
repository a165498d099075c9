// libFuzzer target (test/fuzz): the argument checks of the core search API on arbitrary shapes, k,
// metrics, token counts, filters, candidate lists and values (NaN, infinities, huge and subnormal
// numbers). The harness keeps only the memory contract the binding enforces before any core call
// (buffers as long as the shapes say, exclusion / candidate lists as long as their last offset);
// everything else is the core's to check. Accepted calls are checked against an exact reference:
//  - search: every ISA path returns bit-identical results; with small-integer values the top-k of
//    ip and l2 equals a float64 brute force (scores exact, ties by lower item), and cosine results
//    are valid, allowed and ordered;
//  - rerank: equals search with the query's candidates as its only allowed rows, bit for bit;
//  - merge_top_k: output ordered, counts = min(k, valid entries), padding -1 / NaN.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "fuzz_input.hpp"
#include "isa/isa.hpp"
#include "search/merge_top_k.hpp"
#include "search/rerank.hpp"
#include "search/search.hpp"

using namespace vlk;
using core::Metric;

namespace {

struct Problem {
  int64_t q = 0, n = 0, d = 0;
  std::vector<float> queries, gallery;
  bool exact_values = true;  // every value a small integer
  Metric metric = Metric::kInnerProduct;
};

Problem make_problem(fuzz::FuzzInput& in, int64_t max_q, int64_t max_n, int64_t max_d) {
  Problem p;
  p.q = in.small(max_q);
  p.n = in.small(max_n);
  p.d = in.small(max_d);
  p.metric = static_cast<Metric>(in.small(2));
  // One byte per value; 0xF? takes the next four bytes as raw float bits (see FuzzInput::floats).
  p.queries = in.floats(p.q * p.d);
  p.gallery = in.floats(p.n * p.d);
  for (float v : p.queries) p.exact_values = p.exact_values && std::isfinite(v) && v == std::nearbyint(v) && std::fabs(v) <= 8;
  for (float v : p.gallery) p.exact_values = p.exact_values && std::isfinite(v) && v == std::nearbyint(v) && std::fabs(v) <= 8;
  return p;
}

// Better = larger for ip / cosine, smaller for l2.
bool better(Metric m, double a, double b) { return m == Metric::kL2 ? a < b : a > b; }

double exact_score(const Problem& p, int64_t qi, int64_t row) {
  double acc = 0;
  for (int64_t c = 0; c < p.d; ++c) {
    const double x = p.queries[qi * p.d + c], y = p.gallery[row * p.d + c];
    acc += p.metric == Metric::kL2 ? (x - y) * (x - y) : x * y;
  }
  return acc;
}

struct Result {
  std::vector<int32_t> idx;
  std::vector<float> score;
  std::vector<int32_t> count;
  bool operator==(const Result& o) const {
    if (idx != o.idx || count != o.count) return false;
    return std::memcmp(score.data(), o.score.data(), score.size() * 4) == 0;  // NaN padding too
  }
};

Status run_search(const core::SearchArgs& a, Isa isa, Result* r) {
  const int64_t q = a.queries.rows, k = a.k;
  r->idx.assign(static_cast<size_t>(q * k), 0);
  r->score.assign(static_cast<size_t>(q * k), 0.f);
  r->count.assign(static_cast<size_t>(q), 0);
  Context ctx;
  ctx.isa = isa;
  return core::search(a, {r->idx.data(), r->score.data(), r->count.data()}, ctx);
}

void fuzz_search(fuzz::FuzzInput& in) {
  Problem p = make_problem(in, 6, 80, 24);
  core::SearchArgs a;
  a.queries = MatrixView<const float>(p.queries.data(), p.q, p.d);
  a.gallery = MatrixView<const float>(p.gallery.data(), p.n, p.d);
  a.metric = p.metric;
  a.k = in.flag() ? in.take<int64_t>() : in.small(p.n + 2) - 1;
  a.tokens = in.flag() ? in.take<int64_t>() : in.small(4);
  // Fresh pointers even for empty inputs: null data is a separate case the core also checks.
  if (p.q * p.d == 0 && in.flag()) a.queries.data = nullptr;
  std::vector<uint64_t> allow;
  if (in.flag()) {
    allow.resize(static_cast<size_t>((p.n + 63) / 64 + 1));
    for (auto& w : allow) w = in.flag() ? ~uint64_t{0} : in.take<uint64_t>();
    a.filter.allow = allow.data();
  }
  std::vector<int64_t> off;
  std::vector<int32_t> excl;
  if (in.flag()) {
    off.resize(static_cast<size_t>(p.q) + 1);
    for (auto& o : off) o = in.flag() ? in.take<int64_t>() : in.small(12) - 1;
    excl.resize(static_cast<size_t>(in.small(16)));
    for (auto& e : excl) e = in.flag() ? in.take<int32_t>() : static_cast<int32_t>(in.small(p.n + 1)) - 1;
    // The binding checks the list's length against the last offset; the rest is the core's.
    if (off.back() < 0 || off.back() > static_cast<int64_t>(excl.size())) return;
    a.filter.exclude_offsets = off.data();
    a.filter.exclude_rows = excl.empty() ? nullptr : excl.data();
  }

  const Status v = core::validate_search(a);
  fuzz::check_status(v);
  if (!v.ok()) {
    // search repeats the checks before it touches an output (too small to hold Q x k here).
    int32_t idx = 0, count = 0;
    float score = 0;
    Context ctx;
    const Status s = core::search(a, {&idx, &score, &count}, ctx);
    FUZZ_CHECK(!s.ok() && s.code == v.code);
    return;
  }
  Result base;
  const Status s = run_search(a, Isa::kScalar, &base);
  fuzz::check_status(s);
  if (!s.ok()) return;

  for (Isa isa : supported_isas()) {
    Result other;
    FUZZ_CHECK(run_search(a, isa, &other).ok());
    FUZZ_CHECK(other == base);
  }

  const int64_t items = p.n / a.tokens, k = a.k;
  for (int64_t qi = 0; qi < p.q; ++qi) {
    std::vector<bool> ok_item(static_cast<size_t>(items), true);
    if (a.filter.allow != nullptr) {
      for (int64_t i = 0; i < items; ++i) ok_item[i] = ((allow[i >> 6] >> (i & 63)) & 1u) != 0;
    }
    if (a.filter.exclude_offsets != nullptr) {
      for (int64_t e = off[qi]; e < off[qi + 1]; ++e) ok_item[excl[e]] = false;
    }
    int64_t allowed = 0;
    for (bool b : ok_item) allowed += b;
    const int32_t* idx = base.idx.data() + qi * k;
    const float* sc = base.score.data() + qi * k;
    FUZZ_CHECK(base.count[qi] == std::min(k, allowed));
    std::vector<bool> seen(static_cast<size_t>(items), false);
    for (int64_t j = 0; j < k; ++j) {
      if (j >= base.count[qi]) {
        FUZZ_CHECK(idx[j] == -1 && std::isnan(sc[j]));
        continue;
      }
      FUZZ_CHECK(idx[j] >= 0 && idx[j] < items && ok_item[idx[j]] && !seen[idx[j]]);
      seen[idx[j]] = true;
      if (j > 0) {
        // Ordered best first, ties by lower item.
        FUZZ_CHECK(!better(p.metric, sc[j], sc[j - 1]));
        if (sc[j] == sc[j - 1]) FUZZ_CHECK(idx[j] > idx[j - 1]);
      }
    }
    if (!p.exact_values || p.metric == Metric::kCosine) continue;
    // Exact reference: an item's key is the best of its rows; the top-k with ties by lower item.
    std::vector<std::pair<double, int64_t>> ref;
    for (int64_t i = 0; i < items; ++i) {
      if (!ok_item[i]) continue;
      double key = exact_score(p, qi, i * a.tokens);
      for (int64_t t = 1; t < a.tokens; ++t) {
        const double s2 = exact_score(p, qi, i * a.tokens + t);
        if (better(p.metric, s2, key)) key = s2;
      }
      ref.push_back({key, i});
    }
    std::sort(ref.begin(), ref.end(), [&](const auto& x, const auto& y) {
      return x.first != y.first ? better(p.metric, x.first, y.first) : x.second < y.second;
    });
    for (int64_t j = 0; j < base.count[qi]; ++j) {
      FUZZ_CHECK(idx[j] == ref[j].second);
      FUZZ_CHECK(static_cast<double>(sc[j]) == ref[j].first);
    }
  }
}

void fuzz_rerank(fuzz::FuzzInput& in) {
  Problem p = make_problem(in, 5, 40, 16);
  std::vector<int64_t> off(static_cast<size_t>(p.q) + 1);
  for (auto& o : off) o = in.flag() ? in.take<int64_t>() : in.small(10) - 1;
  std::vector<int32_t> rows(static_cast<size_t>(in.small(24)));
  for (auto& r : rows) r = in.flag() ? in.take<int32_t>() : static_cast<int32_t>(in.small(p.n + 1)) - 1;
  if (off.back() < 0 || off.back() > static_cast<int64_t>(rows.size())) return;  // the binding's check
  core::RerankArgs a;
  a.queries = MatrixView<const float>(p.queries.data(), p.q, p.d);
  a.gallery = MatrixView<const float>(p.gallery.data(), p.n, p.d);
  a.offsets = off.data();
  a.rows = rows.empty() ? nullptr : rows.data();
  a.k = in.flag() ? in.take<int64_t>() : in.small(8) - 1;
  a.metric = p.metric;
  if (a.k > 64) return;  // outputs are Q x k
  Result r;
  r.idx.assign(static_cast<size_t>(p.q * std::max<int64_t>(0, a.k)), 0);
  r.score.assign(r.idx.size(), 0.f);
  r.count.assign(static_cast<size_t>(p.q), 0);
  Context ctx;
  const Status s = core::rerank(a, {r.idx.data(), r.score.data(), r.count.data()}, ctx);
  fuzz::check_status(s);
  if (!s.ok()) return;
  // Each query alone: a search over its distinct candidates (ascending rows, so that ties by lower
  // row agree), mapped back to gallery rows. Other gallery rows may hold NaN: rerank never reads them.
  for (int64_t qi = 0; qi < p.q; ++qi) {
    std::vector<int32_t> cand(rows.begin() + off[qi], rows.begin() + off[qi + 1]);
    std::sort(cand.begin(), cand.end());
    cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
    const int64_t distinct = static_cast<int64_t>(cand.size());
    FUZZ_CHECK(r.count[qi] == std::min(a.k, distinct));
    for (int64_t j = r.count[qi]; j < a.k; ++j) FUZZ_CHECK(r.idx[qi * a.k + j] == -1);
    if (distinct == 0) continue;
    std::vector<float> sub(static_cast<size_t>(distinct * p.d));
    for (int64_t i = 0; i < distinct; ++i) {
      std::memcpy(&sub[i * p.d], &p.gallery[cand[i] * p.d], static_cast<size_t>(p.d) * 4);
    }
    core::SearchArgs sa;
    sa.queries = MatrixView<const float>(p.queries.data() + qi * p.d, 1, p.d);
    sa.gallery = MatrixView<const float>(sub.data(), distinct, p.d);
    sa.k = std::min<int64_t>(a.k, distinct);
    sa.metric = p.metric;
    Result ref;
    FUZZ_CHECK(run_search(sa, Isa::kScalar, &ref).ok());
    for (int64_t j = 0; j < r.count[qi]; ++j) {
      FUZZ_CHECK(r.idx[qi * a.k + j] == cand[ref.idx[j]]);
      FUZZ_CHECK(std::memcmp(&r.score[qi * a.k + j], &ref.score[j], 4) == 0);
    }
  }
}

void fuzz_merge(fuzz::FuzzInput& in) {
  const int64_t nparts = in.small(4), q = in.small(5);
  const Metric metric = static_cast<Metric>(in.small(2));
  std::vector<core::TopKPartial> parts(static_cast<size_t>(nparts));
  std::vector<std::vector<int64_t>> ids(nparts);
  std::vector<std::vector<float>> scores(nparts);
  std::vector<std::vector<int32_t>> counts(nparts);
  for (int64_t s = 0; s < nparts; ++s) {
    const int64_t k_in = in.small(6);
    ids[s].resize(static_cast<size_t>(q * k_in));
    for (auto& id : ids[s]) id = in.small(20) - 1;
    scores[s] = in.floats(q * k_in);
    parts[s].ids = ids[s].data();
    parts[s].scores = scores[s].data();
    parts[s].k = k_in;
    if (in.flag()) {
      counts[s].resize(static_cast<size_t>(q));
      for (auto& c : counts[s]) c = in.flag() ? in.take<int32_t>() : static_cast<int32_t>(in.small(k_in));
      parts[s].counts = counts[s].data();
    }
  }
  core::MergeTopKArgs a;
  a.parts = parts.data();
  a.nparts = nparts;
  a.queries = q;
  a.k = in.flag() ? in.take<int64_t>() : in.small(8) - 1;
  a.metric = metric;
  if (a.k > 64) return;
  const size_t total = static_cast<size_t>(q * std::max<int64_t>(0, a.k));
  std::vector<int64_t> out_ids(total);
  std::vector<float> out_scores(total);
  std::vector<int32_t> out_counts(static_cast<size_t>(q));
  Context ctx;
  const Status s = core::merge_top_k(a, {out_ids.data(), out_scores.data(), out_counts.data()}, ctx);
  fuzz::check_status(s);
  if (!s.ok()) return;
  for (int64_t qi = 0; qi < q; ++qi) {
    int64_t valid = 0;
    for (int64_t p = 0; p < nparts; ++p) valid += parts[p].counts ? parts[p].counts[qi] : parts[p].k;
    FUZZ_CHECK(out_counts[qi] == std::min(a.k, valid));
    for (int64_t j = 0; j < a.k; ++j) {
      const float sc = out_scores[qi * a.k + j];
      if (j >= out_counts[qi]) {
        FUZZ_CHECK(out_ids[qi * a.k + j] == -1 && std::isnan(sc));
      } else {
        FUZZ_CHECK(std::isfinite(sc));
        if (j > 0) FUZZ_CHECK(!better(metric, sc, out_scores[qi * a.k + j - 1]));
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  switch (in.take<uint8_t>() % 3) {
    case 0: fuzz_search(in); break;
    case 1: fuzz_rerank(in); break;
    default: fuzz_merge(in); break;
  }
  return 0;
}
