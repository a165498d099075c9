# CPU addon build (node-gyp, prebuildify): one static library per ISA, each compiled with only its
# own flags from native/sources.gypi (the single source list, shared with CMakeLists.txt), linked
# into the Node-API module `vlkernels`. Release, C++17, no -march=native: the kernel path is chosen
# at run time from cpuid, so one binary serves every x86-64 CPU. arm64 builds (node-gyp --arch=arm64,
# scripts/build-arm64.sh) compile vlk_neon_sources instead of the x86 libraries.
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
    },
    # Linux: every translation unit binds to symbol versions no newer than glibc 2.28 and GCC 8's
    # libstdc++ (native/compat/glibc_floor.hpp; a no-op under musl), so one linux-x64 build loads
    # on RHEL 8, Amazon Linux 2023 and Debian 10+. scripts/check-glibc.mjs checks the binary.
    "conditions": [
      ["OS=='linux'", { "cflags": ["<@(vlk_glibc_floor_flags)"] }]
    ]
  },
  "targets": [
    {
      # Driver, selection, scalar kernels, thread pool, cpuid: baseline flags only. x86-64 links
      # the per-ISA libraries below; arm64 compiles the NEON list (baseline there) into this one.
      "target_name": "vlk_core",
      "type": "static_library",
      "sources": ["<@(vlk_core_sources)"],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", { "dependencies": ["vlk_avx2", "vlk_avx512"] }],
        ["target_arch=='arm64'", { "sources": ["<@(vlk_neon_sources)"] }],
        # GCC 12's aarch64 loop vectorizer crashes (ICE in vect_transform_reduction) on the
        # vlk_neon_novec_files; gyp cannot take them out of this list by variable, so the arm64
        # core library builds without loop vectorization (CMake limits it to those files).
        ["target_arch=='arm64' and OS=='linux'", { "cflags": ["<@(vlk_neon_novec_flags)"] }]
      ]
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
        # libdl.so.2 stays a dependency even where glibc 2.34+ made it empty (and -ldl finds only
        # an empty libdl.a): before 2.34 it is where the GLIBC_2.2.5 dlopen/dladdr that the floor
        # binds to live.
        ["OS=='linux'", {
          "sources": ["<@(vlk_glibc_floor_sources)"],
          "libraries": ["-Wl,--no-as-needed", "-l:libdl.so.2", "-Wl,--as-needed"]
        }]
      ]
    }
  ],
  "conditions": [
    # The x86 kernel libraries, each compiled with only its own ISA flags.
    ["target_arch=='x64' or target_arch=='ia32'", {
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
        }
      ]
    }]
  ]
}
