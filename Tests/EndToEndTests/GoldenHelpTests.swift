import Foundation
import Testing

/// `keyseal --help`, as the binary printed it when this file was written
/// (80 columns: no terminal, COLUMNS unset). A change to the root command's
/// help shows up here as a diff to review; regenerate with
///   env -u COLUMNS setsid --wait .build/debug/keyseal --help </dev/null | cat
/// and paste it between the delimiters below.
let goldenRootHelp = #"""
OVERVIEW: A sealed vault for API keys, bearer tokens and personal access
tokens.

Secrets are sealed with libsodium in one SQLite file, unlocked by a master
passphrase. Exit status: 0 success, 1 failure, 2 expired entry refused (check:
1 expiring, 2 expired, 3 check failed), 64 bad usage or input, 65 damaged or
altered vault, 66 no such vault or entry, 69 curl not found or a server
unreachable, 73 already exists, 75 entry changed meanwhile by another keyseal
(edit, rename: nothing changed, run it again), 76 unexpected answer from a
server, 77 cannot unlock or API key refused, 126 command cannot run, 127
command not found; curl and run otherwise exit with the status of the program
they run. See keyseal(1).

USAGE: keyseal <subcommand>

OPTIONS:
  --version               Show the version.
  -h, --help              Show help information.

SUBCOMMANDS:
  init                    Create a new vault, protected by a master passphrase.
  add                     Store a new secret, read from a hidden prompt or from
                          stdin.
  header                  Print an entry's ready HTTP header, for curl.
  curl                    Run curl with an entry's header, never on curl's
                          command line.
  run                     Run a command with secrets in its environment, and
                          only in its.
  login                   Exchange a bearer entry's API key for a token, to
                          check that it works.
  pat                     Personal access tokens in Immuta's Request app,
                          created straight into the vault.
  get                     Print an entry's raw secret, for scripts.
  git-credential          Give git an entry's PAT, as a git credential helper.
  list, ls                List entries with their expiry state (metadata only;
                          no passphrase needed).
  show                    Show one entry's metadata and previous versions (no
                          passphrase needed).
  check                   Check expiries for cron, CI and prompts (no
                          passphrase needed).
  calendar                Print an iCalendar file with one event per expiry (no
                          passphrase needed).
  config                  Read and change vault settings (no passphrase needed).
  edit                    Change an entry's description, expiry, URL, header or
                          kind.
  rename, mv              Rename an entry (its secret is sealed again under the
                          new name).
  rotate                  Replace an entry's secret, keeping the old one for 30
                          days.
  rm, remove              Remove an entry for good (its pages are overwritten).
  unlock                  Unlock the vault once; an agent keeps the key until
                          lock or the idle timeout.
  lock                    End the unlock agent: it wipes the key and exits.
  status                  Say whether the vault is unlocked, and for how long.
  passwd                  Change the vault's passphrase (entries are untouched).
  backup                  Write a verified copy of the vault, still sealed, to
                          a file.
  restore                 Replace the vault's contents with a backup, after
                          verifying it.
  verify                  Check the vault file and open every sealed value in
                          it.
  export                  Write every entry, with its metadata and previous
                          values, to a file another keyseal can import.
  import                  Add entries from a keyseal export, a dotenv file or a
                          pass store (a dry run unless --apply).
  key                     Manage key slots: a key file unlocks without a
                          passphrase or a KDF.
  completions             Print a shell completion script.

  See 'keyseal help <subcommand>' for detailed help.
"""#

@Suite("golden help output")
struct GoldenHelpTests {
    @Test("keyseal --help and -h print exactly the golden text", arguments: [["--help"], ["-h"]])
    func rootHelp(_ arguments: [String]) async throws {
        let sandbox = try Sandbox()
        let result = try await sandbox.run(arguments, env: ["COLUMNS": nil, "LINES": nil])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        #expect(result.out == goldenRootHelp + "\n", "first difference at line \(firstDifference(result.out, goldenRootHelp + "\n")):\n\(result.out)")
    }
}

/// The 1-based number of the first line where `a` and `b` differ, or 0.
private func firstDifference(_ a: String, _ b: String) -> Int {
    let left = a.split(separator: "\n", omittingEmptySubsequences: false)
    let right = b.split(separator: "\n", omittingEmptySubsequences: false)
    for index in 0..<max(left.count, right.count) where index >= left.count || index >= right.count || left[index] != right[index] {
        return index + 1
    }
    return 0
}
