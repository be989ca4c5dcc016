import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("the agent's memory: opened secrets are wiped, nothing outlives lock or the timeout, nobody can dump it")
struct AgentMemoryTests {
    @Test("after 20 header calls, the live agent's memory holds no copy of the secret it opened each time")
    func openedSecretsAreWiped() async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("agent-memory")
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: secret)
        let pid = try await sandbox.unlockAgent()
        let vaultID = try #require(ProcessState.arguments(pid).firstIndex(of: "--vault-id").map { ProcessState.arguments(pid)[$0 + 1] })

        for call in 0..<20 {
            let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
            #expect(header.status == 0 && header.out == "Authorization: Bearer \(secret)\n", "call \(call): \(header)")
        }
        let needles: [[UInt8]] = [
            Array(secret.utf8),
            // Any part of it: the tagged prefix and the tail.
            Array("sentinel-agent-memory".utf8),
            Array("tok\"en\\$ x;\u{e9}".utf8),
            // Control: the vault id the agent holds (its argv, its state),
            // so the scan demonstrably reads the agent's memory.
            Array(vaultID.utf8),
        ]
        let scan = try await sandbox.scanMemory(of: pid, for: needles)
        #expect(scan.bytes > 1_000_000, "the scan read only \(scan.bytes) bytes")
        #expect(scan.counts[3] > 0, "the scan did not even find the vault id: \(scan)")
        #expect(scan.counts[0] == 0, "the live agent holds \(scan.counts[0]) copies of the opened secret")
        #expect(scan.counts[1] == 0 && scan.counts[2] == 0, "the live agent holds parts of the opened secret: \(scan)")

        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2), "the agent \(pid) still runs 2 s after lock")
        // Gone: there is no memory left to read.
        #expect(open("/proc/\(pid)/mem", O_RDONLY) < 0 || ProcessState.isGone(pid))
        #expect(sandbox.agentSockets().isEmpty)
    }

    @Test("after an idle timeout, the agent that opened the secret is gone with its memory")
    func timeoutLeavesNoMemory() async throws {
        // A loaded run may be too slow to use a 2 s agent in time: then again, up to 3 times.
        for _ in 1...3 {
            let sandbox = try Sandbox()
            let secret = Sentinel.make("agent-timeout-memory")
            try await sandbox.initVault()
            try await sandbox.add("svc", secret: secret)
            let start = Date()
            let pid = try await sandbox.unlockAgent(["--timeout", "2s"])
            let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
            if header.status != 0 && Date().timeIntervalSince(start) > 1.7 { continue }
            #expect(header.status == 0 && header.out == "Authorization: Bearer \(secret)\n", "\(header)")
            #expect(await ProcessState.waitGone(pid, within: 3.5), "the agent \(pid) outlived its 2 s timeout")
            #expect(open("/proc/\(pid)/mem", O_RDONLY) < 0 || ProcessState.isGone(pid))
            #expect(sandbox.agentSockets().isEmpty)
            #expect(sandbox.agentPIDs().isEmpty)
            return
        }
        Issue.record("the runner was too slow, 3 times, to use a 2 s agent before it timed out")
    }

    @Test("started by an ordinary user, the agent is not dumpable: its /proc files belong to root, that user cannot read its memory or environment, and core files are off")
    func notDumpable() async throws {
        let sandbox = try Sandbox()
        // A corner of the sandbox for nobody, reachable through a 0711 root.
        try #require(chmod(sandbox.root, 0o711) == 0)
        let area = sandbox.root + "/nobody"
        let home = area + "/home", runtime = area + "/run", passphrase = area + "/passphrase"
        let vault = area + "/vault.db"
        for directory in [area, home, runtime] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            try #require(chmod(directory, 0o700) == 0 && chown(directory, Nobody.uid, Nobody.uid) == 0)
        }
        try sandbox.write("nobody's passphrase\n", to: passphrase, mode: 0o600)
        try #require(chown(passphrase, Nobody.uid, Nobody.uid) == 0)
        let env: [String: String?] = ["HOME": home, "XDG_RUNTIME_DIR": runtime, "KEYSEAL_PASSPHRASE_FILE": passphrase]

        let created = try await sandbox.runAsNobody(["init", "--kdf", "insecure-testing", "--vault", vault], env: env)
        try #require(created.status == 0, "\(created)")
        let added = try await sandbox.runAsNobody(["add", "svc", "--vault", vault], stdin: "nobody-value\n", env: env)
        try #require(added.status == 0, "\(added)")
        let unlocked = try await sandbox.runDetached(["unlock", "--vault", vault], env: env, asNobody: true)
        try #require(unlocked.status == 0, "\(unlocked)")
        var noSource = env
        noSource["KEYSEAL_PASSPHRASE_FILE"] = .some(nil)
        let status = try await sandbox.runAsNobody(["status", "--json", "--vault", vault], env: noSource)
        let json = try Sandbox.json(status)
        let pid = try #require((json["pid"] as? NSNumber).map { Int32($0.intValue) }, "\(status)")

        // It runs as nobody...
        let procStatus = String(decoding: ProcSampler.read("/proc/\(pid)/status") ?? Data(), as: UTF8.self)
        #expect(procStatus.contains("\nUid:\t65534\t65534\t65534\t65534\n"), "\(procStatus)")
        // ...yet the files of its /proc directory belong to root: the
        // kernel's sign that it is not dumpable (PR_SET_DUMPABLE 0).
        for file in ["mem", "environ", "maps", "status", "auxv", "fd"] {
            var info = stat()
            #expect(stat("/proc/\(pid)/\(file)", &info) == 0 && info.st_uid == 0 && info.st_gid == 0,
                    "/proc/\(pid)/\(file) belongs to uid \(info.st_uid): the agent is dumpable")
        }
        let limits = String(decoding: ProcSampler.read("/proc/\(pid)/limits") ?? Data(), as: UTF8.self)
        let core = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") }.map(String.init) ?? ""
        #expect(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"],
                "core files are not off: \(core)")

        // Its own user cannot read its memory or environment; the same
        // python3 reads its own (a dumpable process of that user) fine.
        let probe = """
            import json, os, sys
            def attempt(path):
                try:
                    with open(path, "rb") as f:
                        f.read(1)
                    return "read"
                except OSError as e:
                    return type(e).__name__
            pid = sys.argv[1]
            print(json.dumps({"mem": attempt(f"/proc/{pid}/mem"), "environ": attempt(f"/proc/{pid}/environ"),
                              "own_environ": attempt("/proc/self/environ"), "own_owner": os.stat("/proc/self/mem").st_uid}))
            """
        let probed = try Sandbox.json(try await sandbox.python3(probe, [String(pid)], asNobody: true))
        #expect(probed["mem"] as? String == "PermissionError", "\(probed)")
        #expect(probed["environ"] as? String == "PermissionError", "\(probed)")
        #expect(probed["own_environ"] as? String == "read", "\(probed)")
        #expect((probed["own_owner"] as? NSNumber)?.uint32Value == Nobody.uid, "\(probed)")

        // And it serves its user.
        let header = try await sandbox.runAsNobody(["header", "svc", "--vault", vault], env: noSource)
        #expect(header.status == 0 && header.out == "Authorization: Bearer nobody-value\n", "\(header)")
        let locked = try await sandbox.runAsNobody(["lock", "--vault", vault], env: noSource)
        #expect(locked.status == 0, "\(locked)")
        #expect(await ProcessState.waitGone(pid, within: 2))
    }
}
