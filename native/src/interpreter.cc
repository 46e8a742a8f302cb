// The main interpreter and subinterpreters, in the order CPython's own embedding tests
// (Programs/_testembed.c) and Modules/_interpretersmodule.c use the API.
#include "interpreter.h"

#include <dlfcn.h>

#include "arenas.h"
#include "gil-handover.h"
#include "large-blocks.h"
#include "unwind.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <chrono>
#include <mutex>
#include <thread>

namespace interpool {
namespace {

std::mutex initMutex;
bool initialized = false;
RuntimeInfo runtimeInfo;

// Holds the main interpreter's GIL through this thread's PyGILState thread state: a
// subinterpreter is created and ended from the main interpreter, as
// _interpretersmodule.c does. Used only inside this file.
class MainInterpreterGuard {
 public:
  MainInterpreterGuard() : state_(PyGILState_Ensure()) {}
  ~MainInterpreterGuard() { PyGILState_Release(state_); }
  MainInterpreterGuard(const MainInterpreterGuard&) = delete;
  MainInterpreterGuard& operator=(const MainInterpreterGuard&) = delete;

 private:
  PyGILState_STATE state_;
};

// Node loads an addon, and with it libpython, with RTLD_LOCAL. CPython's extension
// modules (_ssl, _sqlite3, ...) are not linked against libpython: they expect its
// symbols in the global scope, so libpython is promoted there before anything imports.
void PromoteLibpythonToGlobal() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&Py_InitializeFromConfig), &info) != 0 && info.dli_fname != nullptr) {
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  }
}

std::string StatusMessage(const PyStatus& status) {
  std::string message = status.err_msg != nullptr ? status.err_msg : "unknown error";
  if (status.func != nullptr) message = std::string(status.func) + ": " + message;
  return message;
}

// How long an ending interpreter waits for the threads its app started to stop, and how
// often it asks them again (a thread may catch SystemExit once, or be between two slices
// of a time.sleep: runtime/wsgi.py sleeps an app's thread in slices of 0.1 s).
constexpr auto kThreadStopWait = std::chrono::seconds(2);
constexpr auto kThreadStopAskEvery = std::chrono::milliseconds(100);
constexpr auto kThreadStopPoll = std::chrono::milliseconds(5);

// __main__.<name>() of the current interpreter when the glue (runtime/interpreters/
// native.ts) defined it; what it raises is dropped (it reports its own errors).
void CallGlue(const char* name) {
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  PyObject* function = main != nullptr ? PyObject_GetAttrString(main, name) : nullptr;
  PyObject* result = function != nullptr ? PyObject_CallNoArgs(function) : nullptr;
  Py_XDECREF(result);
  Py_XDECREF(function);
  PyErr_Clear();
}

// What CPython runs when an interpreter ends (the threading module's exit hooks, then the
// app's atexit functions, weakref.finalize's among them), run before its threads are
// stopped: Py_EndInterpreter runs atexit only after its check that no other thread is
// left, so a function that starts one (a last flush in the background) aborted the whole
// process ("not the last thread"). The glue's interpool_run_exit_functions; the current
// interpreter is the one that ends.
void RunExitFunctions() { CallGlue("interpool_run_exit_functions"); }

// The interpreter's thread states other than `self`'s. The caller holds its GIL: a thread
// state is added and removed only with it held.
int OtherThreads(PyThreadState* self) {
  int count = 0;
  for (PyThreadState* t = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(self)); t != nullptr; t = PyThreadState_Next(t)) {
    if (t != self) count++;
  }
  return count;
}

