// Leaks, over a whole working session rather than one command: every
// command that handles a secret runs once (or, under scripts/stress, round
// after round) while every process's cmdline and environ on the machine are
// sampled; then every stderr, every file the session left (vaults, backups,
// the sealed export, logs) and the agent are searched. Each secret is a
// sentinel with one shared tag, so one needle finds any of them.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("leaks over a whole session: argv, environ, stderr, files")
struct LeakStressTests {
    /// The tag every secret of this suite carries, and nothing else does.
    static let needle = "sentinel-leakscan-"

    @Test("a session of add, header, curl, get, git-credential, rotate, unlock and lock, passwd, backup, verify, restore, export and import leaks no secret")
    func session() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let sampler = ProcSampler(secret: Self.needle) { view in view.arguments.first?.hasSuffix("keyseal") == true }
        var runs: [RunResult] = []
        // Runs whose stdout is meant to hold a secret (header, get, git-credential get).
        var secretOutputs: [RunResult] = []
        func run(_ arguments: [String], stdin: String = "", env: [String: String?] = [:], printsSecret: Bool = false) async throws -> RunResult {
            let result = try await sandbox.run(arguments, stdin: stdin, env: env)
            #expect(result.status == 0, "\(result)")
            runs.append(result)
            if printsSecret { secretOutputs.append(result) }
            return result
        }
        let exportPassphrase = sandbox.root + "/export-passphrase"
        try sandbox.write("an export passphrase\n", to: exportPassphrase)
        let newPassphrase = sandbox.root + "/new-passphrase"
        try sandbox.write("the new passphrase\n", to: newPassphrase)

        runs.append(try await sandbox.initVault())
        let rounds = try await StressBudget.repeatRounds(bounded: 1) { round in
            let api = Sentinel.make("leakscan-api-\(round)")
            let pat = Sentinel.make("leakscan-pat-\(round)")
            let rotated = Sentinel.make("leakscan-rotated-\(round)")
            _ = try await run(["add", "api-\(round)", "--kind", "api-key", "--url", server.origin, "--vault", sandbox.vault], stdin: api + "\n")
            _ = try await run(["add", "git-\(round)", "--kind", "pat", "--url", "https://git.example/r\(round)", "--vault", sandbox.vault],
                              stdin: pat + "\n")
            _ = try await run(["header", "api-\(round)", "--vault", sandbox.vault], printsSecret: true)
            _ = try await run(["curl", "api-\(round)", "/leakscan", "--vault", sandbox.vault, "--", "-sS"], env: curlEnvironment)
            _ = try await run(["get", "git-\(round)", "--vault", sandbox.vault], printsSecret: true)
            _ = try await run(["git-credential", "get", "--vault", sandbox.vault],
                              stdin: "protocol=https\nhost=git.example\npath=r\(round)\n", printsSecret: true)
            _ = try await run(["rotate", "git-\(round)", "--vault", sandbox.vault], stdin: rotated + "\n")
            _ = try await run(["unlock", "--vault", sandbox.vault])
            _ = try await run(["header", "git-\(round)", "--vault", sandbox.vault], env: noPassphraseSource, printsSecret: true)
            _ = try await run(["lock", "--vault", sandbox.vault], env: noPassphraseSource)
            _ = try await run(["backup", sandbox.work + "/backup-\(round).db", "--vault", sandbox.vault], printsSecret: false)
            _ = try await run(["verify", "--vault", sandbox.work + "/backup-\(round).db"])
            _ = try await run(["restore", sandbox.work + "/backup-\(round).db", "--vault", sandbox.vault])
            let exported = try await sandbox.shell("exec \"$0\" \"$@\" --export-passphrase-fd 4 4<\"$EXPORT_PASSPHRASE\"",
                                                   ["export", "--to", sandbox.work + "/export-\(round).kse", "--kdf", "insecure-testing",
                                                    "--vault", sandbox.vault],
                                                   env: ["EXPORT_PASSPHRASE": exportPassphrase])
            #expect(exported.status == 0, "\(exported)")
            runs.append(exported)
            let other = sandbox.work + "/imported-\(round).db"
            runs.append(try await sandbox.initVault(other))
            let imported = try await sandbox.shell("exec \"$0\" \"$@\" --export-passphrase-fd 4 4<\"$EXPORT_PASSPHRASE\"",
                                                   ["import", sandbox.work + "/export-\(round).kse", "--apply", "--vault", other],
                                                   env: ["EXPORT_PASSPHRASE": exportPassphrase])
            #expect(imported.status == 0, "\(imported)")
            runs.append(imported)
        }
        // passwd last: the sandbox's passphrase file no longer opens the vault afterwards.
        let changed = try await sandbox.shell("exec \"$0\" \"$@\" --new-passphrase-fd 3 3<\"$NEWP\"",
                                              ["passwd", "--kdf", "insecure-testing", "--vault", sandbox.vault], env: ["NEWP": newPassphrase])
        #expect(changed.status == 0, "\(changed)")
        runs.append(changed)
        let report = sampler.stop()

        #expect(report.samples > 20, "too few samples: \(report.samples)")
        // The sampler saw keyseal processes, environment and all: it could have failed.
        #expect(!report.seen.isEmpty && report.seen.contains { $0.environ != nil }, "no keyseal process was sampled")
        #expect(report.cmdlineLeaks.isEmpty, "a secret in argv: \(report.cmdlineLeaks)")
        #expect(report.environLeaks.isEmpty, "a secret in an environment: \(report.environLeaks)")

        // No stderr ever holds a secret, nor any stdout but the ones meant to.
        for result in runs {
            #expect(!result.stderr.contains(Self.needle), "stderr holds a secret: \(result)")
            if !secretOutputs.contains(where: { $0.arguments == result.arguments && $0.stdout == result.stdout }) {
                #expect(!result.stdout.contains(Self.needle), "stdout holds a secret: \(result)")
            }
        }
        #expect(secretOutputs.allSatisfy { $0.stdout.contains(Self.needle) }, "the commands meant to print a secret did not: a broken needle?")
        // Every file the session left, vaults, backups, automatic backups and
        // the sealed exports included, holds the secrets only sealed. The
        // loopback server's request log is the peer's, not keyseal's.
        var scanned = 0
        let files = FileManager.default.enumerator(atPath: sandbox.root)
        while let relative = files?.nextObject() as? String {
            let path = sandbox.root + "/" + relative
            guard !relative.hasPrefix("server/"), !relative.hasPrefix("io/"), let bytes = sandbox.bytes(path) else { continue }
            scanned += 1
            #expect(!bytes.contains(Self.needle), "\(relative) holds a secret in the clear")
        }
        #expect(scanned >= 8, "only \(scanned) files scanned")
        print("leak scan: \(rounds) rounds, \(runs.count) commands, \(report.samples) /proc samples, \(scanned) files scanned, 0 hits")
    }
}
