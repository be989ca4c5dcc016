// A private CA for the https tests (the bearer exchange, git over https):
// made with openssl in the sandbox, so nothing is trusted beyond one test.
import Foundation
import Testing

extension Sandbox {
    /// A CA and a certificate for 127.0.0.1 signed by it, made with openssl
    /// in `directory`; returns the paths of the CA, the server's chain and key.
    func makeCertificates(in directory: String) async throws -> (ca: String, chain: String, key: String) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = #"""
            set -e
            cd "$1"
            curve="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            openssl req -x509 $curve -keyout ca.key -out ca.pem -days 2 -subj "/CN=keyseal test CA" 2>/dev/null
            openssl req $curve -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
            """#
        let made = try await shell(script, [directory])
        try #require(made.status == 0, "openssl failed: \(made)")
        return (directory + "/ca.pem", directory + "/server.pem", directory + "/server.key")
    }
}
