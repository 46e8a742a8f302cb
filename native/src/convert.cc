#include "convert.h"

#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "interpreter.h"

namespace interpool {
namespace {

thread_local bool environmentTearingDown = false;
thread_local std::atomic<bool>* inJsFlag = nullptr;
constexpr const char* kCapsuleName = "interpool.js_function";

// Raises this thread's in-JS flag while the GIL is still held and puts it back once it
// is held again, so that whoever holds this interpreter's GIL reads it consistently.
class InJsMark {
 public:
  InJsMark() : previous_(inJsFlag != nullptr && inJsFlag->exchange(true)) {}
  ~InJsMark() {
    if (inJsFlag != nullptr) inJsFlag->store(previous_);
  }

 private:
  bool previous_;
};

// A JS function held by Python: the capsule is the `self` of a builtin function. Only
// the worker thread that made it may call it (Node-API values belong to their thread);
// a thread the app started gets a RuntimeError instead of undefined behaviour.
struct HeldFunction {
  Napi::FunctionReference function;
  std::thread::id owner = std::this_thread::get_id();
};

void ReleaseHeldFunction(PyObject* capsule) {
  auto* held = static_cast<HeldFunction*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (environmentTearingDown) held->function.SuppressDestruct();
  delete held;
}

// Called by Python, holding the calling interpreter's GIL, on the worker thread that is
// inside a Node-API call: calling the JS function synchronously is allowed here. The GIL
// is released while JS runs, so that JS may block (backpressure) without stalling the
// interpreter's other threads, or on 3.11 every other interpreter.
PyObject* CallHeldFunction(PyObject* capsule, PyObject* args) {
  auto* held = static_cast<HeldFunction*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (std::this_thread::get_id() != held->owner) {
    PyErr_SetString(PyExc_RuntimeError,
                    "interpool: the server can be called only from the thread that serves the request, not from a thread the app started");
    return nullptr;
  }
  Napi::Env env = held->function.Env();
  try {
    Napi::HandleScope scope(env);
    std::vector<napi_value> jsArgs;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) jsArgs.push_back(ToJs(env, PyTuple_GET_ITEM(args, i)));
    Napi::Value result;
    {
      InJsMark mark;  // destroyed after `release`: lowered once the GIL is held again
      GilRelease release;
      result = held->function.Call(jsArgs);
    }
    return ToPython(env, result);
  } catch (const Napi::Error& error) {
    PyErr_SetString(PyExc_RuntimeError, error.Message().c_str());
  } catch (const NativeFailure& failure) {
    PyErr_SetString(PyExc_RuntimeError, failure.what());
  } catch (const std::exception& error) {
    // Nothing C++ may unwind through CPython's C frames.
    PyErr_SetString(PyExc_RuntimeError, error.what());
  }
  return nullptr;
}

PyMethodDef heldFunctionDef = {"js_function", CallHeldFunction, METH_VARARGS, "A JavaScript function of this worker thread."};

// A new reference, or a thrown NativeFailure carrying the Python exception.
PyObject* Checked(PyObject* object) {
  if (object == nullptr) throw TakePythonException();
  return object;
}

PyObject* ToPythonBytes(const void* data, size_t length) {
  return Checked(PyBytes_FromStringAndSize(static_cast<const char*>(data), static_cast<Py_ssize_t>(length)));
}

// A JS string as a Python str, read through a buffer on the stack when it fits: what
// Napi::String::Utf8Value does costs a pass to measure the UTF-8 length and an
// allocation, for each of the two dozen strings of a request's environ. V8 writes at
// most capacity - 1 bytes and ends them with a NUL, so a string that fills the buffer
// may have been cut: it is read again at its full length. Lone surrogates become
// U+FFFD either way (V8's encoder), as they did.
PyObject* ToPythonString(Napi::Env env, napi_value value) {
  char stack[256];
  size_t length = 0;
  napi_status status = napi_get_value_string_utf8(env, value, stack, sizeof stack, &length);
  if (status != napi_ok) throw Napi::Error::New(env);
  if (length < sizeof stack - 1) return Checked(PyUnicode_DecodeUTF8(stack, static_cast<Py_ssize_t>(length), "surrogatepass"));
  std::string text = Napi::String(env, value).Utf8Value();
  return Checked(PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "surrogatepass"));
}

