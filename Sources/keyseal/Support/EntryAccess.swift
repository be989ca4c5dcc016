import Storage

/// The steps every command that uses a secret takes, in an order that never
/// asks for a passphrase in vain: open the vault, check the names, unlock.
enum EntryAccess {
    /// For header, get, curl and run: also says what the expiry policy
    /// decides for each entry (a warning, or a refusal) before unlocking.
    static func unlockForUse(
        _ vaultOptions: VaultOptions, _ unlockOptions: UnlockOptions, names: [String], refuseExpired: Bool
    ) throws -> UnlockedVault {
        let vault = try vaultOptions.open()
        try checkBeforeUse(vault, names: names, refuseExpired: refuseExpired)
        return try unlockOptions.unlock(vault)
    }

    static func checkBeforeUse(_ vault: Vault, names: [String], refuseExpired: Bool) throws {
        let report = ExpiryReport(vault: vault)
        var seen = Set<String>()
        // One warning per entry, however many variables it fills.
        for name in names where seen.insert(name).inserted {
            try report.checkBeforeUse(vault.metadata(named: name), refuseExpired: refuseExpired)
        }
    }
}
