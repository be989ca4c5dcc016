internal import CSQLite

/// The vault file's schema and the settings checked on every open
/// (docs/FORMAT.md).
enum Schema {
    /// "KEYS": marks the SQLite file as a keyseal vault (PRAGMA application_id).
    static let applicationID: Int64 = 0x4B45_5953
    /// The format this keyseal writes; PRAGMA user_version holds the file's.
    static let currentVersion: Int64 = 3

    /// Migrations to each version, applied in order inside one transaction.
    /// Index 0 creates format 1 on an empty file. Never edit a shipped step:
    /// append one.
    static let migrations: [String] = [
        """
        CREATE TABLE vault (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            format_version INTEGER NOT NULL,
            vault_id BLOB NOT NULL CHECK (length(vault_id) = 16),
            created_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE key_slots (
            slot_id INTEGER PRIMARY KEY,
            method TEXT NOT NULL CHECK (method IN ('passphrase', 'keyfile')),
            kdf TEXT NOT NULL,
            kdf_ops INTEGER NOT NULL,
            kdf_mem INTEGER NOT NULL,
            salt BLOB NOT NULL,
            nonce BLOB NOT NULL CHECK (length(nonce) = 24),
            wrapped_key BLOB NOT NULL CHECK (length(wrapped_key) = 48),
            created_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE entries (
            name TEXT PRIMARY KEY,
            entry_id BLOB NOT NULL UNIQUE CHECK (length(entry_id) = 16),
            kind TEXT NOT NULL,
            header_template TEXT NOT NULL,
            url TEXT,
            description TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            expires_at INTEGER,
            last_used_at INTEGER,
            fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 16),
            nonce BLOB NOT NULL CHECK (length(nonce) = 24),
            ciphertext BLOB NOT NULL CHECK (length(ciphertext) > 16)
        ) STRICT, WITHOUT ROWID;
        """,
        // Format 2: the values an entry held before `rotate`, kept for a
        // while so a rotation can be undone; vault settings (such as the
        // warning window); an entry's own warning window.
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) STRICT, WITHOUT ROWID;
        ALTER TABLE entries ADD COLUMN warn_within INTEGER CHECK (warn_within > 0);
        ALTER TABLE entries ADD COLUMN revision INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0);
        CREATE TABLE previous_values (
            entry_id BLOB NOT NULL REFERENCES entries (entry_id) ON DELETE CASCADE,
            version INTEGER NOT NULL CHECK (version > 0),
            set_at INTEGER NOT NULL,
            replaced_at INTEGER NOT NULL,
            fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 16),
            nonce BLOB NOT NULL CHECK (length(nonce) = 24),
            ciphertext BLOB NOT NULL CHECK (length(ciphertext) > 16),
            PRIMARY KEY (entry_id, version)
        ) STRICT, WITHOUT ROWID;
        """,
        // Format 3: a bearer entry's token, kept between uses (sealed, bound
        // to the entry's id and the time it was obtained); the lifetimes
        // observed (obtained to first refusal); an entry's maximum token age;
        // an entry's own CA certificates file (bound into its seal); the id a
        // server gave the token (a PAT's tokenId), for revoking it, and what
        // that server last said of it.
        """
        CREATE TABLE bearer_tokens (
            entry_id BLOB PRIMARY KEY REFERENCES entries (entry_id) ON DELETE CASCADE,
            obtained_at INTEGER NOT NULL,
            nonce BLOB NOT NULL CHECK (length(nonce) = 24),
            ciphertext BLOB NOT NULL CHECK (length(ciphertext) > 16)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE token_lifetimes (
            entry_id BLOB NOT NULL REFERENCES entries (entry_id) ON DELETE CASCADE,
            obtained_at INTEGER NOT NULL,
            ended_at INTEGER NOT NULL CHECK (ended_at >= obtained_at),
            PRIMARY KEY (entry_id, obtained_at)
        ) STRICT, WITHOUT ROWID;
        ALTER TABLE entries ADD COLUMN max_age INTEGER CHECK (max_age > 0);
        ALTER TABLE entries ADD COLUMN ca_certificates TEXT;
        ALTER TABLE entries ADD COLUMN remote_id TEXT;
        ALTER TABLE entries ADD COLUMN remote_state TEXT
            CHECK (remote_state IN ('active', 'inactive', 'revoked', 'missing'));
        """,
    ]

    /// Set on every connection, then read back: a setting that did not take is
    /// an error, not an assumption.
    static let connectionPragmas: [(set: String, read: String, expected: String)] = [
        ("PRAGMA foreign_keys = ON", "PRAGMA foreign_keys", "1"),
        ("PRAGMA secure_delete = ON", "PRAGMA secure_delete", "1"),
        ("PRAGMA cell_size_check = ON", "PRAGMA cell_size_check", "1"),
        ("PRAGMA trusted_schema = OFF", "PRAGMA trusted_schema", "0"),
        ("PRAGMA synchronous = FULL", "PRAGMA synchronous", "2"),
    ]

    /// How long a connection waits for another's lock (setBusyTimeout, a
    /// handler of keyseal's own: `PRAGMA busy_timeout` would replace it, and
    /// reads 0 while it is set).
    static let busyTimeoutMilliseconds: Int32 = 5_000

    /// Applies and verifies the per-connection settings.
    static func configure(_ connection: Connection) throws(SQLiteError) {
        try connection.setBusyTimeout(milliseconds: busyTimeoutMilliseconds)
        // Defensive mode refuses writes that could corrupt the file on
        // purpose (writable_schema, raw page edits).
        try connection.setFlag(SQLITE_DBCONFIG_DEFENSIVE, on: true)
        try connection.setFlag(SQLITE_DBCONFIG_TRUSTED_SCHEMA, on: false)
        for pragma in connectionPragmas {
            try connection.execute(pragma.set)
            let value = try connection.scalarText(pragma.read)
            guard value == pragma.expected else {
                // Not SQLITE_ERROR, which would read as a damaged file: the
                // file is fine, this SQLite build is not.
                throw SQLiteError(code: SQLITE_INTERNAL, message: "\(pragma.read) is \(value ?? "unset"), expected \(pragma.expected)")
            }
        }
    }

    /// The tables keyseal creates, in any format so far.
    /// The tables keyseal creates. A switch, not a `Set<String>`: building
    /// a set's generic metadata at start-up cost more instructions than the
    /// rest of `Vault.open` (callgrind, docs/PERFORMANCE.md).
    static func isKnownTable(_ name: String) -> Bool {
        switch name {
        case "vault", "key_slots", "entries", "settings", "previous_values", "bearer_tokens", "token_lifetimes": true
        default: false
        }
    }

    /// Refuses a file whose schema holds an object keyseal did not create:
    /// a trigger (it runs on every change keyseal makes and could copy,
    /// alter or delete rows), a view, a table or a named index. SQLite's own
    /// objects (automatic indexes, sqlite_sequence, ANALYZE statistics) are
    /// allowed. Checked on every open, before anything is written; one
    /// query on the schema SQLite has already read.
    static func checkObjects(_ connection: Connection) throws(SQLiteError) -> String? {
        // Triggers and views first: they are the ones that act.
        let statement = try connection.prepare(
            "SELECT type, name FROM sqlite_schema ORDER BY CASE type WHEN 'trigger' THEN 0 WHEN 'view' THEN 1 ELSE 2 END, name")
        while try statement.step() {
            let type = statement.text(0) ?? ""
            let name = statement.text(1) ?? ""
            switch type {
            case "table" where isKnownTable(name) || name == "sqlite_sequence" || name.hasPrefix("sqlite_stat"):
                continue
            case "index" where name.hasPrefix("sqlite_autoindex_"):
                continue
            default:
                return "it holds a \(type) \(name.debugDescription) that keyseal did not create"
            }
        }
        return nil
    }

    /// Whether the file already uses the rollback journal keyseal wants (a
    /// read; it may run inside a read transaction, a change may not).
    static func hasRollbackJournal(_ connection: Connection) throws(SQLiteError) -> Bool {
        try connection.scalarText("PRAGMA journal_mode") == "delete"
    }

    /// A rollback journal, not WAL: Debian's SQLite 3.40 predates the fix for
    /// the WAL-reset race, and a vault writes rarely. Only switches (a write)
    /// when the file says otherwise.
    static func ensureRollbackJournal(_ connection: Connection) throws(SQLiteError) {
        if try hasRollbackJournal(connection) { return }
        let mode = try connection.scalarText("PRAGMA journal_mode = DELETE")
        guard mode == "delete" else {
            throw SQLiteError(code: SQLITE_INTERNAL, message: "journal_mode is \(mode ?? "unset"), expected delete")
        }
    }

    /// Runs every migration from `version` to `currentVersion` in one
    /// transaction, so a crash leaves the file at the old version.
    static func migrate(_ connection: Connection, from version: Int64) throws {
        guard version < currentVersion else { return }
        try connection.immediateTransaction {
            for step in Int(version)..<Int(currentVersion) {
                try connection.execute(migrations[step])
            }
            // A new file has no header row yet; create() inserts it.
            try connection.execute("UPDATE vault SET format_version = \(currentVersion)")
            try connection.execute("PRAGMA application_id = \(applicationID)")
            try connection.execute("PRAGMA user_version = \(currentVersion)")
        }
    }
}