// Stops the threads the app started before its interpreter ends: Py_EndInterpreter
// joins the `threading` module's non-daemon ones forever and aborts the whole process
// ("not the last thread") if any other thread state is left, which a daemon thread
// (allowed where the GIL is shared) always is. Each is asked to stop with SystemExit,
// raised in it as a timeout's exception is (threading ends a thread on it quietly),
// again every so often, until none is left or the wait is over. False if some are still
// there: blocked in C (a lock, a socket), they cannot be made to stop. `self` is current.
bool StopOtherThreads(PyThreadState* self) {
  if (OtherThreads(self) == 0) return true;
  auto deadline = std::chrono::steady_clock::now() + kThreadStopWait;
  // Not at once: threads told to end by the exit hooks (an executor's idle workers, sent
  // their sentinel) end on their own, where a SystemExit would catch them mid-way.
  auto nextAsk = std::chrono::steady_clock::now() + kThreadStopAskEvery;
  // Halfway, threads still there are made to unwind (unwind.h): one that catches
  // SystemExit and goes on (a background loop under a bare `except:`) would otherwise keep
  // its interpreter, and its memory, for good.
  auto unwindAt = std::chrono::steady_clock::now() + kThreadStopWait / 2;
  bool unwinding = false;
  for (;;) {
    if (!unwinding && std::chrono::steady_clock::now() >= unwindAt) {
      UnwindOtherThreads(self);
      unwinding = true;
    }
    if (std::chrono::steady_clock::now() >= nextAsk) {
      for (PyThreadState* t = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(self)); t != nullptr; t = PyThreadState_Next(t)) {
        if (t != self) PyThreadState_SetAsyncExc(t->thread_id, PyExc_SystemExit);
      }
      // One waiting on a threading.Condition (Event.wait, Queue.get) is in a lock's
      // acquire, in C, where the exception is not seen: woken, it sees it.
      CallGlue("interpool_wake_waiters");
      nextAsk = std::chrono::steady_clock::now() + kThreadStopAskEvery;
    }
    // The GIL released, so that they can run, see the exception and end.
    Py_BEGIN_ALLOW_THREADS
    std::this_thread::sleep_for(kThreadStopPoll);
    Py_END_ALLOW_THREADS
    int left = OtherThreads(self);
    if (left == 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr,
                   "interpool: a subinterpreter ends with %d thread(s) its app started still running (blocked in C code: "
                   "they did not stop on SystemExit within %lld s, nor when made to unwind): it is left as it is, not "
                   "ended, and its memory is not given back\n",
                   left, static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(kThreadStopWait).count()));
      return false;
    }
  }
}

}  // namespace

RuntimeInfo InitializeMain(const std::string& executable, const std::vector<std::string>& preimport) {
  std::lock_guard<std::mutex> lock(initMutex);
  if (initialized) {
    if (executable != runtimeInfo.executable) {
      throw NativeFailure("NATIVE_CPYTHON_MISMATCH", "this process already embeds the CPython of " + runtimeInfo.executable +
                                                         "; it cannot also embed " + executable + " (one CPython per process)");
    }
    return runtimeInfo;
  }
  PromoteLibpythonToGlobal();

  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // The server's PYTHONHOME/PYTHONPATH belong to whatever python is on its PATH, not to
  // the CPython embedded here; argv and signals belong to Node.
  config.use_environment = 0;
  config.parse_argv = 0;
  config.install_signal_handlers = 0;
  // sys.prefix and the standard library are found from the executable's path.
  // Before the first arena: see arenas.h.
  TrackArenas();
  // Setting a bytes string pre-initializes CPython: the raw allocator is wrapped after
  // it and before the first interpreter (see large-blocks.h).
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, executable.c_str());
  if (!PyStatus_Exception(status)) {
    TrackLargeBlocks();
    status = Py_InitializeFromConfig(&config);
  }
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    throw NativeFailure("NATIVE_INIT_FAILED", "cannot initialize CPython from " + executable + ": " + StatusMessage(status));
  }
  // 3.11: a request for the shared GIL reaches the interpreter holding it (gil-handover.h).
  InterpoolStartGilHandover();

  // This thread now holds the main GIL. Extension modules that are known to corrupt
  // memory when first imported by a subinterpreter and ended with it are imported here
  // once, before any subinterpreter exists (see issue 19's pitfall).
  std::vector<std::string> failures;
  for (const std::string& name : preimport) {
    PyObject* module = PyImport_ImportModule(name.c_str());
    if (module == nullptr) {
      PyErr_Clear();
      failures.push_back(name);
    } else {
      Py_DECREF(module);
    }
  }
  std::string version = Py_GetVersion();
  runtimeInfo = RuntimeInfo{version.substr(0, version.find(' ')), executable, PY_VERSION_HEX >= 0x030C0000, failures};
  PyEval_SaveThread();
  initialized = true;
  return runtimeInfo;
}

