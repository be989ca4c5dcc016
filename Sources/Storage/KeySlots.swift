import Sealing

/// How a key slot is opened.
public enum KeySlotMethod: String, Sendable {
    case passphrase
    /// 32 random bytes in a file; no KDF runs (the key file is the wrapping key).
    case keyFile = "keyfile"
}

/// A key slot as listed: never the wrapped key.
public struct KeySlotInfo: Equatable, Sendable {
    public let id: Int64
    public let method: KeySlotMethod
    /// Argon2id cost, for passphrase slots.
    public let kdf: KDFParameters?
    public let createdAt: Int64
}

extension Vault {
    static let keyFileKDF = "none"
    public static let keyFileLength = AEAD.keyLength

    /// Every key slot, by id. No unlock needed.
    public func keySlots() throws(StorageError) -> [KeySlotInfo] {
        try mapErrors {
            let statement = try connection.prepare("SELECT slot_id, method, kdf_ops, kdf_mem, created_at FROM key_slots ORDER BY slot_id")
            var slots: [KeySlotInfo] = []
            while try statement.step() {
                guard let id = statement.int(0), let methodText = statement.text(1), let method = KeySlotMethod(rawValue: methodText),
                      let ops = statement.int(2), let mem = statement.int(3), ops >= 0, mem >= 0,
                      let created = statement.int(4)
                else { throw StorageError.damaged(path: path, detail: "a key slot is malformed") }
                slots.append(KeySlotInfo(
                    id: id, method: method,
                    kdf: method == .passphrase ? KDFParameters(opsLimit: UInt64(ops), memLimit: UInt64(mem)) : nil,
                    createdAt: created))
            }
            return slots
        }
    }

    /// Unlocks with a key file's 32 bytes. A wrong key file fails exactly as
    /// a wrong passphrase does.
    public func unlock(keyFile: borrowing SecretBytes) throws(StorageError) -> UnlockedVault {
        guard keyFile.count == Self.keyFileLength else { throw .unlockFailed }
        let slots = try mapErrors { try storedSlots(method: .keyFile) }
        for slot in slots {
            if let unlocked = try unwrap(slot, method: .keyFile, with: keyFile) { return unlocked }
        }
        throw .unlockFailed
    }

    /// A vault whose key is held elsewhere (the unlock agent): entries are
    /// sealed and opened through `sealer`. The caller checks that the sealer
    /// holds this vault's key; a wrong one fails every open as tampering.
    public func unlocked(by sealer: any EntrySealer) -> UnlockedVault {
        UnlockedVault(vault: self, sealer: sealer)
    }

    struct StoredSlot {
        let id: Int64
        let kdf: String
        let parameters: KDFParameters
        let salt: [UInt8]
        let box: SealedBox
    }

    func storedSlots(method: KeySlotMethod) throws -> [StoredSlot] {
        let statement = try connection.prepare("""
            SELECT slot_id, kdf, kdf_ops, kdf_mem, salt, nonce, wrapped_key
            FROM key_slots WHERE method = ? ORDER BY slot_id
            """)
        try statement.bind(1, method.rawValue)
        var slots: [StoredSlot] = []
        while try statement.step() {
            guard let id = statement.int(0), let kdf = statement.text(1),
                  let ops = statement.int(2), let mem = statement.int(3), ops >= 0, mem >= 0,
                  let salt = statement.blob(4), let nonce = statement.blob(5), let wrapped = statement.blob(6)
            else { throw StorageError.damaged(path: path, detail: "a key slot is malformed") }
            slots.append(StoredSlot(
                id: id, kdf: kdf, parameters: KDFParameters(opsLimit: UInt64(ops), memLimit: UInt64(mem)),
                salt: salt, box: SealedBox(nonce: nonce, ciphertext: wrapped)))
        }
        return slots
    }

    static func nextSlotID(_ connection: Connection) throws -> Int64 {
        (try connection.scalarInt("SELECT coalesce(max(slot_id), 0) + 1 FROM key_slots")) ?? 1
    }

