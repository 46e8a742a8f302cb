# The native engine's Node-API addon, built once per CPython by scripts/build-native.ts,
# which passes the CPython's include directory, library directory and library name.
{
  "variables": {
    "python_include_dir%": "",
    "python_library_dir%": "",
    "python_library%": "",
    "addon_api_include_dir%": "",
  },
  "targets": [
    {
      "target_name": "interpool_native",
      "sources": ["src/addon.cc", "src/arenas.cc", "src/convert.cc", "src/gil-handover.c", "src/interpreter.cc", "src/large-blocks.cc", "src/unwind.cc"],
      "include_dirs": ["<(addon_api_include_dir)", "<(python_include_dir)"],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: an error for a thread being terminated
      # (worker.terminate() during a call) cannot be thrown into JS; without it,
      # node-addon-api throws it on as a C++ exception through Node, which aborts the process.
      "defines": ["NAPI_VERSION=9", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "PY_SSIZE_T_CLEAN"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "libraries": [
        "-L<(python_library_dir)",
        "-l<(python_library)",
        # Found at run time where it was found at build time (the project-built CPython
        # lives in the project, not on the loader's path).
        "-Wl,-rpath,<(python_library_dir)",
      ],
    }
  ]
}
