#ifndef KEYSEAL_CSQLITE_SHIM_H
#define KEYSEAL_CSQLITE_SHIM_H

#include <sqlite3.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

// sqlite3_db_config(3) is variadic, which Swift cannot call.
// Sets an on/off option such as SQLITE_DBCONFIG_DEFENSIVE; returns the SQLite
// result code and stores the option's new state in *now.
static inline int keyseal_db_config_flag(sqlite3 *db, int op, int on, int *now) {
    return sqlite3_db_config(db, op, on, now);
}

// SQLITE_TRANSIENT is a cast macro Swift does not import: bound values are
// copied by SQLite before the call returns.
static inline sqlite3_destructor_type keyseal_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

// The busy handler of every keyseal connection: while another process holds
// the lock, try again every 1 to 4 ms (varied, so that waiters do not poll in
// step) until `budget` milliseconds have passed on the monotonic clock since
// this wait began. SQLite's own handler (sqlite3_busy_timeout) backs off to
// one try every 100 ms, so a writer that has waited long loses the lock to
// every newcomer still trying at 1, 2 and 5 ms: among sixteen concurrent
// writers, one starved past its 5 seconds (the concurrency suite).
static inline int keyseal_busy_handler(void *budget, int count) {
    static _Thread_local struct timespec started;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (count == 0) started = now;
    long long elapsed = (long long)(now.tv_sec - started.tv_sec) * 1000 + (now.tv_nsec - started.tv_nsec) / 1000000;
    if (elapsed >= (long long)(intptr_t)budget) return 0;
    usleep(1000 + (unsigned)(now.tv_nsec / 1000) % 3000);
    return 1;
}

static inline int keyseal_set_busy_handler(sqlite3 *db, int milliseconds) {
    return sqlite3_busy_handler(db, keyseal_busy_handler, (void *)(intptr_t)milliseconds);
}

// sqlite3_config(3) is variadic too. Turns off SQLite's memory statistics,
// which keyseal never reads: with them on, every allocation takes a global
// mutex (about a tenth of the instructions of `keyseal header`, callgrind).
// Must run before SQLite initialises; later it returns SQLITE_MISUSE and
// changes nothing.
static inline int keyseal_sqlite_memstatus_off(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

// No bulk allocation of page-cache lines when a connection opens: SQLite
// otherwise allocates and links 20 lines at once, and touching them costs a
// `keyseal header` (which reads about six pages) some 19 page faults (perf
// record -e page-faults). Lines are then allocated as pages are read.
static inline int keyseal_sqlite_page_cache_unbulked(void) {
    return sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)0, 0, 0);
}

#endif
