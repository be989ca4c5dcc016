import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("no passphrase, key file or secret in any process's argv or environment while the agent works")
struct AgentProcLeakTests {
    @Test("unlock, header through the agent, key-file and askpass unlocks, passwd: nothing in /proc/*/cmdline or environ; the agent's argv is only socket, vault id and timeout")
    func nothingInProc() async throws {
        let sandbox = try Sandbox()
        let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let passphrase = "proc-passphrase-\(tag) with words"
        let newPassphrase = "proc-new-passphrase-\(tag) other words"
        let secret = Sentinel.make("agent-proc-\(tag)")
        let passphraseFile = sandbox.root + "/proc-passphrase"
        let newFile = sandbox.root + "/proc-new-passphrase"
        try sandbox.write(passphrase + "\n", to: passphraseFile)
        try sandbox.write(newPassphrase + "\n", to: newFile)
        let env: [String: String?] = ["KEYSEAL_PASSPHRASE_FILE": passphraseFile]
        try await sandbox.initVault(env: env)
        let added = try await sandbox.run(["add", "svc", "--vault", sandbox.vault], stdin: secret + "\n", env: env)
        try #require(added.status == 0, "\(added)")
        let keyFile = sandbox.root + "/proc.key"
        let keyAdded = try await sandbox.run(["key", "add", "--keyfile", keyFile, "--vault", sandbox.vault], env: env)
        try #require(keyAdded.status == 0, "\(keyAdded)")
        let key = try #require(sandbox.bytes(keyFile))
        // An askpass that lingers, so the sampler sees it.
        let askpass = sandbox.root + "/proc-askpass"
        try sandbox.write("#!/bin/sh\nsleep 0.4\necho '\(passphrase)'\n", to: askpass, mode: 0o700)

        let root = sandbox.root
        let sampler = SecretsSampler(needles: [
            ("the passphrase", Data(passphrase.utf8)),
            ("the new passphrase", Data(newPassphrase.utf8)),
            ("the secret", Data(secret.utf8)),
            ("the secret's tag", Data("agent-proc-\(tag)".utf8)),
            ("the key file", key),
            ("the key file in hex", Data(AgentScripts.hex(Array(key)).utf8)),
            ("the key file in base64", Data(key.base64EncodedString().utf8)),
        ]) { view in
            let arguments = view.arguments
            return (arguments.count > 1 && arguments[1] == "agent" && arguments.contains { $0.hasPrefix(root) })
                || arguments.contains(askpass)
        }

        var runs: [RunResult] = []
        let unlocked = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault], env: env)
        runs.append(unlocked)
        #expect(unlocked.status == 0, "\(unlocked)")
        for _ in 0..<20 {
            let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
            runs.append(header)
            #expect(header.status == 0 && header.out == "Authorization: Bearer \(secret)\n", "\(header)")
        }
        let viaKey = try await sandbox.run(["header", "svc", "--no-agent", "--vault", sandbox.vault],
                                           env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": keyFile])
        runs.append(viaKey)
        #expect(viaKey.status == 0 && viaKey.out == "Authorization: Bearer \(secret)\n", "\(viaKey)")
        let viaAskpass = try await sandbox.run(["header", "svc", "--no-agent", "--vault", sandbox.vault],
                                               env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_ASKPASS": askpass])
        runs.append(viaAskpass)
        #expect(viaAskpass.status == 0 && viaAskpass.out == "Authorization: Bearer \(secret)\n", "\(viaAskpass)")
        let changed = try await sandbox.shell(#"exec "$0" "$@" 3<"$KS_NEW""#,
                                              ["passwd", "--new-passphrase-fd", "3", "--kdf", "insecure-testing", "--vault", sandbox.vault],
                                              env: ["KEYSEAL_PASSPHRASE_FILE": passphraseFile, "KS_NEW": newFile])
        runs.append(changed)
        #expect(changed.status == 0, "\(changed)")
        let afterPasswd = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        runs.append(afterPasswd)
        #expect(afterPasswd.status == 0 && afterPasswd.out == "Authorization: Bearer \(secret)\n", "\(afterPasswd)")
        let state = try await sandbox.status()
        let sockets = sandbox.agentSockets()
        let report = sampler.stop()
        try await sandbox.lockAgent()

        #expect(report.samples > 5, "too few samples: \(report.samples)")
        #expect(report.leaks.isEmpty, "\(report.leaks)")

        // The agent was seen, environment and all, and its argv is only
        // the socket, the vault id and the timeout.
        let pid = try #require(state.pid, "\(state)")
        let agentViews = report.seen.filter { $0.pid == pid }
        #expect(!agentViews.isEmpty, "the agent was never seen in \(report.samples) samples")
        #expect(agentViews.contains { $0.environ != nil }, "the agent's environ was never readable")
        #expect(sockets.count == 1, "\(sockets)")
        let socket = sandbox.agentDirectory + "/" + (try #require(sockets.first))
        for view in agentViews {
            let arguments = view.arguments
            #expect(arguments.count == 8, "\(view)")
            guard arguments.count == 8 else { continue }
            #expect(arguments[0] == "keyseal" && arguments[1] == "agent", "\(view)")
            #expect(arguments[2] == "--socket" && arguments[3] == socket, "\(view)")
            #expect(arguments[4] == "--vault-id" && arguments[5].count == 32
                    && arguments[5].allSatisfy { "0123456789abcdef".contains($0) }, "\(view)")
            #expect(socket.hasSuffix("/agent-\(arguments[5]).sock"), "\(view)")
            #expect(arguments[6] == "--timeout" && arguments[7] == "900", "\(view)")
            let variables = (view.environ ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            #expect(!variables.contains { $0.hasPrefix("KEYSEAL_") }, "the agent inherited \(variables.filter { $0.hasPrefix("KEYSEAL_") })")
        }
        // The askpass program was seen, without the passphrase file.
        let askpassViews = report.seen.filter { $0.arguments.contains(askpass) }
        #expect(!askpassViews.isEmpty, "the askpass program was never seen in \(report.samples) samples")
        for view in askpassViews {
            #expect(view.arguments.last == "Passphrase for \(sandbox.vault): ", "\(view)")
            let variables = (view.environ ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            #expect(!variables.contains { $0.hasPrefix("KEYSEAL_PASSPHRASE_FILE=") || $0.hasPrefix("KEYSEAL_KEYFILE=") }, "\(view)")
        }
        for run in runs {
            #expect(!run.err.contains(passphrase) && !run.err.contains(newPassphrase), "\(run)")
        }
        try sandbox.expectSealed(secret, runs: runs)
    }
}
