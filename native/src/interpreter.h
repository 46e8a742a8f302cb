// CPython's side of the addon: the main interpreter (once per process) and one
// subinterpreter per calling thread. Every function states which GIL it expects the
// calling thread to hold; the guards below are the only places that acquire or release.
#pragma once

#include <Python.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace interpool {

// A C-level failure, thrown in C++ and turned into a JS error carrying `code`.
struct NativeFailure : std::runtime_error {
  std::string code;
  std::string detail;
  NativeFailure(std::string code_, const std::string& message, std::string detail_ = "")
      : std::runtime_error(message), code(std::move(code_)), detail(std::move(detail_)) {}
};

struct RuntimeInfo {
  std::string version;     // "3.13.5"
  std::string executable;  // the CPython the main interpreter was configured from
  bool ownGil;             // subinterpreters get their own GIL (CPython >= 3.12)
  std::vector<std::string> preimportFailures;
};

// Initializes the main interpreter the first time any thread calls it (later calls
// return the same info, and refuse another executable). Holds no GIL before or after.
RuntimeInfo InitializeMain(const std::string& executable, const std::vector<std::string>& preimport);

// Creates a subinterpreter owned by the calling thread. Holds no GIL before or after.
// ownGil needs CPython >= 3.12; otherwise the subinterpreter shares the main GIL.
PyThreadState* CreateSubinterpreter(bool ownGil);

// Ends a subinterpreter created by this thread, after stopping the threads its app
// started; left as it is (not ended) if one of them will not stop. Holds no GIL before
// or after.
void EndSubinterpreter(PyThreadState* sub);

// The one guard for "this thread holds interpreter X": while alive, `state` is this
// thread's current thread state and its interpreter's GIL is held. Constructed when the
// thread holds no GIL; leaves it holding none.
class InterpreterGuard {
 public:
  explicit InterpreterGuard(PyThreadState* state) : state_(state) { PyEval_RestoreThread(state_); }
  ~InterpreterGuard() { PyEval_SaveThread(); }
  InterpreterGuard(const InterpreterGuard&) = delete;
  InterpreterGuard& operator=(const InterpreterGuard&) = delete;

 private:
  PyThreadState* state_;
};

// The inverse, for the time a thread holding an interpreter calls out into JS: its GIL
// is released (other threads of the app, and on 3.11 other interpreters, run meanwhile)
// and taken back on destruction.
class GilRelease {
 public:
  GilRelease() : saved_(PyEval_SaveThread()) {}
  ~GilRelease() { PyEval_RestoreThread(saved_); }
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;

 private:
  PyThreadState* saved_;
};

// The body run by a thread that holds no GIL, holding `interp`'s GIL through a thread
// state of its own for the moment (as any foreign thread would).
void WithBorrowedThreadState(PyInterpreterState* interp, const std::function<void()>& body);

// interpool.RequestTimeout of the interpreter whose GIL the caller holds, or
// KeyboardInterrupt before the adapter defines it. A new reference.
PyObject* RequestTimeoutType();

// Raises interpool.RequestTimeout (a KeyboardInterrupt) in the thread `threadIdent` running in `interp`, from another
// thread that holds no GIL (a timeout's watcher): it takes the interpreter's GIL through
// a thread state of its own for the moment of the call, as any foreign thread would.
// `deliver` is asked once the GIL is held (the target may have finished its call, or
// gone to wait in JS, while this thread waited for the GIL). Returns whether it was.
bool InterruptThread(PyInterpreterState* interp, unsigned long threadIdent, const std::function<bool()>& deliver);

// The small-object allocator (pymalloc) of the interpreter whose GIL the caller holds:
// its own with use_main_obmalloc = 0 (an own-GIL subinterpreter), else the process's,
// shared by every interpreter that uses the main one. -1 when pymalloc is not in use.
// Objects over 512 bytes come from the C malloc, shared by all, and are not counted.
struct AllocatorStats {
  long long allocatedBytes = -1;  // in blocks in use
  long long arenaBytes = -1;      // held from the system (whole arenas)
};
AllocatorStats ReadAllocatorStats();

// The Python exception now set (the caller holds that interpreter's GIL), cleared and
// turned into a NativeFailure with code PYTHON_EXCEPTION: message is its last line,
// detail the whole traceback.
NativeFailure TakePythonException();

}  // namespace interpool
