internal import CSQLite
import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// A keyseal vault file, open but locked: its metadata can be read (so expiry
/// checks need no passphrase); secrets need `unlock`.
public final class Vault {
    public let path: String
    public let vaultID: [UInt8]
    public let formatVersion: Int64
    let connection: Connection
    /// Set when opening migrated the file to this keyseal's format: where
    /// the file as it was before was copied (the caller should say so).
    public private(set) var automaticBackupPath: String?
    /// Set when the file was open to other users when opened: its mode
    /// then, and whether it is 0600 now (the caller should say so).
    public private(set) var modeExposure: ModeExposure?

    public struct ModeExposure: Equatable, Sendable {
        /// The permission bits the file had.
        public let mode: UInt32
        /// False when it could not be set to 0600.
        public let nowPrivate: Bool
    }

    public static let maxSecretLength = 64 * 1024
    static let vaultIDLength = 16
    static let entryIDLength = 16
    static let argon2id = "argon2id13"

    private init(path: String, connection: Connection, vaultID: [UInt8], formatVersion: Int64) {
        self.path = path
        self.connection = connection
        self.vaultID = vaultID
        self.formatVersion = formatVersion
    }

    // MARK: Opening

    /// Opens an existing vault; never creates one and never writes to a file
    /// that is not a keyseal vault.
    public static func open(at path: String) throws(StorageError) -> Vault {
        try open(at: path, backupBeforeMigrating: true)
    }

    /// `ownCopy`: a temporary file keyseal has just made (a backup being
    /// verified, restore's private copy), which skips the checks of the
    /// user's vault file (owner, symbolic link, directory).
    static func open(at path: String, backupBeforeMigrating: Bool, ownCopy: Bool = false) throws(StorageError) -> Vault {
        let mode = ownCopy ? try FileSafety.modeOfOwnFile(path) : try FileSafety.inspectVault(path)
        return try mapErrors(path: path) {
            let connection = try Connection(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX)
            // Settings of this connection only; they read and write nothing
            // in the file (and foreign_keys must be set outside a transaction).
            try Schema.configure(connection)
            // Everything open reads, in one read transaction: one shared lock
            // and one hot-journal probe instead of one per statement (about
            // 60 system calls fewer on every open, strace; docs/PERFORMANCE.md).
            let (vault, version, journalIsDelete) = try connection.readTransaction {
                // Identify the file before anything could write to it.
                let applicationID = try connection.scalarInt("PRAGMA application_id") ?? 0
                let version = try connection.scalarInt("PRAGMA user_version") ?? 0
                guard applicationID == Schema.applicationID else { throw StorageError.notAVault(path: path) }
                guard version <= Schema.currentVersion else {
                    throw StorageError.newerFormat(path: path, found: version, supported: Schema.currentVersion)
                }
                guard version >= 1 else { throw StorageError.damaged(path: path, detail: "no format version") }
                // A trigger planted by another tool would run on keyseal's own
                // writes: refused before anything is written.
                if let foreign = try Schema.checkObjects(connection) {
                    throw StorageError.damaged(path: path, detail: foreign)
                }
                let journalIsDelete = try Schema.hasRollbackJournal(connection)
                // The header is checked before a migration may write.
                let vault = try loadHeader(path: path, connection: connection, expectedFormat: version)
                return (vault, version, journalIsDelete)
            }
            // Only now that the file is known to be ours may its mode change.
            let tightened = FileSafety.tightenFileMode(path, from: mode)
            let exposure = mode & 0o077 == 0 ? nil : ModeExposure(mode: UInt32(mode), nowPrivate: tightened)
            if !journalIsDelete { try Schema.ensureRollbackJournal(connection) }
            vault.modeExposure = exposure
            // Read once more only after a migration changed it.
            guard version < Schema.currentVersion else { return vault }
            // A migration rewrites the file: the old one is kept first.
            let saved = backupBeforeMigrating ? try automaticBackup(
                of: connection, vaultPath: path, reason: "before-format-\(Schema.currentVersion)", now: currentTime()) : nil
            try Schema.migrate(connection, from: version)
            let migrated = try loadHeader(path: path, connection: connection, expectedFormat: Schema.currentVersion)
            migrated.automaticBackupPath = saved
            migrated.modeExposure = exposure
            return migrated
        }
    }

