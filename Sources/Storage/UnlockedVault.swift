internal import CSQLite
import Sealing

/// A vault whose key is held by `sealer` (the vault key in this process, or
/// later an agent that holds it): entries can be added, opened and changed.
public final class UnlockedVault {
    public let vault: Vault
    let sealer: any EntrySealer

    init(vault: Vault, sealer: any EntrySealer) {
        self.vault = vault
        self.sealer = sealer
    }

    private var connection: Connection { vault.connection }
    private var path: String { vault.path }

    /// Adds an entry, never over an existing one. Returns only once the commit
    /// is durable (synchronous=FULL) and the row, read back from the file
    /// through a fresh connection, opens to exactly `secret`.
    @discardableResult
    public func add(
        name: String, fields: EntryFields, secret: borrowing SecretBytes, warnWithin: Int64? = nil,
        remoteID: String? = nil, now: Int64 = Vault.currentTime()
    ) throws(StorageError) -> EntryMetadata {
        try EntryName.validate(name)
        try fields.validate()
        try Vault.validate(warnWithin: warnWithin)
        try Self.validate(secret)
        if let remoteID { try TextField.validate(remoteID, field: "token id", maxUTF8Length: 256, allowEmpty: false) }
        try vault.mapErrors {
            let entryID = try Random.bytes(Vault.entryIDLength)
            let binding = EntryBinding(name: name, fields: fields, createdAt: now, updatedAt: now)
            let box = try sealer.seal(secret, associatedData: associatedData(entryID, binding))
            let fingerprint = try sealer.fingerprint(secret)
            try connection.immediateTransaction {
                if try exists(name) { throw StorageError.entryExists(name: name) }
                try purgeExpiredPreviousValues(now: now)
                let insert = try connection.prepare("""
                    INSERT INTO entries (name, entry_id, kind, header_template, url, description,
                        created_at, updated_at, expires_at, last_used_at, fingerprint, nonce, ciphertext, warn_within,
                        ca_certificates, remote_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)
                    """)
                try insert.bind([
                    .text(name), .blob(entryID), .text(fields.kind), .text(fields.headerTemplate),
                    .text(fields.url), .text(fields.description), .int(now), .int(now), .int(fields.expiresAt),
                    .blob(fingerprint), .blob(box.nonce), .blob(box.ciphertext), .int(warnWithin), .text(fields.caCertificates),
                    .text(remoteID),
                ])
                _ = try insert.step()
            }
        }
        return try verifyStored(name, matches: secret)
    }

    /// Reads `name` back through a new connection, which sees only what
    /// reached the file, and compares the opened value in constant time.
    /// The connection may write (it never does itself): if another keyseal
    /// was killed mid-write meanwhile, reading first rolls its hot journal
    /// back, which a read-only connection cannot do.
    private func verifyStored(_ name: String, matches secret: borrowing SecretBytes) throws(StorageError) -> EntryMetadata {
        try vault.mapErrors {
            let fresh = try Connection(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX)
            try Schema.configure(fresh)
            let stored = try vault.storedEntry(named: name, on: fresh)
            let opened: SecretBytes
            do {
                opened = try openSecret(stored)
            } catch {
                throw StorageError.verificationFailed(name: name)
            }
            guard opened.constantTimeEquals(secret) else { throw StorageError.verificationFailed(name: name) }
            return stored.metadata
        }
    }

    /// Opens an entry. A row altered, moved or copied outside keyseal fails
    /// here; a wrong secret is never returned.
    public func open(_ name: String) throws(StorageError) -> OpenedEntry {
        try vault.mapErrors {
            let stored = try vault.storedEntry(named: name, on: connection)
            return OpenedEntry(metadata: stored.metadata, secret: try openSecret(stored))
        }
    }

    /// Opens an entry read before (Vault.sealedEntry); the seal binds it to
    /// this vault, so a row of another vault fails like a tampered one.
    public func open(_ sealed: SealedEntry) throws(StorageError) -> OpenedEntry {
        try vault.mapErrors { OpenedEntry(metadata: sealed.metadata, secret: try openSecret(sealed.stored)) }
    }

    /// Renames an entry. The name is bound into the seal, so the value is
    /// opened and sealed again under the new name, in one transaction.
    @discardableResult
    /// With `ifUnchangedSince`, the entry as the caller read it: when it
    /// has changed since (another process edited or replaced it), nothing is
    /// written and `entryChanged` is thrown.
    public func rename(
        _ name: String, to newName: String, ifUnchangedSince read: EntryMetadata? = nil, now: Int64 = Vault.currentTime()
    ) throws(StorageError) -> EntryMetadata {
        try EntryName.validate(newName)
        return try rewrite(name, newName: newName, warnWithin: nil, maxAge: nil, ifUnchangedSince: read, now: now) { _ in }
    }

