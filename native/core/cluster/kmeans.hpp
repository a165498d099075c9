// k-means clustering (core/cluster), a general tool (seed 004 uses learnable prototypes; k-means
// initialises them, builds coarse codebooks, or clusters a gallery): Lloyd's algorithm with
// k-means++ seeding, squared-L2 or cosine (spherical k-means).
//
// Objective ("inertia"): l2: sum_i ||x_i - c_{a_i}||^2; cosine: sum_i (1 - x_i . c_{a_i}) with
// x_i = x_i / ||x_i|| (a zero row stays zero, at distance 1 from every centroid) and unit
// centroids (each term clamped at >= 0).
//
// Seeding (k-means++, Arthur & Vassilvitskii 2007): the first centroid is a uniformly drawn row,
// each next one a row drawn with probability proportional to its distance (the objective's term
// above) to the nearest centroid so far. Random numbers: splitmix64 from `seed`, a double in [0, 1)
// from its top 53 bits; the draw walks the cumulative float64 sum of the distances in row order.
// Seeding distances: fp32 differences/products in 8 fixed lanes, the lanes added in float64 in a
// fixed order. When every distance is 0 (fewer distinct rows than k) the lowest-index row not yet
// chosen is taken. Or `init` gives the k x D starting centroids (normalised in cosine mode).
//
// One iteration (1 .. iterations):
//  1. assign: a_i = nearest centroid by the library's exact search kernel (search/search.hpp, k = 1,
//     metric l2, or ip on the normalised rows for cosine; ties to the lower centroid index);
//     from the 2nd iteration on, if no a_i changed the previous iteration's state is a fixed
//     point: stop (converged), without a new history entry;
//  2. empty-cluster repair: for each empty cluster j in increasing order, the row farthest from its
//     centroid (assign step's distance; ties to the lower row) among the clusters that still have
//     >= 2 members moves into j (its distance then counts as 0 for later picks). Moving a point
//     out of a cluster and making it a singleton never raises the objective;
//  3. update: c_j = mean of its members (l2) or their sum normalised (cosine; a zero sum keeps the
//     previous c_j), summed in float64 over the members in increasing row order, rounded to fp32
//     once: identical for any thread count;
//  4. inertia = the objective of (centroids, assignments) just produced, exactly: float64 terms,
//     added in fixed blocks of 1024 rows, the blocks in order. History entry t, progress(t, it).
//     Stop when inertia is 0, or tolerance > 0 and (previous - inertia) <= tolerance * previous.
// The returned centroids are therefore exactly the (normalised) means of the returned clusters,
// every cluster is non-empty, and inertia is their objective. iterations = 0 returns the seeds,
// the nearest-seed assignment and its objective.
// Threads: search and the seeding/objective loops split rows into fixed blocks on ctx.pool; the
// result is bit-identical for any thread count.
// Memory: n int32 + n float + n double per row of working state; cosine mode also keeps a
// normalised copy of the data (n x D floats). Cost per iteration: one exact k = 1 search
// (n x k x D; the l2 path re-scores candidates exactly, about 2x the ip scan), plus O(n D).
// Seeding costs O(n k D) (one pass over the data per seed).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace core {

struct KmeansArgs {
  MatrixView<const float> x;   // n x D data
  int64_t k = 0;               // 1 <= k <= n
  Metric metric = Metric::kL2;  // kL2 or kCosine
  int64_t iterations = 25;     // >= 0
  uint64_t seed = 0;
  double tolerance = 0;        // >= 0; 0: run until converged or `iterations`
  const float* init = nullptr;  // optional k x D starting centroids (row-major); null: k-means++
  /// Called after each iteration (on the computing thread) with (iteration 1.., inertia).
  void (*progress)(void* ctx, int64_t iteration, double inertia) = nullptr;
  void* progress_ctx = nullptr;
};

struct KmeansOut {
  float* centroids = nullptr;        // k x D, overwritten
  int32_t* assignments = nullptr;    // n, overwritten
  double* inertia_history = nullptr;  // optional, `iterations` entries; the first iterations_run written
  double inertia = 0;
  int64_t iterations_run = 0;
  bool converged = false;             // stopped because no assignment changed
};

/// Errors: kEmpty (n or D is 0), kInvalidK (k < 1 or k > n), kShape (n beyond int32),
/// kInvalidArg (metric ip, iterations < 0, tolerance negative or NaN, null pointers),
/// kNonFinite (a NaN/Inf in x or init, naming row and element), kAborted, kOutOfMemory.
Status kmeans(const KmeansArgs& a, KmeansOut* out, const Context& ctx);

}  // namespace core
}  // namespace vlk
