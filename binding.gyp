# CPU addon build (node-gyp, prebuildify): one static library per ISA, each compiled with only its
# own flags from native/sources.gypi (the single source list, shared with CMakeLists.txt), linked
# into the Node-API module `vlkernels`. Release, C++17, no -march=native: the kernel path is chosen
# at run time from cpuid, so one binary serves every x86-64 CPU.
{
  "includes": ["native/sources.gypi"],
  "target_defaults": {
    "default_configuration": "Release",
    # gyp rebases `*_dirs` variables of an included file onto that file's folder (native/), so the
    # root-relative include list is read straight from the JSON instead.
    "include_dirs": [
      "<!@(node -p \"JSON.parse(require('fs').readFileSync('native/sources.gypi', 'utf8')).variables.vlk_include_dirs.join(' ')\")"
    ],
    # Core catches std::bad_alloc at its edges and the binding uses node-addon-api's C++ exceptions,
    # so exceptions stay on everywhere; node's common.gypi turns them (and RTTI) off by default.
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags": ["<@(vlk_common_flags)", "-fPIC"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "GCC_ENABLE_CPP_RTTI": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "MACOSX_DEPLOYMENT_TARGET": "11.0",
      "OTHER_CFLAGS": ["<@(vlk_common_flags)"]
    },
    "msvs_settings": {
      "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] }
    },
    "configurations": {
      "Release": { "defines": ["NDEBUG"] }
    }
  },
  "targets": [
    {
      "target_name": "vlk_avx2",
      "type": "static_library",
      "sources": ["<@(vlk_avx2_sources)"],
      "cflags": ["<@(vlk_avx2_flags)"],
      "xcode_settings": { "OTHER_CFLAGS": ["<@(vlk_avx2_flags)"] }
    },
    {
      "target_name": "vlk_avx512",
      "type": "static_library",
      "sources": ["<@(vlk_avx512_sources)"],
      "cflags": ["<@(vlk_avx512_flags)"],
      "xcode_settings": { "OTHER_CFLAGS": ["<@(vlk_avx512_flags)"] }
    },
    {
      # Driver, selection, scalar kernels, thread pool, cpuid: baseline x86-64 flags only.
      "target_name": "vlk_core",
      "type": "static_library",
      "sources": ["<@(vlk_core_sources)"],
      "dependencies": ["vlk_avx2", "vlk_avx512"]
    },
    {
      # CPU-only: the CUDA backend's interface is the stub (built = false); nvcc is never needed.
      # The CUDA addon is CMake's vlkernels_cuda.node (npm run build:cuda).
      "target_name": "vlkernels",
      "sources": ["<@(vlk_binding_sources)", "<@(vlk_cuda_stub_sources)"],
      "dependencies": ["vlk_core"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["<@(vlk_binding_defines)"],
      "conditions": [
        ["OS=='linux'", { "libraries": ["-ldl"] }]
      ]
    }
  ]
}
