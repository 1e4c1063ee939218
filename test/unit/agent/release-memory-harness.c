// Runs native/release-memory.c's page dropping on a private read-only mapping of a scratch file (argv[1]) of 16
// pages, all resident, one of which this process wrote to (made writable, written, made read-only again, as a
// linker does with RELRO): that page is a private copy, and dropping it would lose the write. Prints one JSON
// line: the bytes dropped, the pages still resident, and what the written page and a dropped one read afterwards.
#include "../../../native/release-memory.c"

#include <stdio.h>
#include <string.h>

// The addon's Node-API imports: the harness is a plain program, and never calls them.
napi_status napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb, void *data,
                                 napi_value *result) {
  (void)env, (void)name, (void)length, (void)cb, (void)data, (void)result;
  return 1;
}
napi_status napi_set_named_property(napi_env env, napi_value object, const char *name, napi_value value) {
  (void)env, (void)object, (void)name, (void)value;
  return 1;
}
napi_status napi_get_boolean(napi_env env, bool value, napi_value *result) {
  (void)env, (void)value, (void)result;
  return 1;
}
napi_status napi_create_double(napi_env env, double value, napi_value *result) {
  (void)env, (void)value, (void)result;
  return 1;
}

enum { PAGES = 16, WRITTEN = 5 };

static int resident_pages(const char *map, size_t page) {
  int fd = open("/proc/self/pagemap", O_RDONLY);
  uint64_t entries[PAGES];
  if (fd < 0 || pread(fd, entries, sizeof entries, (off_t)((uintptr_t)map / page * sizeof(uint64_t))) != sizeof entries)
    return -1;
  close(fd);
  int resident = 0;
  for (int i = 0; i < PAGES; i++) resident += (int)((entries[i] >> 63) & 1);
  return resident;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 3;
  char *content = malloc(page);
  memset(content, 'f', page);
  for (int i = 0; i < PAGES; i++)
    if (write(fd, content, page) != (ssize_t)page) return 4;
  char *map = mmap(NULL, PAGES * page, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return 5;
  volatile char touched = 0;
  for (int i = 0; i < PAGES; i++) touched ^= map[i * page];
  char *written = map + WRITTEN * page;
  if (mprotect(written, page, PROT_READ | PROT_WRITE) != 0) return 6;
  written[0] = 'P';
  if (mprotect(written, page, PROT_READ) != 0) return 7;
  const int before = resident_pages(map, page);
  const double dropped = drop_file_pages((uintptr_t)map, (uintptr_t)map + PAGES * page);
  const int after = resident_pages(map, page);
  printf("{\"pageBytes\":%zu,\"pages\":%d,\"residentBefore\":%d,\"dropped\":%.0f,\"residentAfter\":%d,"
         "\"written\":\"%c\",\"dropped0\":\"%c\"}\n",
         page, PAGES, before, dropped, after, written[0], map[0]);
  return 0;
}