// dict[key] = make(), for a key and a value that are new references this takes: both
// are released whatever happens (make() throwing, PyDict_SetItem failing, which throws
// the Python exception). False, nothing set, when make() gives no value.
template <typename Make>
bool SetItemTaking(PyObject* dict, PyObject* key, Make make) {
  PyObject* value = nullptr;
  try {
    value = make();
  } catch (...) {
    Py_DECREF(key);
    throw;
  }
  if (value == nullptr) {
    Py_DECREF(key);
    return false;
  }
  int failed = PyDict_SetItem(dict, key, value);
  Py_DECREF(key);
  Py_DECREF(value);
  if (failed != 0) throw TakePythonException();
  return true;
}

// A plain object as a dict: its own enumerable string-keyed properties (the environ's
// CGI variables, a host's functions), in order. Own keys only: walking the prototype
// chain for enumerable inherited ones found none and cost a third of the conversion.
PyObject* ToPythonDict(Napi::Env env, Napi::Object object) {
  napi_value names = nullptr;
  if (napi_get_all_property_names(env, object, napi_key_own_only, static_cast<napi_key_filter>(napi_key_enumerable | napi_key_skip_symbols),
                                  napi_key_numbers_to_strings, &names) != napi_ok) {
    throw Napi::Error::New(env);
  }
  uint32_t count = 0;
  if (napi_get_array_length(env, names, &count) != napi_ok) throw Napi::Error::New(env);
  PyObject* dict = Checked(PyDict_New());
  try {
    for (uint32_t i = 0; i < count; i++) {
      napi_value name = nullptr, item = nullptr;
      if (napi_get_element(env, names, i, &name) != napi_ok || napi_get_property(env, object, name, &item) != napi_ok) {
        throw Napi::Error::New(env);
      }
      SetItemTaking(dict, ToPythonString(env, name), [&] { return ToPython(env, Napi::Value(env, item)); });
    }
  } catch (...) {
    Py_DECREF(dict);
    throw;
  }
  return dict;
}

// The CGI variable names this thread's interpreter was given, as str: the same two dozen
// on every request, so each is made, and its hash computed, once, not per request.
// Bounded, as header names are the client's to choose. Released (ReleaseRecordKeys)
// before the interpreter ends: they are its objects.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
};
thread_local std::unordered_map<std::string, PyObject*, NameHash, std::equal_to<>> recordKeys;
constexpr size_t kRecordKeysMax = 256;

// A new reference to the str for this name.
PyObject* RecordKey(const char* text, size_t length) {
  std::string_view name(text, length);
  auto found = recordKeys.find(name);
  if (found != recordKeys.end()) {
    Py_INCREF(found->second);
    return found->second;
  }
  PyObject* key = PyUnicode_DecodeUTF8(text, static_cast<Py_ssize_t>(length), "surrogatepass");
  if (key == nullptr) throw TakePythonException();
  if (recordKeys.size() < kRecordKeysMax) {
    Py_INCREF(key);
    recordKeys.emplace(name, key);
  }
  return key;
}

