// A node addon with one function, trim(): glibc's malloc_trim(0), which gives the free pages in the middle of
// malloc's heaps back to the system. free() only ever gives back the top of a heap, so after a write burst the
// memory freed beneath the allocations that outlive the burst stays resident until this is called (README,
// "Memory"). The agent calls it once its idle collection has freed the burst's garbage.
// Node-API is declared here rather than included: its ABI is stable across node versions, so building needs no
// node headers, only a C compiler (scripts/build-native.mjs, run by `npm ci`).
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h> // a C library header first: it defines __GLIBC__ under glibc, tested below
#ifdef __GLIBC__
#include <malloc.h>
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

// True when memory was given back; false when there was none to give, or the C library (musl) has no trim.
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#ifdef __GLIBC__
  released = malloc_trim(0) == 1;
#endif
  napi_value result = NULL;
  napi_get_boolean(env, released, &result);
  return result;
}

// Found by name when node loads the file (Node-API's registration for addons built without its headers).
napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn = NULL;
  if (napi_create_function(env, "trim", 4, trim, NULL, &fn) != 0) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != 0) return NULL;
  return exports;
}
