#ifndef KEYSEAL_CSQLITE_SHIM_H
#define KEYSEAL_CSQLITE_SHIM_H

#include <sqlite3.h>

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

#endif
