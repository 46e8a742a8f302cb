#include "unwind.h"

#include <frameobject.h>

#include <cstring>

#include "interpreter.h"

namespace interpool {
namespace {

// The frame runs the server's own Python (the adapter, interpool_wsgi, or the glue in
// __main__), which must run on to end the request: it is not raised in.
bool IsServerFrame(PyFrameObject* frame) {
  PyObject* globals = PyFrame_GetGlobals(frame);  // new reference
  PyObject* name = globals != nullptr ? PyDict_GetItemString(globals, "__name__") : nullptr;  // borrowed
  const char* text = name != nullptr && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : nullptr;
  bool server = text != nullptr && (std::strcmp(text, "interpool_wsgi") == 0 || std::strcmp(text, "__main__") == 0);
  Py_XDECREF(globals);
  return server;
}

// The trace function. `target` is the request thread's ident (a Python int): on 3.12
// and later it is set on every thread of the interpreter, and each other thread takes
// it away at its first event.
int RaiseTimeoutTrace(PyObject* target, PyFrameObject* frame, int what, PyObject*) {
  if (PyThread_get_thread_ident() != PyLong_AsUnsignedLong(target)) {
    PyEval_SetTrace(nullptr, nullptr);
    return 0;
  }
  if ((what != PyTrace_LINE && what != PyTrace_CALL) || IsServerFrame(frame)) return 0;
  PyObject* timeout = RequestTimeoutType();
  PyErr_SetNone(timeout);
  Py_DECREF(timeout);
  return -1;
}

// The trace function for the threads of an ending interpreter: `spared` (a Python int)
// is the ident of the thread that ends it, which takes the function away at once.
int RaiseSystemExitTrace(PyObject* spared, PyFrameObject*, int what, PyObject*) {
  if (PyThread_get_thread_ident() == PyLong_AsUnsignedLong(spared)) {
    PyEval_SetTrace(nullptr, nullptr);
    return 0;
  }
  if (what != PyTrace_LINE && what != PyTrace_CALL) return 0;
  PyErr_SetNone(PyExc_SystemExit);
  return -1;
}

// Sets `trace` on every thread of the current interpreter but `spared`, with `arg`; true
// if it was set on one. The caller holds the interpreter's GIL.
bool SetTraceOnOthers(Py_tracefunc trace, PyObject* arg, unsigned long spared) {
#if PY_VERSION_HEX >= 0x030C0000
  // Only "all threads" is public: the spared one drops it (the trace functions check).
  (void)spared;
  PyEval_SetTraceAllThreads(trace, arg);
  return true;
#else
  bool set = false;
  PyInterpreterState* interp = PyThreadState_GetInterpreter(PyThreadState_Get());
  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr; t = PyThreadState_Next(t)) {
    if (t->thread_id != spared && _PyEval_SetTrace(t, trace, arg) == 0) set = true;
  }
  return set;
#endif
}

}  // namespace

bool StartUnwinding(PyInterpreterState* interp, unsigned long threadIdent, const std::function<bool()>& stillRunning) {
  bool started = false;
  WithBorrowedThreadState(interp, [&] {
    if (!stillRunning()) return;
    PyObject* target = PyLong_FromUnsignedLong(threadIdent);
    if (target == nullptr) {
      PyErr_Clear();
      return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    // Only "all threads" is public; the others drop it at once (RaiseTimeoutTrace).
    PyEval_SetTraceAllThreads(RaiseTimeoutTrace, target);
    started = true;
#else
    for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr; t = PyThreadState_Next(t)) {
      if (t->thread_id == threadIdent && _PyEval_SetTrace(t, RaiseTimeoutTrace, target) == 0) started = true;
    }
#endif
    Py_DECREF(target);
    // The exception once more: a loop with no line to trace (3.11 compiles `while True:
    // pass` to a jump to itself) sees it at its next check, and its handler has lines.
    if (started) {
      PyObject* timeout = RequestTimeoutType();
      PyThreadState_SetAsyncExc(threadIdent, timeout);
      Py_DECREF(timeout);
    }
    PyErr_Clear();
  });
  return started;
}

void StopUnwinding() { PyEval_SetTrace(nullptr, nullptr); }

void UnwindOtherThreads(PyThreadState* self) {
  PyObject* spared = PyLong_FromUnsignedLong(self->thread_id);
  if (spared == nullptr) {
    PyErr_Clear();
    return;
  }
  SetTraceOnOthers(RaiseSystemExitTrace, spared, self->thread_id);
  Py_DECREF(spared);
  // Set on this thread too where only "all threads" exists: taken away now.
  PyEval_SetTrace(nullptr, nullptr);
  PyErr_Clear();
}

}  // namespace interpool
