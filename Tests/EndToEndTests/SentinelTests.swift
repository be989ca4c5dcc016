import Foundation
import Testing

@Suite("a stored secret leaks nowhere")
struct SentinelTests {
    @Test("the sentinel never reaches list output, any stderr, the vault file or its directory")
    func sentinelStaysSealed() async throws {
        let sentinel = "SENTINEL-e2e-7f3a9c"
        let sandbox = try Sandbox()
        let vault = sandbox.vault
        let wrongPassphrase = sandbox.root + "/wrong-passphrase"
        try sandbox.write("not the passphrase\n", to: wrongPassphrase, mode: 0o600)

        var runs: [RunResult] = []
        runs.append(try await sandbox.initVault())
        runs.append(try await sandbox.add("target", secret: sentinel, options: ["--kind", "pat", "--description", "holds the sentinel"]))
        runs.append(try await sandbox.add("other", secret: "other-value"))

        let list = try await sandbox.run(["list", "--vault", vault])
        let json = try await sandbox.run(["list", "--json", "--vault", vault])
        #expect(list.status == 0 && json.status == 0, "\(list)\n\(json)")
        runs += [list, json]
        runs.append(try await sandbox.add("another", secret: "another-value"))
        runs.append(try await sandbox.run(["get", "no-such-entry", "--vault", vault]))
        runs.append(try await sandbox.run(["rm", "--yes", "other", "--vault", vault]))
        runs.append(try await sandbox.run(["init", "--kdf", "insecure-testing", "--vault", vault]))
        runs.append(try await sandbox.run(["get", "target", "--vault", vault],
                                          env: ["KEYSEAL_PASSPHRASE_FILE": wrongPassphrase]))
        runs.append(try await sandbox.run(["rm", "--yes", "target", "--vault", vault],
                                          env: ["KEYSEAL_PASSPHRASE_FILE": wrongPassphrase]))
        runs.append(try await sandbox.run(["add", "target", "--vault", vault], stdin: sentinel + "\n"))
        runs.append(try await sandbox.run(["get", "target", "--vault", vault], env: ["KEYSEAL_PASSPHRASE_FILE": nil]))
        #expect(runs.map(\.status) == [0, 0, 0, 0, 0, 0, 66, 0, 73, 77, 77, 73, 77], "\(runs)")

        for run in runs {
            #expect(!run.stderr.contains(sentinel), "stderr holds the secret: \(run)")
        }
        #expect(!list.stdout.contains(sentinel), "\(list)")
        #expect(!json.stdout.contains(sentinel), "\(json)")

        // Neither the secret nor the passphrase is anywhere on disk in the clear.
        let files = try sandbox.snapshot(sandbox.work)
        #expect(files.keys.sorted() == ["vault.db"], "stray files: \(files.keys.sorted())")
        for (name, bytes) in files {
            #expect(!bytes.contains(sentinel), "\(name) holds the secret")
            #expect(!bytes.contains(sandbox.passphrase), "\(name) holds the passphrase")
        }

        // The sentinel is really in there: the checks above could have failed.
        let got = try await sandbox.run(["get", "-n", "target", "--vault", vault])
        #expect(got.status == 0 && got.out == sentinel, "\(got)")
        #expect(!got.stderr.contains(sentinel), "\(got)")
    }
}
