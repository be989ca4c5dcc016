#ifndef KEYSEAL_CSODIUM_SHIM_H
#define KEYSEAL_CSODIUM_SHIM_H

#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>

// prctl(2) is variadic, which Swift cannot call: one fixed-arity wrapper each.
static inline int keyseal_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
}

static inline int keyseal_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
}

#endif
