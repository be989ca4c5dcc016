// How long an adversarial suite (docs/RELIABILITY.md) runs: a fixed number
// of rounds in scripts/test, or rounds until KEYSEAL_STRESS_SECONDS are
// spent under scripts/stress.
import Foundation

enum StressBudget {
    /// The seconds scripts/stress gave, or nil in a bounded run.
    static let seconds: Double? = ProcessInfo.processInfo.environment["KEYSEAL_STRESS_SECONDS"].flatMap(Double.init)

    /// Runs `round` `bounded` times, or, under scripts/stress, until the
    /// budget is spent (at least `bounded` times). Returns the rounds run.
    @discardableResult
    static func repeatRounds(bounded: Int, _ round: (Int) async throws -> Void) async rethrows -> Int {
        let deadline = seconds.map { Date().addingTimeInterval($0) }
        var index = 0
        while index < bounded || (deadline.map { Date() < $0 } ?? false) {
            try await round(index)
            index += 1
        }
        return index
    }
}
