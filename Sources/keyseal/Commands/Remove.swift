import ArgumentParser
import Storage

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove an entry for good (its pages are overwritten).",
        aliases: ["remove"])

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The entry's name.")
    var name: String

    @Flag(name: [.short, .long], help: "Do not ask for confirmation (for scripts).")
    var yes = false

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            _ = try vault.metadata(named: name)
            if !yes { try confirm() }
            let unlocked = try unlockOptions.unlock(vault)
            try unlocked.remove(name)
            Output.info("removed \(name.debugDescription)")
        }
    }

    private func confirm() throws {
        guard Output.isTerminal(0) else {
            throw CLIError(.usage, "refusing to remove \(name.debugDescription) without confirmation",
                           hint: "add --yes when running from a script")
        }
        Output.write(2, "Remove \(name.debugDescription) for good? [y/N] ")
        let answer = readLine(strippingNewline: true) ?? ""
        guard ["y", "yes"].contains(answer.lowercased()) else {
            throw CLIError(.failure, "nothing removed")
        }
    }
}
