#ifndef ARCHON_CPROTOBUFC_SHIM_H
#define ARCHON_CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#endif
