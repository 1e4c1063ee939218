// A node addon that gives back to the kernel memory the agent no longer uses (README, "Memory"). Two functions:
// - trimMalloc(): glibc's malloc_trim(0), which gives back the free pages in the middle of malloc's heaps. free()
//   only ever gives back the top of a heap, so the memory a write burst freed beneath the allocations that outlive
//   it stays resident until this is called. The agent calls it once its idle collection has freed the burst.
// - dropLinkerTables(): takes node's dynamic-linking tables (its symbol hash, symbols, their names, relocations) out
//   of this process's resident set. node exports all of its symbols for addons, and the dynamic linker searches
//   them at start-up to bind every library's symbols: ~6 MB on x86-64, nearly all read then and resident ever
//   after. Later readers (a library function's first call when it is bound lazily, dlopen, dlsym) read a few pages.
//   They are clean pages of a read-only file mapping: MADV_DONTNEED only clears this process's page-table entries,
//   the page cache keeps them (shared with every other node process; this frees RSS, not the host's memory), and a
//   later reader faults back what it reads.
// Node-API is declared here rather than included: its ABI is stable across node versions, so building needs no
// node headers, only a C compiler (scripts/build-native.mjs, run by `npm ci`).
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h> // a C library header first: it defines __GLIBC__ under glibc, tested below
#ifdef __GLIBC__
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb,
                                        void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *name, napi_value value);
extern napi_status napi_get_boolean(napi_env env, bool value, napi_value *result);
extern napi_status napi_create_double(napi_env env, double value, napi_value *result);

// True when memory was given back; false when there was none to give, or the C library (musl) has no trim.
static napi_value trim_malloc(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#ifdef __GLIBC__
  released = malloc_trim(0) == 1;
#endif
  napi_value result = NULL;
  napi_get_boolean(env, released, &result);
  return result;
}

#ifdef __GLIBC__
typedef struct {
  uintptr_t start;
  uintptr_t end;
} address_range;

// Whether the dynamic section says the linker wrote into read-only segments (text relocations): their pages are
// then private copies, which dropping would undo.
static bool has_text_relocations(const ElfW(Dyn) * dyn) {
  for (; dyn->d_tag != DT_NULL; dyn++) {
    if (dyn->d_tag == DT_TEXTREL) return true;
    if (dyn->d_tag == DT_FLAGS && (dyn->d_un.d_val & DF_TEXTREL) != 0) return true;
  }
  return false;
}

typedef struct {
  uintptr_t inside; // an address in the object wanted: node's Node-API
  address_range tables;
} linker_tables_search;

static bool contains(const struct dl_phdr_info *info, uintptr_t address) {
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    const uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && start <= address && address - start < ph->p_memsz) return true;
  }
  return false;
}

// Finds node's own object (the executable, or libnode.so in a distribution's build): the one that defines
// Node-API. Its linker tables sit at the start of the file, in the segment that maps offset 0 read-only (x86-64
// linkers keep code out of it since binutils 2.31's -z separate-code; where that segment is executable, as is
// usual on arm64, nothing is dropped). A segment the linker made read-only after writing to it (RELRO) or patched
// (text relocations) holds private pages, and is never chosen.
static int find_linker_tables(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  linker_tables_search *search = data;
  if (!contains(info, search->inside)) return 0;
  const ElfW(Phdr) *tables = NULL;
  const ElfW(Phdr) *relro = NULL;
  bool textrel = false;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && ph->p_offset == 0 && ph->p_flags == PF_R) tables = ph;
    if (ph->p_type == PT_GNU_RELRO) relro = ph;
    if (ph->p_type == PT_DYNAMIC) textrel = has_text_relocations((const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr));
  }
  if (tables == NULL || textrel) return 1;
  if (relro != NULL && relro->p_vaddr < tables->p_vaddr + tables->p_memsz &&
      tables->p_vaddr < relro->p_vaddr + relro->p_memsz)
    return 1;
  search->tables.start = info->dlpi_addr + tables->p_vaddr;
  search->tables.end = search->tables.start + tables->p_filesz;
  return 1;
}

// Drops the resident pages of [start, end) that are still the file's (pagemap: present, file-backed): a page this
// process had written to would be anonymous, and is kept. Returns the bytes dropped, or -1 when pagemap cannot be
// read (nothing is dropped unchecked).
static double drop_file_pages(uintptr_t start, uintptr_t end) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  start = (start + page - 1) & ~(page - 1);
  end &= ~(page - 1);
  if (end <= start) return 0;
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) return -1;
  double dropped = 0;
  uintptr_t run = 0; // start of the current run of droppable pages, 0 when none
  uint64_t entries[512];
  uintptr_t at = start;
  while (at < end) {
    size_t count = (end - at) / page < 512 ? (end - at) / page : 512;
    ssize_t got = pread(pagemap, entries, count * sizeof(uint64_t), (off_t)(at / page * sizeof(uint64_t)));
    if (got < (ssize_t)sizeof(uint64_t)) break;
    count = (size_t)got / sizeof(uint64_t);
    for (size_t i = 0; i < count; i++, at += page) {
      const bool present = (entries[i] >> 63) & 1;
      const bool file = (entries[i] >> 61) & 1;
      if (present && file) {
        if (run == 0) run = at;
      } else if (run != 0) {
        if (madvise((void *)run, at - run, MADV_DONTNEED) == 0) dropped += (double)(at - run);
        run = 0;
      }
    }
  }
  // `at` is `end`, or where pagemap stopped answering: nothing past it was checked.
  if (run != 0 && madvise((void *)run, at - run, MADV_DONTNEED) == 0) dropped += (double)(at - run);
  close(pagemap);
  return dropped;
}
#endif

// The bytes of linker tables taken out of this process's resident memory (0 when none were resident), or -1 when
// none can be: a layout this does not know to be safe, or no pagemap to check pages with.
static napi_value drop_linker_tables(napi_env env, napi_callback_info info) {
  (void)info;
  double dropped = -1;
#ifdef __GLIBC__
  linker_tables_search search = {(uintptr_t)&napi_create_function, {0, 0}};
  dl_iterate_phdr(find_linker_tables, &search);
  if (search.tables.end > search.tables.start) dropped = drop_file_pages(search.tables.start, search.tables.end);
#endif
  napi_value result = NULL;
  napi_create_double(env, dropped, &result);
  return result;
}

static bool export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn = NULL;
  if (napi_create_function(env, name, (size_t)-1, cb, NULL, &fn) != 0) return false;
  return napi_set_named_property(env, exports, name, fn) == 0;
}

// Found by name when node loads the file (Node-API's registration for addons built without its headers).
napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  if (!export_function(env, exports, "trimMalloc", trim_malloc)) return NULL;
  if (!export_function(env, exports, "dropLinkerTables", drop_linker_tables)) return NULL;
  return exports;
}
