/* leadscore/export.h -- LS_API marks the functions libleadscore.so exports.
 *
 * The shared library is built with hidden visibility by default
 * (-fvisibility=hidden), so only the functions declared with LS_API in the
 * public headers are in its dynamic symbol table; everything else in it
 * (the engine's helpers, msgpack glue) stays private and can change freely. */
#ifndef LEADSCORE_EXPORT_H
#define LEADSCORE_EXPORT_H

#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(LEADSCORE_BUILDING_DLL)
#    define LS_API __declspec(dllexport)
#  else
#    define LS_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define LS_API __attribute__((visibility("default")))
#else
#  define LS_API
#endif

#endif
