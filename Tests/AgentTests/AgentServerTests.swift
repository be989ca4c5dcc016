import Foundation
import Testing
@testable import Agent
import Sealing
#if canImport(Glibc)
import Glibc
#endif

extension AgentTests {
    @Suite struct Serving {
        @Test func sealsOpensAndFingerprintsAsTheKeyItHolds() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            #expect(client.peerPID == getpid())
            let ad = Array("vault|entry|name".utf8)

            let sealedByAgent = try client.seal(secret("ghp_sentinel"), associatedData: ad)
            #expect(sealedByAgent.nonce.count == AEAD.nonceLength)
            #expect(text(try key.open(sealedByAgent, associatedData: ad)) == "ghp_sentinel")
            #expect(text(try client.open(sealedByAgent, associatedData: ad)) == "ghp_sentinel")

            let sealedHere = try key.seal(secret("token-2"), associatedData: ad)
            #expect(text(try client.open(sealedHere, associatedData: ad)) == "token-2")

            #expect(try client.fingerprint(secret("token-2")) == key.fingerprint(secret("token-2")))
            #expect(try client.fingerprint(secret("token-2")) != key.fingerprint(secret("token-3")))

            // Empty values and empty associated data cross the socket too.
            let empty = try client.seal(secret(""), associatedData: [])
            #expect(try key.open(empty, associatedData: []).count == 0)
            #expect(try client.open(empty, associatedData: []).count == 0)
            #expect(try client.fingerprint(secret("")) == key.fingerprint(secret("")))
            #expect(client.lastError == nil)
        }

