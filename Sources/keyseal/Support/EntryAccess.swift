import Storage

/// The steps every command that uses a secret takes, in an order that never
/// asks for a passphrase in vain: open the vault, check the names, unlock.
enum EntryAccess {
    static func unlock(_ vaultOptions: VaultOptions, _ unlockOptions: UnlockOptions, names: [String]) throws -> UnlockedVault {
        let vault = try vaultOptions.open()
        for name in names { _ = try vault.metadata(named: name) }
        return try unlockOptions.unlock(vault)
    }
}
