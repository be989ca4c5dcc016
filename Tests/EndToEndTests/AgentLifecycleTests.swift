import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("the agent's life: detached, one per vault, ended by signals, replaced when stale or of another version")
struct AgentLifecycleTests {
    @Test("the agent keeps none of the descriptors keyseal unlock inherited: a pipe its caller passed down reaches end of file when unlock exits")
    func agentDropsInheritedDescriptors() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        // Like a build tool's jobserver pipe, or Foundation's Process, which
        // waits for such a socket to close: a caller handing keyseal unlock a
        // descriptor must see it closed once unlock exits.
        let probe = """
            import json, os, select, subprocess, sys
            keyseal, vault = sys.argv[1:3]
            r, low = os.pipe()
            # Above the descriptors unlock hands the agent on purpose (3 and 4).
            w = os.dup2(low, 40, inheritable=False)
            os.close(low)
            done = subprocess.run([keyseal, "unlock", "--vault", vault], pass_fds=(w,), capture_output=True)
            os.close(w)
            ready, _, _ = select.select([r], [], [], 2)
            eof = bool(ready) and os.read(r, 1) == b""
            print(json.dumps({"status": done.returncode, "err": done.stderr.decode(), "eof": eof}))
            """
        let result = try await sandbox.python3(probe, [sandbox.keyseal, sandbox.vault])
        let reply = try Sandbox.json(result)
        #expect(reply["status"] as? Int == 0, "\(reply)")
        let pid = try #require(try await sandbox.status().pid)
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        let targets = descriptors.sorted { Int($0) ?? 0 < Int($1) ?? 0 }.map { fd in
            "\(fd) -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? "?")
        }
        #expect(reply["eof"] as? Bool == true,
                "the agent \(pid) holds the caller's pipe open after unlock exited; its descriptors: \(targets)")
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2))
    }

    @Test("SIGTERM ends the agent: it exits and removes its socket")
    func sigtermEnds() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let pid = try await sandbox.unlockAgent()
        #expect(sandbox.agentSockets().count == 1)
        let mask = Self.signalLines(pid)
        #expect(kill(pid, SIGTERM) == 0)
        #expect(await ProcessState.waitGone(pid, within: 2), "the agent \(pid) ignored SIGTERM: \(mask)")
        #expect(sandbox.agentSockets().isEmpty, "\(sandbox.agentSockets())")
        let state = try await sandbox.status()
        #expect(state.run.status == 1 && !state.unlocked, "\(state)")
    }

    @Test("SIGTERM ends the agent even when keyseal unlock ran with SIGTERM, SIGINT and SIGHUP blocked (as from a Dispatch thread)")
    func sigtermEndsDespiteInheritedMask() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let blocked = """
            import signal, subprocess, sys
            signal.pthread_sigmask(signal.SIG_SETMASK, [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
            sys.exit(subprocess.call(sys.argv[1:]))
            """
        let unlocked = try await sandbox.python3(blocked, [sandbox.keyseal, "unlock", "--vault", sandbox.vault])
        #expect(unlocked.status == 0, "\(unlocked)")
        let pid = try #require(try await sandbox.status().pid)
        let mask = Self.signalLines(pid)
        #expect(kill(pid, SIGTERM) == 0)
        #expect(await ProcessState.waitGone(pid, within: 2), "the agent \(pid) ignored SIGTERM: \(mask)")
        #expect(sandbox.agentSockets().isEmpty, "\(sandbox.agentSockets())")
        if !ProcessState.isGone(pid) { try await sandbox.lockAgent() }
    }

    /// The signal lines of /proc/PID/status, for messages.
    static func signalLines(_ pid: Int32) -> String {
        String(decoding: ProcSampler.read("/proc/\(pid)/status") ?? Data(), as: UTF8.self)
            .split(separator: "\n").filter { $0.hasPrefix("Sig") }.joined(separator: ", ")
    }

    @Test("an agent killed with SIGKILL leaves a dead socket: status says locked, header asks for a passphrase, unlock replaces it")
    func staleSocketReplaced() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "stale-value")
        let pid = try await sandbox.unlockAgent()
        #expect(kill(pid, SIGKILL) == 0)
        #expect(await ProcessState.waitGone(pid, within: 2))
        #expect(sandbox.agentSockets().count == 1, "SIGKILL cannot clean up; the socket should be left: \(sandbox.agentSockets())")

        let state = try await sandbox.status()
        #expect(state.run.status == 1 && !state.unlocked, "\(state)")
        let refused = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(refused.status == 77, "\(refused)")
        let locked = try await sandbox.run(["lock", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(locked.status == 0 && locked.err == "keyseal: \(sandbox.vault) was not unlocked\n", "\(locked)")

        let second = try await sandbox.unlockAgent()
        #expect(second != pid)
        let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(header.status == 0 && header.out == "Authorization: Bearer stale-value\n", "\(header)")
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(second, within: 2))
        #expect(sandbox.agentSockets().isEmpty)
    }

    @Test("one agent per vault: two vaults unlocked at once, each served by its own; locking one leaves the other")
    func oneAgentPerVault() async throws {
        let sandbox = try Sandbox()
        let other = sandbox.work + "/other.db"
        try await sandbox.initVault()
        try await sandbox.initVault(other)
        try await sandbox.add("svc", secret: "first-value")
        try await sandbox.add("svc", secret: "second-value", vault: other)
        let first = try await sandbox.unlockAgent()
        let unlocked = try await sandbox.runDetached(["unlock", "--vault", other])
        #expect(unlocked.status == 0, "\(unlocked)")
        let second = try #require(try await sandbox.status(vault: other).pid)
        #expect(second != first)
        #expect(Set(sandbox.agentPIDs()) == [first, second], "\(sandbox.agentPIDs())")
        #expect(sandbox.agentSockets().count == 2, "\(sandbox.agentSockets())")

        let one = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        let two = try await sandbox.run(["header", "svc", "--vault", other], env: noPassphraseSource)
        #expect(one.status == 0 && one.out == "Authorization: Bearer first-value\n", "\(one)")
        #expect(two.status == 0 && two.out == "Authorization: Bearer second-value\n", "\(two)")

        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(first, within: 2))
        let still = try await sandbox.run(["header", "svc", "--vault", other], env: noPassphraseSource)
        #expect(still.status == 0 && still.out == "Authorization: Bearer second-value\n", "\(still)")
        let gone = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(gone.status == 77, "\(gone)")
        let locked = try await sandbox.run(["lock", "--vault", other], env: noPassphraseSource)
        #expect(locked.status == 0, "\(locked)")
        #expect(await ProcessState.waitGone(second, within: 2))
    }

    /// A stand-in for an older keyseal's agent: listens on the socket,
    /// answers every frame "unsupported version" in protocol version 1, and
    /// on SIGTERM removes its socket and exits (within 15 s anyway). Runs
    /// detached, with no inherited descriptor; prints its pid once listening.
    static let otherVersionAgent = """
        import os, signal, socket, sys, time
        path = sys.argv[1]
        r, w = os.pipe()
        child = os.fork()
        if child:
            os.close(w)
            os.read(r, 1)
            print(child)
            sys.exit(0)
        os.close(r)
        os.setsid()
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(8)
        for fd in range(3, 1024):
            if fd not in (w, listener.fileno()):
                try:
                    os.close(fd)
                except OSError:
                    pass
        def stop(*_):
            try:
                os.unlink(path)
            except OSError:
                pass
            os._exit(0)
        signal.signal(signal.SIGTERM, stop)
        os.write(w, b"r")
        os.close(w)
        listener.settimeout(1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                connection, _ = listener.accept()
            except socket.timeout:
                continue
            connection.settimeout(2)
            try:
                connection.recv(4096)
                connection.sendall(bytes([0, 0, 0, 2, 1, 3]))
            except OSError:
                pass
            connection.close()
        stop()
        """

    @Test("an agent of another protocol version is replaced: unlock ends it and starts its own")
    func otherVersionReplaced() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "version-value")
        // Learn the socket's name from a real agent, then put the stand-in there.
        let real = try await sandbox.unlockAgent()
        let socket = sandbox.agentDirectory + "/" + (try #require(sandbox.agentSockets().first))
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(real, within: 2))

        let started = try await sandbox.python3(Self.otherVersionAgent, [socket])
        let fake = try #require(Int32(started.out.trimmingCharacters(in: .whitespacesAndNewlines)), "\(started)")
        defer { if !ProcessState.isGone(fake) { kill(fake, SIGKILL) } }
        let answer = try Sandbox.json(try await sandbox.python3(AgentScripts.client, [socket, AgentScripts.hex(AgentScripts.hello)]))
        try #require(answer["received"] as? String == "000000020103", "the stand-in does not answer: \(answer)")

        // Not used, not trusted: status says locked, header asks for a passphrase.
        let state = try await sandbox.status()
        #expect(state.run.status == 1 && !state.unlocked, "\(state)")
        let refused = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(refused.status == 77, "\(refused)")

        let unlocked = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault])
        #expect(unlocked.status == 0, "\(unlocked)")
        #expect(await ProcessState.waitGone(fake, within: 2), "the agent of another version \(fake) still runs")
        let now = try await sandbox.status()
        let pid = try #require(now.pid, "\(now)")
        #expect(pid != fake)
        #expect(unlocked.err == "keyseal: unlocked \(sandbox.vault) for 15m without use (agent pid \(pid)); keyseal lock to end it\n",
                "\(unlocked)")
        let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(header.status == 0 && header.out == "Authorization: Bearer version-value\n", "\(header)")
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2))
    }
}