    private static func loadHeader(path: String, connection: Connection, expectedFormat: Int64) throws -> Vault {
        let statement = try connection.prepare("SELECT format_version, vault_id FROM vault WHERE id = 1")
        guard try statement.step(),
              let format = statement.int(0), let vaultID = statement.blob(1),
              vaultID.count == vaultIDLength else {
            throw StorageError.damaged(path: path, detail: "the vault header is missing or malformed")
        }
        guard format == expectedFormat else {
            throw StorageError.damaged(path: path, detail: "the header says format \(format), the file says \(expectedFormat)")
        }
        return Vault(path: path, connection: connection, vaultID: vaultID, formatVersion: format)
    }

    // MARK: Creating

    /// Creates a vault with a new random vault key wrapped in one passphrase
    /// slot. The file is built under a temporary name and published with
    /// link(2), so a crash never leaves a half-made vault and an existing
    /// vault is never replaced.
    public static func create(
        at path: String,
        passphrase: borrowing SecretBytes,
        kdf: KDFParameters,
        now: Int64 = currentTime()
    ) throws(StorageError) -> UnlockedVault {
        if passphrase.count == 0 { throw .invalidSecret(reason: "the passphrase is empty") }
        do { try kdf.validate() } catch { throw .sealing(error) }
        if FileSafety.exists(path) { throw .vaultExists(path: path) }
        let directory = FileSafety.parentDirectory(of: path)
        try FileSafety.ensureDirectory(directory)
        // Refused before anything is made, not when the new vault is opened.
        try FileSafety.checkDirectoryOwner(of: path)

        let suffix = try mapErrors(path: path) { Hex.encode(try Random.bytes(6)) }
        let staging = "\(directory)/.\(path.split(separator: "/").last ?? "vault").\(suffix).tmp"
        try FileSafety.createExclusive(staging)
        defer {
            FileSafety.remove(staging)
            FileSafety.remove(staging + "-journal")
        }
        let key = try mapErrors(path: path) { try VaultKey.generate() }
        try mapErrors(path: path) {
            let connection = try Connection(path: staging, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX)
            try Schema.configure(connection)
            try Schema.ensureRollbackJournal(connection)
            try Schema.migrate(connection, from: 0)
            let vaultID = try Random.bytes(vaultIDLength)
            try connection.immediateTransaction {
                let header = try connection.prepare(
                    "INSERT INTO vault (id, format_version, vault_id, created_at) VALUES (1, ?, ?, ?)")
                try header.bind([.int(Schema.currentVersion), .blob(vaultID), .int(now)])
                _ = try header.step()
                try insertPassphraseSlot(
                    connection: connection, vaultID: vaultID, key: key,
                    passphrase: passphrase, kdf: kdf, now: now)
            }
        }
        try FileSafety.linkWithoutReplacing(staging, to: path)
        FileSafety.syncDirectory(directory)
        let vault = try open(at: path)
        return UnlockedVault(vault: vault, sealer: key)
    }

    static func insertPassphraseSlot(
        connection: Connection, vaultID: [UInt8], key: VaultKey,
        passphrase: borrowing SecretBytes, kdf: KDFParameters, now: Int64
    ) throws {
        let salt = try Random.bytes(KeyDerivation.saltLength)
        let wrappingKey = try KeyDerivation.deriveKey(passphrase: passphrase, salt: salt, parameters: kdf)
        try insertPassphraseSlot(connection: connection, vaultID: vaultID, key: key, salt: salt,
                                 wrappingKey: wrappingKey, kdf: kdf, now: now)
    }

    /// As above, with the wrapping key derived already: the caller runs
    /// Argon2id (seconds, at the sensitive preset) before it takes the
    /// write lock, so other keyseal processes do not wait on it.
    static func insertPassphraseSlot(
        connection: Connection, vaultID: [UInt8], key: VaultKey,
        salt: [UInt8], wrappingKey: borrowing SecretBytes, kdf: KDFParameters, now: Int64
    ) throws {
        let slotID = try nextSlotID(connection)
        let associatedData = AssociatedData.keySlot(
            vaultID: vaultID, slotID: slotID,
            method: KeySlotMethod.passphrase.rawValue, kdf: argon2id, parameters: kdf, salt: salt)
        let box = try key.wrap(with: wrappingKey, associatedData: associatedData)
        try insertSlot(connection, id: slotID, method: .passphrase, kdf: argon2id, parameters: kdf,
                       salt: salt, box: box, now: now)
    }