// Splits `text` (length bytes of UTF-8, NULs after each key and value) into a new dict,
// or nullptr when it does not end right after a value.
PyObject* SplitPackedDict(const char* text, size_t length) {
  const char* at = text;
  const char* end = text + length;
  PyObject* dict = Checked(PyDict_New());
  auto next = [&](bool isKey) -> PyObject* {
    const char* stop = static_cast<const char*>(std::memchr(at, '\0', static_cast<size_t>(end - at)));
    if (stop == nullptr) return nullptr;
    const char* start = at;
    at = stop + 1;
    if (isKey) return RecordKey(start, static_cast<size_t>(stop - start));
    PyObject* item = PyUnicode_DecodeUTF8(start, stop - start, "surrogatepass");
    if (item == nullptr) throw TakePythonException();
    return item;
  };
  try {
    while (at < end) {
      PyObject* key = next(true);
      if (key == nullptr || !SetItemTaking(dict, key, [&] { return next(false); })) {
        Py_DECREF(dict);
        return nullptr;
      }
    }
  } catch (...) {
    Py_DECREF(dict);
    throw;
  }
  return dict;
}

[[noreturn]] void ThrowPythonAsTypeError(Napi::Env env, const std::string& what) {
  NativeFailure failure = TakePythonException();
  throw Napi::TypeError::New(env, what + ": " + failure.what());
}

}  // namespace

void SetEnvironmentTearingDown(bool tearingDown) { environmentTearingDown = tearingDown; }

void ReleaseRecordKeys() {
  for (auto& entry : recordKeys) Py_DECREF(entry.second);
  recordKeys.clear();
}

void SetInJsFlag(std::atomic<bool>* flag) { inJsFlag = flag; }

PyObject* ToPythonPackedDict(Napi::Env env, napi_value packed) {
  char stack[2048];
  size_t length = 0;
  if (napi_get_value_string_utf8(env, packed, stack, sizeof stack, &length) != napi_ok) throw Napi::Error::New(env);
  // V8 writes at most capacity - 1 bytes: a text that filled the buffer is read again whole.
  if (length < sizeof stack - 1) return SplitPackedDict(stack, length);
  if (napi_get_value_string_utf8(env, packed, nullptr, 0, &length) != napi_ok) throw Napi::Error::New(env);
  std::string text(length + 1, '\0');
  if (napi_get_value_string_utf8(env, packed, text.data(), text.size(), &length) != napi_ok) throw Napi::Error::New(env);
  return SplitPackedDict(text.data(), length);
}

PyObject* ToPython(Napi::Env env, Napi::Value value) {
  // One napi_typeof, rather than a Napi::Value::Is* call per type tried: a string (most
  // of what a request carries) was found after five.
  switch (value.Type()) {
    case napi_undefined:
    case napi_null:
      Py_RETURN_NONE;
    case napi_boolean:
      return PyBool_FromLong(value.As<Napi::Boolean>().Value());
    case napi_number: {
      double number = value.As<Napi::Number>().DoubleValue();
      if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) <= 9007199254740992.0) {
        return Checked(PyLong_FromLongLong(static_cast<long long>(number)));
      }
      return Checked(PyFloat_FromDouble(number));
    }
    case napi_string:
      return ToPythonString(env, value);
    case napi_function: {
      auto* held = new HeldFunction{Napi::Persistent(value.As<Napi::Function>())};
      PyObject* capsule = PyCapsule_New(held, kCapsuleName, ReleaseHeldFunction);
      if (capsule == nullptr) {
        delete held;
        throw TakePythonException();
      }
      PyObject* function = PyCFunction_New(&heldFunctionDef, capsule);
      Py_DECREF(capsule);
      return Checked(function);
    }
    case napi_object:
      break;
    default:
      throw Napi::TypeError::New(env, "cannot pass this JavaScript value to Python (a symbol or bigint)");
  }
  if (value.IsTypedArray()) {
    auto view = value.As<Napi::TypedArray>();
    return ToPythonBytes(static_cast<const char*>(view.ArrayBuffer().Data()) + view.ByteOffset(), view.ByteLength());
  }
  if (value.IsArrayBuffer()) {
    auto buffer = value.As<Napi::ArrayBuffer>();
    return ToPythonBytes(buffer.Data(), buffer.ByteLength());
  }
  if (value.IsArray()) {
    auto array = value.As<Napi::Array>();
    uint32_t length = array.Length();
    PyObject* list = Checked(PyList_New(length));
    try {
      for (uint32_t i = 0; i < length; i++) PyList_SET_ITEM(list, i, ToPython(env, array.Get(i)));
    } catch (...) {
      Py_DECREF(list);
      throw;
    }
    return list;
  }
  return ToPythonDict(env, value.As<Napi::Object>());
}

