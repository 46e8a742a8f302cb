#include "large-blocks.h"

#include <malloc.h>

#include <atomic>

namespace interpool {
namespace {

// One count per live interpreter, found by its id modulo the table size: ids are never
// reused, and a process holds a handful of interpreters at a time (its workers, and
// those left running: interpreter.cc). A slot is claimed by the newest interpreter whose
// id maps to it; an older one that still lives there then reads -1 (not counted).
constexpr int kSlots = 256;
struct alignas(64) Slot {  // one cache line each: interpreters count from different threads
  std::atomic<int64_t> owner{-1};
  std::atomic<int64_t> bytes{0};
};
Slot slots[kSlots];
bool tracking = false;
PyMemAllocatorEx wrapped;

Slot* CurrentSlot() {
#if PY_VERSION_HEX >= 0x030D0000
  PyThreadState* state = PyThreadState_GetUnchecked();
#else
  PyThreadState* state = _PyThreadState_UncheckedGet();
#endif
  if (state == nullptr) return nullptr;
  int64_t id = PyInterpreterState_GetID(PyThreadState_GetInterpreter(state));
  Slot* slot = &slots[id % kSlots];
  return slot->owner.load(std::memory_order_relaxed) == id ? slot : nullptr;
}

void Count(void* block, int64_t sign) {
  if (block == nullptr) return;
  if (Slot* slot = CurrentSlot()) slot->bytes.fetch_add(sign * static_cast<int64_t>(malloc_usable_size(block)), std::memory_order_relaxed);
}

void* Malloc(void*, size_t size) {
  void* block = wrapped.malloc(wrapped.ctx, size);
  Count(block, 1);
  return block;
}

void* Calloc(void*, size_t count, size_t size) {
  void* block = wrapped.calloc(wrapped.ctx, count, size);
  Count(block, 1);
  return block;
}

void* Realloc(void*, void* old, size_t size) {
  size_t before = old == nullptr ? 0 : malloc_usable_size(old);
  void* block = wrapped.realloc(wrapped.ctx, old, size);
  if (block == nullptr && size != 0) return nullptr;  // failed: the old block stands
  if (Slot* slot = CurrentSlot()) {
    int64_t after = block == nullptr ? 0 : static_cast<int64_t>(malloc_usable_size(block));
    slot->bytes.fetch_add(after - static_cast<int64_t>(before), std::memory_order_relaxed);
  }
  return block;
}

void Free(void*, void* block) {
  Count(block, -1);
  wrapped.free(wrapped.ctx, block);
}

}  // namespace

void TrackLargeBlocks() {
#ifndef Py_DEBUG
  PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &wrapped);
  PyMemAllocatorEx counting = {nullptr, Malloc, Calloc, Realloc, Free};
  PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &counting);
  tracking = true;
#endif
}

void CountLargeBlocksOf(int64_t id) {
  if (!tracking || id < 0) return;
  Slot& slot = slots[id % kSlots];
  slot.owner.store(-1, std::memory_order_relaxed);
  slot.bytes.store(0, std::memory_order_relaxed);
  slot.owner.store(id, std::memory_order_release);
}

int64_t LargeBlockBytes(int64_t id) {
  if (!tracking || id < 0) return -1;
  const Slot& slot = slots[id % kSlots];
  if (slot.owner.load(std::memory_order_acquire) != id) return -1;
  // Blocks made before the count started and freed since are taken off too.
  int64_t bytes = slot.bytes.load(std::memory_order_relaxed);
  return bytes < 0 ? 0 : bytes;
}

}  // namespace interpool
