import ArgumentParser
import Sealing
import Storage

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new vault, protected by a master passphrase.")

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Option(help: ArgumentHelp(
        "Argon2id cost: interactive (64 MiB), moderate (256 MiB), sensitive (1 GiB), or calibrate (256 MiB, passes measured so that an unlock here takes --kdf-time).",
        valueName: "preset"))
    var kdf: SlotKDF = .preset(.moderate)

    @Option(name: .customLong("kdf-time"), help: ArgumentHelp(
        "With --kdf calibrate: how long an unlock should take on this machine, 100ms to 60s (default: 1s).",
        valueName: "duration"))
    var kdfTime: String?

    func run() throws {
        try Failure.report {
            let path = try vaultOptions.path
            let cost = try SlotCost.resolve(kdf: kdf, time: kdfTime)
            // Say so before asking for a passphrase twice.
            if FileSystem.exists(path) { throw StorageError.vaultExists(path: path) }
            let passphrase = try newPassphrase()
            let (parameters, description) = try cost.parameters()
            _ = try Vault.create(at: path, passphrase: passphrase, kdf: parameters)
            Output.info("created a vault at \(path) (\(description))")
        }
    }

    /// On a terminal the passphrase is asked twice; from a descriptor or a
    /// file it is read once.
    private func newPassphrase() throws -> SecretBytes {
        try PassphraseSource.resolve(fd: unlockOptions.passphraseFD)
            .readNew(prompt: "New vault passphrase: ", repeatPrompt: "Repeat the passphrase: ", command: "init")
    }
}

enum KDFPreset: String, ExpressibleByArgument, CaseIterable {
    case interactive, moderate, sensitive
    /// libsodium's minimum, for test suites only: refused unless
    /// KEYSEAL_TEST_ALLOW_WEAK_KDF=1, and left out of help and completions.
    case insecureTesting = "insecure-testing"

    static let allValueStrings = ["interactive", "moderate", "sensitive"]

    func parameters() throws -> KDFParameters {
        switch self {
        case .interactive: return .interactive
        case .moderate: return .moderate
        case .sensitive: return .sensitive
        case .insecureTesting:
            guard Environment.value("KEYSEAL_TEST_ALLOW_WEAK_KDF") == "1" else {
                throw CLIError(.usage, "the insecure-testing preset is for test suites only",
                               hint: "choose interactive, moderate or sensitive")
            }
            return .insecureTesting
        }
    }
}