namespace {

PyThreadState* NewSubinterpreter(bool ownGil) {
  MainInterpreterGuard main;
  PyThreadState* mainState = PyThreadState_Get();
  PyThreadState* sub = nullptr;
#if PY_VERSION_HEX >= 0x030C0000
  // Own GIL, own allocator (PEP 684), and C extensions must declare that they support
  // it; or, with ownGil false, the legacy configuration: the main GIL and allocator.
  // Daemon threads are allowed in both (CPython's isolated preset refuses them, which
  // refused every library with a background worker): when the interpreter ends,
  // StopOtherThreads stops them as it does the others.
  const PyInterpreterConfig config = ownGil
      ? PyInterpreterConfig{.use_main_obmalloc = 0, .allow_fork = 0, .allow_exec = 0, .allow_threads = 1,
                            .allow_daemon_threads = 1, .check_multi_interp_extensions = 1, .gil = PyInterpreterConfig_OWN_GIL}
      : PyInterpreterConfig{.use_main_obmalloc = 1, .allow_fork = 1, .allow_exec = 1, .allow_threads = 1,
                            .allow_daemon_threads = 1, .check_multi_interp_extensions = 0, .gil = PyInterpreterConfig_SHARED_GIL};
  PyStatus status = Py_NewInterpreterFromConfig(&sub, &config);
  if (PyStatus_Exception(status)) {
    // CPython has made the main thread state current again.
    throw NativeFailure("NATIVE_INTERPRETER_FAILED", "cannot create a subinterpreter: " + StatusMessage(status));
  }
#else
  if (ownGil) {
    throw NativeFailure("NATIVE_OWN_GIL_UNSUPPORTED", "CPython " PY_VERSION " has no per-interpreter GIL (3.12 or later has)");
  }
  sub = Py_NewInterpreter();
  if (sub == nullptr) throw NativeFailure("NATIVE_INTERPRETER_FAILED", "cannot create a subinterpreter: Py_NewInterpreter failed");
#endif
  int64_t id = PyInterpreterState_GetID(PyThreadState_GetInterpreter(sub));
  if (ownGil) NoteOwnAllocator(id);
  CountLargeBlocksOf(id);
  // The new interpreter is current (and, with its own GIL, holds it): back to the main
  // thread state, which the guard then releases. The sub's GIL is free on return.
  PyThreadState_Swap(mainState);
  return sub;
}

}  // namespace

PyThreadState* CreateSubinterpreter(bool ownGil) {
  PyThreadState* sub = NewSubinterpreter(ownGil);
  // Without the GIL: the hand-over's list lock is never waited for while holding it.
  InterpoolNoteSubinterpreter(PyThreadState_GetInterpreter(sub));
  return sub;
}

void EndSubinterpreter(PyThreadState* sub) {
#if PY_VERSION_HEX >= 0x030C0000
  // Since 3.12, attaching a thread state makes it this thread's PyGILState state, so
  // PyGILState_Ensure here could hand back this very subinterpreter's. End it as
  // _PyXI_EndInterpreter does: attach it (taking its GIL) and end it; CPython detaches
  // it, so nothing is held afterwards.
  int64_t id = PyInterpreterState_GetID(PyThreadState_GetInterpreter(sub));
  PyEval_RestoreThread(sub);
  RunExitFunctions();
  if (!StopOtherThreads(sub)) {
    PyEval_SaveThread();
    return;
  }
  Py_EndInterpreter(sub);
  ReleaseLeftArenas(id);
#else
  bool stopped = false;
  {
    MainInterpreterGuard main;
    PyThreadState* mainState = PyThreadState_Get();
    PyThreadState_Swap(sub);
    RunExitFunctions();
    // Left as it is if some thread the app started would not stop (see StopOtherThreads).
    stopped = StopOtherThreads(sub);
    PyThreadState_Swap(mainState);
  }
  if (!stopped) return;
  // Out of the GIL hand-over's list first, its lock taken without the GIL and held until
  // the GIL is dropped after the end (gil-handover.h).
  InterpoolForgetSubinterpreter(PyThreadState_GetInterpreter(sub));
  {
    MainInterpreterGuard main;
    PyThreadState* mainState = PyThreadState_Get();
    PyThreadState_Swap(sub);
    Py_EndInterpreter(sub);
    // No thread state is current, the shared GIL still held: take the main thread state
    // back for the guard to release.
    PyThreadState_Swap(mainState);
  }
  InterpoolForgotten();
#endif
}

// interpool.RequestTimeout of the interpreter whose GIL the caller holds (runtime/wsgi.py
// defines it: the Pyodide engine raises the same), or KeyboardInterrupt, its base, before
// wsgi.py is installed. Looked up at each (rare) use rather than held: no reference into
// the interpreter then has to be dropped before it ends.
PyObject* RequestTimeoutType() {
  PyObject* module = PyDict_GetItemString(PyImport_GetModuleDict(), "interpool");  // borrowed
  PyObject* type = module != nullptr ? PyObject_GetAttrString(module, "RequestTimeout") : nullptr;
  if (type != nullptr && PyExceptionClass_Check(type)) return type;
  PyErr_Clear();
  Py_XDECREF(type);
  Py_INCREF(PyExc_KeyboardInterrupt);
  return PyExc_KeyboardInterrupt;
}

