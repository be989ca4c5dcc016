import ArgumentParser
import Sealing
#if canImport(Glibc)
import Glibc
#endif

extension String {
    var lowercasedFirst: String { prefix(1).lowercased() + dropFirst() }
}

@main
struct Keyseal: ParsableCommand {
    static let version = "0.1.0"

    // Every command names itself (commandName): argument-parser otherwise
    // derives each name by reflection at every start, about half of the
    // instructions `keyseal header` ran (valgrind, docs/PERFORMANCE.md).
    static let configuration = CommandConfiguration(
        commandName: "keyseal",
        abstract: "A sealed vault for API keys, bearer tokens and personal access tokens.",
        discussion: """
            Secrets are sealed with libsodium in one SQLite file, unlocked by a \
            master passphrase. Exit status: 0 success, 1 failure, 2 expired entry \
            refused (check: 1 expiring, 2 expired, 3 check failed), 64 bad usage or \
            input, 65 damaged or altered vault, 66 no such vault or entry, 69 curl \
            not found or a server unreachable, 73 already exists, 75 entry changed \
            meanwhile by another keyseal (edit, rename: nothing changed, run it again), \
            76 unexpected answer from a server, 77 cannot unlock or API key refused, 126 \
            command cannot run, 127 command not found; curl and run otherwise exit \
            with the status of the program they run. See keyseal(1).
            """,
        version: version,
        subcommands: [
            Init.self, Add.self, Header.self, Curl.self, Run.self, Login.self, Pat.self, Get.self, GitCredential.self, List.self, Show.self,
            Check.self, Calendar.self, Config.self,
            Edit.self, Rename.self, Rotate.self, Remove.self,
            Unlock.self, Lock.self, Status.self, Passwd.self, Backup.self, Restore.self, Verify.self, Export.self, Import.self, Key.self, AgentProcess.self, Completions.self,
        ]
    )

    static func main() {
        // Before anything can hold a secret: files we create are private, and
        // this process cannot be dumped or traced.
        umask(0o077)
        do {
            try ProcessHardening.apply()
        } catch {
            Output.error("\(error)", hint: "keyseal refuses to handle secrets in a process that can be dumped")
            Glibc.exit(Failure.exitCode(for: error))
        }
        do {
            // The hot path skips argument-parser; anything unusual still goes through it.
            if let request = HeaderFastPath.parse(argc: Int(CommandLine.argc), argv: CommandLine.unsafeArgv) {
                try request.run()
                return
            }
            // Over a file size limit (ulimit -f), a write fails with EFBIG
            // and is reported, rather than SIGXFSZ ending keyseal without a
            // word. A handler, not SIG_IGN: exec resets it, so curl and the
            // commands of run get the default back. (Not on the header path:
            // it adds a system call to every start, and header writes at
            // most a last-used time, which a rollback journal protects.)
            signal(SIGXFSZ) { _ in }
            var command = try parseAsRoot(List.expandExpiringShorthand(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch {
            // Help, --version and documented statuses keep argument-parser's
            // behaviour; a usage error is worded like every other error.
            let status = exitCode(for: error)
            if status == .success || error is ExitCode { exit(withError: error) }
            Output.error(message(for: error).lowercasedFirst, hint: "see \"keyseal help\" or \"keyseal help COMMAND\"")
            Glibc.exit(status.rawValue)
        }
    }
}
