import ArgumentParser
import Storage

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the vault file and open every sealed value in it.",
        discussion: """
            Runs SQLite's integrity and foreign-key checks, then opens every \
            entry's value, every previous value still kept, and every kept \
            token, and names each one that fails. To check a backup, name it \
            with --vault. Exit status: 0 intact; 65 the file or a value \
            failed; 66 no such vault; 77 cannot unlock. --file-only runs the \
            file checks alone and needs no passphrase (for cron).
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Flag(name: .customLong("file-only"), help: "Check the file's structure only; open no value, ask for no passphrase.")
    var fileOnly = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            let report: VerifyReport
            var problems: [String] = []
            if fileOnly {
                problems = try vault.integrityProblems()
                report = VerifyReport()
            } else {
                report = try unlockOptions.unlock(vault).verify()
                problems = report.integrityProblems
            }
            let intact = problems.isEmpty && report.failures.isEmpty
            if json {
                try Output.data(JSON.object([
                    ("vault", .string(vault.path)),
                    ("intact", .bool(intact)),
                    ("file_only", .bool(fileOnly)),
                    ("entries", .number(Int64(report.entries))),
                    ("previous_values", .number(Int64(report.previousValues))),
                    ("kept_tokens", .number(Int64(report.keptTokens))),
                    ("integrity_problems", .array(problems.map(JSON.string))),
                    ("failures", .array(report.failures.map { .object([("name", .string($0.name)), ("part", .string($0.part))]) })),
                ]).rendered + "\n")
            }
            for problem in problems { Output.error("the file fails SQLite's check: \(TextTable.printable(problem))") }
            for failure in report.failures {
                Output.error("entry \(TextTable.printable(failure.name.debugDescription)): its \(failure.part) does not open")
            }
            guard intact else {
                Output.hint("restore the vault from a backup (keyseal restore PATH); keyseal changed nothing")
                throw ExitCode(ExitStatus.data.rawValue)
            }
            if !json {
                let scope = fileOnly ? "the file passes SQLite's checks (no value was opened)" : "\(VerifySummary.counts(report)): every value opened"
                try Output.data("\(vault.path): intact; \(scope)\n")
            }
        }
    }
}
