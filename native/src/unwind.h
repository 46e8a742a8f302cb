// Unwinding a request that catches its timeout's exception and carries on.
//
// A timeout raises interpool.RequestTimeout in the request's thread once (see
// InterruptThread). Python code that catches it and goes on (a retry loop under a bare
// `except:`) keeps its thread, and a CPU, for as long as the process lives: a worker
// thread cannot be terminated while Python runs. When --timeout-grace is over and the
// main thread is about to terminate the worker (ControlSlot.UNWIND), a trace function is
// set on that thread which raises the timeout again at every line and call of code
// outside the server's adapter: a handler's first line raises anew, so the exception
// reaches the adapter, which ends the call, and the thread gets back to JS, where the
// termination ends the worker. The app's own cleanup (`finally`, `with`) does not run
// during the unwinding: the interpreter is not kept.
#pragma once

#include <Python.h>

#include <functional>

namespace interpool {

// Called by a thread that holds no GIL (the timeout's watcher): sets the trace function
// on the thread `threadIdent` of `interp`, if `stillRunning()` (asked with the GIL held)
// says the call is still there. Returns whether it was set.
bool StartUnwinding(PyInterpreterState* interp, unsigned long threadIdent, const std::function<bool()>& stillRunning);

// Called by the request's own thread, holding its interpreter's GIL, once the call has
// returned: takes its trace function away.
void StopUnwinding();

// The same for the threads an app started, when its interpreter ends and SystemExit did
// not stop them (a background loop under a bare `except:`): every thread of the current
// interpreter but the calling one raises SystemExit at every line and call from then on.
// The caller holds the interpreter's GIL; the interpreter is ending, so nothing takes the
// trace function away but the threads' own end.
void UnwindOtherThreads(PyThreadState* self);

}  // namespace interpool