    // MARK: Unlocking

    /// Tries each passphrase slot. Stored KDF parameters are bounds-checked
    /// before Argon2id allocates anything. A wrong passphrase and an altered
    /// slot fail alike, and nothing is written either way.
    public func unlock(passphrase: borrowing SecretBytes) throws(StorageError) -> UnlockedVault {
        let slots = try mapErrors { try storedSlots(method: .passphrase) }
        guard !slots.isEmpty else {
            // A vault may hold only key-file slots; with no slot at all it is damaged.
            let anySlot = try mapErrors { try connection.scalarInt("SELECT count(*) FROM key_slots") ?? 0 }
            if anySlot > 0 { throw .unlockFailed }
            throw .damaged(path: path, detail: "the vault has no key slot")
        }
        for slot in slots {
            guard slot.kdf == Self.argon2id else {
                throw .damaged(path: path, detail: "key slot \(slot.id) uses an unknown key derivation \(slot.kdf.debugDescription)")
            }
            do { try slot.parameters.validate() } catch {
                throw .damaged(path: path, detail: "key slot \(slot.id) claims out-of-range key derivation parameters")
            }
            let wrappingKey = try slotStep(slot) { () throws(SealingError) in
                try KeyDerivation.deriveKey(passphrase: passphrase, salt: slot.salt, parameters: slot.parameters)
            }
            if let unlocked = try unwrap(slot, method: .passphrase, with: wrappingKey) { return unlocked }
        }
        throw .unlockFailed
    }

    /// The vault key from one slot, or nil when the wrapping key does not fit
    /// (a wrong passphrase or key file, or a slot altered outside keyseal:
    /// the two cannot be told apart). The associated data is built from the
    /// row as stored, so an edit of any of its columns fails here.
    func unwrap(_ slot: StoredSlot, method: KeySlotMethod, with wrappingKey: borrowing SecretBytes) throws(StorageError) -> UnlockedVault? {
        let associatedData = AssociatedData.keySlot(
            vaultID: vaultID, slotID: slot.id, method: method.rawValue,
            kdf: slot.kdf, parameters: slot.parameters, salt: slot.salt)
        do {
            let key = try slotStep(slot) { () throws(SealingError) in
                try VaultKey.unwrap(slot.box, with: wrappingKey, associatedData: associatedData)
            }
            return UnlockedVault(vault: self, sealer: key)
        } catch .sealing(.authenticationFailed) {
            return nil
        }
    }

    /// Maps a sealing step on a slot: a wrong length is a malformed slot.
    private func slotStep<R: ~Copyable>(_ slot: StoredSlot, _ body: () throws(SealingError) -> R) throws(StorageError) -> R {
        do {
            return try body()
        } catch .invalidLength {
            throw .damaged(path: path, detail: "key slot \(slot.id) is malformed")
        } catch {
            throw .sealing(error)
        }
    }

    // MARK: Metadata (no unlock needed)

    /// Every entry's metadata, by name.
    public func entries() throws(StorageError) -> [EntryMetadata] {
        try mapErrors {
            let statement = try connection.prepare("SELECT \(StoredEntry.columns) FROM entries ORDER BY name")
            var result: [EntryMetadata] = []
            // Room for all at once: a large vault's list is not copied as it grows.
            result.reserveCapacity(Int(try connection.scalarInt("SELECT count(*) FROM entries") ?? 0))
            var repeated = StoredEntry.RepeatedText()
            while try statement.step() { result.append(try StoredEntry.metadata(statement, path: path, repeated: &repeated)) }
            return result
        }
    }

    public func metadata(named name: String) throws(StorageError) -> EntryMetadata {
        try mapErrors { try storedEntry(named: name, on: connection).metadata }
    }

    /// An entry's row as stored, sealed value included: read once, checked
    /// against the expiry policy, then opened (UnlockedVault.open(_:)), as
    /// `keyseal header` does.
    public func sealedEntry(named name: String) throws(StorageError) -> SealedEntry {
        try mapErrors { SealedEntry(stored: try storedEntry(named: name, on: connection)) }
    }

    /// How long a value replaced by `rotate` is kept, so a rotation can be
    /// undone. Older ones are not shown or opened, and the next write to the
    /// vault deletes them.
    public static let previousValueRetention: Int64 = 30 * 86_400

