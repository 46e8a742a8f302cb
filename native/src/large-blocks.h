// The C-heap blocks each interpreter holds: what --memory-limit and the admin's
// per-interpreter figure would otherwise miss.
//
// pymalloc serves objects of up to 512 bytes from arenas (an own-GIL subinterpreter's
// own: arenas.h, ReadAllocatorStats); anything larger (a big bytes or bytearray, a list's
// item array, a dict's table) CPython takes from its raw-memory allocator, which is the
// C heap (malloc), shared by the whole process. Those blocks are counted here, per
// interpreter: the raw allocator is wrapped, and each block's usable size is added to
// the count of the interpreter current on the calling thread when it is allocated, and
// taken off when freed. An own-GIL interpreter's objects never cross to another, so
// what one allocates, it frees. Memory that an extension takes from malloc itself (a
// NumPy array's data) is not seen.
#pragma once

#include <Python.h>

#include <cstdint>

namespace interpool {

// Wraps the raw-memory domain's allocator. Called once, after CPython's pre-initialization
// and before Py_InitializeFromConfig. Not in a debug build of CPython, whose raw blocks
// are not the C heap's own (they carry debug hooks' headers).
void TrackLargeBlocks();

// Starts the count of subinterpreter `id` (PyInterpreterState_GetID), just created.
void CountLargeBlocksOf(int64_t id);

// Bytes of C-heap blocks subinterpreter `id` holds (allocated since its count started,
// less those freed); -1 when not counted.
int64_t LargeBlockBytes(int64_t id);

}  // namespace interpool