    /// Changes an entry's fields, and its warning window and maximum token
    /// age when `warnWithin` and `maxAge` are given (`.some(nil)` clears
    /// one), all in one transaction: a crash leaves every change or none.
    /// The value is sealed again under the new binding. With
    /// `ifUnchangedSince` (the entry as the caller read it before asking for
    /// the passphrase), a change made meanwhile by another process is never
    /// overwritten: nothing is written and `entryChanged` is thrown.
    @discardableResult
    public func update(
        _ name: String, warnWithin: Int64?? = nil, maxAge: Int64?? = nil, ifUnchangedSince read: EntryMetadata? = nil,
        now: Int64 = Vault.currentTime(), _ edit: (inout EntryFields) -> Void
    ) throws(StorageError) -> EntryMetadata {
        if let warnWithin { try Vault.validate(warnWithin: warnWithin) }
        if let maxAge { try Vault.validate(maxAge: maxAge) }
        return try rewrite(name, newName: name, warnWithin: warnWithin, maxAge: maxAge, ifUnchangedSince: read, now: now, edit)
    }

    public func remove(_ name: String, now: Int64 = Vault.currentTime()) throws(StorageError) {
        try vault.mapErrors {
            try connection.immediateTransaction {
                try purgeExpiredPreviousValues(now: now)
                let delete = try connection.prepare("DELETE FROM entries WHERE name = ?")
                try delete.bind(1, name)
                _ = try delete.step()
                if connection.changes == 0 { throw StorageError.entryNotFound(name: name) }
            }
        }
    }

    /// Replaces an entry's value. The old value is kept as the newest
    /// previous version unless `keepPrevious` is false, in which case every
    /// previous version goes. Like `add`, returns only once the new value has
    /// been read back from the file and compared.
    @discardableResult
    public func rotate(
        _ name: String, to newSecret: borrowing SecretBytes, keepPrevious: Bool = true,
        now: Int64 = Vault.currentTime(), _ edit: (inout EntryFields) -> Void = { _ in }
    ) throws(StorageError) -> EntryMetadata {
        try Self.validate(newSecret)
        try vault.mapErrors {
            try connection.immediateTransaction {
                let stored = try vault.storedEntry(named: name, on: connection)
                let entryID = stored.metadata.id
                let oldSecret = try openSecret(stored)
                try purgeExpiredPreviousValues(now: now)
                // A token got with the old key is not used with the new one.
                try vault.dropKeptToken(entryID: entryID)
                if keepPrevious {
                    let newest = try connection.scalarInt(
                        "SELECT max(version) FROM previous_values WHERE entry_id = X'\(Hex.encode(entryID))'")
                    let version = (newest ?? 0) + 1
                    let previousAD = AssociatedData.previousValue(
                        vaultID: vault.vaultID, entryID: entryID, version: version,
                        setAt: stored.metadata.updatedAt, replacedAt: now)
                    let box = try sealer.seal(oldSecret, associatedData: previousAD)
                    let insert = try connection.prepare("""
                        INSERT INTO previous_values (entry_id, version, set_at, replaced_at, fingerprint, nonce, ciphertext)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """)
                    try insert.bind([
                        .blob(entryID), .int(version), .int(stored.metadata.updatedAt), .int(now),
                        .blob(stored.metadata.fingerprint), .blob(box.nonce), .blob(box.ciphertext),
                    ])
                    _ = try insert.step()
                } else {
                    let purge = try connection.prepare("DELETE FROM previous_values WHERE entry_id = ?")
                    try purge.bind(1, entryID)
                    _ = try purge.step()
                }
                var fields = stored.metadata.fields
                edit(&fields)
                try fields.validate()
                let binding = EntryBinding(name: name, fields: fields, createdAt: stored.metadata.createdAt, updatedAt: now)
                let box = try sealer.seal(newSecret, associatedData: associatedData(entryID, binding))
                let update = try connection.prepare("""
                    UPDATE entries SET kind = ?, header_template = ?, url = ?, description = ?, expires_at = ?,
                        updated_at = ?, fingerprint = ?, nonce = ?, ciphertext = ?, revision = revision + 1,
                        ca_certificates = ?, remote_id = NULL, remote_state = NULL
                    WHERE entry_id = ?
                    """)
                try update.bind([
                    .text(fields.kind), .text(fields.headerTemplate), .text(fields.url), .text(fields.description),
                    .int(fields.expiresAt), .int(now), .blob(try sealer.fingerprint(newSecret)),
                    .blob(box.nonce), .blob(box.ciphertext), .text(fields.caCertificates), .blob(entryID),
                ])
                _ = try update.step()
            }
        }
        return try verifyStored(name, matches: newSecret)
    }

