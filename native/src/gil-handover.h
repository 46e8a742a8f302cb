// CPython 3.11: passing a request for the shared GIL on to the interpreter that holds it.
//
// Up to 3.11 the request to drop the GIL is kept per interpreter
// (interp->ceval.gil_drop_request), and a thread holding the GIL checks only its own
// interpreter's. A thread of interpreter X that waits for the GIL asks X; a thread of Y
// running pure Python never sees it, and keeps the GIL until it blocks or returns. So
// one CPU-bound request stalled every other interpreter of the process: hello waited
// 1.7 s behind a 2-second loop in another subinterpreter (2026-12-01), and a request
// that caught its timeout's exception in a loop kept the GIL for good, so no replacement
// interpreter could even start. 3.12 keeps the request with the GIL itself. A thread here
// does what 3.12 does for the subinterpreters this addon made: every switch interval,
// while one of them (or the main interpreter) asks, it asks the others too, and the
// holder drops the GIL as it would for a waiter of its own interpreter. A no-op on 3.12
// and later.
#pragma once

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

// Starts the hand-over thread (once; after Py_InitializeFromConfig).
void InterpoolStartGilHandover(void);
// A subinterpreter made by the addon, just created (called without the GIL).
void InterpoolNoteSubinterpreter(PyInterpreterState* interp);
// One about to be ended: called without the GIL, before Py_EndInterpreter; the list's
// lock stays held until InterpoolForgotten(), called once the ending thread has dropped
// the GIL after it (until then the GIL's last holder is a thread state
// Py_EndInterpreter freed).
void InterpoolForgetSubinterpreter(PyInterpreterState* interp);
void InterpoolForgotten(void);

#ifdef __cplusplus
}
#endif