void WithBorrowedThreadState(PyInterpreterState* interp, const std::function<void()>& body) {
  // CPython's pattern for a thread that borrows an interpreter (PyGILState_Release's):
  // a new thread state made current, then cleared and deleted while current.
  PyThreadState* borrowed = PyThreadState_New(interp);
  PyEval_RestoreThread(borrowed);
  body();
  PyThreadState_Clear(borrowed);
  PyThreadState_DeleteCurrent();
}

bool InterruptThread(PyInterpreterState* interp, unsigned long threadIdent, const std::function<bool()>& deliver) {
  bool delivered = false;
  WithBorrowedThreadState(interp, [&] {
    if (!deliver()) return;
    PyObject* timeout = RequestTimeoutType();
    delivered = PyThreadState_SetAsyncExc(threadIdent, timeout) == 1;
    Py_DECREF(timeout);
  });
  return delivered;
}

// CPython's allocator statistics (what sys._debugmallocstats() prints, for the calling
// thread's interpreter): exported by libpython, declared only in its internal headers.
extern "C" int _PyObject_DebugMallocStats(FILE* out);

namespace {

// The number printed after `label`'s "=" (with thousands separators), or -1.
long long NumberAfter(const char* text, const char* label) {
  const char* at = text != nullptr ? strstr(text, label) : nullptr;
  const char* equals = at != nullptr ? strchr(at, '=') : nullptr;
  if (equals == nullptr) return -1;
  long long value = 0;
  for (const char* c = equals + 1; *c != '\0' && *c != '\n'; c++) {
    if (*c >= '0' && *c <= '9') value = value * 10 + (*c - '0');
  }
  return value;
}

}  // namespace

AllocatorStats ReadAllocatorStats() {
  AllocatorStats stats;
  char* text = nullptr;
  size_t length = 0;
  FILE* out = open_memstream(&text, &length);
  if (out == nullptr) return stats;
  bool printed = _PyObject_DebugMallocStats(out) != 0;  // 0: pymalloc is not in use
  fclose(out);
  if (printed) {
    stats.allocatedBytes = NumberAfter(text, "# bytes in allocated blocks");
    // The "Total" closing the block figures: the arenas held, whole.
    stats.arenaBytes = NumberAfter(strstr(text, "# bytes lost to arena alignment"), "Total");
  }
  free(text);
  return stats;
}

NativeFailure TakePythonException() {
#if PY_VERSION_HEX >= 0x030C0000
  PyObject* exception = PyErr_GetRaisedException();
#else
  PyObject *type = nullptr, *exception = nullptr, *traceback = nullptr;
  PyErr_Fetch(&type, &exception, &traceback);
  PyErr_NormalizeException(&type, &exception, &traceback);
  if (exception != nullptr && traceback != nullptr) PyException_SetTraceback(exception, traceback);
  Py_XDECREF(type);
  Py_XDECREF(traceback);
#endif
  if (exception == nullptr) return NativeFailure("PYTHON_EXCEPTION", "a Python call failed without an exception");
  std::string message = "a Python exception that cannot be formatted";
  std::string detail;
  PyObject* module = PyImport_ImportModule("traceback");
  PyObject* lines = module ? PyObject_CallMethod(module, "format_exception", "O", exception) : nullptr;
  PyObject* empty = lines ? PyUnicode_FromString("") : nullptr;
  PyObject* joined = empty ? PyUnicode_Join(empty, lines) : nullptr;
  const char* text = joined ? PyUnicode_AsUTF8(joined) : nullptr;
  if (text != nullptr) {
    detail = text;
    std::string trimmed = detail.substr(0, detail.find_last_not_of('\n') + 1);
    message = trimmed.substr(trimmed.find_last_of('\n') + 1);
  }
  PyErr_Clear();
  Py_XDECREF(joined);
  Py_XDECREF(empty);
  Py_XDECREF(lines);
  Py_XDECREF(module);
  Py_DECREF(exception);
  return NativeFailure("PYTHON_EXCEPTION", message, detail);
}

}  // namespace interpool
