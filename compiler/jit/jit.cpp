// jit.cpp — `nnc run`'s compiler and linker: Clang's libraries compile the generated C
// to an object in memory, LLVM's ORC JIT (LLJIT) links it into the nnc process.
//
// Needs: Clang and LLVM 14 libraries (libclang-cpp, libLLVM). Guarantees: no process is
// started (Clang's driver only computes the -cc1 arguments; the compiler runs in this
// process, on a virtual file system holding the sources); the object is the same bytes
// whether it was just compiled or read back from the cache, so both load the same way.
#include "jit.h"

#include <clang/Basic/Diagnostic.h>
#include <clang/Basic/DiagnosticOptions.h>
#include <clang/CodeGen/CodeGenAction.h>
#include <clang/Driver/Compilation.h>
#include <clang/Driver/Driver.h>
#include <clang/Driver/Tool.h>
#include <clang/Frontend/CompilerInstance.h>
#include <clang/Frontend/CompilerInvocation.h>
#include <clang/Frontend/TextDiagnosticPrinter.h>
#include <llvm/ADT/SmallString.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/VirtualFileSystem.h>
#include <llvm/Support/raw_ostream.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#ifndef NNC_CLANG_PATH
#define NNC_CLANG_PATH "/usr/bin/clang"
#endif

static char *copy_string(const std::string &s) {
  char *p = static_cast<char *>(malloc(s.size() + 1));
  if (p) memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

static void init_llvm() {
  static bool done;
  if (done) return;
  done = true;
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::InitializeNativeTargetAsmParser();
}

extern "C" const char *jit_llvm_version(void) { return LLVM_VERSION_STRING; }

extern "C" void *jit_compile(const JitFile *files, int n_files, const char *const *args, int n_args, size_t *size,
                             char **log) {
  init_llvm();
  std::string diag_text;
  llvm::raw_string_ostream diag_out(diag_text);
  llvm::IntrusiveRefCntPtr<clang::DiagnosticOptions> diag_opts(new clang::DiagnosticOptions());
  auto *printer = new clang::TextDiagnosticPrinter(diag_out, &*diag_opts);
  llvm::IntrusiveRefCntPtr<clang::DiagnosticIDs> diag_ids(new clang::DiagnosticIDs());
  clang::DiagnosticsEngine diags(diag_ids, &*diag_opts, printer);
  auto fail = [&](const std::string &why) -> void * {
    diag_out.flush();
    *log = copy_string(why + (diag_text.empty() ? "" : ":\n" + diag_text));
    return nullptr;
  };

  // The sources live in memory, over the real file system (system headers).
  auto memory = llvm::makeIntrusiveRefCnt<llvm::vfs::InMemoryFileSystem>();
  for (int i = 0; i < n_files; i++)
    memory->addFile(files[i].path, 0, llvm::MemoryBuffer::getMemBufferCopy(files[i].text, files[i].path));
  auto vfs = llvm::makeIntrusiveRefCnt<llvm::vfs::OverlayFileSystem>(llvm::vfs::getRealFileSystem());
  vfs->pushOverlay(memory);

  // The driver turns ordinary arguments into -cc1 arguments (include paths, target
  // features for -march=native) without running anything.
  std::vector<const char *> argv = {NNC_CLANG_PATH, "-c", files[0].path};
  for (int i = 0; i < n_args; i++) argv.push_back(args[i]);
  clang::driver::Driver driver(NNC_CLANG_PATH, llvm::sys::getProcessTriple(), diags, "nnc jit", vfs);
  driver.setCheckInputsExist(false);
  std::unique_ptr<clang::driver::Compilation> compilation(driver.BuildCompilation(argv));
  if (!compilation || diags.hasErrorOccurred()) return fail("clang driver failed");
  const auto &jobs = compilation->getJobs();
  if (jobs.size() != 1 || !llvm::isa<clang::driver::Command>(*jobs.begin()))
    return fail("clang driver did not produce one compile job");
  const auto &cmd = llvm::cast<clang::driver::Command>(*jobs.begin());
  const llvm::opt::ArgStringList &cc1 = cmd.getArguments();

  auto invocation = std::make_shared<clang::CompilerInvocation>();
  if (!clang::CompilerInvocation::CreateFromArgs(*invocation, cc1, diags)) return fail("bad clang arguments");
  clang::CompilerInstance clang;
  clang.setInvocation(invocation);
  clang.createDiagnostics(new clang::TextDiagnosticPrinter(diag_out, &clang.getDiagnosticOpts()), true);
  clang.createFileManager(vfs);
  llvm::SmallString<0> object;
  clang.setOutputStream(std::make_unique<llvm::raw_svector_ostream>(object));
  llvm::LLVMContext context;
  clang::EmitObjAction action(&context);
  if (!clang.ExecuteAction(action) || object.empty()) return fail("clang could not compile the generated code");
  void *out = malloc(object.size());
  if (!out) return fail("out of memory");
  memcpy(out, object.data(), object.size());
  *size = object.size();
  return out;
}

extern "C" void *jit_link(const void *object, size_t size, const char *symbol, char **log) {
  init_llvm();
  auto fail = [&](llvm::Error err) -> void * {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << err;
    os.flush();
    *log = copy_string(text);
    return nullptr;
  };
  // Kept for the life of the process: the model's code runs from it.
  static std::vector<std::unique_ptr<llvm::orc::LLJIT>> keep;
  auto jit = llvm::orc::LLJITBuilder().create();
  if (!jit) return fail(jit.takeError());
  auto &lib = (*jit)->getMainJITDylib();
  auto process = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess((*jit)->getDataLayout().getGlobalPrefix());
  if (!process) return fail(process.takeError());
  lib.addGenerator(std::move(*process));
  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(llvm::StringRef(static_cast<const char *>(object), size), "model.o");
  if (auto err = (*jit)->addObjectFile(std::move(buffer))) return fail(std::move(err));
  auto sym = (*jit)->lookup(symbol);
  if (!sym) return fail(sym.takeError());
  void *addr = reinterpret_cast<void *>(static_cast<uintptr_t>(sym->getAddress()));
  keep.push_back(std::move(*jit));
  return addr;
}
