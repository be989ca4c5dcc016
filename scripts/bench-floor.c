/* The storage floor for scripts/bench: what opening a keyseal vault with
 * SQLite and reading one entry's row by its primary key costs a process,
 * without Swift, keyseal's checks or any cryptography. Built statically
 * (gcc -O2 -static, Debian's libsqlite3.a), like keyseal's shipped binary.
 *
 *   bench-floor            exits at once: the C process floor
 *   bench-floor VAULT NAME prints the entry's ciphertext length
 */
#include <sqlite3.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 3) return 0;
    sqlite3 *db;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return 1;
    sqlite3_stmt *statement;
    const char *sql =
        "SELECT name, entry_id, kind, header_template, url, description, created_at, updated_at, expires_at, "
        "last_used_at, fingerprint, nonce, ciphertext, warn_within, revision, max_age, ca_certificates, "
        "remote_id, remote_state FROM entries WHERE name = ?";
    if (sqlite3_prepare_v2(db, sql, -1, &statement, NULL) != SQLITE_OK) return 1;
    sqlite3_bind_text(statement, 1, argv[2], -1, SQLITE_STATIC);
    if (sqlite3_step(statement) != SQLITE_ROW) return 1;
    printf("%s %d\n", (const char *)sqlite3_column_text(statement, 0), sqlite3_column_bytes(statement, 12));
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return 0;
}
