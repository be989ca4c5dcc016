internal import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// A failed SQLite call: the extended result code and SQLite's message. Never
/// carries a bound value; stays inside this module and is mapped to
/// `StorageError` at its edge.
struct SQLiteError: Error {
    let code: Int32
    let message: String
    /// errno of the system call that failed (sqlite3_system_errno), 0 if
    /// none: tells a full disk (ENOSPC on fsync, which SQLite reports as a
    /// plain I/O error) from a failing device (EIO) or a size limit (EFBIG).
    var systemErrno: Int32 = 0

    var primaryCode: Int32 { code & 0xFF }
}

/// An owned `sqlite3*`; closed in deinit, and closed even when opening failed
/// (sqlite3_open_v2 allocates a handle that must be released either way).
final class Connection {
    // safety: used by one thread at a time; every statement is finalised before close.
    let handle: OpaquePointer

    /// Process-wide SQLite settings, applied once before the first open.
    private static let configured: Bool =
        keyseal_sqlite_memstatus_off() == SQLITE_OK && keyseal_sqlite_page_cache_unbulked() == SQLITE_OK

    init(path: String, flags: Int32) throws(SQLiteError) {
        _ = Self.configured
        var db: OpaquePointer?
        let status = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_EXRESCODE, nil)
        guard status == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            sqlite3_close_v2(db)
            throw SQLiteError(code: status, message: message)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Every return code goes through here.
    @discardableResult
    func check(_ status: Int32) throws(SQLiteError) -> Int32 {
        switch status {
        case SQLITE_OK, SQLITE_ROW, SQLITE_DONE: return status
        default:
            // Read first: nothing below may change it.
            let lastErrno = errno
            throw SQLiteError(code: status, message: String(cString: sqlite3_errmsg(handle)),
                              systemErrno: Self.systemErrno(handle, status: status, lastErrno: lastErrno))
        }
    }

    /// The errno of a failed I/O call. sqlite3_system_errno misses the
    /// errors of a COMMIT (the VDBE halts without recording it), so for an
    /// I/O error the thread's errno is used when SQLite has none, but only
    /// the values a failed write gives: a stale ENOENT from a probe for a
    /// journal must not be quoted as the cause.
    static func systemErrno(_ handle: OpaquePointer, status: Int32, lastErrno: Int32) -> Int32 {
        let recorded = sqlite3_system_errno(handle)
        if recorded != 0 { return recorded }
        guard status & 0xFF == SQLITE_IOERR else { return 0 }
        return [ENOSPC, EDQUOT, EIO, EFBIG, EROFS].contains(lastErrno) ? lastErrno : 0
    }

    /// Runs SQL with no parameters and no rows to read (schema, pragmas that set).
    func execute(_ sql: String) throws(SQLiteError) {
        try check(sqlite3_exec(handle, sql, nil, nil, nil))
    }

    func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        try Statement(connection: self, sql: sql)
    }

    /// The single value of a one-row query, e.g. `PRAGMA user_version`.
    func scalarInt(_ sql: String) throws(SQLiteError) -> Int64? {
        let statement = try prepare(sql)
        guard try statement.step() else { return nil }
        return statement.int(0)
    }

    /// The single value of a one-row query as text, whatever its SQL type
    /// (pragmas answer integers or text).
    func scalarText(_ sql: String) throws(SQLiteError) -> String? {
        let statement = try prepare(sql)
        guard try statement.step(), !statement.isNull(0),
              let pointer = sqlite3_column_text(statement.handle, 0) else { return nil }
        return String(cString: pointer)
    }

    func setFlag(_ option: Int32, on: Bool) throws(SQLiteError) {
        var now: Int32 = -1
        try check(keyseal_db_config_flag(handle, option, on ? 1 : 0, &now))
        guard now == (on ? 1 : 0) else {
            // Not SQLITE_ERROR, which reads as a damaged file: this SQLite build is at fault.
            throw SQLiteError(code: SQLITE_INTERNAL, message: "sqlite3_db_config option \(option) did not take")
        }
    }

    /// While another connection holds the lock, waits up to `milliseconds`,
    /// trying again every few milliseconds (keyseal_busy_handler in shim.h:
    /// fairer to a long waiter than sqlite3_busy_timeout's back-off).
    func setBusyTimeout(milliseconds: Int32) throws(SQLiteError) {
        try check(keyseal_set_busy_handler(handle, milliseconds))
    }

    /// One `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so
    /// two writers queue on busy_timeout instead of failing half-way. Rolled
    /// back on any error.
    func immediateTransaction<R>(_ body: () throws -> R) throws -> R {
        try transaction("BEGIN IMMEDIATE", body)
    }

    /// Reads in one deferred transaction: one shared lock (and one check for
    /// a hot journal) for all of them, and one consistent state of the file.
    func readTransaction<R>(_ body: () throws -> R) throws -> R {
        try transaction("BEGIN", body)
    }

    private func transaction<R>(_ begin: String, _ body: () throws -> R) throws -> R {
        try execute(begin)
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // A failed COMMIT (e.g. SQLITE_FULL) may already have rolled back.
            if sqlite3_get_autocommit(handle) == 0 { _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil) }
            throw error
        }
    }

    var changes: Int { Int(sqlite3_changes(handle)) }
}