    static func insertSlot(
        _ connection: Connection, id: Int64, method: KeySlotMethod, kdf: String, parameters: KDFParameters?,
        salt: [UInt8], box: SealedBox, now: Int64
    ) throws {
        let insert = try connection.prepare("""
            INSERT INTO key_slots (slot_id, method, kdf, kdf_ops, kdf_mem, salt, nonce, wrapped_key, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try insert.bind([
            .int(id), .text(method.rawValue), .text(kdf),
            .int(Int64(parameters?.opsLimit ?? 0)), .int(Int64(parameters?.memLimit ?? 0)),
            .blob(salt), .blob(box.nonce), .blob(box.ciphertext), .int(now),
        ])
        _ = try insert.step()
    }
}

extension UnlockedVault {
    /// The vault key, when this process holds it (not when an agent does):
    /// key-slot changes and handing the key to an agent need it.
    public var localKey: VaultKey? { sealer as? VaultKey }

    private func requireLocalKey() throws(StorageError) -> VaultKey {
        guard let key = localKey else { throw .needsVaultKey }
        return key
    }

    /// Adds a key-file slot: the vault key wrapped under `keyFile` (32 random
    /// bytes the caller has written to a new file).
    @discardableResult
    public func addKeyFileSlot(keyFile: borrowing SecretBytes, now: Int64 = Vault.currentTime()) throws(StorageError) -> KeySlotInfo {
        guard keyFile.count == Vault.keyFileLength else {
            throw .invalidSecret(reason: "a key file holds exactly \(Vault.keyFileLength) bytes")
        }
        let key = try requireLocalKey()
        return try vault.mapErrors {
            try vault.connection.immediateTransaction {
                let id = try Vault.nextSlotID(vault.connection)
                let associatedData = AssociatedData.keySlot(
                    vaultID: vault.vaultID, slotID: id, method: KeySlotMethod.keyFile.rawValue,
                    kdf: Vault.keyFileKDF, parameters: nil, salt: [])
                let box = try key.wrap(with: keyFile, associatedData: associatedData)
                try Vault.insertSlot(vault.connection, id: id, method: .keyFile, kdf: Vault.keyFileKDF,
                                     parameters: nil, salt: [], box: box, now: now)
                return KeySlotInfo(id: id, method: .keyFile, kdf: nil, createdAt: now)
            }
        }
    }

    /// Removes a key slot; the last one never goes (the vault would be lost).
    public func removeKeySlot(_ id: Int64) throws(StorageError) {
        try vault.mapErrors {
            try vault.connection.immediateTransaction {
                let count = try vault.connection.scalarInt("SELECT count(*) FROM key_slots") ?? 0
                let exists = try vault.connection.prepare("SELECT 1 FROM key_slots WHERE slot_id = ?")
                try exists.bind(1, id)
                guard try exists.step() else { throw StorageError.keySlotNotFound(id: id) }
                guard count > 1 else { throw StorageError.lastKeySlot }
                let delete = try vault.connection.prepare("DELETE FROM key_slots WHERE slot_id = ?")
                try delete.bind(1, id)
                _ = try delete.step()
            }
        }
    }

    /// Replaces every passphrase slot with one for `newPassphrase`, in one
    /// transaction. Entries are untouched (the vault key does not change);
    /// secure_delete overwrites the old wrapped key in the file, and the
    /// rollback journal that held it is deleted at commit.
    public func changePassphrase(
        to newPassphrase: borrowing SecretBytes, kdf: KDFParameters, now: Int64 = Vault.currentTime()
    ) throws(StorageError) {
        if newPassphrase.count == 0 { throw .invalidSecret(reason: "the passphrase is empty") }
        do { try kdf.validate() } catch { throw .sealing(error) }
        let key = try requireLocalKey()
        try vault.mapErrors {
            // Argon2id first, outside the transaction: at the sensitive
            // preset it runs for seconds, longer than another keyseal waits
            // for the write lock (busy_timeout) before it gives up.
            let salt = try Random.bytes(KeyDerivation.saltLength)
            let wrappingKey = try KeyDerivation.deriveKey(passphrase: newPassphrase, salt: salt, parameters: kdf)
            try vault.connection.immediateTransaction {
                try vault.connection.execute("DELETE FROM key_slots WHERE method = 'passphrase'")
                try Vault.insertPassphraseSlot(
                    connection: vault.connection, vaultID: vault.vaultID, key: key,
                    salt: salt, wrappingKey: wrappingKey, kdf: kdf, now: now)
            }
        }
    }
}
