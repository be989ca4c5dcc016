// A real git peer for the credential helper tests: python3 serving git's
// smart HTTP protocol over TLS on 127.0.0.1, through git-http-backend run as
// CGI, behind HTTP basic auth. Each request is logged (path, user, whether
// the password was right) to a JSON-lines file; the password itself never is.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One request as the server judged it.
struct GitHTTPRequest: CustomStringConvertible {
    let method: String
    let path: String
    /// The basic-auth user name, when the request carried one.
    let user: String?
    let authorized: Bool

    var description: String { "\(method) \(path) user=\(user ?? "-") \(authorized ? "ok" : "refused")" }
}

/// Started by `init`, killed by `stop()` or `deinit`.
final class GitHTTPServer {
    let port: Int
    private let directory: String
    private let process: Process

    var origin: String { "https://127.0.0.1:\(port)" }
    /// Where the bare repositories live (GIT_PROJECT_ROOT).
    var projectRoot: String { directory + "/repos" }

    /// Serves `directory/repos` with `tls` (a chain and its key); accepts any
    /// non-empty user with the password in `directory/password` (set with
    /// `setPassword`). Each authorized request waits `delay` seconds first,
    /// so that the processes behind it can be seen.
    init(directory: String, tls: (certificate: String, key: String), delay: Double = 0, timeout: TimeInterval = 10) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory + "/repos", withIntermediateDirectories: true)
        let script = directory + "/git-server.py"
        let portFile = directory + "/port"
        try Data(Self.script.utf8).write(to: URL(fileURLWithPath: script))
        _ = FileManager.default.createFile(atPath: directory + "/requests.jsonl", contents: nil)
        _ = FileManager.default.createFile(atPath: directory + "/server.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/server.log"))
        defer { try? log.close() }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, directory, portFile, tls.certificate, tls.key, String(delay)]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        var found: Int?
        while found == nil, process.isRunning, Date() < deadline {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8),
               let number = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                found = number
            } else {
                usleep(10_000)
            }
        }
        guard let found else {
            let output = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            Self.stop(process)
            throw LoopbackServer.ServerFailure(message: "the git server did not report a port within \(timeout) s: \(output)")
        }
        port = found
    }

    deinit { stop() }

    func stop() { Self.stop(process) }

    private static func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The password the server accepts from now on (mode 0600, outside HOME and the work directory).
    func setPassword(_ password: String) throws {
        let path = directory + "/password"
        try Data(password.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
    }

    /// Every request so far, oldest first.
    func requests() throws -> [GitHTTPRequest] {
        let text = try String(contentsOfFile: directory + "/requests.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            return GitHTTPRequest(method: object["method"] as? String ?? "", path: object["path"] as? String ?? "",
                                  user: object["user"] as? String, authorized: object["ok"] as? Bool ?? false)
        }
    }

    /// What the server logged on stderr (python tracebacks, git-http-backend's complaints).
    var log: String { (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? "" }

    static let script = #"""
        import base64, hmac, http.server, json, os, ssl, subprocess, sys, time

        directory, port_file, cert, key, delay = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
        backend = "/usr/lib/git-core/git-http-backend"

        class Handler(http.server.BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, ended by closing it.
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.serve()

            def do_POST(self):
                self.serve()

            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def authorize(self):
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None, False
                try:
                    user, _, password = base64.b64decode(header[6:], validate=True).partition(b":")
                    with open(os.path.join(directory, "password"), "rb") as f:
                        expected = f.read()
                except Exception:
                    return None, False
                return user.decode("utf-8", "replace"), len(user) > 0 and hmac.compare_digest(password, expected)

            def serve(self):
                data = self.body()
                user, ok = self.authorize()
                with open(os.path.join(directory, "requests.jsonl"), "a") as log:
                    log.write(json.dumps({"method": self.command, "path": self.path, "user": user, "ok": ok}) + "\n")
                if not ok:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="keyseal test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                time.sleep(delay)
                path, _, query = self.path.partition("?")
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": directory, "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_PROJECT_ROOT": os.path.join(directory, "repos"), "GIT_HTTP_EXPORT_ALL": "1",
                    "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1", "PATH_INFO": path, "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(data)), "GATEWAY_INTERFACE": "CGI/1.1",
                }
                for name in ("Content-Encoding", "Git-Protocol"):
                    if self.headers.get(name):
                        env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
                out = subprocess.run([backend], input=data, env=env, stdout=subprocess.PIPE).stdout
                separator = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
                head, _, rest = out.partition(separator)
                status, headers = 200, []
                for line in head.splitlines():
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    else:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                self.wfile.write(rest)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        with open(port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(port_file + ".tmp", port_file)
        server.serve_forever()
        """#
}