/// An owned prepared statement, finalised in deinit. Parameters are bound by
/// 1-based index; only ciphertext and metadata are ever bound.
final class Statement {
    // safety: lives no longer than the connection, which it keeps alive.
    let connection: Connection
    let handle: OpaquePointer

    init(connection: Connection, sql: String) throws(SQLiteError) {
        var statement: OpaquePointer?
        try connection.check(sqlite3_prepare_v2(connection.handle, sql, -1, &statement, nil))
        guard let statement else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "empty SQL statement")
        }
        self.connection = connection
        handle = statement
    }

    deinit {
        sqlite3_finalize(handle)
    }

    func bind(_ index: Int32, _ value: Int64?) throws(SQLiteError) {
        if let value {
            try connection.check(sqlite3_bind_int64(handle, index, value))
        } else {
            try connection.check(sqlite3_bind_null(handle, index))
        }
    }

    func bind(_ index: Int32, _ value: String?) throws(SQLiteError) {
        guard let value else { try connection.check(sqlite3_bind_null(handle, index)); return }
        try connection.check(sqlite3_bind_text(handle, index, value, -1, keyseal_sqlite_transient()))
    }

    func bind(_ index: Int32, _ value: [UInt8]) throws(SQLiteError) {
        // A zero-length blob from a nil pointer would bind NULL; use zeroblob.
        if value.isEmpty { try connection.check(sqlite3_bind_zeroblob(handle, index, 0)); return }
        try connection.check(value.withUnsafeBytes {
            sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), keyseal_sqlite_transient())
        })
    }

    /// Binds several values in order, from index 1.
    func bind(_ values: [SQLValue]) throws(SQLiteError) {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case let .int(v): try bind(index, v)
            case let .text(v): try bind(index, v)
            case let .blob(v): try bind(index, v)
            }
        }
    }

    /// Makes a statement that has run ready to run again, without its
    /// bindings: preparing costs far more than running (import prepares
    /// each of its statements once, not once per entry).
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Advances; true when a row is ready to read.
    func step() throws(SQLiteError) -> Bool {
        try connection.check(sqlite3_step(handle)) == SQLITE_ROW
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    /// What `blob(_:)` answers non-nil for, without copying the bytes.
    func isBlob(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_BLOB }


    func int(_ column: Int32) -> Int64? {
        sqlite3_column_type(handle, column) == SQLITE_INTEGER ? sqlite3_column_int64(handle, column) : nil
    }

    func text(_ column: Int32) -> String? {
        guard sqlite3_column_type(handle, column) == SQLITE_TEXT,
              let pointer = sqlite3_column_text(handle, column) else { return nil }
        let length = Int(sqlite3_column_bytes(handle, column))
        // Decoding with repair keeps a corrupted name from trapping; such a
        // name then fails authentication when the entry is opened.
        return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    /// `text(column)`, or `previous` itself when the column holds its bytes:
    /// rows that repeat a value (a kind's header template, a service URL)
    /// then share one string instead of each allocating its own.
    func text(_ column: Int32, sameAs previous: String?) -> String? {
        guard var previous, sqlite3_column_type(handle, column) == SQLITE_TEXT,
              let pointer = sqlite3_column_text(handle, column) else { return text(column) }
        let length = Int(sqlite3_column_bytes(handle, column))
        // Equal bytes are valid UTF-8 (they are a string's), so decoding them would give `previous`.
        let same = previous.withUTF8 { bytes in
            bytes.count == length && (length == 0 || memcmp(bytes.baseAddress!, pointer, length) == 0)
        }
        return same ? previous : text(column)
    }

    func blob(_ column: Int32) -> [UInt8]? {
        guard sqlite3_column_type(handle, column) == SQLITE_BLOB else { return nil }
        let length = Int(sqlite3_column_bytes(handle, column))
        guard length > 0, let pointer = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }
}

enum SQLValue {
    case int(Int64?)
    case text(String?)
    case blob([UInt8])
}
