// Values between JS and the Python interpreter the calling thread holds. Both directions
// copy: no Python object is ever seen by JS, and no JS value outlives its conversion
// except a function, which Python holds through a reference it releases on collection.
#pragma once

#include <Python.h>
#include <napi.h>

#include <atomic>

namespace interpool {

// JS → Python: undefined/null → None, boolean → bool, number → int when integral and
// exact, else float, string → str, Uint8Array/ArrayBuffer → bytes, array → list,
// function → a callable calling it (its GIL released meanwhile), other object → dict.
// Returns a new reference; throws Napi::Error (TypeError) for what it cannot convert.
PyObject* ToPython(Napi::Env env, Napi::Value value);

// A string record packed as the main thread packs the CGI variables (server/environ.ts): each
// key and each value followed by a NUL. As a dict of str, in order, read from JS in one
// piece (converting the object costs a Node-API call or two per key and per value: most
// of what passing a request to Python cost). nullptr, with nothing raised, when the text
// does not split into keys and values. No value may hold a NUL of its own: the main
// thread sends such a record as an object (runtime/protocol.ts WireCgi).
PyObject* ToPythonPackedDict(Napi::Env env, napi_value packed);

// Drops the names ToPythonPackedDict keeps for this thread's interpreter (made once, as
// they repeat on every request). The caller holds that interpreter's GIL, before it ends.
void ReleaseRecordKeys();

// Python → JS: None → null, bool, int/float → number, str → string, bytes-like →
// Uint8Array, list/tuple → array, dict → object. Throws Napi::Error (TypeError) for
// other types; a Python error it raises is cleared first.
Napi::Value ToJs(Napi::Env env, PyObject* value);

// The flag this thread raises while Python waits on a JS call (its GIL released): the
// interrupt watcher leaves such a wait to JS (time.sleep ends itself on the flag).
void SetInJsFlag(std::atomic<bool>* flag);

// While true on this thread, a JS function held by Python is not released when Python
// drops it: its Node environment is tearing down and frees it itself.
void SetEnvironmentTearingDown(bool tearingDown);

}  // namespace interpool
