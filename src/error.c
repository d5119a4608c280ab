/* error.c -- messages and wire codes for the status table in error.h. */
#include "leadscore/error.h"

const char *ls_strerror(int status)
{
    switch (status) {
#define LS_ERROR_MSG(name, value, wire, msg) case value: return msg;
        LS_ERROR_MAP(LS_ERROR_MSG)
#undef LS_ERROR_MSG
    }
    return "unknown error";
}

const char *ls_wire_code(int status)
{
    switch (status) {
#define LS_ERROR_WIRE(name, value, wire, msg) case value: return wire;
        LS_ERROR_MAP(LS_ERROR_WIRE)
#undef LS_ERROR_WIRE
    }
    return "internal";
}
