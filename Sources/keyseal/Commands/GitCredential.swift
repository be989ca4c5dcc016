import ArgumentParser
import Policy
import Sealing
import Storage

struct GitCredential: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "git-credential",
        abstract: "Give git an entry's PAT, as a git credential helper.",
        discussion: """
            Set up with: git config --global credential.https://HOST.helper \
            '!keyseal git-credential'. get prints the username and password of \
            the entry whose URL is the longest prefix of the one git asks for \
            (same scheme, host and port; paths compare on / boundaries; set \
            credential.useHttpPath for entries with a path), or nothing when \
            none matches. Only https, or http to this machine, gets a \
            credential; bearer entries never do. store and erase change nothing \
            unless --allow-store: then store adds a pat entry git/HOST/PATH or \
            rotates the matching one, and erase removes the matching entry if \
            its secret is the password git sent. See keyseal(1).
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: ArgumentHelp("get, store or erase (git gives it; any other is ignored).", valueName: "operation"))
    var operation: String

    @Option(help: ArgumentHelp("The username to give git when it sends none (default: keyseal).", valueName: "name"))
    var username: String?

    @Flag(help: "Let store add or rotate entries and erase remove them (else both change nothing).")
    var allowStore = false

    @OptionGroup var expiryOptions: ExpiryUseOptions

    /// Forges that take a PAT as the password accept any non-empty username.
    static let defaultUsername = "keyseal"

    func run() throws {
        try Failure.report {
            if unlockOptions.passphraseFD == 0 {
                throw CLIError(.usage, "stdin carries git's request, so it cannot carry the passphrase",
                               hint: "give the passphrase on another descriptor, or run keyseal unlock first")
            }
            if let username, username.isEmpty || username.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw CLIError(.usage, "--username must be one line of text, not empty", hint: "for example --username oauth2")
            }
            // Read whatever the operation, so git's write never meets a closed pipe.
            let input = try GitCredentialInput.read()
            let helper = GitCredentialHelper(vaultOptions: vaultOptions, unlockOptions: unlockOptions,
                                             refuseExpired: expiryOptions.refuseExpired)
            switch operation {
            case "get":
                if Output.isTerminal(1) {
                    throw CLIError(.usage, "refusing to print a password to a terminal", hint: "git runs this helper itself; see keyseal help git-credential")
                }
                try helper.get(input, username: username ?? Self.defaultUsername)
            case "store" where allowStore:
                try helper.store(input)
            case "erase" where allowStore:
                try helper.erase(input)
            default:
                // store and erase without --allow-store, and operations a
                // later git may add: git expects silence and exit 0.
                break
            }
        }
    }
}
