import ArgumentParser
import Sealing
import Storage

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Print an entry's raw secret, for scripts.")

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The entry's name.")
    var name: String

    @Flag(help: "Print even when stdout is a terminal, where anyone looking can read it.")
    var force = false

    @Flag(name: [.short, .customLong("no-newline")], help: "Do not end the output with a newline.")
    var noNewline = false

    @OptionGroup var expiryOptions: ExpiryUseOptions

    @Flag(help: "Print the value the last rotation replaced.")
    var previous = false

    @Option(name: .customLong("previous-version"), help: ArgumentHelp("Print this previous version (see keyseal show).", valueName: "n"))
    var version: Int64?

    func run() throws {
        try Failure.report {
            if Output.isTerminal(1) && !force {
                throw CLIError(.usage, "refusing to print a secret to a terminal",
                               hint: "pipe it to the program that needs it, or add --force")
            }
            let vault = try vaultOptions.open()
            // An unknown name, or a refused expired entry, fails before any prompt.
            try EntryAccess.checkBeforeUse(vault, names: [name], refuseExpired: expiryOptions.refuseExpired)
            let unlocked = try unlockOptions.unlock(vault)
            if previous || version != nil {
                try Output.secret(unlocked.openPrevious(name, version: version))
            } else {
                let entry = try unlocked.open(name)
                try Output.secret(entry.secret)
            }
            if !noNewline { try Output.data("\n") }
        }
    }
}
