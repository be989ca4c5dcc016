import Foundation
import Testing
@testable import Agent
#if canImport(Glibc)
import Glibc
#endif

extension AgentTests {
    @Suite struct SocketDirectories {
        @Test func createsAMissingDirectory0700WhateverTheUmask() throws {
            let base = try TemporaryDirectory()
            // 000: mkdir's 0700 survives; 0277: it would be 0500 unless fixed.
            for (index, mask) in [mode_t(0o000), 0o277, 0o777].enumerated() {
                let path = base.path + "/keyseal-\(index)"
                let previous = umask(mask)
                let result = Result { () throws(AgentError) in try SocketDirectory.prepare(path, uid: getuid()) }
                umask(previous)
                #expect(try result.get() == path)
                #expect(fileMode(path) == 0o700, "umask \(String(mask, radix: 8))")
                var info = stat()
                #expect(lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR && info.st_uid == getuid())
            }
        }

        @Test func acceptsItsOwnPrivateDirectoryAsItIs() throws {
            let base = try TemporaryDirectory()
            let path = base.path + "/keyseal"
            #expect(mkdir(path, 0o700) == 0)
            #expect(try SocketDirectory.prepare(path + "//", uid: getuid()) == path)
            #expect(try SocketDirectory.prepare(path, uid: getuid()) == path)
            #expect(fileMode(path) == 0o700)
        }

        @Test func refusesASymlink() throws {
            let base = try TemporaryDirectory()
            let target = base.path + "/real"
            #expect(mkdir(target, 0o700) == 0)
            let link = base.path + "/keyseal"
            #expect(symlink(target, link) == 0)
            let expected = AgentError.unsafeSocketDirectory(path: link, reason: "it is a symbolic link")
            #expect(throws: expected) { _ = try SocketDirectory.prepare(link, uid: getuid()) }
            // A trailing slash would make lstat follow the link.
            #expect(throws: expected) { _ = try SocketDirectory.prepare(link + "/", uid: getuid()) }
        }

        @Test func refusesADirectoryOthersCanReach() throws {
            let base = try TemporaryDirectory()
            for mode: mode_t in [0o755, 0o710, 0o701, 0o750, 0o1777] {
                let path = base.path + "/keyseal-\(String(mode, radix: 8))"
                #expect(mkdir(path, 0o700) == 0)
                #expect(chmod(path, mode) == 0)
                #expect(throws: AgentError.self) { _ = try SocketDirectory.prepare(path, uid: getuid()) }
                // Refused, not repaired: someone else may already be inside.
                #expect(fileMode(path) == mode)
            }
            let path = base.path + "/keyseal-755"
            #expect(throws: AgentError.unsafeSocketDirectory(
                path: path, reason: "group or others have access (mode 0755, expected 0700)")) {
                _ = try SocketDirectory.prepare(path, uid: getuid())
            }
        }

        @Test func refusesADirectoryOfAnotherUser() throws {
            let base = try TemporaryDirectory()
            let path = base.path + "/keyseal"
            #expect(mkdir(path, 0o700) == 0)
            let me = getuid()
            #expect(throws: AgentError.unsafeSocketDirectory(path: path, reason: "it is owned by uid \(me), not \(me &+ 1)")) {
                _ = try SocketDirectory.prepare(path, uid: me &+ 1)
            }
            if me == 0 {
                #expect(chown(path, 65534, 65534) == 0)
                #expect(throws: AgentError.unsafeSocketDirectory(path: path, reason: "it is owned by uid 65534, not 0")) {
                    _ = try SocketDirectory.prepare(path, uid: 0)
                }
            }
        }

        @Test func refusesAFileAndAMissingParent() throws {
            let base = try TemporaryDirectory()
            let file = base.path + "/keyseal"
            #expect(FileManager.default.createFile(atPath: file, contents: Data()))
            #expect(throws: AgentError.unsafeSocketDirectory(path: file, reason: "it is not a directory")) {
                _ = try SocketDirectory.prepare(file, uid: getuid())
            }
            let orphan = base.path + "/missing/keyseal"
            #expect(throws: AgentError.unsafeSocketDirectory(
                path: orphan, reason: "its parent directory \(base.path)/missing does not exist")) {
                _ = try SocketDirectory.prepare(orphan, uid: getuid())
            }
            #expect(!fileExists(base.path + "/missing"))
        }

        @Test func socketPathFormat() {
            #expect(SocketDirectory.socketPath(directory: "/run/user/1000/keyseal", vaultID: [0x00, 0x01, 0xab, 0xff])
                == "/run/user/1000/keyseal/agent-0001abff.sock")
            #expect(SocketDirectory.socketPath(directory: "/tmp/keyseal-1000/", vaultID: Array(0..<16))
                == "/tmp/keyseal-1000/agent-000102030405060708090a0b0c0d0e0f.sock")
        }
    }
}