    /// The values `name` held before it was rotated, kept for the retention
    /// period, newest first.
    public func previousValues(of name: String, now: Int64 = currentTime()) throws(StorageError) -> [PreviousValue] {
        try mapErrors {
            let entry = try storedEntry(named: name, on: connection)
            return try storedPreviousValues(entryID: entry.metadata.id, on: connection, now: now).map(\.metadata)
        }
    }

    func storedPreviousValues(entryID: [UInt8], on connection: Connection, now: Int64) throws -> [StoredPreviousValue] {
        let statement = try connection.prepare("""
            SELECT version, set_at, replaced_at, fingerprint, nonce, ciphertext
            FROM previous_values WHERE entry_id = ? AND replaced_at >= ? ORDER BY version DESC
            """)
        try statement.bind(1, entryID)
        try statement.bind(2, now - Self.previousValueRetention)
        var values: [StoredPreviousValue] = []
        while try statement.step() {
            guard let version = statement.int(0), let setAt = statement.int(1), let replacedAt = statement.int(2),
                  let fingerprint = statement.blob(3), fingerprint.count == VaultKey.fingerprintLength,
                  let nonce = statement.blob(4), let ciphertext = statement.blob(5)
            else { throw StorageError.damaged(path: path, detail: "a previous value is malformed") }
            values.append(StoredPreviousValue(
                metadata: PreviousValue(version: version, setAt: setAt, replacedAt: replacedAt, fingerprint: fingerprint),
                box: SealedBox(nonce: nonce, ciphertext: ciphertext)))
        }
        return values
    }

    func storedEntry(named name: String, on connection: Connection) throws -> StoredEntry {
        let statement = try connection.prepare("SELECT \(StoredEntry.columns) FROM entries WHERE name = ?")
        try statement.bind(1, name)
        guard try statement.step() else { throw StorageError.entryNotFound(name: name) }
        return try StoredEntry(statement, path: path)
    }

    public static func currentTime() -> Int64 { Int64(time(nil)) }

    // MARK: Policy metadata (no unlock needed)

    /// Sets or clears (nil) an entry's own expiry warning window, in seconds.
    /// Not bound into the seal, so no key is needed: it only decides when
    /// keyseal warns.
    public func setWarnWithin(_ name: String, _ seconds: Int64?) throws(StorageError) {
        try Self.validate(warnWithin: seconds)
        try setPolicy(.warnWithin, of: name, to: seconds)
    }

    /// The entry columns that are policy, not sealed: each set on its own,
    /// without the key, counted in `revision`.
    enum PolicyColumn: String {
        case warnWithin = "warn_within"
        case maxAge = "max_age"
    }

    func setPolicy(_ column: PolicyColumn, of name: String, to value: Int64?) throws(StorageError) {
        try setColumn(column.rawValue, of: name, to: .int(value))
    }

    /// What the issuing server last said of an entry's token (nil: unknown).
    /// Not bound, so no key is needed.
    public func setRemoteState(_ name: String, _ state: RemoteState?) throws(StorageError) {
        try setColumn("remote_state", of: name, to: .text(state?.rawValue))
    }

    /// One unsealed column of one entry, in a transaction of its own,
    /// counted in `revision`. `column` is ours, never user input.
    private func setColumn(_ column: String, of name: String, to value: SQLValue) throws(StorageError) {
        try mapErrors {
            try connection.immediateTransaction {
                let update = try connection.prepare("UPDATE entries SET \(column) = ?, revision = revision + 1 WHERE name = ?")
                try update.bind([value, .text(name)])
                _ = try update.step()
                if connection.changes == 0 { throw StorageError.entryNotFound(name: name) }
            }
        }
    }

    /// Sets an entry's policy columns that are given (`.some(nil)` clears
    /// one) in one transaction: both change or neither. No key is needed.
    public func setPolicies(
        _ name: String, warnWithin: Int64?? = nil, maxAge: Int64?? = nil, ifUnchangedSince read: EntryMetadata? = nil
    ) throws(StorageError) {
        if let warnWithin { try Self.validate(warnWithin: warnWithin) }
        if let maxAge { try Self.validate(maxAge: maxAge) }
        var columns: [(PolicyColumn, Int64?)] = []
        if let warnWithin { columns.append((.warnWithin, warnWithin)) }
        if let maxAge { columns.append((.maxAge, maxAge)) }
        guard !columns.isEmpty else { return }
        try mapErrors {
            try connection.immediateTransaction {
                let stored = try storedEntry(named: name, on: connection)
                if let read { try Self.checkUnchanged(stored.metadata, since: read) }
                let assignments = columns.map { "\($0.0.rawValue) = ?" }.joined(separator: ", ")
                let update = try connection.prepare("UPDATE entries SET \(assignments), revision = revision + 1 WHERE entry_id = ?")
                try update.bind(columns.map { .int($0.1) } + [.blob(stored.metadata.id)])
                _ = try update.step()
            }
        }
    }

