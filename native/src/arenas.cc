#include "arenas.h"

#include <sys/mman.h>

#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

// The pool layout (POOL_SIZE, ARENA_SIZE, struct pool_header) is CPython's internal
// one, read from the headers of the very CPython this build embeds.
#if PY_VERSION_HEX >= 0x030C0000 && __has_include("internal/pycore_obmalloc.h")
#define Py_BUILD_CORE 1
#include "internal/pycore_obmalloc.h"
#define INTERPOOL_RELEASE_ARENAS 1
#endif

namespace interpool {

#ifdef INTERPOOL_RELEASE_ARENAS
namespace {

std::mutex arenasMutex;
// Arena address -> the interpreter current on the thread that made it, which is the
// interpreter whose allocator asked for it (_PyObject_Malloc uses the current one's).
// Keyed by interpreter id, which CPython never reuses (a freed state's address it may).
std::unordered_map<uintptr_t, int64_t> arenaOwners;
std::unordered_set<int64_t> ownAllocators;
ReleasedArenas releasedSoFar;
PyObjectArenaAllocator wrapped;

int64_t CurrentInterpreterId() {
#if PY_VERSION_HEX >= 0x030D0000
  PyThreadState* state = PyThreadState_GetUnchecked();
#else
  PyThreadState* state = _PyThreadState_UncheckedGet();
#endif
  return state == nullptr ? -1 : PyInterpreterState_GetID(PyThreadState_GetInterpreter(state));
}

void* AllocateArena(void*, size_t size) {
  void* address = wrapped.alloc(wrapped.ctx, size);
  if (address != nullptr) {
    int64_t owner = CurrentInterpreterId();
    std::lock_guard<std::mutex> lock(arenasMutex);
    arenaOwners[reinterpret_cast<uintptr_t>(address)] = owner;
  }
  return address;
}

void FreeArena(void*, void* address, size_t size) {
  {
    std::lock_guard<std::mutex> lock(arenasMutex);
    arenaOwners.erase(reinterpret_cast<uintptr_t>(address));
  }
  wrapped.free(wrapped.ctx, address, size);
}

// Releases the runs of pools with no block in one arena; returns {released, kept}.
std::pair<size_t, size_t> ReleaseEmptyPools(uintptr_t arena) {
  uintptr_t first = (arena + POOL_SIZE - 1) & ~static_cast<uintptr_t>(POOL_SIZE - 1);
  uintptr_t end = arena + ARENA_SIZE;
  size_t released = 0, kept = 0;
  uintptr_t run = 0;
  auto flush = [&](uintptr_t upTo) {
    if (run != 0 && madvise(reinterpret_cast<void*>(run), upTo - run, MADV_DONTNEED) == 0) released += upTo - run;
    run = 0;
  };
  for (uintptr_t pool = first; pool + POOL_SIZE <= end; pool += POOL_SIZE) {
    // A pool never carved out of the arena was never written: it reads as zeros (and
    // the madvise of untouched pages is free).
    if (reinterpret_cast<const struct pool_header*>(pool)->ref.count == 0) {
      if (run == 0) run = pool;
    } else {
      flush(pool);
      kept += POOL_SIZE;
    }
  }
  flush(first + ((end - first) / POOL_SIZE) * POOL_SIZE);
  return {released, kept};
}

}  // namespace

void TrackArenas() {
  PyObject_GetArenaAllocator(&wrapped);
  PyObjectArenaAllocator tracking{nullptr, AllocateArena, FreeArena};
  PyObject_SetArenaAllocator(&tracking);
}

void NoteOwnAllocator(int64_t id) {
  std::lock_guard<std::mutex> lock(arenasMutex);
  ownAllocators.insert(id);
}

size_t ReleaseLeftArenas(int64_t id) {
  std::vector<uintptr_t> left;
  {
    std::lock_guard<std::mutex> lock(arenasMutex);
    // Only an own allocator's arenas are the ended interpreter's: one that shared the
    // main allocator made its arenas for the main interpreter, which goes on using them.
    bool own = ownAllocators.erase(id) == 1;
    for (auto it = arenaOwners.begin(); it != arenaOwners.end();) {
      if (it->second != id) {
        ++it;
        continue;
      }
      if (own) left.push_back(it->first);
      it = arenaOwners.erase(it);
    }
    if (!own) return 0;
  }
  size_t released = 0, kept = 0;
  for (uintptr_t arena : left) {
    auto [freed, held] = ReleaseEmptyPools(arena);
    released += freed;
    kept += held;
  }
  std::lock_guard<std::mutex> lock(arenasMutex);
  releasedSoFar.released += released;
  releasedSoFar.kept += kept;
  releasedSoFar.interpreters++;
  return released;
}

ReleasedArenas ReleasedArenasSoFar() {
  std::lock_guard<std::mutex> lock(arenasMutex);
  return releasedSoFar;
}

#else  // CPython 3.11 (no own allocators), or no internal headers to read pools with

void TrackArenas() {}
void NoteOwnAllocator(int64_t) {}
size_t ReleaseLeftArenas(int64_t) { return 0; }
ReleasedArenas ReleasedArenasSoFar() { return {}; }

#endif

}  // namespace interpool
