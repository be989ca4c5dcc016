import ArgumentParser
import Storage

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a verified copy of the vault, still sealed, to a file.",
        discussion: """
            The copy is one committed state of the vault, taken with SQLite's \
            backup API while other keyseal processes may be writing. It is \
            written under a temporary name (mode 0600) in the same directory, \
            synced, opened, every value in it verified, and only then renamed \
            to PATH: an interrupted backup leaves the previous file or none. \
            The copy opens with the same passphrase and key files. PATH may be \
            a directory (the copy is named by the time) or an older backup of \
            this vault; any other existing file is refused. Prints the path.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: ArgumentHelp("Where to write the copy: a file, or a directory.", valueName: "path"))
    var path: String

    func run() throws {
        try Failure.report {
            if path.hasSuffix("/"), !FileSystem.isDirectory(path) {
                throw CLIError(.notFound, "no directory \(path)", hint: "create it first, or name a file")
            }
            let vault = try vaultOptions.open()
            let destination = FileSystem.isDirectory(path)
                ? "\(path.hasSuffix("/") ? String(path.dropLast()) : path)/\(Self.stem(of: vault.path))-\(Vault.utcStamp(Vault.currentTime())).db"
                : path
            let unlocked = try unlockOptions.unlock(vault)
            let report = try unlocked.backup(to: destination)
            Output.info("backed up \(VerifySummary.counts(report)) to \(destination); every value in the copy opened")
            try Output.data(destination + "\n")
        }
    }

    /// vault.db -> vault
    static func stem(of path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? "vault"
        return base.hasSuffix(".db") ? String(base.dropLast(3)) : base
    }
}

enum VerifySummary {
    static func counts(_ report: VerifyReport) -> String {
        "\(plural(report.entries, "entry", "entries")), \(plural(report.previousValues, "previous value", "previous values")), "
            + plural(report.keptTokens, "kept token", "kept tokens")
    }

    static func plural(_ count: Int, _ one: String, _ many: String) -> String {
        "\(count) \(count == 1 ? one : many)"
    }
}
