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

// Sets `trace` with `arg` on the threads of the current interpreter that `wanted` picks
// (by ident); true if it was set on one. The caller holds the interpreter's GIL. From
// 3.12 only "all threads" is public: the trace functions take themselves away at once
// from a thread they are not for.
bool SetTraceWhere(Py_tracefunc trace, PyObject* arg, const std::function<bool(unsigned long)>& wanted) {
#if PY_VERSION_HEX >= 0x030C0000
  (void)wanted;
  PyEval_SetTraceAllThreads(trace, arg);
  return true;
#else
  bool set = false;
  PyInterpreterState* interp = PyThreadState_GetInterpreter(PyThreadState_Get());
  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr; t = PyThreadState_Next(t)) {
    if (wanted(t->thread_id) && _PyEval_SetTrace(t, trace, arg) == 0) set = true;
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
    started = SetTraceWhere(RaiseTimeoutTrace, target, [threadIdent](unsigned long ident) { return ident == threadIdent; });
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
  unsigned long selfIdent = self->thread_id;
  SetTraceWhere(RaiseSystemExitTrace, spared, [selfIdent](unsigned long ident) { return ident != selfIdent; });
  Py_DECREF(spared);
  // Set on this thread too where only "all threads" exists: taken away now.
  PyEval_SetTrace(nullptr, nullptr);
  PyErr_Clear();
}

}  // namespace interpool
