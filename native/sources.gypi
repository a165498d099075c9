{
  "variables": {
    "vlk_core_sources": [
      "native/core/cluster/kmeans.cpp",
      "native/core/cluster/sinkhorn.cpp",
      "native/core/cluster/swav_loss.cpp",
      "native/core/common/atomic_file.cpp",
      "native/core/common/block_cache.cpp",
      "native/core/common/status.cpp",
      "native/core/common/thread_pool.cpp",
      "native/core/compose/combiner.cpp",
      "native/core/compose/combiner_trainer.cpp",
      "native/core/compose/compose.cpp",
      "native/core/compose/token_max_similarity.cpp",
      "native/core/compose/two_hop_loss.cpp",
      "native/core/graph/gcn.cpp",
      "native/core/graph/relevance.cpp",
      "native/core/graph/row_topk_mask.cpp",
      "native/core/graph/scan_relevance.cpp",
      "native/core/graph/biased_attention.cpp",
      "native/core/index/flat_index.cpp",
      "native/core/index/index_file.cpp",
      "native/core/io/json.cpp",
      "native/core/io/safetensors.cpp",
      "native/core/io/npy.cpp",
      "native/core/io/vecs.cpp",
      "native/core/isa/cpuid.cpp",
      "native/core/linalg/gemm.cpp",
      "native/core/linalg/gemm_kernel_scalar.cpp",
      "native/core/losses/info_nce.cpp",
      "native/core/losses/memory_info_nce.cpp",
      "native/core/losses/vse_hinge.cpp",
      "native/core/losses/weighted_triplet.cpp",
      "native/core/losses/preference_loss.cpp",
      "native/core/losses/clip_loss.cpp",
      "native/core/metrics/rank_of_targets.cpp",
      "native/core/memory/ema_update.cpp",
      "native/core/memory/memory_bank.cpp",
      "native/core/optim/adamw.cpp",
      "native/core/losses/prototype_alignment.cpp",
      "native/core/pooling/cosine_mha_pool.cpp",
      "native/core/pooling/gated_fusion.cpp",
      "native/core/pooling/maxk_pool.cpp",
      "native/core/search/expand_queries.cpp",
      "native/core/search/merge_top_k.cpp",
      "native/core/search/rerank.cpp",
      "native/core/search/scan_kernel_scalar.cpp",
      "native/core/search/scan_similarity.cpp",
      "native/core/search/search.cpp",
      "native/core/search/search_quantized.cpp",
      "native/core/search/search_quantized_kernel_scalar.cpp",
      "native/core/search/search_kernel_scalar.cpp",
      "native/core/search/multi_query_search.cpp",
      "native/core/search/prior_search.cpp"
    ],
    "vlk_avx2_sources": [
      "native/core/linalg/gemm_kernel_avx2.cpp",
      "native/core/search/scan_kernel_avx2.cpp",
      "native/core/search/search_kernel_avx2.cpp",
      "native/core/search/search_quantized_kernel_avx2.cpp"
    ],
    "vlk_avx512_sources": [
      "native/core/linalg/gemm_kernel_avx512.cpp",
      "native/core/search/scan_kernel_avx512.cpp",
      "native/core/search/search_kernel_avx512.cpp",
      "native/core/search/search_quantized_kernel_avx512.cpp"
    ],
    "vlk_neon_sources": [
      "native/core/search/search_kernel_neon.cpp",
      "native/core/isa/x86_tables_arm64.cpp"
    ],
    "vlk_neon_novec_files": [
      "native/core/losses/info_nce.cpp",
      "native/core/losses/memory_info_nce.cpp"
    ],
    "vlk_neon_novec_flags": [
      "-fno-tree-loop-vectorize"
    ],
    "vlk_binding_sources": [
      "native/binding/addon.cpp",
      "native/binding/cluster.cpp",
      "native/binding/biased_attention.cpp",
      "native/binding/combiner_trainer.cpp",
      "native/binding/common/args.cpp",
      "native/binding/common/async_job.cpp",
      "native/binding/common/cancel_token.cpp",
      "native/binding/common/errors.cpp",
      "native/binding/compose.cpp",
      "native/binding/expand_queries.cpp",
      "native/binding/flat_index.cpp",
      "native/binding/graph.cpp",
      "native/binding/global_local.cpp",
      "native/binding/index_file.cpp",
      "native/binding/info.cpp",
      "native/binding/matching_losses.cpp",
      "native/binding/preference_loss.cpp",
      "native/binding/clip_loss.cpp",
      "native/binding/memory_bank.cpp",
      "native/binding/merge_top_k.cpp",
      "native/binding/rerank.cpp",
      "native/binding/safetensors.cpp",
      "native/binding/search.cpp",
      "native/binding/two_hop_loss.cpp",
      "native/binding/multi_query_search.cpp",
      "native/binding/prior_search.cpp",
      "native/binding/rank_of_targets.cpp",
      "native/binding/vectors_io.cpp"
    ],
    "vlk_cuda_sources": [
      "native/cuda/common/device.cu",
      "native/cuda/search/search.cu"
    ],
    "vlk_cuda_stub_sources": [
      "native/cuda/cuda_stub.cpp"
    ],
    "vlk_cuda_test_sources": [
      "test/native/cuda_smoke.cpp"
    ],
    "vlk_native_test_sources": [
      "test/native/search_test.cpp",
      "test/native/two_hop_test.cpp",
      "test/native/combiner_test.cpp",
      "test/native/gemm_test.cpp",
      "test/native/block_cache_test.cpp",
      "test/native/search_quantized_test.cpp",
      "test/native/merge_top_k_test.cpp",
      "test/native/rerank_test.cpp",
      "test/native/flat_index_test.cpp",
      "test/native/index_file_test.cpp",
      "test/native/safetensors_test.cpp",
      "test/native/checked_size_test.cpp",
      "test/native/npy_test.cpp",
      "test/native/vecs_test.cpp"
    ],
    "vlk_glibc_floor_sources": [
      "native/compat/glibc_floor.cpp"
    ],
    "vlk_glibc_floor_flags": [
      "-include",
      "compat/glibc_floor.hpp"
    ],
    "vlk_neon_test_sources": [
      "test/native/search_kernel_neon_test.cpp"
    ],
    "vlk_fuzz_sources": [
      "test/fuzz/fuzz_safetensors.cpp",
      "test/fuzz/fuzz_index_file.cpp",
      "test/fuzz/fuzz_core_args.cpp",
      "test/fuzz/fuzz_npy.cpp",
      "test/fuzz/fuzz_vecs.cpp"
    ],
    "vlk_include_dirs": [
      "native/core",
      "native"
    ],
    "vlk_common_flags": [
      "-O3",
      "-ffp-contract=off",
      "-fno-math-errno",
      "-fvisibility=hidden"
    ],
    "vlk_avx2_flags": [
      "-mavx2",
      "-mfma"
    ],
    "vlk_avx512_flags": [
      "-mavx512f",
      "-mavx512bw",
      "-mavx512vl",
      "-mavx512dq",
      "-mfma",
      "-mavx2"
    ],
    "vlk_binding_defines": [
      "NAPI_VERSION=8",
      "NAPI_CPP_EXCEPTIONS",
      "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
      "NODE_ADDON_API_DISABLE_DEPRECATED",
      "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
    ]
  }
}
