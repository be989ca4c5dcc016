import Foundation
import Testing

@Suite("help and version")
struct CommandLineTests {
    @Test("--help exits 0 and lists every subcommand and the exit statuses")
    func help() async throws {
        let sandbox = try Sandbox()
        for arguments in [["--help"], ["-h"], ["help"]] {
            let result = try await sandbox.run(arguments)
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
            #expect(result.out.contains("USAGE: keyseal <subcommand>"), "\(result)")
            let subcommands = result.out.components(separatedBy: "SUBCOMMANDS:").last ?? ""
            for name in ["init ", "add ", "get ", "list, ls ", "rm, remove "] {
                #expect(subcommands.contains("\n  " + name), "\(name) missing: \(result)")
            }
            for status in ["0 success", "64", "65", "66", "73", "77"] {
                #expect(result.out.contains(status), "\(status) missing: \(result)")
            }
        }
        #expect(try sandbox.snapshot(sandbox.work).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.home).isEmpty)
    }

    @Test("each subcommand has its own --help", arguments: ["init", "add", "get", "list", "ls", "rm", "remove"])
    func subcommandHelp(_ name: String) async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.run([name, "--help"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        let canonical = ["ls": "list", "remove": "rm"][name] ?? name
        #expect(result.out.contains("USAGE: keyseal \(canonical) "), "\(result)")
        #expect(result.out.contains("--vault <path>"), "\(result)")
    }

    @Test("--version prints a version")
    func version() async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.run(["--version"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        #expect(result.out.wholeMatch(of: #/\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?\n/#) != nil, "\(result)")
    }
}
