import ArgumentParser
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command with secrets in its environment, and only in its.",
        discussion: """
            Each --env VAR=NAME puts entry NAME's secret in the variable VAR of \
            the command, which replaces keyseal (its exit status is the \
            command's; 127 when it is not found, 126 when it cannot run). \
            KEYSEAL_PASSPHRASE_FILE is not passed on. Example:
              keyseal run --env GITLAB_TOKEN=gitlab -- ./deploy.sh
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Option(name: .customLong("env"), help: ArgumentHelp("VAR=NAME: put entry NAME's secret in variable VAR.", valueName: "var=name"))
    var mappings: [String] = []

    @OptionGroup var expiryOptions: ExpiryUseOptions

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after --.", valueName: "command"))
    var command: [String] = []

    /// Unlock material a child did not ask for.
    static let withheld: Set<String> = ["KEYSEAL_PASSPHRASE_FILE", "KEYSEAL_KEYFILE", "KEYSEAL_ASKPASS"]

    func run() throws {
        try Failure.report {
            let pairs = try parsedMappings()
            guard let program = command.first else {
                throw CLIError(.usage, "no command to run", hint: "for example: keyseal run --env TOKEN=\(pairs[0].entry) -- ./script.sh")
            }
            let path: String
            switch Launcher.find(program) {
            case let .found(found): path = found
            case let .notExecutable(found): throw CLIError(.cannotExecute, "\(found) is not executable")
            case .notFound: throw CLIError(.commandNotFound, "command not found: \(program)")
            }
            let unlocked = try EntryAccess.unlockForUse(vaultOptions, unlockOptions, names: pairs.map(\.entry),
                                                        refuseExpired: expiryOptions.refuseExpired)
            let environment = try secretEnvironment(pairs, from: unlocked)
            let status = Launcher.exec(
                path, arguments: command,
                environment: Launcher.environment(dropping: Self.withheld.union(pairs.map(\.variable))),
                secretEnvironment: environment)
            throw CLIError(status == ENOENT ? .commandNotFound : .cannotExecute,
                           "cannot run \(program): \(String(cString: strerror(status)))")
        }
    }

    private func parsedMappings() throws -> [(variable: String, entry: String)] {
        guard !mappings.isEmpty else {
            throw CLIError(.usage, "no --env VAR=NAME given", hint: "for example: keyseal run --env TOKEN=immuta -- ./script.sh")
        }
        var seen = Set<String>()
        return try mappings.map { mapping in
            guard let equals = mapping.firstIndex(of: "=") else {
                throw CLIError(.usage, "--env \(mapping.debugDescription) is not VAR=NAME", hint: "for example --env TOKEN=immuta")
            }
            let variable = String(mapping[..<equals])
            let entry = String(mapping[mapping.index(after: equals)...])
            guard Self.isVariableName(variable) else {
                throw CLIError(.usage, "\(variable.debugDescription) is not an environment variable name",
                               hint: "use letters, digits and _, not starting with a digit")
            }
            guard seen.insert(variable).inserted else {
                throw CLIError(.usage, "--env sets \(variable) twice")
            }
            try EntryName.validate(entry)
            return (variable, entry)
        }
    }

    /// "VAR=secret\0" for each pair, in one guarded buffer.
    private func secretEnvironment(_ pairs: [(variable: String, entry: String)], from vault: UnlockedVault) throws -> SecretBytes {
        let capacity = pairs.reduce(0) { $0 + $1.variable.utf8.count + 2 + Vault.maxSecretLength }
        var builder = try SecretBuilder(capacity: capacity)
        for pair in pairs {
            let sealed = try vault.vault.sealedEntry(named: pair.entry)
            let entry = try vault.open(sealed)
            // A bearer entry's variable holds a token, like its header.
            try EntryValue.use(entry, read: sealed, in: vault) { secret, _ in
                if secret.containsAny(of: [0]) {
                    throw CLIError(.data, "entry \(pair.entry.debugDescription) holds a NUL byte, which no environment can carry")
                }
                builder.append(pair.variable + "=")
                builder.append(secret, escaping: .none)
                builder.append("\0")
            }
        }
        return try builder.finish()
    }

    static func isVariableName(_ text: String) -> Bool {
        guard let first = text.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return text.utf8.allSatisfy { byte in
            byte == UInt8(ascii: "_") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
        }
    }
}