    /// Inside a write transaction: the entry as stored now is the one the
    /// caller read (same id, same revision), else `entryChanged`.
    static func checkUnchanged(_ stored: EntryMetadata, since read: EntryMetadata) throws(StorageError) {
        guard stored.id == read.id, stored.revision == read.revision else { throw .entryChanged(name: read.name) }
    }

    static func validate(maxAge: Int64?) throws(StorageError) {
        if let maxAge, maxAge <= 0 { throw .invalidField(field: "maximum token age", reason: "it must be longer than zero") }
    }

    static func validate(warnWithin: Int64?) throws(StorageError) {
        if let warnWithin, warnWithin <= 0 {
            throw .invalidField(field: "warning window", reason: "it must be longer than zero")
        }
    }

    /// A vault setting (`warn-within`, `refuse-expired`), or nil when unset.
    public func setting(_ key: String) throws(StorageError) -> String? {
        try mapErrors {
            let statement = try connection.prepare("SELECT value FROM settings WHERE key = ?")
            try statement.bind(1, key)
            return try statement.step() ? statement.text(0) : nil
        }
    }

    /// Every setting, by key.
    public func settings() throws(StorageError) -> [(key: String, value: String)] {
        try mapErrors {
            let statement = try connection.prepare("SELECT key, value FROM settings ORDER BY key")
            var result: [(key: String, value: String)] = []
            while try statement.step() {
                guard let key = statement.text(0), let value = statement.text(1) else {
                    throw StorageError.damaged(path: path, detail: "a setting is malformed")
                }
                result.append((key, value))
            }
            return result
        }
    }

    /// Sets a setting, or removes it when `value` is nil. Keys and values are
    /// the caller's to validate; storage keeps them as text.
    public func setSetting(_ key: String, _ value: String?) throws(StorageError) {
        try TextField.validate(key, field: "setting name", maxUTF8Length: 64, allowEmpty: false)
        if let value { try TextField.validate(value, field: "setting value", maxUTF8Length: 256, allowEmpty: false) }
        try mapErrors {
            try connection.immediateTransaction {
                let statement: Statement
                if let value {
                    statement = try connection.prepare("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                    try statement.bind([.text(key), .text(value)])
                } else {
                    statement = try connection.prepare("DELETE FROM settings WHERE key = ?")
                    try statement.bind(1, key)
                }
                _ = try statement.step()
            }
        }
    }

    // MARK: Errors

    /// Maps the C layers' errors to `StorageError` at the module's edge.
    static func mapErrors<R: ~Copyable>(path: String, _ body: () throws -> R) throws(StorageError) -> R {
        do {
            return try body()
        } catch let error as StorageError {
            throw error
        } catch let error as SealingError {
            throw .sealing(error)
        } catch let error as SQLiteError {
            throw map(error, path: path)
        } catch {
            throw .io(path: path, detail: "\(error)")
        }
    }

    func mapErrors<R: ~Copyable>(_ body: () throws -> R) throws(StorageError) -> R {
        try Self.mapErrors(path: path, body)
    }

    /// SQLITE_IOERR_WRITE, _FSYNC, _TRUNCATE, _DIR_FSYNC: the extended codes
    /// of a failed write (sqlite3.h defines them as expressions Swift
    /// cannot import).
    static let writeErrors: Set<Int32> = [SQLITE_IOERR | 3 << 8, SQLITE_IOERR | 4 << 8, SQLITE_IOERR | 5 << 8, SQLITE_IOERR | 6 << 8]

    static func map(_ error: SQLiteError, path: String) -> StorageError {
        switch error.primaryCode {
        case SQLITE_BUSY, SQLITE_LOCKED: .busy(path: path)
        case SQLITE_FULL: .diskFull(path: path)
        // SQLite reports ENOSPC from fsync, and any errno from a write but
        // ENOSPC, as a plain I/O error; the errno tells them apart.
        case SQLITE_IOERR where error.systemErrno == ENOSPC || error.systemErrno == EDQUOT: .diskFull(path: path)
        case SQLITE_IOERR where writeErrors.contains(error.code):
            .writeFailed(path: path, detail: error.message + (error.systemErrno != 0 ? " (\(String(cString: strerror(error.systemErrno))))" : ""),
                         systemErrno: error.systemErrno)
        case SQLITE_READONLY: .readOnly(path: path)
        case SQLITE_NOTADB: .notAVault(path: path)
        // keyseal's SQL is fixed, so SQLITE_ERROR ("no such column", "malformed
        // schema") means the file's schema is not the one keyseal wrote.
        case SQLITE_CORRUPT, SQLITE_FORMAT, SQLITE_SCHEMA, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE, SQLITE_ERROR:
            .damaged(path: path, detail: error.message)
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_AUTH: .io(path: path, detail: "cannot open: \(error.message)")
        default: .io(path: path, detail: error.message)
        }
    }
}

struct StoredPreviousValue {
    let metadata: PreviousValue
    let box: SealedBox
}

/// One row of `entries`, decoded without trusting it: a wrong type or length
/// is reported as damage, never a crash.
struct StoredEntry {
    static let columns = """
        name, entry_id, kind, header_template, url, description, created_at, updated_at, \
        expires_at, last_used_at, fingerprint, nonce, ciphertext, warn_within, revision, max_age, ca_certificates,
        remote_id, remote_state
        """
    let metadata: EntryMetadata
    let box: SealedBox

