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
        "Argon2id cost: interactive (64 MiB), moderate (256 MiB) or sensitive (1 GiB).",
        valueName: "preset"))
    var kdf: KDFPreset = .moderate

    func run() throws {
        try Failure.report {
            let path = try vaultOptions.path
            let parameters = try kdf.parameters()
            // Say so before asking for a passphrase twice.
            if FileSystem.exists(path) { throw StorageError.vaultExists(path: path) }
            let passphrase = try newPassphrase()
            _ = try Vault.create(at: path, passphrase: passphrase, kdf: parameters)
            Output.info("created a vault at \(path) (Argon2id \(kdf.rawValue))")
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
