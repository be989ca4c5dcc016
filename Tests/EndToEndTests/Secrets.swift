// Sentinel secrets and the checks that they stay sealed: never in stderr,
// never in a file of the sandbox but the vault, and there only sealed.
import Foundation
import Testing

enum Sentinel {
    /// A secret that needs escaping in a curl config and in JSON (a double
    /// quote, a backslash), that a shell would expand or split (`$`, a
    /// space, `;`), and that is not ASCII (é); `tag` keeps the tests that run
    /// at the same time apart in /proc.
    static func make(_ tag: String) -> String {
        "sentinel-\(tag)-tok\"en\\$ x;é"
    }

    /// The forms a secret takes in keyseal's outputs: as it is, escaped for a
    /// curl config and for JSON (both escape `"` and `\` the same way).
    static func forms(of secret: String) -> [String] {
        [secret, secret.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")]
    }
}

extension Sandbox {
    /// No run wrote `secret` to stderr, and no file under HOME or the work
    /// directory holds it, in any of its forms; the vault exists and holds it
    /// only sealed. Captured stdout and the server's log live elsewhere.
    func expectSealed(_ secret: String, runs: [RunResult], sourceLocation: SourceLocation = #_sourceLocation) throws {
        for run in runs {
            for form in Sentinel.forms(of: secret) {
                #expect(!run.stderr.contains(form), "stderr holds the secret: \(run)", sourceLocation: sourceLocation)
            }
        }
        let files = try regularFiles(under: [home, work])
        #expect(files.keys.contains(vault), "no vault at \(vault): \(files.keys.sorted())", sourceLocation: sourceLocation)
        for (path, bytes) in files {
            for form in Sentinel.forms(of: secret) {
                #expect(!bytes.contains(form), "\(path) holds the secret in the clear", sourceLocation: sourceLocation)
            }
        }
    }

    /// Every regular file below `directories`, recursively, with its bytes.
    func regularFiles(under directories: [String]) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for directory in directories {
            guard let walker = FileManager.default.enumerator(atPath: directory) else { continue }
            while let relative = walker.nextObject() as? String {
                let path = directory + "/" + relative
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                    files[path] = bytes(path)
                }
            }
        }
        return files
    }
}
