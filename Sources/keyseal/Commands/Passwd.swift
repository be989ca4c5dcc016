import ArgumentParser
import Sealing
import Storage

struct Passwd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd",
        abstract: "Change the vault's passphrase (entries are untouched).",
        discussion: """
            Unlocks with the current passphrase (or key file), then replaces the \
            passphrase slot in one transaction: afterwards the old passphrase \
            opens nothing in the vault. The vault as it was is first copied to \
            PATH.backups/ (the path is printed); the old passphrase opens that \
            copy, so delete it if the old passphrase leaked. The new passphrase comes from a terminal (asked \
            twice) or from --new-passphrase-fd N.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Option(name: .customLong("new-passphrase-fd"), help: ArgumentHelp("Read the new passphrase from this descriptor.", valueName: "n"))
    var newPassphraseFD: Int32?

    @Option(help: ArgumentHelp("Argon2id cost for the new slot: interactive, moderate, sensitive or calibrate.", valueName: "preset"))
    var kdf: SlotKDF = .preset(.moderate)

    @Option(name: .customLong("kdf-time"), help: ArgumentHelp(
        "With --kdf calibrate: how long an unlock should take on this machine, 100ms to 60s (default: 1s).",
        valueName: "duration"))
    var kdfTime: String?

    func run() throws {
        try Failure.report {
            let cost = try SlotCost.resolve(kdf: kdf, time: kdfTime)
            if let newPassphraseFD, newPassphraseFD == unlockOptions.passphraseFD {
                throw CLIError(.usage, "the old and the new passphrase need two descriptors")
            }
            let vault = try vaultOptions.open()
            let unlocked = try unlockOptions.unlockLocally(vault)
            let source: PassphraseSource = newPassphraseFD.map(PassphraseSource.fileDescriptor) ?? .terminal
            let first = try source.readNew(prompt: "New passphrase: ", repeatPrompt: "Repeat the new passphrase: ", command: "passwd")
            // Before the copy: a calibration that fails leaves nothing behind.
            let (parameters, description) = try cost.parameters()
            let saved = try vault.automaticBackup(reason: "before-passwd")
            do {
                try unlocked.changePassphrase(to: first, kdf: parameters)
            } catch {
                // The copy is made and kept (keyseal never deletes one): say where.
                Failure.show(error)
                Output.info("the passphrase was not changed; the copy of the vault taken before is kept at \(saved)")
                throw ExitCode(Failure.exitCode(for: error))
            }
            // A preset's name is what the user typed; calibrated costs are news.
            let chosen = if case .calibrate = cost { " (\(description))" } else { "" }
            Output.info("changed the passphrase of \(vault.path)\(chosen); the old one opens nothing in it")
            Output.info("the vault as it was, which the old passphrase still opens, is kept at \(saved); delete it if the old passphrase leaked")
        }
    }
}

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage key slots: a key file unlocks without a passphrase or a KDF.",
        subcommands: [KeyAdd.self, KeyList.self, KeyRemove.self])
}

struct KeyAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Create a new key file (32 random bytes, mode 0600) and a slot it unlocks.",
        discussion: "The file must not exist: keyseal never overwrites one. Use it with KEYSEAL_KEYFILE=PATH.")

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Option(help: ArgumentHelp("Where to create the key file.", valueName: "path"))
    var keyfile: String

    func run() throws {
        try Failure.report {
            if FileSystem.exists(keyfile) {
                throw CLIError(.exists, "\(keyfile) already exists; keyseal never overwrites a key file", hint: "choose a new path")
            }
            let vault = try vaultOptions.open()
            let unlocked = try unlockOptions.unlockLocally(vault)
            let key = try SecretBytes.random(count: Vault.keyFileLength)
            try KeyFile.create(keyfile, key: key)
            do {
                let slot = try unlocked.addKeyFileSlot(keyFile: key)
                Output.info("added key slot \(slot.id); unlock with KEYSEAL_KEYFILE=\(ShellQuote.quote(keyfile))")
            } catch {
                // The file would unlock nothing: do not leave it behind.
                FileSystem.remove(keyfile)
                throw error
            }
        }
    }
}

struct KeyList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List key slots (no passphrase needed).", aliases: ["ls"])

    @OptionGroup var vaultOptions: VaultOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try Failure.report {
            let slots = try vaultOptions.open().keySlots()
            if json {
                try Output.data(JSON.array(slots.map { slot in
                    .object([
                        ("id", .number(slot.id)),
                        ("method", .string(slot.method.rawValue)),
                        ("kdf_ops", slot.kdf.map { .number(Int64($0.opsLimit)) } ?? .null),
                        ("kdf_mem", slot.kdf.map { .number(Int64($0.memLimit)) } ?? .null),
                    ])
                }).rendered + "\n")
                return
            }
            let rows = [["SLOT", "METHOD", "COST"]] + slots.map { slot in
                [String(slot.id), slot.method.rawValue,
                 slot.kdf.map { "argon2id, \($0.opsLimit) passes, " + ($0.memLimit >= 1 << 20 ? "\($0.memLimit >> 20) MiB" : "\($0.memLimit >> 10) KiB") }
                    ?? "none (key file)"]
            }
            try Output.data(TextTable.render(rows))
        }
    }
}

struct KeyRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a key slot (never the last).", aliases: ["remove"])

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions
    @Argument(help: "The slot's number (keyseal key list).") var slot: Int64

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            guard try vault.keySlots().contains(where: { $0.id == slot }) else { throw StorageError.keySlotNotFound(id: slot) }
            let unlocked = try unlockOptions.unlock(vault)
            try unlocked.removeKeySlot(slot)
            Output.info("removed key slot \(slot)")
        }
    }
}