    init(_ row: Statement, path: String) throws {
        metadata = try Self.metadata(row, path: path)
        guard let nonce = row.blob(11), let ciphertext = row.blob(12) else {
            throw StorageError.damaged(path: path, detail: "an entry row is malformed")
        }
        box = SealedBox(nonce: nonce, ciphertext: ciphertext)
    }

    /// The row's metadata, checked as `init` checks the whole row (the
    /// sealed value's columns included), without copying the sealed value:
    /// `entries()` reads every row and needs no seal.
    static func metadata(_ row: Statement, path: String) throws -> EntryMetadata {
        var repeated = RepeatedText()
        return try metadata(row, path: path, repeated: &repeated)
    }

    /// The last kind, header template and URL read, which the next rows
    /// often repeat.
    struct RepeatedText {
        var kind: String?
        var template: String?
        var url: String?
    }

    static func metadata(_ row: Statement, path: String, repeated: inout RepeatedText) throws -> EntryMetadata {
        func malformed() -> StorageError { .damaged(path: path, detail: "an entry row is malformed") }
        func optionalInt(_ column: Int32) throws -> Int64? {
            if row.isNull(column) { return nil }
            guard let value = row.int(column) else { throw malformed() }
            return value
        }
        guard let name = row.text(0), let id = row.blob(1), id.count == Vault.entryIDLength,
              let kind = row.text(2, sameAs: repeated.kind), let template = row.text(3, sameAs: repeated.template),
              let description = row.text(5),
              let created = row.int(6), let updated = row.int(7),
              let fingerprint = row.blob(10), fingerprint.count == VaultKey.fingerprintLength,
              row.isBlob(11), row.isBlob(12)
        else { throw malformed() }
        func optionalText(_ column: Int32) throws -> String? {
            if row.isNull(column) { return nil }
            guard let text = row.text(column) else { throw malformed() }
            return text
        }
        var url: String?
        if !row.isNull(4) {
            guard let text = row.text(4, sameAs: repeated.url) else { throw malformed() }
            url = text
        }
        repeated = RepeatedText(kind: kind, template: template, url: url ?? repeated.url)
        let caCertificates = try optionalText(16)
        let fields = EntryFields(kind: kind, headerTemplate: template, url: url,
                                 description: description, expiresAt: try optionalInt(8), caCertificates: caCertificates)
        return EntryMetadata(id: id, name: name, fields: fields, createdAt: created, updatedAt: updated,
                             lastUsedAt: try optionalInt(9), fingerprint: fingerprint, warnWithin: try optionalInt(13),
                             revision: try optionalInt(14) ?? 0, maxAge: try optionalInt(15), remoteID: try optionalText(17),
                             remoteState: try optionalText(18).map { text in
                                 guard let state = RemoteState(rawValue: text) else { throw malformed() }
                                 return state
                             })
    }
}
