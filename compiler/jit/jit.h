// jit.h — nnc's in-process compiler and linker (jit.cpp, Clang and LLVM's ORC JIT),
// behind a C interface: libnnc_jit.so, built only when CMake finds Clang and LLVM, and
// loaded by compiler/driver/run.c (which falls back to the system compiler and dlopen
// where it is missing).
#ifndef NNC_JIT_H
#define NNC_JIT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// A file the compilation sees at `path` without it being on disk (the model's source,
// the headers nnc carries).
typedef struct JitFile {
  const char *path, *text;
} JitFile;

// Compiles files[0] (C) with Clang's driver arguments args (e.g. "-O2"), the other
// files visible by their paths, to an object file for this machine's CPU (what
// -march=native picks). Returns the object (malloc'ed, *size bytes), or NULL with
// Clang's diagnostics in *log (malloc'ed). No process is started.
void *jit_compile(const JitFile *files, int n_files, const char *const *args, int n_args, size_t *size,
                  char **log);

// Links the object into the running process (its undefined symbols resolve against
// nnc's own: the runtime and the kernel library) and returns the address of `symbol`,
// or NULL with a message in *log. The code stays loaded until the process exits.
void *jit_link(const void *object, size_t size, const char *symbol, char **log);

// The LLVM version nnc was built with, e.g. "14.0.6".
const char *jit_llvm_version(void);

#ifdef __cplusplus
}
#endif
#endif
