// What an ended own-GIL subinterpreter leaves of its allocator (pymalloc arenas), given
// back to the system where nothing lives in it.
//
// CPython 3.12+ gives an own-GIL subinterpreter its own small-object allocator, whose
// arenas (1 MiB each) Py_EndInterpreter frees only when not one block is left in them;
// otherwise it leaves every arena as it is, for fear that an extension still uses a
// block (Objects/obmalloc.c, _PyInterpreterState_FinalizeAllocatedBlocks). CPython 3.13.5
// leaves the strings it interned immortal in every interpreter it ends (about 2,750 for
// a bare one; it frees them only in a debug build), so every arena of every ended
// interpreter stayed resident: 1.65 MiB per end for CPython alone, about 3 MiB for one
// that served requests. The project-built CPython frees them
// (scripts/cpython-patches/subinterpreter-interned-strings.patch; 3.14 does too), and
// then CPython frees the arenas itself and nothing is left here. This is the fallback
// for the rest: another 3.12/3.13 (a system one), or an app whose extension leaks a
// block. Nothing allocates from those arenas again (their allocator state ends with the
// interpreter), so their pools in which no block is left are released here (madvise
// MADV_DONTNEED: the pages go back, the address range stays reserved, as CPython left
// it). Pools that still hold a block are kept whole.
#pragma once

#include <Python.h>

#include <cstddef>
#include <cstdint>

namespace interpool {

// Wraps CPython's arena allocator to note which interpreter each arena was made for.
// Called once, before Py_InitializeFromConfig.
void TrackArenas();

// The subinterpreter `id` (PyInterpreterState_GetID) has its own allocator.
void NoteOwnAllocator(int64_t id);

// After Py_EndInterpreter of `id`: releases the pools without a block of the arenas
// CPython left of its own allocator. Returns the bytes released (0 for an interpreter
// that shared the main allocator, or a CPython this build cannot read).
size_t ReleaseLeftArenas(int64_t id);

// Bytes released so far by ReleaseLeftArenas, and the bytes it had to keep (pools that
// still hold a block), for the figures in loadtest/native-recycle.ts.
struct ReleasedArenas {
  size_t released = 0;
  size_t kept = 0;
  size_t interpreters = 0;
};
ReleasedArenas ReleasedArenasSoFar();

}  // namespace interpool
