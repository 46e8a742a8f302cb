// The addon's JS surface: one Engine per Node environment (per worker thread), holding
// at most one subinterpreter, created, used and ended by that thread only. Policy (which
// CPython, what to pre-import, what to run) is the caller's: see runtime/interpreters/native.ts.
#include <napi.h>

#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "arenas.h"
#include "convert.h"
#include "interpreter.h"
#include "large-blocks.h"
#include "unwind.h"

namespace interpool {
namespace {

Napi::Error ToJsError(Napi::Env env, const NativeFailure& failure) {
  Napi::Error error = Napi::Error::New(env, failure.what());
  error.Set("code", failure.code);
  if (!failure.detail.empty()) error.Set("detail", failure.detail);
  return error;
}

// Node unloads an addon with the last worker that loaded it, but the process's CPython
// lives on: this library (and its record of having initialized CPython) must stay.
void KeepLoaded() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&KeepLoaded), &info) != 0 && info.dli_fname != nullptr) {
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

// Bytes kept for the whole process, shared by every worker thread (a JS value cannot
// cross threads; the addon's memory is one per process): what one interpreter computed
// that the next can reuse, such as wsgi.py's code, marshalled. Few, small entries.
std::mutex sharedBytesMutex;
std::unordered_map<std::string, std::vector<uint8_t>> sharedBytes;

class Engine : public Napi::Addon<Engine> {
 public:
  Engine(Napi::Env env, Napi::Object exports) {
    KeepLoaded();
    DefineAddon(exports, {
        InstanceValue("pythonVersion", Napi::String::New(env, PY_VERSION), napi_enumerable),
        InstanceValue("ownGilSupported", Napi::Boolean::New(env, PY_VERSION_HEX >= 0x030C0000), napi_enumerable),
        InstanceMethod("initialize", &Engine::Initialize),
        InstanceMethod("start", &Engine::Start),
        InstanceMethod("run", &Engine::Run),
        InstanceMethod("call", &Engine::Call),
        InstanceMethod("callWithPacked", &Engine::CallWithPacked),
        InstanceMethod("end", &Engine::End),
        InstanceMethod("watchInterrupts", &Engine::WatchInterrupts),
        InstanceMethod("allocatorStats", &Engine::AllocatorStatsOf),
        InstanceMethod("largeBlockBytes", &Engine::LargeBlockBytesOf),
        InstanceMethod("releasedArenas", &Engine::ReleasedArenasOf),
        InstanceMethod("sharedBytes", &Engine::SharedBytesOf),
        InstanceMethod("shareBytes", &Engine::ShareBytes),
    });
  }

  // The worker thread's environment is going away (the worker exits): end its
  // interpreter so that its memory goes back to the process.
  ~Engine() {
    StopWatching();
    if (sub_ == nullptr) return;
    ReleaseKeptObjects();
    SetEnvironmentTearingDown(true);
    EndSubinterpreter(sub_);
    SetEnvironmentTearingDown(false);
  }

 private:
  // initialize(executable, preimport[]) → {version, executable, ownGil, preimportFailures}
  Napi::Value Initialize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string executable = info[0].As<Napi::String>().Utf8Value();
    std::vector<std::string> preimport;
    auto names = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < names.Length(); i++) preimport.push_back(names.Get(i).As<Napi::String>().Utf8Value());
    try {
      RuntimeInfo runtime = InitializeMain(executable, preimport);
      auto result = Napi::Object::New(env);
      result.Set("version", runtime.version);
      result.Set("executable", runtime.executable);
      result.Set("ownGil", runtime.ownGil);
      auto failures = Napi::Array::New(env, runtime.preimportFailures.size());
      for (size_t i = 0; i < runtime.preimportFailures.size(); i++) failures.Set(static_cast<uint32_t>(i), runtime.preimportFailures[i]);
      result.Set("preimportFailures", failures);
      return result;
    } catch (const NativeFailure& failure) {
      throw ToJsError(env, failure);
    }
  }

  // start(ownGil) creates this thread's subinterpreter.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (sub_ != nullptr) throw ToJsError(env, NativeFailure("NATIVE_STATE", "this thread already has a subinterpreter"));
    try {
      sub_ = CreateSubinterpreter(info[0].ToBoolean().Value());
      // The subinterpreter's thread state belongs to this thread: its ident is what an
      // asynchronous exception is addressed to.
      threadIdent_ = PyThread_get_thread_ident();
      interpreterId_ = PyInterpreterState_GetID(PyThreadState_GetInterpreter(sub_));
      SetInJsFlag(&inJs_);
    } catch (const NativeFailure& failure) {
      throw ToJsError(env, failure);
    }
    return env.Undefined();
  }

  // run(code): exec the code in the subinterpreter's __main__.
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string code = info[0].As<Napi::String>().Utf8Value();
    try {
      InterpreterGuard hold(Started(env));
      PyObject* globals = MainGlobals();
      PyObject* result = PyRun_String(code.c_str(), Py_file_input, globals, globals);
      if (result == nullptr) throw TakePythonException();
      Py_DECREF(result);
    } catch (const NativeFailure& failure) {
      throw ToJsError(env, failure);
    }
    return env.Undefined();
  }

  // call(name, ...args): __main__.<name>(*args), the arguments and the result converted
  // (convert.h). A Python exception becomes an error with code PYTHON_EXCEPTION.
  Napi::Value Call(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    try {
      InterpreterGuard hold(Started(env));
      PyObject* args = PyTuple_New(static_cast<Py_ssize_t>(info.Length() - 1));
      if (args == nullptr) throw TakePythonException();
      try {
        for (size_t i = 1; i < info.Length(); i++) PyTuple_SET_ITEM(args, static_cast<Py_ssize_t>(i - 1), ToPython(env, info[i]));
      } catch (...) {
        Py_DECREF(args);
        throw;
      }
      return CallMain(env, info[0], args);
    } catch (const NativeFailure& failure) {
      throw ToJsError(env, failure);
    }
  }

  // callWithPacked(name, packed, ...args): __main__.<name>(dict, *args), the dict being
  // the string record `packed` carries (convert.h, ToPythonPackedDict: read in one piece).
  // A request's CGI variables come this way.
  Napi::Value CallWithPacked(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2) throw Napi::TypeError::New(env, "callWithPacked(name, packed, ...args)");
    try {
      InterpreterGuard hold(Started(env));
      PyObject* args = PyTuple_New(static_cast<Py_ssize_t>(info.Length() - 1));
      if (args == nullptr) throw TakePythonException();
      try {
        PyObject* record = ToPythonPackedDict(env, info[1]);
        if (record == nullptr) throw Napi::TypeError::New(env, "callWithPacked: the packed record does not split into keys and values");
        PyTuple_SET_ITEM(args, 0, record);
        for (size_t i = 2; i < info.Length(); i++) PyTuple_SET_ITEM(args, static_cast<Py_ssize_t>(i - 1), ToPython(env, info[i]));
      } catch (...) {
        Py_DECREF(args);
        throw;
      }
      return CallMain(env, info[0], args);
    } catch (const NativeFailure& failure) {
      throw ToJsError(env, failure);
    }
  }

  // __main__.<name>(*args) (args is taken: a new reference the call releases), the result
  // converted; the caller holds the interpreter's GIL.
  Napi::Value CallMain(Napi::Env env, Napi::Value nameValue, PyObject* args) {
    PyObject* result = nullptr;
    try {
      std::string name = nameValue.As<Napi::String>().Utf8Value();
      PyObject* function = PyDict_GetItemString(MainGlobals(), name.c_str());  // borrowed
      if (function == nullptr) throw NativeFailure("NATIVE_STATE", "__main__ has no function " + name);
      running_.store(true);
      result = PyObject_Call(function, args, nullptr);
      running_.store(false);
      if (unwinding_.exchange(false)) {
        // Said once it has happened: a thread blocked in C never gets here (it is stuck).
        StopUnwinding();
        std::fprintf(stderr,
                     "interpool: a request still ran Python at the end of --timeout-grace (it caught "
                     "interpool.RequestTimeout and went on, or its cleanup took longer): it was made to unwind, "
                     "and its worker ends\n");
      }
    } catch (...) {
      Py_DECREF(args);
      throw;
    }
    Py_DECREF(args);
    if (result == nullptr) throw TakePythonException();
    try {
      Napi::Value converted = ToJs(env, result);
      Py_DECREF(result);
      return converted;
    } catch (...) {
      Py_DECREF(result);
      throw;
    }
  }

  // watchInterrupts(control: Int32Array, slot, unwindSlot): while a call runs, a nonzero
  // value in control[slot] (a timeout, set by the main thread) is taken (reset to 0) and
  // raised in the subinterpreter as interpool.RequestTimeout (a KeyboardInterrupt); a
  // nonzero control[unwindSlot] (--timeout-grace over, the worker about to be
  // terminated) makes a call still running Python unwind (unwind.h), so that the thread
  // gets back to JS, where the termination ends it. A watcher thread looks every few
  // milliseconds: Atomics.notify wakes only JS waiters, so there is nothing to block on.
  Napi::Value WatchInterrupts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Started(env);
    if (watcher_.joinable()) throw ToJsError(env, NativeFailure("NATIVE_STATE", "interrupts are already watched"));
    auto control = info[0].As<Napi::Int32Array>();
    uint32_t slot = info[1].As<Napi::Number>().Uint32Value();
    // Without an unwind slot (a caller older than unwind.h), nothing is unwound.
    bool unwinds = info.Length() > 2 && info[2].IsNumber();
    uint32_t unwindSlot = unwinds ? info[2].As<Napi::Number>().Uint32Value() : slot;
    if (slot >= control.ElementLength() || unwindSlot >= control.ElementLength()) throw Napi::RangeError::New(env, "slot is outside the control block");
    control_ = Napi::Persistent(control);  // keeps the shared memory alive
    int32_t* cell = control.Data() + slot;
    int32_t* unwindCell = unwinds ? control.Data() + unwindSlot : nullptr;
    PyInterpreterState* interp = PyThreadState_GetInterpreter(sub_);
    unsigned long ident = threadIdent_;
    watcher_ = std::thread([this, cell, unwindCell, interp, ident] {
      std::atomic_ref<int32_t> flag(*cell);
      while (!stopWatching_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (unwindCell != nullptr && std::atomic_ref<int32_t>(*unwindCell).load() != 0) UnwindIfRunningPython(interp, ident);
        int32_t seen = flag.load();
        if (seen == 0 || !running_.load() || inJs_.load()) continue;
        if (!flag.compare_exchange_strong(seen, 0)) continue;
        bool delivered = InterruptThread(interp, ident, [this] { return running_.load() && !inJs_.load(); });
        // Gone to wait in JS meanwhile: put the flag back for JS (time.sleep takes it),
        // or for the next look once Python runs again. A finished call drops it.
        if (!delivered && running_.load()) flag.store(seen);
      }
    });
    return env.Undefined();
  }

  // The watcher's part of unwind.h, once the main thread asked for it: a call running
  // Python is made to unwind (once); one waiting in JS is ended by the termination itself.
  void UnwindIfRunningPython(PyInterpreterState* interp, unsigned long ident) {
    auto runsPython = [this] { return running_.load() && !inJs_.load(); };
    if (!runsPython() || unwinding_.exchange(true)) return;
    if (!StartUnwinding(interp, ident, runsPython)) unwinding_.store(false);
  }

  // allocatorStats() → {allocatedBytes, arenaBytes} of this subinterpreter's allocator
  // (see interpreter.h: its own, or the process's shared one); -1 when unknown.
  Napi::Value AllocatorStatsOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    AllocatorStats stats;
    {
      InterpreterGuard hold(Started(env));
      stats = ReadAllocatorStats();
    }
    auto result = Napi::Object::New(env);
    result.Set("allocatedBytes", static_cast<double>(stats.allocatedBytes));
    result.Set("arenaBytes", static_cast<double>(stats.arenaBytes));
    return result;
  }

  // largeBlockBytes() → the C-heap blocks (objects over 512 bytes) this thread's
  // interpreter holds, or -1 when they are not counted (large-blocks.h). No GIL needed.
  Napi::Value LargeBlockBytesOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Started(env);
    return Napi::Number::New(env, static_cast<double>(LargeBlockBytes(interpreterId_)));
  }

  // releasedArenas() → {releasedBytes, keptBytes, interpreters}: what ending own-GIL
  // subinterpreters in this process gave back of the arenas CPython left (arenas.h).
  Napi::Value ReleasedArenasOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ReleasedArenas figures = ReleasedArenasSoFar();
    auto result = Napi::Object::New(env);
    result.Set("releasedBytes", static_cast<double>(figures.released));
    result.Set("keptBytes", static_cast<double>(figures.kept));
    result.Set("interpreters", static_cast<double>(figures.interpreters));
    return result;
  }

  // sharedBytes(key) → a copy of the bytes shareBytes(key, bytes) kept, or null.
  Napi::Value SharedBytesOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string key = info[0].As<Napi::String>().Utf8Value();
    std::lock_guard<std::mutex> lock(sharedBytesMutex);
    auto found = sharedBytes.find(key);
    if (found == sharedBytes.end()) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, found->second.data(), found->second.size());
  }

  // shareBytes(key, bytes): keeps a copy for every thread of this process.
  Napi::Value ShareBytes(const Napi::CallbackInfo& info) {
    std::string key = info[0].As<Napi::String>().Utf8Value();
    auto bytes = info[1].As<Napi::Uint8Array>();
    std::vector<uint8_t> copy(bytes.Data(), bytes.Data() + bytes.ByteLength());
    std::lock_guard<std::mutex> lock(sharedBytesMutex);
    sharedBytes[key] = std::move(copy);
    return info.Env().Undefined();
  }

  void StopWatching() {
    if (!watcher_.joinable()) return;
    stopWatching_.store(true);
    watcher_.join();
    stopWatching_.store(false);
  }

  // end(): end this thread's subinterpreter (a no-op when there is none).
  Napi::Value End(const Napi::CallbackInfo& info) {
    StopWatching();
    if (sub_ != nullptr) {
      ReleaseKeptObjects();
      PyThreadState* sub = sub_;
      sub_ = nullptr;
      EndSubinterpreter(sub);
    }
    return info.Env().Undefined();
  }

  // What this thread keeps of its interpreter's objects between calls (convert.h), dropped
  // before the interpreter ends.
  void ReleaseKeptObjects() {
    InterpreterGuard hold(sub_);
    ReleaseRecordKeys();
  }

  PyThreadState* Started(Napi::Env env) {
    if (sub_ == nullptr) throw ToJsError(env, NativeFailure("NATIVE_STATE", "this thread has no subinterpreter (call start first)"));
    return sub_;
  }

  // The subinterpreter's __main__ namespace (borrowed); the caller holds its GIL.
  static PyObject* MainGlobals() {
    PyObject* main = PyImport_AddModule("__main__");  // borrowed
    if (main == nullptr) throw TakePythonException();
    return PyModule_GetDict(main);
  }

  PyThreadState* sub_ = nullptr;
  unsigned long threadIdent_ = 0;
  int64_t interpreterId_ = -1;
  // True while Python runs a call (a request): only then is an interrupt delivered.
  std::atomic<bool> running_{false};
  // True while that call waits on a JS function (its GIL released): see convert.h.
  std::atomic<bool> inJs_{false};
  std::atomic<bool> stopWatching_{false};
  // Set by the watcher while the running call unwinds (unwind.h).
  std::atomic<bool> unwinding_{false};
  std::thread watcher_;
  Napi::Reference<Napi::Int32Array> control_;
};

}  // namespace
}  // namespace interpool

using interpool::Engine;
NODE_API_ADDON(Engine)
