import ArgumentParser
import Storage

struct Rename: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rename",
        abstract: "Rename an entry (its secret is sealed again under the new name).",
        aliases: ["mv"])

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The entry's current name.")
    var name: String

    @Argument(help: "Its new name.")
    var newName: String

    func run() throws {
        try Failure.report {
            try EntryName.validate(newName)
            let vault = try vaultOptions.open()
            let current = try vault.metadata(named: name)
            if (try? vault.metadata(named: newName)) != nil { throw StorageError.entryExists(name: newName) }
            let unlocked = try unlockOptions.unlock(vault)
            // Only the entry as read above: one edited or replaced while the
            // passphrase was asked for is left alone (exit 75).
            do {
                try unlocked.rename(name, to: newName, ifUnchangedSince: current)
            } catch { throw CLIError.conflict(error, command: "rename") }
            Output.info("renamed \(name.debugDescription) to \(newName.debugDescription)")
        }
    }
}
