import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("unlock once: the agent serves, lock and the idle timeout end it")
struct AgentUnlockTests {
    static let hint = "keyseal: hint: run keyseal unlock first, or give --passphrase-fd N, KEYSEAL_PASSPHRASE_FILE (a file of mode 0600), KEYSEAL_KEYFILE or KEYSEAL_ASKPASS\n"

    @Test("unlock, then 100 header calls with no passphrase source; lock; then header fails with 77 and a hint to unlock")
    func unlockServeLock() async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("agent-100")
        var runs: [RunResult] = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret))

        let unlocked = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault])
        runs.append(unlocked)
        #expect(unlocked.status == 0, "\(unlocked)")
        #expect(unlocked.stdout.isEmpty, "\(unlocked)")
        let state = try await sandbox.status()
        #expect(state.run.status == 0, "\(state)")
        #expect(state.unlocked, "\(state)")
        #expect(state.vault == sandbox.vault, "\(state)")
        let pid = try #require(state.pid, "\(state)")
        let left = try #require(state.secondsLeft, "\(state)")
        // The default: 15 minutes.
        #expect(left > 890 && left <= 900, "\(state)")
        #expect(unlocked.err == "keyseal: unlocked \(sandbox.vault) for 15m without use (agent pid \(pid)); keyseal lock to end it\n",
                "\(unlocked)")
        #expect(!ProcessState.isGone(pid), "the agent \(pid) is not running")
        #expect(sandbox.agentPIDs() == [pid], "\(sandbox.agentPIDs())")
        #expect(sandbox.agentSockets().count == 1, "\(sandbox.agentSockets())")

        let text = try await sandbox.run(["status", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(text.status == 0, "\(text)")
        #expect(text.out.hasPrefix("unlocked: \(sandbox.vault), ") && text.out.hasSuffix(" left (agent pid \(pid))\n"), "\(text)")
        #expect(text.stderr.isEmpty, "\(text)")

        var failures: [RunResult] = []
        for _ in 0..<100 {
            let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
            runs.append(header)
            if header.status != 0 || header.out != "Authorization: Bearer \(secret)\n" || !header.stderr.isEmpty {
                failures.append(header)
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of 100 header calls failed; first: \(failures.first.map(String.init(describing:)) ?? "")")
        // Still the same one agent.
        #expect(sandbox.agentPIDs() == [pid], "\(sandbox.agentPIDs())")

        let again = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault])
        #expect(again.status == 0, "\(again)")
        #expect(again.stdout.isEmpty, "\(again)")
        #expect(again.err.hasPrefix("keyseal: already unlocked: \(sandbox.vault), "), "\(again)")
        #expect(again.err.hasSuffix(" left (agent pid \(pid)); keyseal lock to end it\n"), "\(again)")
        #expect(sandbox.agentPIDs() == [pid], "a second agent started: \(sandbox.agentPIDs())")
        #expect(try await sandbox.status().pid == pid)

        let locked = try await sandbox.run(["lock", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(locked.status == 0, "\(locked)")
        #expect(locked.stdout.isEmpty, "\(locked)")
        #expect(locked.err == "keyseal: locked \(sandbox.vault)\n", "\(locked)")
        #expect(await ProcessState.waitGone(pid, within: 2), "the agent \(pid) still runs 2 s after lock")
        #expect(sandbox.agentSockets().isEmpty, "the socket is left: \(sandbox.agentSockets())")

        let refused = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(refused.status == 77, "\(refused)")
        #expect(refused.stdout.isEmpty, "\(refused)")
        #expect(refused.err == "keyseal: error: no terminal to ask for the passphrase\n" + Self.hint, "\(refused)")

        let after = try await sandbox.status()
        #expect(after.run.status == 1, "\(after)")
        #expect(!after.unlocked && after.pid == nil && after.secondsLeft == nil, "\(after)")
        let textAfter = try await sandbox.run(["status", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(textAfter.status == 1, "\(textAfter)")
        #expect(textAfter.out == "locked: \(sandbox.vault)\n", "\(textAfter)")
        #expect(textAfter.stderr.isEmpty, "\(textAfter)")
        try sandbox.expectSealed(secret, runs: runs)
    }

    // The timer tests take their timings from the kernel where they can:
    // the socket file's modification time is the agent's start, the
    // directory's after the socket is gone is its end. A loaded parallel run
    // can delay the test runner's own steps by seconds, so a run in which
    // the test could not keep up says so and starts over (up to 3 times)
    // rather than passing or failing on a guess.
    static let attempts = 5

    @Test("an idle timeout of 1 s ends the agent on time: process gone, socket removed, header refused with 77")
    func idleTimeoutExpires() async throws {
        for attempt in 1...Self.attempts {
            let sandbox = try Sandbox()
            try await sandbox.initVault()
            try await sandbox.add("svc", secret: "idle-value")
            let unlocked = try await sandbox.runDetached(["unlock", "--timeout", "1s", "--vault", sandbox.vault])
            try #require(unlocked.status == 0, "\(unlocked)")
            let pid = try #require(unlocked.reportedAgentPID, "\(unlocked)")
            #expect(unlocked.err == "keyseal: unlocked \(sandbox.vault) for 1s without use (agent pid \(pid)); keyseal lock to end it\n",
                    "\(unlocked)")
            let born = sandbox.socketBirth()

            try await Task.sleep(for: .milliseconds(2500))
            #expect(ProcessState.isGone(pid), "the agent \(pid) still runs 2.5 s into a 1 s timeout")
            #expect(kill(pid, 0) != 0 || ProcessState.isGone(pid))
            #expect(sandbox.agentSockets().isEmpty, "the socket is left: \(sandbox.agentSockets())")
            let refused = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
            #expect(refused.status == 77, "\(refused)")
            #expect(refused.err == "keyseal: error: no terminal to ask for the passphrase\n" + Self.hint, "\(refused)")
            let state = try await sandbox.status()
            #expect(state.run.status == 1 && !state.unlocked, "\(state)")
            // Its lifetime, as the kernel timed it: one second, give or take a tick.
            guard let born, let died = sandbox.agentDirectoryChanged() else {
                // The runner was too slow to see the socket before it went.
                continue
            }
            let lifetime = died.timeIntervalSince(born)
            #expect(lifetime >= 0.95 && lifetime < 1.45, "the agent lived \(lifetime) s with a 1 s timeout (attempt \(attempt))")
            return
        }
        Issue.record("the runner never saw the agent's socket before it went, in \(Self.attempts) attempts")
    }

    @Test("status calls do not extend the idle timer: asked every 500 ms, a 10 s agent ends 10 s after it started")
    func statusDoesNotExtend() async throws {
        for attempt in 1...Self.attempts {
            let sandbox = try Sandbox()
            try await sandbox.initVault()
            // 10 s: on a loaded runner a status call can take a second or
            // more, and two must be answered within the timeout.
            let unlocked = try await sandbox.runDetached(["unlock", "--timeout", "10s", "--vault", sandbox.vault])
            try #require(unlocked.status == 0, "\(unlocked)")
            let pid = try #require(unlocked.reportedAgentPID, "\(unlocked)")
            guard let born = sandbox.socketBirth() else { continue }
            var seen: [AgentState] = []
            let deadline = Date().addingTimeInterval(20)
            while !ProcessState.isGone(pid), Date() < deadline {
                let state = try await sandbox.status()
                if state.unlocked { seen.append(state) }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(await ProcessState.waitGone(pid, within: 1), "status every 500 ms kept a 10 s agent alive for 20 s")
            #expect(sandbox.agentSockets().isEmpty)
            for state in seen {
                #expect(state.run.status == 0 && state.pid == pid && (state.secondsLeft ?? 99) <= 9, "\(state)")
            }
            // Two answered status calls: the second came at least 500 ms
            // after the agent started, so had it extended the timer, the
            // agent would have lived 10.5 s or more.
            guard seen.count >= 2, let died = sandbox.agentDirectoryChanged() else { continue }
            let lifetime = died.timeIntervalSince(born)
            #expect(lifetime >= 9.95 && lifetime < 10.45,
                    "the agent lived \(lifetime) s with a 10 s timeout and \(seen.count) status calls (attempt \(attempt))")
            let after = try await sandbox.status()
            #expect(after.run.status == 1 && !after.unlocked, "\(after)")
            return
        }
        Issue.record("the runner was too slow, \(Self.attempts) times, to ask for status twice within a 10 s timeout")
    }

    @Test("uses extend the idle timer: header every 300 ms keeps a 3 s agent alive past 6 s; unused, it ends 3 s after the last")
    func usesExtend() async throws {
        // 3 s: on a loaded runner one header call can take well over a second.
        let timeout = 3.0
        attempts: for attempt in 1...Self.attempts {
            let sandbox = try Sandbox()
            try await sandbox.initVault()
            try await sandbox.add("svc", secret: "kept-alive")
            let start = Date()
            let unlocked = try await sandbox.runDetached(["unlock", "--timeout", "3s", "--vault", sandbox.vault])
            try #require(unlocked.status == 0, "\(unlocked)")
            let pid = try #require(unlocked.reportedAgentPID, "\(unlocked)")
            // A moment known to come before the last use (or the start).
            var lastUseAfter = start
            var calls = 0
            while lastUseAfter.timeIntervalSince(start) < 2 * timeout + 0.2 {
                let called = Date()
                let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
                let returned = Date()
                if header.status != 0 {
                    // Had uses extended the timer, the agent was alive when
                    // this call connected, unless the runner lagged.
                    if returned.timeIntervalSince(lastUseAfter) < timeout - 0.3 {
                        Issue.record("call \(calls + 1), \(returned.timeIntervalSince(start)) s after unlock and \(returned.timeIntervalSince(lastUseAfter)) s after the previous use began, found no agent: \(header)")
                        return
                    }
                    continue attempts
                }
                #expect(header.out == "Authorization: Bearer kept-alive\n" && header.stderr.isEmpty, "\(header)")
                lastUseAfter = called
                calls += 1
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(calls >= 3, "\(calls)")
            // Unused, it goes about 3 s after the last use began.
            #expect(await ProcessState.waitGone(pid, within: 5), "the agent \(pid) still runs 5 s after its last use")
            let died = try #require(sandbox.agentDirectoryChanged())
            #expect(died.timeIntervalSince(lastUseAfter) >= timeout - 0.05,
                    "the agent ended \(died.timeIntervalSince(lastUseAfter)) s after its last use began (attempt \(attempt))")
            #expect(sandbox.agentSockets().isEmpty, "\(sandbox.agentSockets())")
            return
        }
        Issue.record("the runner was too slow, \(Self.attempts) times, to call header within the 3 s timeout")
    }


    @Test("--timeout 0 and --timeout soon are refused with 64, and no agent starts", arguments: [
        ("0", "keyseal: error: an agent timeout of 0 would lock at once\nkeyseal: hint: for example --timeout 15m\n"),
        ("0m", "keyseal: error: an agent timeout of 0 would lock at once\nkeyseal: hint: for example --timeout 15m\n"),
        ("soon", "keyseal: error: \"soon\" is not a timeout\nkeyseal: hint: for example 15m, 2h or 1d\n"),
        ("-5s", nil),
    ])
    func badTimeouts(timeout: String, message: String?) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let result = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault, "--timeout=\(timeout)"])
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        if let message { #expect(result.err == message, "\(result)") }
        #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
        #expect(sandbox.agentPIDs().isEmpty, "an agent started: \(sandbox.agentPIDs())")
        #expect(sandbox.agentSockets().isEmpty, "\(sandbox.agentSockets())")
    }

    @Test("config set agent-timeout 5s is the timeout of a later unlock without --timeout")
    func configuredTimeout() async throws {
        for attempt in 1...Self.attempts {
            let sandbox = try Sandbox()
            try await sandbox.initVault()
            let set = try await sandbox.run(["config", "set", "agent-timeout", "5s", "--vault", sandbox.vault])
            #expect(set.status == 0, "\(set)")
            let unlocked = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault])
            try #require(unlocked.status == 0, "\(unlocked)")
            let pid = try #require(unlocked.reportedAgentPID, "\(unlocked)")
            #expect(unlocked.err == "keyseal: unlocked \(sandbox.vault) for 5s without use (agent pid \(pid)); keyseal lock to end it\n",
                    "\(unlocked)")
            let born = sandbox.socketBirth()
            let state = try await sandbox.status()
            if state.unlocked {
                #expect(state.pid == pid, "\(state)")
                let left = try #require(state.secondsLeft, "\(state)")
                #expect(left >= 0 && left <= 5, "\(state)")
            }
            #expect(await ProcessState.waitGone(pid, within: 6.5), "the agent \(pid) outlived its 5 s timeout")
            guard let born, let died = sandbox.agentDirectoryChanged() else { continue }
            let lifetime = died.timeIntervalSince(born)
            #expect(lifetime >= 4.95 && lifetime < 5.45, "the agent lived \(lifetime) s with agent-timeout 5s (attempt \(attempt))")
            return
        }
        Issue.record("the runner never saw the agent's socket before it went, in \(Self.attempts) attempts")
    }


    @Test("lock with no agent exits 0 and says the vault was not unlocked")
    func lockWithoutAgent() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let result = try await sandbox.run(["lock", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err == "keyseal: \(sandbox.vault) was not unlocked\n", "\(result)")
    }

    @Test("--no-agent ignores a running agent: header without a passphrase source fails with 77")
    func noAgentFlag() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "no-agent-value")
        let pid = try await sandbox.unlockAgent()
        let viaAgent = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(viaAgent.status == 0 && viaAgent.out == "Authorization: Bearer no-agent-value\n", "\(viaAgent)")

        let ignored = try await sandbox.run(["header", "svc", "--no-agent", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(ignored.status == 77, "\(ignored)")
        #expect(ignored.stdout.isEmpty, "\(ignored)")
        #expect(ignored.err == "keyseal: error: no terminal to ask for the passphrase\n" + Self.hint, "\(ignored)")

        // With a passphrase it still works, locally; the agent is untouched.
        let local = try await sandbox.run(["header", "svc", "--no-agent", "--vault", sandbox.vault])
        #expect(local.status == 0 && local.out == "Authorization: Bearer no-agent-value\n", "\(local)")
        #expect(try await sandbox.status().pid == pid)
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2))
    }
}
