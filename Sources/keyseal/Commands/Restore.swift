import ArgumentParser
import Storage

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Replace the vault's contents with a backup, after verifying it.",
        discussion: """
            Unlocks the backup (its passphrase or key file, or an agent \
            unlocked for it), opens every value in it, and only then copies \
            the current vault to PATH.backups/ (the path is printed) and \
            replaces the vault's contents through SQLite's backup API, in one \
            transaction: the vault file is never removed or renamed, so \
            another keyseal that has it open sees the old entries or the new. \
            The backup file itself is not changed. With no vault at the \
            target, the backup is copied there.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: ArgumentHelp("The backup to restore (a file written by keyseal backup, or any copy of a vault).", valueName: "backup"))
    var backup: String

    func run() throws {
        try Failure.report {
            let target = try vaultOptions.path
            if FileSystem.exists(target), FileSystem.sameFile(target, backup) {
                throw CLIError(.usage, "\(backup) is the vault itself", hint: "name a backup file")
            }
            // The backup is read through a private copy, so it stays as it was.
            let copy: Vault
            do {
                copy = try Vault.openPrivateCopy(of: backup, beside: target)
            } catch StorageError.vaultNotFound {
                throw CLIError(.notFound, "no backup at \(backup)", hint: "name the file keyseal backup wrote; automatic backups are in \(Vault.automaticBackupDirectory(for: target))")
            } catch StorageError.notAVault {
                throw CLIError(.data, "\(backup) is not a keyseal vault or backup", hint: "name the file keyseal backup wrote")
            }
            defer { Vault.discardPrivateCopy(copy.path) }
            let unlocked = try unlockOptions.unlock(copy, describedAs: "the backup \(backup)")
            // Said as soon as the copy exists: a restore that fails after it
            // must not leave it unmentioned.
            let (report, _) = try Vault.restore(at: target, from: unlocked) { Output.info("the vault as it was is kept at \($0)") }
            Output.info("restored \(VerifySummary.counts(report)) from \(backup) into \(target); every value opened")
        }
    }
}