    /// A previous value of `name`: the newest, or the given version.
    public func openPrevious(_ name: String, version: Int64? = nil, now: Int64 = Vault.currentTime()) throws(StorageError) -> SecretBytes {
        try vault.mapErrors {
            let stored = try vault.storedEntry(named: name, on: connection)
            let values = try vault.storedPreviousValues(entryID: stored.metadata.id, on: connection, now: now)
            let chosen = version.map { wanted in values.first { $0.metadata.version == wanted } } ?? values.first
            guard let value = chosen else { throw StorageError.noPreviousValue(name: name, version: version) }
            let previousAD = AssociatedData.previousValue(
                vaultID: vault.vaultID, entryID: stored.metadata.id, version: value.metadata.version,
                setAt: value.metadata.setAt, replacedAt: value.metadata.replacedAt)
            return try openChecked(value.box, associatedData: previousAD, fingerprint: value.metadata.fingerprint, name: name)
        }
    }

    /// Run inside every write transaction.
    private func purgeExpiredPreviousValues(now: Int64) throws {
        let purge = try connection.prepare("DELETE FROM previous_values WHERE replaced_at < ?")
        try purge.bind(1, now - Vault.previousValueRetention)
        _ = try purge.step()
    }

    private func rewrite(
        _ name: String, newName: String, warnWithin: Int64??, maxAge: Int64??, ifUnchangedSince read: EntryMetadata?,
        now: Int64, _ edit: (inout EntryFields) -> Void
    ) throws(StorageError) -> EntryMetadata {
        try vault.mapErrors {
            try connection.immediateTransaction {
                let stored = try vault.storedEntry(named: name, on: connection)
                if let read { try Vault.checkUnchanged(stored.metadata, since: read) }
                if newName != name, try exists(newName) { throw StorageError.entryExists(name: newName) }
                let secret = try openSecret(stored)
                // New fields (a URL, a kind) may not fit a token got before.
                try vault.dropKeptToken(entryID: stored.metadata.id)
                var fields = stored.metadata.fields
                edit(&fields)
                try fields.validate()
                let binding = EntryBinding(name: newName, fields: fields,
                                           createdAt: stored.metadata.createdAt, updatedAt: now)
                let box = try sealer.seal(secret, associatedData: associatedData(stored.metadata.id, binding))
                let update = try connection.prepare("""
                    UPDATE entries SET name = ?, kind = ?, header_template = ?, url = ?, description = ?,
                        expires_at = ?, updated_at = ?, nonce = ?, ciphertext = ?, revision = revision + 1,
                        warn_within = ?, max_age = ?, ca_certificates = ?
                    WHERE entry_id = ?
                    """)
                try update.bind([
                    .text(newName), .text(fields.kind), .text(fields.headerTemplate), .text(fields.url),
                    .text(fields.description), .int(fields.expiresAt), .int(now),
                    .blob(box.nonce), .blob(box.ciphertext), .int(warnWithin ?? stored.metadata.warnWithin),
                    .int(maxAge ?? stored.metadata.maxAge), .text(fields.caCertificates), .blob(stored.metadata.id),
                ])
                _ = try update.step()
                try purgeExpiredPreviousValues(now: now)
                return try vault.storedEntry(named: newName, on: connection).metadata
            }
        }
    }

    /// Opens a row's value and checks its stored fingerprint, the one column
    /// the seal does not cover, against the value itself.
    func openSecret(_ stored: StoredEntry) throws -> SecretBytes {
        try openChecked(stored.box, associatedData: associatedData(of: stored),
                        fingerprint: stored.metadata.fingerprint, name: stored.metadata.name)
    }

    func openChecked(_ box: SealedBox, associatedData: [UInt8], fingerprint: [UInt8], name: String) throws -> SecretBytes {
        do {
            return try sealer.openVerified(box, associatedData: associatedData, fingerprint: fingerprint)
        } catch .authenticationFailed, .invalidLength {
            throw StorageError.entryTampered(name: name)
        }
    }

    /// What a stored entry's value is sealed with (the vault, its id and its bound fields).
    func associatedData(of stored: StoredEntry) -> [UInt8] {
        associatedData(stored.metadata.id, stored.metadata.binding)
    }

    private func associatedData(_ entryID: [UInt8], _ binding: EntryBinding) -> [UInt8] {
        AssociatedData.entry(vaultID: vault.vaultID, entryID: entryID, fields: binding)
    }

    private func exists(_ name: String) throws -> Bool {
        let statement = try connection.prepare("SELECT 1 FROM entries WHERE name = ?")
        try statement.bind(1, name)
        return try statement.step()
    }

    static func validate(_ secret: borrowing SecretBytes) throws(StorageError) {
        if secret.count == 0 { throw .invalidSecret(reason: "it is empty") }
        if secret.count > Vault.maxSecretLength {
            throw .invalidSecret(reason: "it is longer than \(Vault.maxSecretLength) bytes")
        }
    }
}
