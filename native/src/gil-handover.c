// See gil-handover.h. C, not C++: CPython 3.11's internal headers (the GIL's state, an
// interpreter's eval state) use C11 atomics.
#include "gil-handover.h"

#if PY_VERSION_HEX < 0x030C0000

#define Py_BUILD_CORE 1
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"

#include <pthread.h>
#include <time.h>

// The subinterpreters the addon made and has not ended. A process holds a handful (its
// workers, and those left running: interpreter.cc), so a small array does.
#define MAX_TRACKED 256
static pthread_mutex_t trackedMutex = PTHREAD_MUTEX_INITIALIZER;
static PyInterpreterState* tracked[MAX_TRACKED];
static int trackedCount = 0;
static int started = 0;

static int Asks(PyInterpreterState* interp) {
  return _Py_atomic_load_relaxed(&interp->ceval.gil_drop_request) != 0;
}

// As 3.11's SET_GIL_DROP_REQUEST (ceval_gil.h): the request, and the eval loop's breaker
// that makes the holder look at it.
static void Ask(PyInterpreterState* interp) {
  _Py_atomic_store_relaxed(&interp->ceval.gil_drop_request, 1);
  _Py_atomic_store_relaxed(&interp->ceval.eval_breaker, 1);
}

static int Known(PyInterpreterState* interp) {
  if (interp == _PyRuntime.interpreters.main) return 1;
  for (int i = 0; i < trackedCount; i++) {
    if (tracked[i] == interp) return 1;
  }
  return 0;
}

// Whether a thread of an interpreter other than `holding` waits for the GIL: any
// interpreter, a subinterpreter being created included (its creating thread waits as
// it). The runtime's list of interpreters is read under its own lock (HEAD_LOCK), under
// which an interpreter leaves it before it is freed; CPython takes no GIL lock inside it.
static int AnotherAsks(PyInterpreterState* holding) {
  int waiting = 0;
  PyThread_acquire_lock(_PyRuntime.interpreters.mutex, WAIT_LOCK);
  for (PyInterpreterState* interp = _PyRuntime.interpreters.head; interp != NULL && !waiting; interp = interp->next) {
    waiting = interp != holding && Asks(interp);
  }
  PyThread_release_lock(_PyRuntime.interpreters.mutex);
  return waiting;
}

// One pass: if a thread of another interpreter waits for the GIL (its interpreter asks),
// the holder's interpreter is asked too. Under the GIL's mutex, as a waiter checks it
// (take_gil), then its switch mutex (take_gil's order): the GIL can be neither taken nor
// dropped meanwhile, so the holder (last_holder, with `locked` set) is the thread that
// holds it, a live thread state, and a request found set on another interpreter is a
// waiter's that still waits (a waiter clears its own when it gets the GIL). The request
// made here is on the holder's interpreter alone, and its next drop_gil clears it; that
// drop has a waiter to hand the GIL to, so FORCE_SWITCHING's wait for the switch ends.
// Only the main interpreter and the addon's subinterpreters are touched: one leaves
// the list before Py_EndInterpreter, and the list's mutex is held until its thread
// has dropped the GIL after it (interpreter.cc), so nothing read here is freed memory.
static void HandOver(void) {
  struct _gil_runtime_state* gil = &_PyRuntime.ceval.gil;
  // Busy while a subinterpreter is being created or ended: this pass is skipped.
  if (pthread_mutex_trylock(&trackedMutex) != 0) return;
  if (trackedCount > 0) {
    pthread_mutex_lock(&gil->mutex);
    pthread_mutex_lock(&gil->switch_mutex);
    if (_Py_atomic_load_relaxed(&gil->locked) == 1) {
      PyThreadState* holder = (PyThreadState*)_Py_atomic_load_relaxed(&gil->last_holder);
      PyInterpreterState* holding = holder != NULL ? holder->interp : NULL;
      if (holding != NULL && Known(holding) && !Asks(holding) && AnotherAsks(holding)) Ask(holding);
    }
    pthread_mutex_unlock(&gil->switch_mutex);
    pthread_mutex_unlock(&gil->mutex);
  }
  pthread_mutex_unlock(&trackedMutex);
}

static void* Run(void* unused) {
  (void)unused;
  for (;;) {
    // The switch interval (sys.setswitchinterval; 5 ms by default), as a waiter's own.
    unsigned long interval = _PyRuntime.ceval.gil.interval >= 1 ? _PyRuntime.ceval.gil.interval : 1;
    struct timespec pause = {(time_t)(interval / 1000000), (long)(interval % 1000000) * 1000};
    nanosleep(&pause, NULL);
    HandOver();
  }
  return NULL;
}

void InterpoolStartGilHandover(void) {
  pthread_mutex_lock(&trackedMutex);
  if (!started) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, Run, NULL) == 0) {
      pthread_detach(thread);
      started = 1;
    }
  }
  pthread_mutex_unlock(&trackedMutex);
}

void InterpoolNoteSubinterpreter(PyInterpreterState* interp) {
  pthread_mutex_lock(&trackedMutex);
  if (trackedCount < MAX_TRACKED) tracked[trackedCount++] = interp;
  pthread_mutex_unlock(&trackedMutex);
}

void InterpoolForgetSubinterpreter(PyInterpreterState* interp) {
  pthread_mutex_lock(&trackedMutex);
  for (int i = 0; i < trackedCount; i++) {
    if (tracked[i] == interp) {
      tracked[i] = tracked[--trackedCount];
      break;
    }
  }
}

void InterpoolForgotten(void) { pthread_mutex_unlock(&trackedMutex); }

#else

void InterpoolStartGilHandover(void) {}
void InterpoolNoteSubinterpreter(PyInterpreterState* interp) { (void)interp; }
void InterpoolForgetSubinterpreter(PyInterpreterState* interp) { (void)interp; }
void InterpoolForgotten(void) {}

#endif