        /// Requests sent together (an import's seal and fingerprint, its
        /// read-back checks in groups) are answered in order, a failure in
        /// the middle is that item's alone, and the connection stays in step.
        @Test func requestsSentTogetherAreAnsweredInOrder() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)

            let ad = Array("vault|entry|pipelined".utf8)
            let (box, fingerprint) = try client.sealWithFingerprint(secret("pat-sentinel-1"), associatedData: ad)
            #expect(text(try key.open(box, associatedData: ad)) == "pat-sentinel-1")
            #expect(fingerprint == (try key.fingerprint(secret("pat-sentinel-1"))))

            // 300 checks, more than one group's budget: every tenth is wrong
            // in one of the three ways a read-back can fail.
            var checks: [SealedCheck] = []
            var expected: [Bool] = []
            for index in 0..<300 {
                let value = "value-\(index)"
                let entryAD = Array("vault|entry|\(index)".utf8)
                let sealed = try key.seal(secret(value), associatedData: entryAD)
                let print = try key.fingerprint(secret(value))
                switch index % 30 {
                case 10: checks.append(SealedCheck(box: sealed, associatedData: entryAD, fingerprint: try key.fingerprint(secret("other"))))
                case 20: checks.append(SealedCheck(box: sealed, associatedData: Array("vault|entry|moved".utf8), fingerprint: print))
                case 29: checks.append(SealedCheck(box: SealedBox(nonce: [1, 2, 3], ciphertext: sealed.ciphertext), associatedData: entryAD, fingerprint: print))
                default: checks.append(SealedCheck(box: sealed, associatedData: entryAD, fingerprint: print))
                }
                expected.append(![10, 20, 29].contains(index % 30))
            }
            #expect(client.verifyAll(checks) == expected)
            // The same answers as a key in this process gives, item by item.
            #expect(key.verifyAll(checks) == expected)
            // Still in step: the next single request gets its own answer.
            #expect(text(try client.open(box, associatedData: ad)) == "pat-sentinel-1")
            #expect(client.verifyAll([]) == [])
        }

        /// Open verified (protocol 2): one round trip that opens a box and
        /// checks the value's fingerprint in the agent. A wrong fingerprint
        /// fails exactly like a box that does not open, and the connection
        /// stays usable.
        @Test func openVerifiedChecksTheFingerprintInTheAgent() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            let ad = Array("vault|entry|name".utf8)
            let box = try key.seal(secret("pat_sentinel"), associatedData: ad)
            let right = try key.fingerprint(secret("pat_sentinel"))

            #expect(text(try client.openVerified(box, associatedData: ad, fingerprint: right)) == "pat_sentinel")
            var wrong = right
            wrong[0] ^= 1
            #expect(throws: SealingError.authenticationFailed) {
                _ = try client.openVerified(box, associatedData: ad, fingerprint: wrong)
            }
            #expect(client.lastError == .authenticationFailed)
            #expect(throws: SealingError.authenticationFailed) {
                _ = try client.openVerified(box, associatedData: ad, fingerprint: Array(right.prefix(8)))
            }
            #expect(throws: SealingError.authenticationFailed) {
                _ = try client.openVerified(box, associatedData: ad + [0], fingerprint: right)
            }
            // The same answers as the key's own, step by step, gives.
            #expect(text(try key.openVerified(box, associatedData: ad, fingerprint: right)) == "pat_sentinel")
            #expect(throws: SealingError.authenticationFailed) {
                _ = try key.openVerified(box, associatedData: ad, fingerprint: wrong)
            }
            #expect(text(try client.openVerified(box, associatedData: ad, fingerprint: right)) == "pat_sentinel")
        }

        @Test func largestValueTheProtocolCarries() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            // The open request is the largest frame: 2 + (4 + 24) + (4 + n + 16) + (4 + 1).
            let largest = AgentProtocol.maxFrame - 55
            var value = try SecretBytes(count: largest)
            value.withUnsafeMutableBytes { for index in $0.indices { $0[index] = UInt8(index % 251) } }
            let box = try client.seal(value, associatedData: [1])
            #expect(try client.open(box, associatedData: [1]).constantTimeEquals(value))
            let tooLarge = try SecretBytes(count: largest + 1)
            #expect(throws: SealingError.self) { _ = try client.seal(tooLarge, associatedData: [1]) }
            // Refused before sending: the connection is still in step.
            #expect(try client.fingerprint(value) == key.fingerprint(value))
        }

        @Test func aTamperedBoxDoesNotOpen() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            let ad = Array("ad".utf8)
            let box = try client.seal(secret("payload"), associatedData: ad)
            var ciphertext = box.ciphertext
            ciphertext[0] ^= 1
            #expect(throws: SealingError.authenticationFailed) {
                _ = try client.open(SealedBox(nonce: box.nonce, ciphertext: ciphertext), associatedData: ad)
            }
            #expect(client.lastError == .authenticationFailed)
            #expect(throws: SealingError.authenticationFailed) {
                _ = try client.open(box, associatedData: Array("aD".utf8))
            }
            let other = try VaultKey.generate().seal(secret("payload"), associatedData: ad)
            #expect(throws: SealingError.authenticationFailed) { _ = try client.open(other, associatedData: ad) }
            // The same refusal a VaultKey gives for a nonce of the wrong size.
            let shortNonce = SealedBox(nonce: Array(box.nonce.dropLast()), ciphertext: box.ciphertext)
            #expect(throws: SealingError.invalidLength(what: "nonce", expected: 24, actual: 23)) {
                _ = try client.open(shortNonce, associatedData: ad)
            }
            // A failed open leaves the connection usable.
            #expect(text(try client.open(box, associatedData: ad)) == "payload")
            #expect(client.lastError == nil)
        }

        @Test func statusReportsTheAgentAndDoesNotExtendItsTimer() throws {
            let directory = try TemporaryDirectory()
            let agent = try startAgent(in: directory, key: try VaultKey.generate(), idleTimeout: 30)
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            let first = try client.status()
            #expect(first.vaultID == testVaultID)
            #expect(first.pid == getpid())
            #expect(first.protocolVersion == AgentProtocol.version)
            #expect(first.secondsLeft <= 30 && first.secondsLeft >= 28)
            Thread.sleep(forTimeInterval: 1.2)
            let second = try client.status()
            #expect(second.secondsLeft < first.secondsLeft)
            _ = try client.fingerprint(secret("use"))
            let third = try client.status()
            #expect(third.secondsLeft > second.secondsLeft)
        }

        @Test func usesKeepTheAgentAliveAndStatusRequestsDoNot() throws {
            let directory = try TemporaryDirectory()
            let agent = try startAgent(in: directory, key: try VaultKey.generate(), idleTimeout: 2)
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            // 3.2 s of uses, every 0.4 s: well past the 2 s timeout.
            for _ in 0..<8 {
                Thread.sleep(forTimeInterval: 0.4)
                _ = try client.fingerprint(secret("use"))
            }
            #expect(agent.exit(within: 0) == nil)
            // Only status requests from here: the agent must go within 2 s.
            let start = Date()
            while agent.exit(within: 0.2) == nil, Date().timeIntervalSince(start) < 6 {
                _ = try? client.status()
            }
            #expect(agent.exit(within: 0) == .idle)
            // 2 s and a poll tick; the rest is margin for a loaded machine.
            #expect(Date().timeIntervalSince(start) < 3.5)
            #expect(!fileExists(agent.socketPath))
        }

        @Test func anIdleAgentExits() throws {
            let directory = try TemporaryDirectory()
            let agent = try startAgent(in: directory, key: try VaultKey.generate(), idleTimeout: 1)
            defer { agent.finish() }
            #expect(agent.exit(within: 3) == .idle)
            #expect(!fileExists(agent.socketPath))
            #expect(throws: AgentError.notRunning) { _ = try AgentClient.connect(socketPath: agent.socketPath) }
        }

        @Test func lockWipesTheKeyRemovesTheSocketAndExits() throws {
            let directory = try TemporaryDirectory()
            weak var heldKey: VaultKey?
            let agent: RunningAgent
            do {
                let key = try VaultKey.generate()
                heldKey = key
                agent = try startAgent(in: directory, key: key)
            }
            defer { agent.finish() }
            #expect(heldKey != nil)
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            try client.lock()
            #expect(agent.exit(within: 3) == .locked)
            // The agent held the only reference: the VaultKey is gone, and with
            // it its guarded memory, zeroed by sodium_free.
            #expect(heldKey == nil)
            #expect(!fileExists(agent.socketPath))
            #expect(throws: AgentError.notRunning) { _ = try AgentClient.connect(socketPath: agent.socketPath) }
            // The old connection is dead, and says so without sealing anything.
            #expect { _ = try client.fingerprint(secret("x")) } throws: { error in
                if case .sealerUnavailable = error as? SealingError { return true }
                return false
            }
            #expect(client.lastError != nil)
        }

        @Test func stopEndsTheLoop() throws {
            let directory = try TemporaryDirectory()
            weak var heldKey: VaultKey?
            let agent: RunningAgent
            do {
                let key = try VaultKey.generate()
                heldKey = key
                agent = try startAgent(in: directory, key: key)
            }
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            _ = try client.status()
            agent.server.stop()
            #expect(agent.exit(within: 1) == .stopped)
            #expect(heldKey == nil)
            #expect(!fileExists(agent.socketPath))
            agent.server.stop()  // harmless once stopped
        }

        @Test func theSignalRequestStopsTheLoopOnceAndIsCleared() throws {
            let directory = try TemporaryDirectory()
            let agent = try startAgent(in: directory, key: try VaultKey.generate())
            defer { agent.finish() }
            _ = try AgentClient.connect(socketPath: agent.socketPath).status()
            AgentServer.requestStopFromSignalHandler()
            // It wakes the loop at once (the promise is 200 ms); the rest is
            // margin for a loaded machine.
            #expect(agent.exit(within: 0.5) == .stopped)

            // The request was consumed: a new agent keeps running.
            let next = try startAgent(in: directory, key: try VaultKey.generate())
            defer { next.finish() }
            #expect(next.exit(within: 0.6) == nil)
            #expect(try AgentClient.connect(socketPath: next.socketPath).status().vaultID == testVaultID)

            // A request made while no loop runs stops the next one, once.
            next.server.stop()
            #expect(next.exit(within: 1) == .stopped)
            AgentServer.requestStopFromSignalHandler()
            AgentServer.requestStopFromSignalHandler()
            let early = try startAgent(in: directory, key: try VaultKey.generate())
            defer { early.finish() }
            #expect(early.exit(within: 0.5) == .stopped)
            let last = try startAgent(in: directory, key: try VaultKey.generate())
            defer { last.finish() }
            #expect(last.exit(within: 0.6) == nil)
        }

        @Test func leavesNoDescriptorsBehind() throws {
            /// "fd -> target" for each open descriptor but the listing's own.
            func openDescriptors() throws -> Set<String> {
                let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
                return Set(names.compactMap { name in
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + name))
                        .map { "\(name) -> \($0)" }
                })
            }
            let directory = try TemporaryDirectory()
            // The first server in the process makes the signal pipe, for good.
            let warmUp = try startAgent(in: directory, key: try VaultKey.generate())
            warmUp.finish()
            let before = try openDescriptors()
            weak var server: AgentServer?
            do {
                let key = try VaultKey.generate()
                let agent = try startAgent(in: directory, key: key)
                server = agent.server
                defer { agent.finish() }
                let clients = try (0..<3).map { _ in try AgentClient.connect(socketPath: agent.socketPath) }
                let bad = try RawConnection(agent.socketPath)
                bad.send(lengthPrefix(0))
                _ = bad.readUntilClosed(within: 3)
                let idle = try RawConnection(agent.socketPath)
                idle.send([0])
                try clients[0].lock()
                #expect(agent.exit(within: 3) == .locked)
            }
            // Its thread lets go of the server a moment after run() returns;
            // the stop pipe goes with the object.
            let deadline = Date().addingTimeInterval(3)
            while server != nil, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            #expect(server == nil)
            // Objects of earlier tests may close theirs meanwhile: only new
            // descriptors count. The end-to-end tests run in this process at
            // the same time: their output files are theirs, and what they
            // open for a moment is waited out; a leak of the agent's stays.
            func leaked() throws -> Set<String> {
                try openDescriptors().subtracting(before).filter { !$0.contains("/keyseal-e2e.") }
            }
            var left = try leaked()
            let settle = Date().addingTimeInterval(5)
            while !left.isEmpty, Date() < settle {
                Thread.sleep(forTimeInterval: 0.05)
                left = left.intersection(try leaked())
            }
            #expect(left.isEmpty, "\(left.sorted())")
        }

        @Test func socketIsPrivate() throws {
            let directory = try TemporaryDirectory()
            let agent = try startAgent(in: directory, key: try VaultKey.generate())
            defer { agent.finish() }
            #expect(fileMode(agent.socketPath) == 0o600)
            var info = stat()
            #expect(lstat(agent.socketPath, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK)
        }

        @Test func refusesBadParameters() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            #expect(throws: AgentError.self) {
                _ = try AgentServer(socketPath: directory.socket(), key: key, vaultID: testVaultID, idleTimeout: 0)
            }
            let long = directory.path + "/" + String(repeating: "s", count: 120)
            #expect(throws: AgentError.self) {
                _ = try AgentServer(socketPath: long, key: key, vaultID: testVaultID, idleTimeout: 60)
            }
            #expect(throws: AgentError.self) { _ = try AgentClient.connect(socketPath: long) }
            #expect(!fileExists(directory.socket()))
        }
    }

    @Suite struct Startup {
        @Test func aStaleSocketIsReplaced() throws {
            let directory = try TemporaryDirectory()
            let path = directory.socket()
            // An agent that died without unlinking: bound, then closed.
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = try UnixSocket.address(path)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            #expect(bound == 0)
            close(fd)
            #expect(fileExists(path))
            #expect(throws: AgentError.notRunning) { _ = try AgentClient.connect(socketPath: path) }

            let agent = try startAgent(in: directory, key: try VaultKey.generate())
            defer { agent.finish() }
            #expect(try AgentClient.connect(socketPath: path).status().pid == getpid())
        }

        @Test func aLiveAgentIsNotReplaced() throws {
            let directory = try TemporaryDirectory()
            let agent = try startAgent(in: directory, key: try VaultKey.generate())
            defer { agent.finish() }
            #expect(throws: AgentError.io("another agent is already serving \(agent.socketPath)")) {
                _ = try AgentServer(socketPath: agent.socketPath, key: try VaultKey.generate(),
                                    vaultID: testVaultID, idleTimeout: 60)
            }
            #expect(try AgentClient.connect(socketPath: agent.socketPath).status().vaultID == testVaultID)
        }

        @Test func somethingElseAtThePathIsLeftAlone() throws {
            let directory = try TemporaryDirectory()
            let path = directory.socket()
            #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
            #expect(throws: AgentError.io("\(path) exists and is not a socket")) {
                _ = try AgentServer(socketPath: path, key: try VaultKey.generate(), vaultID: testVaultID, idleTimeout: 60)
            }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep")
            #expect(throws: AgentError.notRunning) { _ = try AgentClient.connect(socketPath: path) }
        }

        @Test func aSocketOfAnotherUserIsLeftAlone() throws {
            let directory = try TemporaryDirectory()
            let path = directory.socket()
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = try UnixSocket.address(path)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            close(fd)
            let owner = getuid()
            // As root the socket can belong to nobody; otherwise the agent is
            // told to expect another owner, which reaches the same check.
            if owner == 0 {
                #expect(chown(path, 65534, 65534) == 0)
                #expect(throws: AgentError.peerNotOwner(uid: 65534)) {
                    _ = try AgentServer(socketPath: path, key: try VaultKey.generate(), vaultID: testVaultID, idleTimeout: 60)
                }
            } else {
                #expect(throws: AgentError.peerNotOwner(uid: owner)) {
                    _ = try AgentServer(socketPath: path, key: try VaultKey.generate(), vaultID: testVaultID,
                                        idleTimeout: 60, allowedUID: owner + 1)
                }
            }
            #expect(fileExists(path))
        }
    }
}
