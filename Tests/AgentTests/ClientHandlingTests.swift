import Foundation
import Testing
@testable import Agent
import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// What a well-behaved client gets from the agent right after a bad one.
private func agentStillServes(_ agent: RunningAgent, _ key: VaultKey) throws {
    let client = try AgentClient.connect(socketPath: agent.socketPath)
    #expect(try client.fingerprint(secret("next")) == key.fingerprint(secret("next")))
    #expect(agent.exit(within: 0) == nil)
}

private let malformedAnswer = frame([AgentProtocol.version, 2])
private let v = AgentProtocol.version

extension AgentTests {
    @Suite struct BadClients {
        static let badFrames: [(String, [UInt8])] = [
            ("garbage", Array("GET / HTTP/1.1\r\nHost: agent\r\n\r\n".utf8)),
            ("length 0", lengthPrefix(0)),
            ("length over maxFrame", lengthPrefix(AgentProtocol.maxFrame + 1) + [v, 1]),
            ("length 2^32-1", [0xff, 0xff, 0xff, 0xff]),
            ("version byte only", frame([v])),
            ("unknown opcode", frame([v, 99])),
            ("opcode 0", frame([v, 0])),
            ("hello with a field", frame([v, 1] + field([1]))),
            ("seal missing its associated data", frame([v, 2] + field(Array("plaintext".utf8)))),
            ("seal with a third field", frame([v, 2] + field([1]) + field([2]) + field([3]))),
            ("open with two fields", frame([v, 3] + field([UInt8](repeating: 0, count: 24)) + field([1]))),
            ("field longer than the frame", frame([v, 4] + lengthPrefix(100) + [1, 2, 3])),
            ("trailing bytes after the fields", frame([v, 4] + field([1]) + [0])),
            ("half a field length", frame([v, 4, 0, 0])),
            ("lock with a field", frame([v, 5] + field([]))),
        ]

        @Test(arguments: badFrames.indices)
        func aMalformedFrameIsAnsweredAndDropped(_ index: Int) throws {
            let (name, bytes) = Self.badFrames[index]
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let bad = try RawConnection(agent.socketPath)
            bad.send(bytes)
            let (answer, closed) = bad.readUntilClosed(within: 3)
            #expect(answer == malformedAnswer, "\(name)")
            #expect(closed, "\(name)")
            try agentStillServes(agent, key)
        }

        @Test func anOversizedFrameStillBeingSentIsDropped() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let bad = try RawConnection(agent.socketPath)
            let size = AgentProtocol.maxFrame * 2
            // The agent stops reading at the length: this send fails part-way.
            bad.send(lengthPrefix(size) + [v, 2] + [UInt8](repeating: 0x41, count: size - 2))
            let (answer, closed) = bad.readUntilClosed(within: 3)
            #expect(answer == malformedAnswer)
            #expect(closed)
            try agentStillServes(agent, key)
        }