Napi::Value ToJs(Napi::Env env, PyObject* value) {
  if (value == Py_None) return env.Null();
  if (PyBool_Check(value)) return Napi::Boolean::New(env, value == Py_True);
  if (PyLong_Check(value)) {
    double number = PyLong_AsDouble(value);
    if (number == -1.0 && PyErr_Occurred()) ThrowPythonAsTypeError(env, "cannot pass a Python int to JavaScript");
    return Napi::Number::New(env, number);
  }
  if (PyFloat_Check(value)) return Napi::Number::New(env, PyFloat_AS_DOUBLE(value));
  if (PyUnicode_Check(value)) {
    // A str whose characters all fit in one byte each (ASCII, latin-1: the status and
    // headers, a small body wsgi.py decoded as latin-1) is stored so, and V8 takes it with
    // one copy; any other goes through its UTF-8 form.
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(value) != 0) ThrowPythonAsTypeError(env, "cannot pass a Python str to JavaScript");
#endif
    if (PyUnicode_KIND(value) == PyUnicode_1BYTE_KIND) {
      napi_value text;
      NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, reinterpret_cast<const char*>(PyUnicode_1BYTE_DATA(value)),
                                                          static_cast<size_t>(PyUnicode_GET_LENGTH(value)), &text), Napi::Value());
      return Napi::Value(env, text);
    }
    Py_ssize_t length = 0;
    const char* text = PyUnicode_AsUTF8AndSize(value, &length);
    if (text == nullptr) ThrowPythonAsTypeError(env, "cannot pass a Python str to JavaScript");
    return Napi::String::New(env, text, static_cast<size_t>(length));
  }
  if (PyObject_CheckBuffer(value)) {
    Py_buffer view;
    if (PyObject_GetBuffer(value, &view, PyBUF_C_CONTIGUOUS) != 0) ThrowPythonAsTypeError(env, "cannot pass a Python buffer to JavaScript");
    auto array = Napi::Uint8Array::New(env, static_cast<size_t>(view.len));
    if (view.len > 0) std::memcpy(array.Data(), view.buf, static_cast<size_t>(view.len));
    PyBuffer_Release(&view);
    return array;
  }
  if (PyList_Check(value) || PyTuple_Check(value)) {
    PyObject* sequence = PySequence_Fast(value, "");
    if (sequence == nullptr) ThrowPythonAsTypeError(env, "cannot pass a Python sequence to JavaScript");
    Py_ssize_t length = PySequence_Fast_GET_SIZE(sequence);
    auto array = Napi::Array::New(env, static_cast<size_t>(length));
    try {
      for (Py_ssize_t i = 0; i < length; i++) array.Set(static_cast<uint32_t>(i), ToJs(env, PySequence_Fast_GET_ITEM(sequence, i)));
    } catch (...) {
      Py_DECREF(sequence);
      throw;
    }
    Py_DECREF(sequence);
    return array;
  }
  if (PyDict_Check(value)) {
    auto object = Napi::Object::New(env);
    PyObject *key = nullptr, *item = nullptr;
    Py_ssize_t position = 0;
    while (PyDict_Next(value, &position, &key, &item)) {
      if (!PyUnicode_Check(key)) throw Napi::TypeError::New(env, "cannot pass a Python dict with non-str keys to JavaScript");
      object.Set(ToJs(env, key), ToJs(env, item));
    }
    return object;
  }
  throw Napi::TypeError::New(env, std::string("cannot pass a Python ") + Py_TYPE(value)->tp_name + " to JavaScript");
}

}  // namespace interpool
