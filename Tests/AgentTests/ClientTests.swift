import Foundation
import Testing
@testable import Agent
import Sealing
#if canImport(Glibc)
import Glibc
#endif

private let v = AgentProtocol.version

extension AgentTests {
    @Suite struct Client {
        @Test func noAgentIsNotRunning() throws {
            let directory = try TemporaryDirectory()
            #expect(throws: AgentError.notRunning) { _ = try AgentClient.connect(socketPath: directory.socket()) }
            #expect(throws: AgentError.notRunning) {
                _ = try AgentClient.connect(socketPath: directory.path + "/missing/agent.sock")
            }
            #expect(throws: AgentError.notRunning) { _ = try AgentClient.agentPID(socketPath: directory.socket()) }
        }

        @Test func anAgentOfAnotherVersionIsReported() throws {
            let directory = try TemporaryDirectory()
            let older = AgentProtocol.version - 1
            let fake = try FakeAgent(path: directory.socket(), reply: frame([older, 3]))
            #expect(throws: AgentError.versionMismatch(found: older)) {
                _ = try AgentClient.connect(socketPath: fake.path)
            }
            #expect(fake.waitUntilServed())
        }

        @Test func theAgentToReplaceCanBeFound() throws {
            let directory = try TemporaryDirectory()
            let fake = try FakeAgent(path: directory.socket(), reply: [])
            #expect(try AgentClient.agentPID(socketPath: fake.path) == getpid())
            #expect(fake.waitUntilServed())
        }

        @Test func anAgentOfAnotherUserIsRefused() throws {
            let directory = try TemporaryDirectory()
            let agent = try startAgent(in: directory, key: try VaultKey.generate())
            defer { agent.finish() }
            // This process expects another owner: the socket's owner (us) is the stranger.
            #expect(throws: AgentError.peerNotOwner(uid: getuid())) {
                _ = try AgentClient.connect(socketPath: agent.socketPath, expectedUID: getuid() &+ 1)
            }
        }

        static let badReplies: [(String, [UInt8], AgentError)] = [
            ("closed at once", [], .protocolError("the agent closed the connection")),
            ("half a length", [0, 0], .protocolError("the agent closed the connection")),
            ("short body", lengthPrefix(10) + [1, 0], .protocolError("the agent closed the connection")),
            ("length 1", frame([v]), .protocolError("the agent sent a frame of 1 bytes")),
            ("length over maxFrame", lengthPrefix(AgentProtocol.maxFrame + 1), .protocolError("the agent sent a frame of 262145 bytes")),
            ("unknown status", frame([v, 9]), .protocolError("the agent answered with unknown status 9")),
            ("malformed status", frame([v, 2]), .protocolError("the agent refused the request as malformed")),
            ("internal error", frame([v, 4]), .protocolError("the agent could not complete the request")),
            ("ok without fields", frame([v, 0]), .protocolError("malformed hello reply from the agent")),
            ("pid of 3 bytes", frame([v, 0] + field([1]) + field([0, 0, 0, 0, 0, 0, 0, 1]) + field([0, 0, 1])),
             .protocolError("malformed hello reply from the agent")),
            ("trailing field", frame([v, 0] + field([1]) + field([0, 0, 0, 0, 0, 0, 0, 1]) + field([0, 0, 0, 1]) + field([])),
             .protocolError("malformed hello reply from the agent")),
        ]

        @Test(arguments: badReplies.indices)
        func aBadReplyIsAProtocolError(_ index: Int) throws {
            let (name, reply, expected) = Self.badReplies[index]
            let directory = try TemporaryDirectory()
            let fake = try FakeAgent(path: directory.socket(), reply: reply)
            #expect(throws: expected, "\(name)") { _ = try AgentClient.connect(socketPath: fake.path) }
            #expect(fake.waitUntilServed())
        }

        @Test func aBrokenConnectionStaysBroken() throws {
            let directory = try TemporaryDirectory()
            let agent = try startAgent(in: directory, key: try VaultKey.generate())
            defer { agent.finish() }
            let client = try AgentClient.connect(socketPath: agent.socketPath)
            agent.server.stop()
            #expect(agent.exit(within: 2) == .stopped)
            #expect(throws: AgentError.self) { _ = try client.status() }
            #expect(throws: AgentError.protocolError("the connection to the agent was lost")) { _ = try client.status() }
            #expect {
                _ = try client.open(SealedBox(nonce: [UInt8](repeating: 0, count: 24), ciphertext: [UInt8](repeating: 0, count: 17)),
                                    associatedData: [])
            } throws: { error in
                if case .sealerUnavailable = error as? SealingError { return true }
                return false
            }
            // Not an authentication failure: storage would call that tampering.
            #expect(client.lastError == .protocolError("the connection to the agent was lost"))
        }
    }

    @Suite struct Wire {
        @Test func requestLayout() throws {
            let hello = try Agent.Wire.bare(code: Opcode.hello.rawValue)
            #expect(hello.bytes.withUnsafeBytes { Array($0) } == [0, 0, 0, 2, v, 1])
            let plaintext = secret("pt")
            let seal = try Agent.Wire.frame(code: Opcode.seal.rawValue, fieldLengths: [2, 1]) { writer in
                writer.field(plaintext)
                writer.field([9])
            }
            #expect(seal.bytes.withUnsafeBytes { Array($0) }
                == [0, 0, 0, 13, v, 2, 0, 0, 0, 2, UInt8(ascii: "p"), UInt8(ascii: "t"), 0, 0, 0, 1, 9])
        }

        @Test func fieldReaderStopsAtTheEnd() {
            let body: [UInt8] = [v, 2, 0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 5, 1]
            body.withUnsafeBytes { raw in
                var fields = FieldReader(body: raw)
                #expect(fields.next().map(Array.init) == [7])
                #expect(fields.next().map(Array.init) == [])
                #expect(!fields.isAtEnd)
                #expect(fields.next() == nil)  // claims 5 bytes, has 1
            }
        }

        @Test func integers() {
            #expect(Agent.Wire.bigEndian(Int64(-2)) == [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])
            #expect(Agent.Wire.bigEndian(Int32(0x0102_0304)) == [1, 2, 3, 4])
            [UInt8]([0x80, 0, 0, 0, 0, 0, 0, 1]).withUnsafeBytes { #expect(Agent.Wire.int64($0) == Int64.min + 1) }
            [UInt8]([0, 0, 0x30, 0x39]).withUnsafeBytes { #expect(Agent.Wire.int32($0) == 12345) }
        }
    }
}
