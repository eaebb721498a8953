#ifndef ARCHON_CNATS_SHIM_H
#define ARCHON_CNATS_SHIM_H
// <nats/nats.h>, not <nats.h>: the latter prints a deprecation warning on every build.
#include <nats/nats.h>
#endif