        @Test func anotherVersionIsAnsweredWithOursAndDropped() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            for version: UInt8 in [0, AgentProtocol.version - 1, AgentProtocol.version + 1, 255] {
                let other = try RawConnection(agent.socketPath)
                other.send(frame([version, 1]))
                let (answer, closed) = other.readUntilClosed(within: 3)
                #expect(answer == frame([AgentProtocol.version, 3]))
                #expect(closed)
            }
            try agentStillServes(agent, key)
        }

        @Test func aWellFormedRequestGetsAWellFormedAnswer() throws {
            // The same socket, raw: checks the byte layout the comment in
            // Protocol.swift documents, independently of AgentClient.
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let raw = try RawConnection(agent.socketPath)
            raw.send(frame([v, 4] + field(Array("abc".utf8))))
            // Then hello, sent at once: answered after the first, in order.
            raw.send(frame([v, 1]))
            raw.send(frame([v, 5]))
            let (answer, closed) = raw.readUntilClosed(within: 3)
            let digest = try key.fingerprint(secret("abc"))
            let pid = UInt32(bitPattern: getpid())
            // 60 when hello is read in the same instant as the use, 59 after.
            let hellos = [UInt8(60), 59].map { seconds in
                frame([v, 0] + field(testVaultID) + field([0, 0, 0, 0, 0, 0, 0, seconds])
                    + field([UInt8(pid >> 24), UInt8((pid >> 16) & 0xff), UInt8((pid >> 8) & 0xff), UInt8(pid & 0xff)]))
            }
            #expect(hellos.contains { answer == frame([v, 0] + field(digest)) + $0 + frame([v, 0]) })
            #expect(closed)
            #expect(agent.exit(within: 3) == .locked)
        }

        @Test func aClientThatStopsMidFrameIsDroppedAfterTwoSeconds() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let slow = try RawConnection(agent.socketPath)
            let started = Date()
            slow.send(lengthPrefix(10) + [v, 2])
            // Meanwhile others are served.
            try agentStillServes(agent, key)
            let (answer, closed) = slow.readUntilClosed(within: 3)
            let elapsed = Date().timeIntervalSince(started)
            #expect(answer.isEmpty)
            #expect(closed)
            #expect(elapsed >= 1.8 && elapsed < 3)
            try agentStillServes(agent, key)
        }

        @Test func aHalfSentLengthCountsAsAStartedFrame() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            let slow = try RawConnection(agent.socketPath)
            slow.send([0, 0])
            let (answer, closed) = slow.readUntilClosed(within: 3)
            #expect(answer.isEmpty)
            #expect(closed)
            try agentStillServes(agent, key)
        }

        @Test func anIdleClientIsDropped() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            var limits = AgentServer.ClientLimits()
            limits.idle = .seconds(1)
            let agent = try startAgent(in: directory, key: key, limits: limits)
            defer { agent.finish() }
            let silent = try RawConnection(agent.socketPath)
            let talked = try RawConnection(agent.socketPath)
            talked.send(frame([v, 1]))
            let started = Date()
            let (nothing, silentClosed) = silent.readUntilClosed(within: 3)
            #expect(nothing.isEmpty)
            #expect(silentClosed)
            #expect(Date().timeIntervalSince(started) >= 0.8)
            let (hello, talkedClosed) = talked.readUntilClosed(within: 3)
            #expect(hello.count > 6)
            #expect(talkedClosed)
            try agentStillServes(agent, key)
        }

        @Test func aClientLeavingMidFrameDoesNotDisturbTheAgent() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            do {
                let leaving = try RawConnection(agent.socketPath)
                leaving.send(lengthPrefix(100) + [v, 2, 0, 0, 0, 5, 1])
            }
            do {
                // And one that leaves before reading its answer.
                let leaving = try RawConnection(agent.socketPath)
                leaving.send(frame([v, 4] + field([1, 2, 3])))
            }
            try agentStillServes(agent, key)
        }

        @Test func thirtyThreeClients() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            let agent = try startAgent(in: directory, key: key)
            defer { agent.finish() }
            var clients: [AgentClient] = []
            for _ in 0..<32 {
                clients.append(try AgentClient.connect(socketPath: agent.socketPath))
            }
            #expect(throws: AgentError.protocolError("the agent closed the connection")) {
                _ = try AgentClient.connect(socketPath: agent.socketPath)
            }
            let expected = try key.fingerprint(secret("many"))
            for client in clients {
                #expect(try client.fingerprint(secret("many")) == expected)
            }
            // A place freed is a place taken.
            clients.removeLast()
            var replacement: AgentClient?
            let deadline = Date().addingTimeInterval(2)
            while replacement == nil, Date() < deadline {
                replacement = try? AgentClient.connect(socketPath: agent.socketPath)
            }
            #expect(try replacement?.fingerprint(secret("many")) == expected)
            #expect(agent.exit(within: 0) == nil)
        }

        @Test func anotherUserIsClosedBeforeAByteIsRead() throws {
            let directory = try TemporaryDirectory()
            let key = try VaultKey.generate()
            // The agent is told to serve only another uid, so this process is
            // the stranger: the same SO_PEERCRED check a second user meets.
            let agent = try startAgent(in: directory, key: key, allowedUID: getuid() &+ 1)
            defer { agent.finish() }
            #expect(throws: AgentError.protocolError("the agent closed the connection")) {
                _ = try AgentClient.connect(socketPath: agent.socketPath)
            }
            let stranger = try RawConnection(agent.socketPath)
            stranger.send(frame([v, 5]))
            let (answer, closed) = stranger.readUntilClosed(within: 3)
            #expect(answer.isEmpty)
            #expect(closed)
            // Its lock request was never read.
            #expect(agent.exit(within: 0.5) == nil)
            #expect(fileExists(agent.socketPath))
        }
    }
}
